//! The cache key: scheme, host and path with tracking parameters removed.
//!
//! Pure string work; no pingora types. The key is also the URL that purges name, so it reads
//! like one: `https://shop.test/product/x?color=red`.

use crate::rules::SiteRules;

/// The parts of a request that the cache key is made of.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    pub scheme: &'a str,
    /// From HTTP/2 `:authority` or the `Host` header, port included when present.
    pub host: &'a str,
    /// Path and query as received (`/p?a=1`).
    pub path_and_query: &'a str,
}

/// Builds the key URL: host lower-cased and without a default port, tracking parameters
/// removed, the rest of the query kept in order.
pub fn cache_key_url(parts: KeyParts<'_>, rules: &SiteRules) -> String {
    let scheme = parts.scheme.to_ascii_lowercase();
    let host = normalize_host(parts.host, &scheme);
    let (path, query) = split_query(parts.path_and_query);
    let mut key = String::with_capacity(scheme.len() + host.len() + parts.path_and_query.len() + 4);
    key.push_str(&scheme);
    key.push_str("://");
    key.push_str(&host);
    key.push_str(if path.is_empty() { "/" } else { path });
    if let Some(query) = query {
        let kept = strip_params(query, |name| rules.is_tracking_param(name));
        if !kept.is_empty() {
            key.push('?');
            key.push_str(&kept);
        }
    }
    key
}

/// The query with the parameters for which `drop` is true removed (order kept).
pub fn strip_params(query: &str, drop: impl Fn(&str) -> bool) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            !drop(name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Splits `/path?query` into its path and optional query.
pub fn split_query(path_and_query: &str) -> (&str, Option<&str>) {
    match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    }
}

/// The path as the origin's router reads it (see [`peakguard_config::rule_path`]).
pub fn normalized_path(path: &str) -> std::borrow::Cow<'_, str> {
    peakguard_config::rule_path::normalized(path)
}

/// Lower-cases the host and drops the scheme's default port.
pub fn normalize_host(host: &str, scheme: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    match host.strip_suffix(default_port) {
        Some(h) if !h.ends_with(']') || h.starts_with('[') => h.to_string(),
        _ => host,
    }
}

/// The host without its port (`shop.test:8080` → `shop.test`, `[::1]:80` → `::1`).
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peakguard_config::{Profile, SiteConfig};

    fn wp() -> SiteRules {
        SiteRules::from_config(&SiteConfig::default())
    }

    fn key(host: &str, pq: &str) -> String {
        cache_key_url(
            KeyParts {
                scheme: "http",
                host,
                path_and_query: pq,
            },
            &wp(),
        )
    }

    #[test]
    fn key_table() {
        let cases = [
            ("shop.test", "/", "http://shop.test/"),
            ("SHOP.test:80", "/a", "http://shop.test/a"),
            ("shop.test:8080", "/a", "http://shop.test:8080/a"),
            ("shop.test", "/p?utm_source=x&gclid=y", "http://shop.test/p"),
            (
                "shop.test",
                "/p?utm_source=x&id=3&fbclid=z",
                "http://shop.test/p?id=3",
            ),
            (
                "shop.test",
                "/p?id=3&utm_campaign=spring&utm_medium=cpc",
                "http://shop.test/p?id=3",
            ),
            (
                "shop.test",
                "/p?ref=nl&color=red&_ga=1.2",
                "http://shop.test/p?color=red",
            ),
            (
                "shop.test",
                "/p?msclkid=1&mc_cid=2&mc_eid=3",
                "http://shop.test/p",
            ),
            ("shop.test", "/p?", "http://shop.test/p"),
            ("shop.test", "/p?b=2&a=1", "http://shop.test/p?b=2&a=1"),
            ("shop.test", "/p?utmost=1", "http://shop.test/p?utmost=1"),
            (
                "shop.test",
                "/p?references=1",
                "http://shop.test/p?references=1",
            ),
        ];
        for (host, pq, want) in cases {
            assert_eq!(key(host, pq), want, "host={host} pq={pq}");
        }
    }

    #[test]
    fn https_default_port_and_scheme_are_part_of_the_key() {
        let rules = wp();
        let k = |scheme, host| {
            cache_key_url(
                KeyParts {
                    scheme,
                    host,
                    path_and_query: "/",
                },
                &rules,
            )
        };
        assert_eq!(k("https", "a.test:443"), "https://a.test/");
        assert_ne!(k("https", "a.test"), k("http", "a.test"));
    }

    #[test]
    fn http_profile_keeps_tracking_params() {
        let rules = SiteRules::from_config(&SiteConfig::quick("http://127.0.0.1:1", Profile::Http));
        let k = cache_key_url(
            KeyParts {
                scheme: "http",
                host: "a",
                path_and_query: "/?utm_source=x",
            },
            &rules,
        );
        assert_eq!(k, "http://a/?utm_source=x");
    }

    #[test]
    fn host_without_port_table() {
        assert_eq!(host_without_port("a.test:8080"), "a.test");
        assert_eq!(host_without_port("a.test"), "a.test");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("127.0.0.1:20000"), "127.0.0.1");
    }
}
