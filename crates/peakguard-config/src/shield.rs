//! `[site.shield]`: the request policies that protect a site's origin.

use crate::units::Seconds;
use serde::{Deserialize, Deserializer, de};

/// `[shield]`: what every site's shield shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShieldSettings {
    /// Entries of the in-process store (budget counters, lockouts). When full, expired
    /// entries go first, then the oldest counters; lockouts and limits in force are never
    /// dropped. About 150 bytes each.
    pub store_entries: usize,
    /// Where the store is saved (every minute and at shutdown) so a restart keeps lockouts,
    /// budgets and the sessions the origin issued. Empty: `shield.json` in the state directory.
    pub state_file: std::path::PathBuf,
    /// The waiting room's cookie keys (HMAC; current and previous, one per line, created
    /// 0600; `peakguard waiting-room rotate-key` rotates them without losing places).
    /// Empty: `room.key` in the state directory.
    pub room_key_file: std::path::PathBuf,
}

impl Default for ShieldSettings {
    fn default() -> Self {
        ShieldSettings {
            store_entries: 500_000,
            state_file: std::path::PathBuf::new(),
            room_key_file: std::path::PathBuf::new(),
        }
    }
}

/// Every part of the shield for one site.
#[derive(Debug, Clone, Default)]
pub struct ShieldConfig {
    /// `[site.shield.admission]`: how many requests reach the origin at once, and who waits.
    pub admission: AdmissionConfig,
    /// `[site.shield.login]`: brute-force protection and enumeration blocking.
    pub login: LoginConfig,
    /// `[site.shield.waiting_room]`: a fair queue for new visitors when demand exceeds what
    /// the origin can take.
    pub waiting_room: WaitingRoomConfig,
    /// `[site.shield.NAME]` tables of guards that own their configuration (the shield's
    /// registry reads and checks them: see [`crate::GuardTable`]). A name no guard claims is
    /// an error of [`crate::parse_with`].
    pub guards: std::collections::BTreeMap<String, toml::Value>,
}

/// By hand rather than derived: the sections above are typed here (their errors keep their
/// line), any other table is kept as it was written for the guard that owns it.
impl<'de> Deserialize<'de> for ShieldConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Sections;
        impl<'de> de::Visitor<'de> for Sections {
            type Value = ShieldConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of shield sections ([site.shield.login], ...)")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ShieldConfig, A::Error> {
                let mut c = ShieldConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "admission" => c.admission = map.next_value()?,
                        "login" => c.login = map.next_value()?,
                        "waiting_room" => c.waiting_room = map.next_value()?,
                        _ => {
                            let value: toml::Value = map.next_value()?;
                            c.guards.insert(key, value);
                        }
                    }
                }
                Ok(c)
            }
        }
        d.deserialize_map(Sections)
    }
}

/// The sections [`ShieldConfig`] types itself (the others belong to guards).
pub const TYPED_SECTIONS: [&str; 3] = ["admission", "login", "waiting_room"];

/// The waiting room. When it is full (or switched to queue everyone), a new visitor whose
/// request would reach the origin gets a light page from the edge with their place in line
/// and the estimated wait, refreshing by itself; their place is kept in a signed cookie.
/// Visitors with a session the origin issued (a cart, a login) never wait; cache hits are
/// served to everyone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaitingRoomConfig {
    pub enabled: bool,
    /// Visitors on the site at once (holding a pass seen within `session`); 0 = no limit.
    pub active_users: u64,
    /// New visitors let in per minute; 0 = no limit.
    pub new_users_per_minute: u64,
    /// Also queue newcomers while origin admission estimates a wait longer than this
    /// ("0s" = off).
    pub max_origin_wait: Seconds,
    /// How long a pass lasts without a visit; each visit renews it.
    pub session: Seconds,
    /// How often the waiting page refreshes itself.
    pub refresh: Seconds,
    /// A visitor whose turn came but who did not come back within this has left: their
    /// place goes to the next in line.
    pub no_show: Seconds,
    /// How long a place in line is kept for a visitor who closed the page.
    pub ticket_lifetime: Seconds,
    /// Your own HTML page; `{{position}}`, `{{wait_minutes}}`, `{{refresh_seconds}}` and
    /// `{{site}}` are replaced. Empty: the branded page.
    pub template: std::path::PathBuf,
}

impl Default for WaitingRoomConfig {
    fn default() -> Self {
        WaitingRoomConfig {
            enabled: false,
            active_users: 0,
            new_users_per_minute: 0,
            max_origin_wait: Seconds::secs(0),
            session: Seconds::secs(600),
            refresh: Seconds::secs(15),
            no_show: Seconds::secs(60),
            ticket_lifetime: Seconds::secs(6 * 3600),
            template: std::path::PathBuf::new(),
        }
    }
}

/// Login protection for `wp-login.php` and `xmlrpc.php`. A failed WordPress login answers 200
/// with the form again; a success is a 302 that sets `wordpress_logged_in_*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub enabled: bool,
    /// Failed logins from one address within `window` before it is locked out.
    pub max_failures: u64,
    pub window: Seconds,
    /// The first lockout; each next one within a day lasts twice as long, up to
    /// `max_lockout`.
    pub lockout: Seconds,
    pub max_lockout: Seconds,
    /// Failed logins for one username (from any address) within `window` that put it under
    /// attack: addresses that have failed before may no longer try it; an address with no
    /// failure still may (the real user's right password still works).
    pub username_failures: u64,
    /// Refuse XML-RPC `system.multicall` (hundreds of password guesses in one request).
    pub block_multicall: bool,
    /// Refuse `/?author=N` and the anonymous REST user list (`/wp-json/wp/v2/users`), which
    /// reveal login names.
    pub block_author_enumeration: bool,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            enabled: true,
            max_failures: 5,
            window: Seconds::secs(15 * 60),
            lockout: Seconds::secs(60),
            max_lockout: Seconds::secs(3600),
            username_failures: 20,
            block_multicall: true,
            block_author_enumeration: true,
        }
    }
}

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
