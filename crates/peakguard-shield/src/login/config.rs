//! `[site.shield.login]`, the login guard's own table: brute-force protection and
//! enumeration blocking, and their checks. On by default for the WordPress profile, off for
//! the http profile unless `enabled` is given.

use peakguard_config::{Seconds, SiteConfig};
use serde::Deserialize;

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


impl crate::GuardConfig for LoginConfig {
    const TABLE: &'static str = "login";

    fn settle(&mut self, site: &SiteConfig, value: Option<&toml::Value>) {
        self.enabled = crate::registry::on_by_profile(site, value);
    }
}

pub(crate) fn check(site: &SiteConfig, value: &toml::Value) -> Vec<(String, String)> {
    let l = match <LoginConfig as crate::GuardConfig>::read(site, Some(value)) {
        Ok(c) => c,
        Err(problems) => return problems,
    };
    if !l.enabled {
        return Vec::new();
    }
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut p = |k: String, m: String| problems.push((k, m));
    let key = |k: &str| k.to_string();
    if !(1..=1000).contains(&l.max_failures) {
        p(
            key("max_failures"),
            format!("{} is out of range: use 1 to 1000", l.max_failures),
        );
    }
    if !(1..=100_000).contains(&l.username_failures) {
        p(
            key("username_failures"),
            format!("{} is out of range: use 1 to 100000", l.username_failures),
        );
    }
    for (name, d) in [
        ("window", l.window.0),
        ("lockout", l.lockout.0),
        ("max_lockout", l.max_lockout.0),
    ] {
        if d.as_secs() < 1 || d.as_secs() > 7 * 86_400 {
            p(
                key(name),
                format!("{d:?} is out of range: use 1s to 7 days"),
            );
        }
    }
    if l.max_lockout.0 < l.lockout.0 {
        p(
            key("max_lockout"),
            format!(
                "{:?} is shorter than the first lockout ({:?})",
                l.max_lockout.0, l.lockout.0
            ),
        );
    }
    problems
}
