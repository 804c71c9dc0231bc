//! `[site.shield.admission]`, the admission guard's own table: how many requests reach the
//! origin at once, the lanes' rules, and their checks. On by default for the WordPress
//! profile, off for the http profile unless `enabled` is given.

use peakguard_config::{Seconds, SiteConfig};
use serde::Deserialize;

/// Origin admission: a limit on concurrent requests to the origin (size it like PHP-FPM's
/// `pm.max_children`); requests beyond it wait in lanes served by priority (payment callbacks
/// and checkouts, then carts and logged-in users, then anonymous misses, then bots and
/// sessions the origin never issued). Cache hits never wait.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    pub enabled: bool,
    /// Concurrent requests to the origin (PHP workers); where an adaptive limit starts.
    pub limit: usize,
    /// Follow the origin: lower the limit while its requests take longer than their usual
    /// time (workers queueing, the database slowing), raise it again while they do not.
    pub adaptive: bool,
    /// The adaptive limit's bounds.
    pub min_limit: usize,
    pub max_limit: usize,
    /// Longest wait for an origin slot; past it the stale copy is served if there is one,
    /// else the busy page (503 + `Retry-After`).
    pub queue_timeout: Seconds,
    /// Waiting requests per lane; a full lane answers the busy page at once.
    pub queue_size: usize,
    /// `Retry-After` (and the page's refresh) of the busy page.
    pub retry_after: Seconds,
    /// Path prefixes of payment callbacks (gateways calling the shop, no cookies): always
    /// the first lane.
    pub callback_paths: Vec<String>,
    /// Query names or `name=value` pairs of payment callbacks (`wc-api`).
    pub callback_query: Vec<String>,
    /// Path prefixes of the checkout: the first lane for a session the origin issued.
    pub checkout_paths: Vec<String>,
    /// Query names or `name=value` pairs of the checkout (`wc-ajax=checkout`).
    pub checkout_query: Vec<String>,
    /// Cookies of shoppers and logged-in users (a trailing `*` matches a prefix). A value
    /// the origin issued through this edge puts a request in the session lane (before
    /// anonymous visitors); a value the edge never saw issued (forged, or from before the
    /// edge) in the last lane.
    pub session_cookies: Vec<String>,
    /// Case-insensitive `User-Agent` fragments of crawlers and bots: the last lane.
    pub bot_agents: Vec<String>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            enabled: true,
            // Debian's PHP-FPM pool starts with pm.max_children = 5; a few more keep it busy
            // while responses travel back.
            limit: 8,
            // Starts conservatively at `limit` and learns from there.
            adaptive: true,
            min_limit: 2,
            max_limit: 64,
            queue_timeout: Seconds::secs(10),
            queue_size: 1024,
            retry_after: Seconds::secs(5),
            callback_paths: strings(&["/wc-api/"]),
            callback_query: strings(&["wc-api"]),
            checkout_paths: strings(&["/checkout/"]),
            checkout_query: strings(&["wc-ajax=checkout"]),
            session_cookies: strings(&[
                "wordpress_logged_in_*",
                "woocommerce_items_in_cart",
                "woocommerce_cart_hash",
                "wp_woocommerce_session_*",
            ]),
            bot_agents: strings(&[
                "bot", "crawler", "spider", "slurp", "curl/", "wget/", "python-", "go-http",
            ]),
        }
    }
}

impl crate::GuardConfig for AdmissionConfig {
    const TABLE: &'static str = "admission";

    fn settle(&mut self, site: &SiteConfig, value: Option<&toml::Value>) {
        self.enabled = crate::registry::on_by_profile(site, value);
    }
}

pub(crate) fn check(site: &SiteConfig, value: &toml::Value) -> Vec<(String, String)> {
    let a = match <AdmissionConfig as crate::GuardConfig>::read(site, Some(value)) {
        Ok(c) => c,
        Err(problems) => return problems,
    };
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut p = |k: String, m: String| problems.push((k, m));
    let key = |k: &str| k.to_string();
    if !(1..=10_000).contains(&a.limit) {
        p(
            key("limit"),
            format!(
                "{} concurrent origin requests is out of range: use 1 to 10000 (size it like PHP-FPM's pm.max_children), or enabled = false",
                a.limit
            ),
        );
    }
    if a.adaptive && (a.min_limit == 0 || a.min_limit > a.max_limit || a.max_limit > 10_000) {
        p(
            key("max_limit"),
            format!(
                "the adaptive limit's bounds [{}, {}] are not valid: use 1 ≤ min_limit ≤ max_limit ≤ 10000",
                a.min_limit, a.max_limit
            ),
        );
    }
    if !(1..=1_000_000).contains(&a.queue_size) {
        p(
            key("queue_size"),
            format!(
                "{} waiting requests per lane is out of range: use 1 to 1000000",
                a.queue_size
            ),
        );
    }
    let timeout = a.queue_timeout.0;
    if timeout < std::time::Duration::from_millis(100)
        || timeout > std::time::Duration::from_secs(600)
    {
        p(
            key("queue_timeout"),
            format!(
                "{timeout:?} is out of range: a request waits for the origin between 100ms and 10m"
            ),
        );
    }
    let retry = a.retry_after.0.as_secs();
    if !(1..=3600).contains(&retry) {
        p(
            key("retry_after"),
            format!("{retry}s is out of range: use 1s to 1h"),
        );
    }
    for (name, list) in [
        ("callback_paths", &a.callback_paths),
        ("checkout_paths", &a.checkout_paths),
    ] {
        for (n, path) in list.iter().enumerate() {
            if !path.starts_with('/') {
                p(
                    format!("{name}[{n}]"),
                    format!("{path:?} must start with `/`"),
                );
            }
        }
    }
    for (name, list) in [
        ("callback_query", &a.callback_query),
        ("checkout_query", &a.checkout_query),
        ("session_cookies", &a.session_cookies),
        ("bot_agents", &a.bot_agents),
    ] {
        for (n, entry) in list.iter().enumerate() {
            if entry.trim().is_empty() {
                p(
                    format!("{name}[{n}]"),
                    "empty entry; remove it".into(),
                );
            }
        }
    }
    problems
}

// Moved from peakguard-config with the table they read.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::GuardConfig;
    use crate::testing::parse;

    #[test]
    fn admission_problems_name_key_and_line() {
        let text = r#"
    [[site]]
    name = "shop"
    origin = "http://127.0.0.1:1"
    [site.shield.admission]
    limit = 0
    queue_timeout = "20m"
    checkout_paths = ["checkout/"]
    "#;
        let err = parse(text, "t").expect_err("three problems");
        let problems = err.problems();
        let find = |key: &str| {
            problems
                .iter()
                .find(|p| p.key == key)
                .unwrap_or_else(|| panic!("no problem for {key}: {err}"))
        };
        let limit = find("site[0].shield.admission.limit");
        assert_eq!(limit.line, Some(6), "{err}");
        assert!(limit.message.contains("pm.max_children"), "{err}");
        assert_eq!(find("site[0].shield.admission.queue_timeout").line, Some(7));
        assert_eq!(
            find("site[0].shield.admission.checkout_paths[0]").line,
            Some(8)
        );
    }

    #[test]
    fn admission_is_on_for_wordpress_and_off_for_the_http_profile_unless_given() {
        let wp = parse("[[site]]\norigin = \"http://127.0.0.1:1\"\n", "t").expect("valid");
        assert!(AdmissionConfig::of_site(&wp.sites[0]).enabled);
        assert_eq!(AdmissionConfig::of_site(&wp.sites[0]).limit, 8);
        let http = parse(
            "[[site]]\norigin = \"http://127.0.0.1:1\"\nprofile = \"http\"\n",
            "t",
        )
        .expect("valid");
        assert!(!AdmissionConfig::of_site(&http.sites[0]).enabled);
        let given = parse(
            "[[site]]\norigin = \"http://127.0.0.1:1\"\nprofile = \"http\"\n[site.shield.admission]\nenabled = true\nlimit = 3\n",
            "t",
        )
        .expect("valid");
        assert!(AdmissionConfig::of_site(&given.sites[0]).enabled);
        assert_eq!(AdmissionConfig::of_site(&given.sites[0]).limit, 3);
    }
}
