//! Maintenance mode: the state (on/off, message, `Retry-After`), who still gets through, and
//! the guard that answers everyone else with the maintenance page.

use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use crate::pages;
use ipnet::IpNet;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;

/// The flag as the admin API sets it and the state file keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceState {
    pub on: bool,
    #[serde(default)]
    pub message: String,
    /// Seconds for `Retry-After`.
    #[serde(default)]
    pub retry_after_secs: u64,
}

/// Who may pass while maintenance is on.
#[derive(Debug, Clone, Default)]
pub struct MaintenancePolicy {
    pub allow: Vec<IpNet>,
    /// `(name, value)` of the bypass cookie.
    pub bypass_cookie: Option<(String, String)>,
}

impl MaintenancePolicy {
    pub fn new(allow: Vec<IpNet>, bypass_cookie: &str) -> Self {
        let bypass_cookie = bypass_cookie
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()));
        MaintenancePolicy {
            allow,
            bypass_cookie,
        }
    }

    /// Does this request pass while maintenance is on?
    pub fn admits<'a>(
        &self,
        client: IpAddr,
        cookie_headers: impl Iterator<Item = &'a [u8]>,
    ) -> bool {
        if self.allow.iter().any(|n| n.contains(&client)) {
            return true;
        }
        let Some((name, value)) = &self.bypass_cookie else {
            return false;
        };
        cookie_headers
            .filter_map(|h| std::str::from_utf8(h).ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .any(|(n, v)| n == name && v == value)
    }
}

/// The switch the admin API flips and the guard reads (shared, survives reloads).
pub type MaintenanceSwitch = Arc<RwLock<MaintenanceState>>;

/// Always in the chain: the switch is the process's, the policy `[maintenance]`'s.
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "maintenance",
    table: "maintenance",
    build: |b| {
        Ok(Some(Arc::new(MaintenanceGuard {
            switch: b.shield.maintenance.clone(),
            policy: b.shared.maintenance_policy.clone(),
            default_retry_after: b.shared.default_retry_after,
        })))
    },
    check: None,
};

/// Answers 503 with the maintenance page while the switch is on, except for the allowed.
pub struct MaintenanceGuard {
    pub switch: MaintenanceSwitch,
    pub policy: MaintenancePolicy,
    /// `Retry-After` when the switch gives none.
    pub default_retry_after: u64,
}

impl Guard for MaintenanceGuard {
    fn name(&self) -> &'static str {
        "maintenance"
    }

    fn on_request(&self, req: &RequestFacts<'_>) -> Verdict {
        // The common path takes a read lock and reads a bool; the state is cloned only
        // while maintenance is on.
        let state = {
            let s = self.switch.read();
            if !s.on {
                return Verdict::Pass;
            }
            s.clone()
        };
        let cookies = req
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .map(|v| v.as_bytes());
        if self.policy.admits(req.client.ip, cookies) {
            return Verdict::Pass;
        }
        let retry = if state.retry_after_secs > 0 {
            state.retry_after_secs
        } else {
            self.default_retry_after
        };
        Verdict::Respond {
            reason: "on".into(),
            response: LocalResponse::page(503, pages::maintenance(&state.message, retry))
                .with_header("retry-after", retry.to_string())
                .closing(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_and_cookie() {
        let p = MaintenancePolicy::new(vec!["127.0.0.1/32".parse().unwrap()], "pg_bypass=s3cret");
        assert!(p.admits("127.0.0.1".parse().unwrap(), std::iter::empty()));
        assert!(!p.admits("127.0.0.2".parse().unwrap(), std::iter::empty()));
        assert!(p.admits(
            "127.0.0.2".parse().unwrap(),
            std::iter::once(&b"a=1; pg_bypass=s3cret"[..])
        ));
        assert!(!p.admits(
            "127.0.0.2".parse().unwrap(),
            std::iter::once(&b"pg_bypass=wrong"[..])
        ));
    }
}
