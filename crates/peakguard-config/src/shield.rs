//! `[site.shield]`: the request policies that protect a site's origin.

use crate::units::Seconds;
use serde::Deserialize;

/// Every part of the shield for one site.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShieldConfig {
    /// `[site.shield.admission]`: how many requests reach the origin at once, and who waits.
    pub admission: AdmissionConfig,
}

/// Origin admission: a limit on concurrent requests to the origin (size it like PHP-FPM's
/// `pm.max_children`); requests beyond it wait in lanes served by priority (checkout, then
/// carts and logged-in users, then anonymous misses, then bots). Cache hits never wait.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    pub enabled: bool,
    /// Concurrent requests to the origin (PHP workers).
    pub limit: usize,
    /// Longest wait for an origin slot; past it the stale copy is served if there is one,
    /// else the busy page (503 + `Retry-After`).
    pub queue_timeout: Seconds,
    /// Waiting requests per lane; a full lane answers the busy page at once.
    pub queue_size: usize,
    /// `Retry-After` (and the page's refresh) of the busy page.
    pub retry_after: Seconds,
    /// Path prefixes of checkout and payment callbacks (the first lane).
    pub checkout_paths: Vec<String>,
    /// Query `name=value` pairs (or names) that mark a checkout request (`wc-ajax=checkout`).
    pub checkout_query: Vec<String>,
    /// Path prefixes of the cart and the account (the second lane).
    pub cart_paths: Vec<String>,
    /// Query names or `name=value` pairs that put a request in the cart lane (`add-to-cart`).
    pub cart_query: Vec<String>,
    /// Cookies of shoppers and logged-in users (a trailing `*` matches a prefix): the
    /// second lane.
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
            queue_timeout: Seconds::secs(10),
            queue_size: 1024,
            retry_after: Seconds::secs(5),
            checkout_paths: strings(&["/checkout/", "/wc-api/"]),
            checkout_query: strings(&["wc-ajax=checkout", "wc-api"]),
            cart_paths: strings(&["/cart/", "/my-account/", "/wp-admin/"]),
            cart_query: strings(&["add-to-cart", "wc-ajax"]),
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
