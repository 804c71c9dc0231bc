//! `[site.shield.waiting_room]`, the waiting room's own table, and its checks. Off unless
//! `enabled = true`.

use peakguard_config::{Seconds, SiteConfig};
use serde::Deserialize;

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


impl crate::GuardConfig for WaitingRoomConfig {
    const TABLE: &'static str = "waiting_room";
}

pub(crate) fn check(site: &SiteConfig, value: &toml::Value) -> Vec<(String, String)> {
    let r = match <WaitingRoomConfig as crate::GuardConfig>::read(site, Some(value)) {
        Ok(c) => c,
        Err(problems) => return problems,
    };
    if !r.enabled {
        return Vec::new();
    }
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut p = |k: String, m: String| problems.push((k, m));
    let key = |k: &str| k.to_string();
    if r.active_users == 0 && r.new_users_per_minute == 0 && r.max_origin_wait.0.is_zero() {
        p(
            key("active_users"),
            "the room needs a pace: set active_users (visitors at once), new_users_per_minute, or max_origin_wait (line up while the origin is behind), or several".into(),
        );
    }
    for (name, d, min, max) in [
        ("session", r.session.0, 10, 86_400),
        ("refresh", r.refresh.0, 1, 600),
        ("no_show", r.no_show.0, 5, 3600),
        ("ticket_lifetime", r.ticket_lifetime.0, 60, 7 * 86_400),
    ] {
        if d.as_secs() < min || d.as_secs() > max {
            p(
                key(name),
                format!("{d:?} is out of range: use {min}s to {max}s"),
            );
        }
    }
    if r.refresh.0 >= r.no_show.0 {
        p(
            key("no_show"),
            format!(
                "{:?} must be longer than refresh ({:?}): a visitor whose turn came needs a refresh to claim it",
                r.no_show.0, r.refresh.0
            ),
        );
    }
    problems
}

// Moved from peakguard-config with the table they read.
#[cfg(test)]
mod tests {
    use crate::testing::parse;

    #[test]
    fn a_waiting_room_needs_a_pace_and_the_origin_wait_is_one() {
        let room = |keys: &str| {
            format!(
                "[[site]]\nname = \"shop\"\norigin = \"http://127.0.0.1:1\"\n[site.shield.waiting_room]\nenabled = true\n{keys}"
            )
        };
        let err = parse(&room(""), "t").expect_err("no pace");
        let problem = err
            .problems()
            .iter()
            .find(|p| p.key == "site[0].shield.waiting_room.active_users")
            .unwrap_or_else(|| panic!("named: {err}"));
        assert!(problem.message.contains("max_origin_wait"), "{err}");
        for keys in [
            "active_users = 50\n",
            "new_users_per_minute = 60\n",
            "max_origin_wait = \"2s\"\n",
        ] {
            assert!(parse(&room(keys), "t").is_ok(), "{keys}");
        }
    }
}
