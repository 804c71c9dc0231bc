//! The HTTPS redirect: a site that wants HTTPS answers plain-HTTP requests with a 301 to the
//! same path over HTTPS (a trusted proxy's `X-Forwarded-Proto: https` counts as HTTPS).

use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use bytes::Bytes;

/// In the chain when the site sets `https_redirect`.
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "https-redirect",
    table: "https_redirect",
    build: |b| {
        Ok(b.site
            .https_redirect
            .then(|| std::sync::Arc::new(HttpsRedirectGuard) as std::sync::Arc<dyn Guard>))
    },
    check: None,
};

pub struct HttpsRedirectGuard;

/// The host without its port, IPv6 brackets kept because it goes into a URL
/// (`shop.example:8080` → `shop.example`; `[::1]:80` → `[::1]`).
fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl Guard for HttpsRedirectGuard {
    fn name(&self) -> &'static str {
        "https-redirect"
    }

    fn on_request(&self, req: &RequestFacts<'_>) -> Verdict {
        if req.tls_listener || req.client.proto == "https" {
            return Verdict::Pass;
        }
        let location = format!(
            "https://{}{}",
            host_without_port(req.host),
            req.path_and_query
        );
        let mut response = LocalResponse::page(301, Bytes::new());
        response.headers.push(("location", location));
        Verdict::Respond {
            reason: "plain http".into(),
            response,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_without_port;

    #[test]
    fn ports_are_dropped() {
        assert_eq!(host_without_port("shop.example:8080"), "shop.example");
        assert_eq!(host_without_port("shop.example"), "shop.example");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
    }
}
