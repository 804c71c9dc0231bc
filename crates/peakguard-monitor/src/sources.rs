//! What the monitor reads in-process from the parts that run beside it in `serve`: the
//! edge's counters and the backup daemon's state. The binary fills these in (the monitor
//! knows neither the edge nor the backup crate); `peakguard monitor` and `peakguard probe`
//! have none, and their edge and backup probes say so.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The edge's counters since it started (the edge probe takes differences).
#[derive(Debug, Clone, Default)]
pub struct EdgeCounters {
    pub requests: u64,
    /// Cache lookups that were served from the cache (fresh or stale).
    pub cache_hits: u64,
    /// Cache lookups of cacheable requests (hits, misses, expired, revalidated).
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

pub type EdgeFuture = Pin<Box<dyn Future<Output = EdgeCounters> + Send>>;
/// Reads the edge's counters (asynchronous: the waiting room's line is in the shield's
/// store).
pub type EdgeSource = Arc<dyn Fn() -> EdgeFuture + Send + Sync>;

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
    /// With a bunker: how far behind it is (the age of the oldest snapshot not copied yet;
    /// 0 = in sync).
    pub bunker_lag_secs: Option<i64>,
    pub bunker_error: Option<String>,
}

pub type BackupSource = Arc<dyn Fn() -> Vec<BackupFreshness> + Send + Sync>;

/// The in-process sources a probe may read.
#[derive(Clone, Default)]
pub struct Sources {
    pub edge: Option<EdgeSource>,
    pub backup: Option<BackupSource>,
}
