//! The session cookies the origin issued through this edge. Anyone can send
//! `woocommerce_items_in_cart=1` or `wordpress_logged_in_x=1`; only a value seen in the
//! origin's `Set-Cookie` earns the privileges a session has (the session lane). A value is
//! remembered as a SHA-256 digest (never the value itself) in the shared store, for the
//! cookie's `Max-Age` or [`DEFAULT_LIFETIME`], whichever is shorter.

use crate::GuardConfig;
use crate::guard::{Guard, RequestFacts, ResponseFacts, Verdict};
use crate::store::{Store, StoreError};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// A value shorter than this proves nothing: `woocommerce_items_in_cart=1` is the same for
/// every cart, while a session key or a login token is long and random.
pub const MIN_PROOF_LEN: usize = 16;

/// How long an issued value is remembered when the cookie names no shorter `Max-Age`: a
/// WordPress "remember me" login lasts 14 days.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(14 * 86_400);

/// Which cookie names are session cookies (a trailing `*` matches a prefix).
#[derive(Debug, Clone)]
pub struct SessionCookies {
    /// `(name or prefix, is_prefix)`.
    names: Vec<(String, bool)>,
}

impl SessionCookies {
    pub fn new(patterns: &[String]) -> Self {
        SessionCookies {
            names: patterns
                .iter()
                .map(|n| match n.strip_suffix('*') {
                    Some(prefix) => (prefix.to_string(), true),
                    None => (n.clone(), false),
                })
                .collect(),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        self.names.iter().any(|(want, prefix)| {
            if *prefix {
                name.starts_with(want.as_str())
            } else {
                name == want
            }
        })
    }

    /// The session cookies a request carries, as `name=value`.
    pub fn in_request(&self, req: &RequestFacts<'_>) -> Vec<String> {
        req.cookies()
            .filter(|(n, v)| self.matches(n) && !v.trim().is_empty())
            .map(|(n, v)| format!("{n}={v}"))
            .collect()
    }
}

/// The store key of an issued `name=value`.
fn key(pair: &str) -> String {
    let digest = Sha256::digest(pair.as_bytes());
    format!("issued:{}", hex::encode(&digest[..16]))
}

/// What one `Set-Cookie` says: `name=value` and how long to remember it. `None` for a
/// deletion (empty value, `Max-Age` ≤ 0), a value too short to prove anything, or a cookie
/// that is not a session cookie.
fn issued_by(header: &str, names: &SessionCookies) -> Option<(String, Duration)> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.trim().split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    if !names.matches(name) || value.len() < MIN_PROOF_LEN {
        return None;
    }
    let mut lifetime = DEFAULT_LIFETIME;
    for attr in parts {
        if let Some((k, v)) = attr.trim().split_once('=')
            && k.trim().eq_ignore_ascii_case("max-age")
        {
            let secs: i64 = v.trim().parse().ok()?;
            if secs <= 0 {
                return None;
            }
            lifetime = lifetime.min(Duration::from_secs(secs as u64));
        }
    }
    Some((format!("{name}={value}"), lifetime))
}

/// Remembers the session cookies in `set_cookies` (the origin's `Set-Cookie` values).
pub async fn remember(
    store: &dyn Store,
    names: &SessionCookies,
    set_cookies: &[String],
) -> Result<usize, StoreError> {
    let mut n = 0;
    for header in set_cookies {
        if let Some((pair, lifetime)) = issued_by(header, names) {
            store.hold(&key(&pair), 1, lifetime).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Did the origin issue any of these `name=value` cookies?
pub async fn any_issued(store: &dyn Store, pairs: &[String]) -> Result<bool, StoreError> {
    for pair in pairs {
        if store.get(&key(pair)).await? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Always in the chain: session cookies are remembered whatever the admission setting, so
/// that turning it on later knows the sessions already issued.
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "issued-cookies",
    table: "issued_cookies",
    build: |b| {
        Ok(Some(Arc::new(IssuedCookiesGuard {
            store: b.shield.store.clone(),
            names: SessionCookies::new(
                &crate::admission::AdmissionConfig::of_site(b.site).session_cookies,
            ),
        })))
    },
    check: None,
};

/// Records the session cookies the origin issues (response phase). Never refuses anything.
pub struct IssuedCookiesGuard {
    pub store: Arc<dyn Store>,
    pub names: SessionCookies,
}

impl Guard for IssuedCookiesGuard {
    fn name(&self) -> &'static str {
        "issued-cookies"
    }

    fn on_response(&self, _req: &RequestFacts<'_>, resp: &ResponseFacts<'_>) -> Verdict {
        let set_cookies: Vec<String> = resp
            .headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| issued_by(v, &self.names).is_some())
            .map(str::to_string)
            .collect();
        if set_cookies.is_empty() {
            return Verdict::Pass;
        }
        let (store, names) = (self.store.clone(), self.names.clone());
        Verdict::Ask(Box::pin(async move {
            if let Err(e) = remember(store.as_ref(), &names, &set_cookies).await {
                log::warn!("issued cookies: {e}; this session will be treated as unknown");
            }
            Verdict::Pass
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn names() -> SessionCookies {
        SessionCookies::new(&[
            "wordpress_logged_in_*".into(),
            "woocommerce_items_in_cart".into(),
            "wp_woocommerce_session_*".into(),
        ])
    }

    #[test]
    fn set_cookie_values_are_read_with_their_lifetime() {
        let n = names();
        assert_eq!(
            issued_by(
                "wordpress_logged_in_ab=admin%7C1764%7Cx7Yq2; path=/; HttpOnly",
                &n
            ),
            Some((
                "wordpress_logged_in_ab=admin%7C1764%7Cx7Yq2".into(),
                DEFAULT_LIFETIME
            ))
        );
        assert_eq!(
            issued_by(
                "wp_woocommerce_session_x=5f2c9e0a81d34b7e; Max-Age=3600; path=/",
                &n
            ),
            Some((
                "wp_woocommerce_session_x=5f2c9e0a81d34b7e".into(),
                Duration::from_secs(3600)
            ))
        );
        // The same for every cart: it proves nothing.
        assert_eq!(issued_by("woocommerce_items_in_cart=1; path=/", &n), None);
        // WordPress logs out by setting " " with an expiry in the past; deletions and other
        // cookies are not sessions.
        assert_eq!(issued_by("wordpress_logged_in_ab=+; Max-Age=0", &n), None);
        assert_eq!(issued_by("wordpress_logged_in_ab= ; path=/", &n), None);
        assert_eq!(
            issued_by("woocommerce_items_in_cart=1; max-age=-5", &n),
            None
        );
        assert_eq!(issued_by("comment_author=bob", &n), None);
    }

    #[tokio::test]
    async fn only_issued_values_are_known_and_never_stored_in_clear() {
        let store = MemoryStore::new(100);
        let n = names();
        let remembered = remember(
            &store,
            &n,
            &["wordpress_logged_in_ab=real-session-9c0e5b21d84f; path=/".to_string()],
        )
        .await
        .expect("remember");
        assert_eq!(remembered, 1);
        assert_eq!(
            any_issued(
                &store,
                &["wordpress_logged_in_ab=real-session-9c0e5b21d84f".into()]
            )
            .await,
            Ok(true)
        );
        assert_eq!(
            any_issued(
                &store,
                &["wordpress_logged_in_ab=forged-session-00000000".into()]
            )
            .await,
            Ok(false)
        );
        assert!(key("wordpress_logged_in_ab=real-session-9c0e5b21d84f").starts_with("issued:"));
        assert!(!key("wordpress_logged_in_ab=real-session-9c0e5b21d84f").contains("real-session"));
    }
}
