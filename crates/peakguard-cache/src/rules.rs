//! A site's caching rules, compiled once from its configuration: which requests bypass the
//! cache (cookies, paths, query pairs, methods) and which query parameters are tracking noise.

use peakguard_config::{Profile, SiteConfig};
use std::time::Duration;

/// A name list where a trailing `*` makes an entry a prefix.
#[derive(Debug, Clone, Default)]
pub struct NameMatcher {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl NameMatcher {
    pub fn new(patterns: &[String]) -> Self {
        let mut m = NameMatcher::default();
        for p in patterns {
            match p.strip_suffix('*') {
                Some(prefix) => m.prefixes.push(prefix.to_string()),
                None => m.exact.push(p.clone()),
            }
        }
        m
    }

    pub fn matches(&self, name: &str) -> bool {
        self.exact.iter().any(|e| e == name)
            || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
}

/// Why a request is not served from (nor stored into) the shared cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bypass {
    Method,
    Cookie(String),
    Path(String),
    Query(String),
}

impl Bypass {
    /// A short label for `Cache-Status` and logs.
    pub fn label(&self) -> String {
        match self {
            Bypass::Method => "method".into(),
            Bypass::Cookie(c) => format!("cookie {c}"),
            Bypass::Path(p) => format!("path {p}"),
            Bypass::Query(q) => format!("query {q}"),
        }
    }
}

/// The compiled rules of one site.
#[derive(Debug, Clone)]
pub struct SiteRules {
    pub profile: Profile,
    tracking: NameMatcher,
    bypass_cookies: NameMatcher,
    bypass_paths: Vec<String>,
    bypass_query: Vec<(String, Option<String>)>,
    pub default_ttl: Duration,
    pub stale_if_error: Duration,
    pub stale_while_revalidate: Duration,
    pub cache_set_cookie: bool,
    pub strip_tracking_upstream: bool,
}

impl SiteRules {
    pub fn from_config(site: &SiteConfig) -> Self {
        SiteRules {
            profile: site.profile,
            tracking: NameMatcher::new(&site.tracking_params),
            bypass_cookies: NameMatcher::new(&site.bypass_cookies),
            // Matched against the request's normalized path: normalized alike.
            bypass_paths: site
                .bypass_paths
                .iter()
                .map(|p| crate::key::normalized_path(p).into_owned())
                .collect(),
            bypass_query: site
                .bypass_query
                .iter()
                .map(|q| match q.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (q.clone(), None),
                })
                .collect(),
            default_ttl: site.default_ttl.0,
            stale_if_error: site.stale_if_error.0,
            stale_while_revalidate: site.stale_while_revalidate.0,
            cache_set_cookie: site.cache_set_cookie,
            strip_tracking_upstream: site.strip_tracking_params_upstream,
        }
    }

    pub fn is_tracking_param(&self, name: &str) -> bool {
        self.tracking.matches(name)
    }

    /// The request target the origin gets, when it differs from the client's: without the
    /// tracking parameters, with `strip_tracking_upstream` (the origin then sees the URL
    /// the cache key names).
    pub fn upstream_target(&self, path_and_query: &str) -> Option<String> {
        if !self.strip_tracking_upstream {
            return None;
        }
        let (path, query) = crate::key::split_query(path_and_query);
        let kept = crate::key::strip_params(query?, |n| self.is_tracking_param(n));
        Some(if kept.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{kept}")
        })
    }

    /// Decides whether a request bypasses the cache. `cookies` are the raw `Cookie` header
    /// values; `path_and_query` is as received.
    pub fn bypass<'a>(
        &self,
        method: &str,
        path_and_query: &str,
        cookies: impl Iterator<Item = &'a [u8]>,
    ) -> Option<Bypass> {
        if method != "GET" && method != "HEAD" {
            return Some(Bypass::Method);
        }
        let (path, query) = crate::key::split_query(path_and_query);
        let normalized = crate::key::normalized_path(path);
        if let Some(p) = self
            .bypass_paths
            .iter()
            .find(|p| normalized.starts_with(p.as_str()))
        {
            return Some(Bypass::Path(p.clone()));
        }
        if let Some(query) = query {
            for pair in query.split('&') {
                let (name, value) = match pair.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (pair, None),
                };
                let hit = self
                    .bypass_query
                    .iter()
                    .any(|(n, v)| n == name && v.as_deref().is_none_or(|v| Some(v) == value));
                if hit {
                    return Some(Bypass::Query(pair.to_string()));
                }
            }
        }
        if !self.bypass_cookies.is_empty() {
            for header in cookies {
                let Ok(header) = std::str::from_utf8(header) else {
                    continue;
                };
                for cookie in header.split(';') {
                    let name = cookie.split('=').next().unwrap_or("").trim();
                    if self.bypass_cookies.matches(name) {
                        return Some(Bypass::Cookie(name.to_string()));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wp() -> SiteRules {
        SiteRules::from_config(&SiteConfig::default())
    }

    #[test]
    fn bypass_table() {
        let r = wp();
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("GET", "/", "", None),
            ("HEAD", "/hello/", "", None),
            ("POST", "/", "", Some("method")),
            ("PURGE", "/", "", Some("method")),
            ("GET", "/wp-admin/edit.php", "", Some("path /wp-admin/")),
            (
                "GET",
                "/wp-login.php?redirect_to=x",
                "",
                Some("path /wp-login.php"),
            ),
            ("GET", "/xmlrpc.php", "", Some("path /xmlrpc.php")),
            (
                "GET",
                "/wp-cron.php?doing_wp_cron",
                "",
                Some("path /wp-cron.php"),
            ),
            ("GET", "/cart/", "", Some("path /cart/")),
            (
                "GET",
                "/checkout/order-received/",
                "",
                Some("path /checkout/"),
            ),
            ("GET", "/my-account/", "", Some("path /my-account/")),
            ("GET", "/?p=1&preview=true", "", Some("query preview=true")),
            ("GET", "/?preview=false", "", None),
            (
                "GET",
                "/",
                "wordpress_logged_in_abc=1",
                Some("cookie wordpress_logged_in_abc"),
            ),
            (
                "GET",
                "/",
                "a=1; wp-postpass_123=x",
                Some("cookie wp-postpass_123"),
            ),
            (
                "GET",
                "/",
                "comment_author_55=bob",
                Some("cookie comment_author_55"),
            ),
            (
                "GET",
                "/",
                "woocommerce_items_in_cart=1",
                Some("cookie woocommerce_items_in_cart"),
            ),
            (
                "GET",
                "/",
                "woocommerce_cart_hash=ab",
                Some("cookie woocommerce_cart_hash"),
            ),
            (
                "GET",
                "/",
                "wp_woocommerce_session_9=z",
                Some("cookie wp_woocommerce_session_9"),
            ),
            ("GET", "/", "wordpress_test_cookie=WP+Cookie+check", None),
            ("GET", "/", "_ga=GA1.2; theme=dark", None),
            ("GET", "/shop/cart-tips/", "", None),
            // The same paths spelled otherwise (what nginx and WordPress route alike).
            ("GET", "//cart/", "", Some("path /cart/")),
            ("GET", "/%63art/", "", Some("path /cart/")),
            ("GET", "/%63%61%72%74/?x=1", "", Some("path /cart/")),
            ("GET", "/shop/../cart/", "", Some("path /cart/")),
            ("GET", "/./checkout/", "", Some("path /checkout/")),
            ("GET", "/CART/", "", Some("path /cart/")),
            ("GET", "/%2Fwp-admin/edit.php", "", Some("path /wp-admin/")),
            ("GET", "/wp-login%2ephp", "", Some("path /wp-login.php")),
        ];
        for (method, pq, cookie, want) in cases {
            let got = r.bypass(method, pq, std::iter::once(cookie.as_bytes()));
            assert_eq!(
                got.map(|b| b.label()).as_deref(),
                *want,
                "{method} {pq} cookie={cookie}"
            );
        }
    }

    #[test]
    fn http_profile_bypasses_only_unsafe_methods() {
        let r = SiteRules::from_config(&SiteConfig::quick("http://127.0.0.1:1", Profile::Http));
        assert_eq!(
            r.bypass(
                "GET",
                "/wp-admin/",
                std::iter::once(&b"wordpress_logged_in_x=1"[..])
            ),
            None
        );
        assert_eq!(
            r.bypass("DELETE", "/", std::iter::empty()),
            Some(Bypass::Method)
        );
    }
}
