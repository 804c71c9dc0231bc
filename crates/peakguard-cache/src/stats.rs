//! Counters the storage keeps for metrics.

use std::sync::atomic::AtomicU64;

#[derive(Default, Debug)]
pub struct CacheStats {
    /// Objects evicted from the memory tier.
    pub evictions: AtomicU64,
    /// Lookups answered by the disk tier.
    pub disk_hits: AtomicU64,
}
