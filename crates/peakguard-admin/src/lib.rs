//! What the parts of one `peakguard serve` process offer each other, with no part knowing
//! another: the admin API's extension point ([`AdminExtension`]: the backup daemon and the
//! monitor add endpoints, `/metrics` and `/status` to the edge's admin API) and what the
//! monitor reads in-process ([`EdgeCounters`] from the edge, [`BackupFreshness`] from the
//! backup daemon) — one type each, filled by their owner, read by the monitor; the admin API
//! itself ([`api::answer`]: tokens, rights, audit, routing — one for every listener) and the
//! admin listener of a process that runs no edge ([`server::serve`]: `peakguard monitor`).
//! Owns: these types, the API and that listener. Must not touch: files, any other peakguard
//! crate (peakguard-config's `AdminPermission` is the one type it reads).
#![forbid(unsafe_code)]

pub mod api;
pub mod server;

use std::collections::HashMap;

/// A part of peakguard that serves endpoints, metrics and status through the admin API
/// without the edge knowing it (the backup daemon, the monitor). Called on the admin
/// listener's runtime: must answer without blocking.
pub trait AdminExtension: Send + Sync {
    /// Its key in `/status`.
    fn name(&self) -> &str;
    /// Answers `method path` (status code and JSON) when the endpoint is its own.
    fn handle(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
    ) -> Option<(u16, serde_json::Value)>;
    /// Prometheus exposition text appended to `/metrics`.
    fn metrics(&self) -> String;
    fn status(&self) -> serde_json::Value;
}

/// The edge's counters since it started (the monitor's edge probe takes differences).
#[derive(Debug, Clone, Default)]
pub struct EdgeCounters {
    pub requests: u64,
    /// Cache lookups that were served from the cache (fresh, stale, or revalidated).
    pub cache_hits: u64,
    /// Cache lookups of cacheable requests (hits, misses, expired copies).
    pub cache_lookups: u64,
    /// Requests sent to the origin.
    pub origin_requests: u64,
    /// Origin requests that failed (no answer, or a 5xx).
    pub origin_failures: u64,
    /// Response-time histogram: (upper bound in seconds, cumulative count), ascending.
    pub latency_buckets: Vec<(f64, u64)>,
    pub latency_count: u64,
    /// Visitors waiting in every waiting room now (a gauge, not a counter).
    pub room_waiting: u64,
}

/// One site's backups as the backup daemon sees them.
#[derive(Debug, Clone, Default)]
pub struct BackupFreshness {
    pub site: String,
    /// The schedule (`every`), for the default `max_age`.
    pub every_secs: u64,
    /// When the last good snapshot was taken (None: none since the daemon started and none
    /// found).
    pub last_ok_unix: Option<i64>,
    pub last_error: Option<String>,
    /// With a bunker: age of the oldest snapshot not in it yet (0: in sync; a bunker never
    /// reached since the start counts as missing the last snapshot). None without a bunker.
    pub bunker_lag_secs: Option<i64>,
    pub bunker_error: Option<String>,
}
