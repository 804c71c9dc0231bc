//! `[site.shield]`: the request policies that protect a site's origin.

use serde::Deserialize;

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

/// Every part of the shield for one site: the `[site.shield.NAME]` tables, each owned by the
/// guard that reads and checks it (peakguard-shield's registry: see [`crate::GuardTable`]).
/// A name no guard claims is an error of [`crate::parse_with`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct ShieldConfig {
    pub guards: std::collections::BTreeMap<String, toml::Value>,
}
