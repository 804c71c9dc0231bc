//! Counters the storage keeps for metrics.

use std::sync::atomic::AtomicU64;

#[derive(Default, Debug)]
pub struct CacheStats {
    /// Objects evicted from the memory tier.
    pub evictions: AtomicU64,
    /// Lookups answered by the disk tier.
    pub disk_hits: AtomicU64,
    /// Objects queued for background encoding.
    pub encode_queued: AtomicU64,
    /// Encodings not queued because the queue was full (the object is served as stored).
    pub encode_dropped: AtomicU64,
    /// Encodings that failed (a body that does not decode, an I/O error).
    pub encode_failed: AtomicU64,
    /// Encodings thrown away because their object was purged or replaced meanwhile.
    pub encode_discarded: AtomicU64,
    /// Objects that gained their representations.
    pub encoded_objects: AtomicU64,
    /// Fills not stored because fills in progress already held half the memory budget.
    pub fills_not_stored: AtomicU64,
    /// Time the encoders spent, in microseconds.
    pub encode_micros: AtomicU64,
}
