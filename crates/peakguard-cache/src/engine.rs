//! [`CacheEngine`]: what the edge calls from its pingora hooks. Each method is the body of
//! one hook, so the edge never has to build or inspect a pingora_cache type itself; it only
//! passes through the ones the hook signatures carry.

use crate::backoff::OriginBackoff;
use crate::encoding::Accepted;
use crate::freshness::{self, Decision, RequestFacts};
use crate::rules::SiteRules;
use crate::storage::{StorageSettings, TieredStorage};
use pingora_cache::key::HashBinary;
use pingora_cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora_cache::predictor::Predictor;
use pingora_cache::{
    CacheKey, CacheMeta, CacheOptionOverrides, CachePhase, ForcedFreshness, HitHandler, HttpCache,
    NoCacheReason, RespCacheable, VarianceBuilder,
};
use pingora_http::{RequestHeader, ResponseHeader};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

/// Why a request was not served from cache, or how it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Not a cacheable request (bypass rule, method): `Cache-Status: ...; fwd=bypass`.
    Bypass,
    Hit,
    /// Served stale because the origin failed.
    StaleError,
    /// Served stale while one background request refreshes it.
    StaleRevalidating,
    Miss,
    /// A stored copy had expired and a new one was fetched.
    Expired,
    /// A stored copy was confirmed by a 304.
    Revalidated,
    /// Went to the origin and the response was not storable.
    Uncacheable,
}

impl CacheOutcome {
    /// Short label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            CacheOutcome::Bypass => "bypass",
            CacheOutcome::Hit => "hit",
            CacheOutcome::StaleError => "stale",
            CacheOutcome::StaleRevalidating => "stale-revalidating",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Expired => "expired",
            CacheOutcome::Revalidated => "revalidated",
            CacheOutcome::Uncacheable => "uncacheable",
        }
    }

    /// Served without an origin response for this request.
    pub fn from_cache(self) -> bool {
        matches!(
            self,
            CacheOutcome::Hit | CacheOutcome::StaleError | CacheOutcome::StaleRevalidating
        )
    }
}

/// The shared cache: storage, coalescing lock and the hook bodies.
pub struct CacheEngine {
    pub storage: &'static TieredStorage,
    lock: &'static CacheKeyLockImpl,
    predictor: &'static Predictor<16>,
    coalesce_wait: Duration,
    max_object_bytes: u64,
    backoff: OriginBackoff,
}

/// Timing settings of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineTiming {
    /// How long concurrent misses wait for the one origin fetch.
    pub coalesce_wait: Duration,
    /// After an origin error on a key, how long its stale copy is served without retrying.
    pub origin_error_backoff: Duration,
}

/// Uncacheable reasons that describe the content (remembered, so later requests for the key
/// skip the cache lock) — as opposed to reasons that depend on the request or on a passing
/// origin failure, which must never make a key bypass the cache (that would also bypass the
/// stale copy, plan B).
fn remember_uncacheable(reason: &'static str) -> bool {
    matches!(
        reason,
        "set-cookie" | "no-store" | "private" | "vary *" | "too large"
    )
}

/// Pingora's predictor asks this about `Custom` reasons: true = do not remember.
fn skip_remembering(reason: &'static str) -> bool {
    !remember_uncacheable(reason)
}

impl CacheEngine {
    /// Opens the storage (indexing a disk tier left by a previous run). Lives for the
    /// process: pingora wants `'static` storage.
    pub fn open(settings: StorageSettings, timing: EngineTiming) -> std::io::Result<&'static Self> {
        let coalesce_wait = timing.coalesce_wait;
        let max_object_bytes = settings.max_object_bytes as u64;
        let storage: &'static TieredStorage = Box::leak(Box::new(TieredStorage::open(settings)?));
        storage.start_encoders()?;
        storage.start_recovery()?;
        let lock: &'static CacheLock = Box::leak(CacheLock::new_boxed(coalesce_wait));
        // 16 shards x 1,024 keys remembered as uncacheable, least recently used forgotten.
        let predictor: &'static Predictor<16> =
            Box::leak(Box::new(Predictor::new(1024, Some(skip_remembering))));
        Ok(Box::leak(Box::new(CacheEngine {
            storage,
            lock,
            predictor,
            coalesce_wait,
            max_object_bytes,
            backoff: OriginBackoff::new(timing.origin_error_backoff, 100_000),
        })))
    }

    /// `request_cache_filter`: turn the cache on for this request, with coalescing.
    pub fn enable(&'static self, cache: &mut HttpCache) {
        let mut overrides = CacheOptionOverrides::default();
        overrides.wait_timeout = Some(self.coalesce_wait);
        cache.enable(
            self.storage,
            None,
            Some(self.predictor),
            Some(self.lock),
            Some(overrides),
        );
    }

    /// A `response_cache_filter` answer for a response that is not stored, with its reason.
    pub fn not_storable(&self, reason: &'static str) -> RespCacheable {
        RespCacheable::Uncacheable(NoCacheReason::Custom(reason))
    }

    /// Is this request filling the cache (a miss or an expired copy being replaced)?
    pub fn filling(cache: &HttpCache) -> bool {
        matches!(cache.phase(), CachePhase::Miss | CachePhase::Expired)
    }

    /// `cache_key_callback`: the key is the key URL; what the client accepts rides along
    /// (not hashed) so the lookup picks its representation.
    pub fn key(&self, key_url: String, accepted: Accepted) -> CacheKey {
        let mut key = CacheKey::new(key_url, "");
        key.extensions.insert(accepted);
        key
    }

    /// The compression policy of stored responses (the edge applies the same one when it
    /// compresses a response on its way through).
    pub fn compression(&self) -> &crate::encoding::CompressionPolicy {
        self.storage.compression()
    }

    /// Is this request being answered from a complete stored representation (as opposed to
    /// the origin, or a fill still being written)? Asked in `cache_hit_filter`.
    pub fn is_stored_hit(handler: &HitHandler) -> bool {
        crate::storage::is_complete_hit(handler)
    }

    /// `response_cache_filter`: RFC 9111 + site rules decide; stripped headers never stored.
    /// A declared `Content-Length` over `max_object_size` is not stored (and streams through).
    /// A declared `Content-Length` over `max_object_size` is not stored (and streams through).
    pub fn response_cacheable(
        &self,
        req: &RequestHeader,
        resp: &ResponseHeader,
        rules: &SiteRules,
    ) -> RespCacheable {
        let now = SystemTime::now();
        let declared_length = resp
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared_length.is_some_and(|l| l > self.max_object_bytes) {
            return RespCacheable::Uncacheable(NoCacheReason::Custom("too large"));
        }
        let facts = RequestFacts {
            method: &req.method,
            headers: &req.headers,
        };
        match freshness::decide(facts, resp.status, &resp.headers, rules, now) {
            Decision::DoNotStore(reason) => {
                RespCacheable::Uncacheable(NoCacheReason::Custom(reason))
            }
            Decision::Store(s) => {
                let mut header = resp.clone();
                for name in &s.strip {
                    header.remove_header(name.as_str());
                }
                // The stored copy is what clients get; hop-by-hop fields are not part of it.
                for name in crate::hop::HOP_BY_HOP {
                    header.remove_header(*name);
                }
                // RFC 9111 §4.2.3: the age it arrived with counts from now on. It is kept as
                // an earlier creation time, so every hit's `Age` (pingora: now − created) is
                // that age plus the time stored; the field itself is not stored.
                let arrived_aged = freshness::current_age(&resp.headers, now);
                header.remove_header(&http::header::AGE);
                let created = now.checked_sub(arrived_aged).unwrap_or(now);
                let fresh_until = if s.fresh_for.is_zero() {
                    now.checked_sub(Duration::from_secs(1)).unwrap_or(now)
                } else {
                    now + s.fresh_for
                };
                RespCacheable::Cacheable(CacheMeta::new(
                    fresh_until,
                    created,
                    secs(s.stale_while_revalidate),
                    secs(s.stale_if_error),
                    header,
                ))
            }
        }
    }

    /// `cache_vary_filter`: a variant per value of the fields the response varies on, except
    /// `Accept-Encoding` (the edge asks the origin for identity and compresses per client, so
    /// one stored copy serves every encoding).
    pub fn variance(&self, meta: &CacheMeta, req: &RequestHeader) -> Option<HashBinary> {
        let mut names: Vec<String> = Vec::new();
        for v in meta.headers().get_all(http::header::VARY) {
            if let Ok(v) = v.to_str() {
                names.extend(
                    v.split(',')
                        .map(|f| f.trim().to_ascii_lowercase())
                        .filter(|f| !f.is_empty() && f != "accept-encoding"),
                );
            }
        }
        if names.is_empty() {
            return None;
        }
        names.sort();
        names.dedup();
        let mut builder = VarianceBuilder::new();
        for name in names {
            let value: Vec<u8> = req
                .headers
                .get_all(name.as_str())
                .iter()
                .flat_map(|v| v.as_bytes().iter().copied().chain(std::iter::once(b',')))
                .collect();
            builder.add_owned_name_value(name, value);
        }
        builder.finalize()
    }

    /// The origin failed for this key (`should_serve_stale` with an error).
    pub fn note_origin_failure(&self, key_url: &str) {
        self.backoff.note_failure(key_url);
    }

    /// `cache_hit_filter`: a stale copy of a key whose origin failed moments ago is served as
    /// is (forced fresh), within its stale-if-error window, instead of retrying the origin on
    /// every request. Returns whether it was.
    pub fn hit_during_backoff(
        &self,
        key_url: &str,
        meta: &CacheMeta,
        is_fresh: bool,
    ) -> Option<ForcedFreshness> {
        if is_fresh
            || !self.backoff.active(key_url)
            || !meta.serve_stale_if_error(SystemTime::now())
        {
            return None;
        }
        Some(ForcedFreshness::ForceFresh)
    }

    /// Should a stale copy be served for this error? (`should_serve_stale`.) Always for
    /// origin failures (connect, timeout, 5xx); the stored windows still apply.
    pub fn serve_stale_on_error(&self) -> bool {
        true
    }

    /// How this request used the cache, from the cache's final phase.
    pub fn outcome(&self, cache: &HttpCache, stale_error: bool) -> CacheOutcome {
        match cache.phase() {
            // A stale copy forced fresh during an origin back-off.
            CachePhase::Hit if stale_error => CacheOutcome::StaleError,
            CachePhase::Hit => CacheOutcome::Hit,
            CachePhase::Stale if stale_error => CacheOutcome::StaleError,
            CachePhase::Stale | CachePhase::StaleUpdating => CacheOutcome::StaleRevalidating,
            CachePhase::Miss => {
                if cache.upstream_used() {
                    CacheOutcome::Miss
                } else {
                    // A coalesced waiter served from the one fetch.
                    CacheOutcome::Hit
                }
            }
            CachePhase::Expired => CacheOutcome::Expired,
            CachePhase::Revalidated => CacheOutcome::Revalidated,
            CachePhase::RevalidatedNoCache(_) => CacheOutcome::Uncacheable,
            CachePhase::Disabled(NoCacheReason::NeverEnabled) | CachePhase::Bypass => {
                CacheOutcome::Bypass
            }
            CachePhase::Disabled(_) | CachePhase::Uninit | CachePhase::CacheKey => {
                CacheOutcome::Uncacheable
            }
        }
    }

    /// Age of the stored copy being served, when there is one.
    pub fn served_age(&self, cache: &HttpCache) -> Option<Duration> {
        if !matches!(
            cache.phase(),
            CachePhase::Hit
                | CachePhase::Stale
                | CachePhase::StaleUpdating
                | CachePhase::Revalidated
        ) {
            return None;
        }
        cache.maybe_cache_meta().map(|m| m.age())
    }

    /// Metric gauges and counters of the storage.
    pub fn snapshot(&self) -> CacheSnapshot {
        let s = self.storage;
        CacheSnapshot {
            memory_bytes: s.memory_bytes() as u64,
            filling_bytes: s.filling_bytes() as u64,
            fills_not_stored: s.stats.fills_not_stored.load(Ordering::Relaxed),
            memory_objects: s.memory_objects() as u64,
            disk_bytes: s.disk_bytes(),
            disk_objects: s.disk_objects() as u64,
            memory_evictions: s.stats.evictions.load(Ordering::Relaxed),
            disk_evictions: s.disk_evictions(),
            disk_hits: s.stats.disk_hits.load(Ordering::Relaxed),
            encode_queued: s.stats.encode_queued.load(Ordering::Relaxed),
            encode_dropped: s.stats.encode_dropped.load(Ordering::Relaxed),
            encode_failed: s.stats.encode_failed.load(Ordering::Relaxed),
            encoded_objects: s.stats.encoded_objects.load(Ordering::Relaxed),
            encode_seconds: s.stats.encode_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CacheSnapshot {
    pub memory_bytes: u64,
    /// Bytes of fills in progress (counted in the memory budget).
    pub filling_bytes: u64,
    pub fills_not_stored: u64,
    pub memory_objects: u64,
    pub disk_bytes: u64,
    pub disk_objects: u64,
    pub memory_evictions: u64,
    pub disk_evictions: u64,
    pub disk_hits: u64,
    pub encode_queued: u64,
    pub encode_dropped: u64,
    pub encode_failed: u64,
    pub encoded_objects: u64,
    pub encode_seconds: f64,
}
