//! peakguard's cache: everything behind pingora-cache.
//!
//! Owns: the cache key (WordPress rules, tracking-parameter stripping), the RFC 9111
//! freshness decision, the storage (a scan-resistant memory tier and a disk tier that
//! survives restarts, both streaming), the purge index (URL → variants, tag → keys,
//! prefixes), the stored representations of each response (identity, gzip, brotli: made
//! once by background encoders, chosen per client by `Accept-Encoding`), and the bodies of
//! the edge's cache hooks ([`CacheEngine`]).
//!
//! This is the ONLY crate that names `pingora_cache` types: their API changes every minor
//! release, and an upgrade must touch one crate. Must not touch: sockets, listeners, policy
//! about who may do what (that is the shield's), configuration files (it gets values).
#![forbid(unsafe_code)]

pub mod backoff;
pub mod encoding;
pub mod engine;
pub mod freshness;
pub mod hop;
pub mod index;
pub mod key;
pub mod revalidate;
pub mod rules;
pub mod stats;
pub mod storage;

pub use encoding::{Accepted, Coding, CompressionPolicy};
pub use engine::{CacheEngine, CacheOutcome, CacheSnapshot, EngineTiming};
pub use key::{KeyParts, cache_key_url};
pub use rules::{Bypass, SiteRules};
pub use storage::{StorageSettings, TieredStorage};

/// Re-exported so that the edge's hook signatures can name them without depending on
/// pingora-cache itself.
pub mod hook_types {
    pub use pingora_cache::key::HashBinary;
    pub use pingora_cache::{
        CacheKey, CacheMeta, ForcedFreshness, HitHandler, HttpCache, RespCacheable,
    };
}
