//! Prometheus metrics of the edge, in the text exposition format (version 0.0.4).
//!
//! Fixed label sets over atomics: recording is a few relaxed adds on the request path, no
//! allocation and no lock. Probe-style names follow the Prometheus conventions so `promtool
//! check metrics` passes and existing dashboards can be adapted.

use peakguard_cache::{CacheOutcome, CacheSnapshot};
use peakguard_prometheus::{Exposition, Kind};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const OUTCOMES: [CacheOutcome; 8] = [
    CacheOutcome::Bypass,
    CacheOutcome::Hit,
    CacheOutcome::StaleError,
    CacheOutcome::StaleRevalidating,
    CacheOutcome::Miss,
    CacheOutcome::Expired,
    CacheOutcome::Revalidated,
    CacheOutcome::Uncacheable,
];
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
/// Extra outcome slot for responses the edge wrote itself (maintenance, redirects, errors).
const LOCAL: usize = OUTCOMES.len();

const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn write(&self, e: &mut Exposition<'_>, name: &str, help: &str) {
        let mut cumulative = 0;
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(b, n)| {
                cumulative += n.load(Relaxed);
                (*b, cumulative)
            })
            .collect();
        e.family(name, Kind::Histogram, help).histogram(
            &[],
            &buckets,
            self.sum_micros.load(Relaxed) as f64 / 1e6,
            self.count.load(Relaxed),
        );
    }
}

pub struct Metrics {
    requests: [[AtomicU64; CLASSES.len()]; OUTCOMES.len() + 1],
    request_duration: Histogram,
    origin_duration: Histogram,
    origin_errors: AtomicU64,
    /// Requests that went to the origin (answered or not), and those that failed there
    /// (no answer, or a 5xx): the monitor's origin error rate.
    origin_requests: AtomicU64,
    origin_failures: AtomicU64,
    coalesced_waiters: AtomicU64,
    stale_served: AtomicU64,
    maintenance_blocked: AtomicU64,
    response_bytes: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Default::default(),
            request_duration: Histogram::new(),
            origin_duration: Histogram::new(),
            origin_errors: AtomicU64::new(0),
            origin_requests: AtomicU64::new(0),
            origin_failures: AtomicU64::new(0),
            coalesced_waiters: AtomicU64::new(0),
            stale_served: AtomicU64::new(0),
            maintenance_blocked: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
        }
    }
}

fn class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        500..=599 => 4,
        _ => 5,
    }
}

/// What one finished request contributes.
pub struct RequestRecord {
    /// `None`: answered by the edge itself.
    pub outcome: Option<CacheOutcome>,
    pub status: u16,
    pub total: Duration,
    pub origin: Option<Duration>,
    pub origin_error: bool,
    pub coalesced: bool,
    pub maintenance: bool,
    pub bytes: u64,
}

impl Metrics {
    pub fn record(&self, r: &RequestRecord) {
        let o = r
            .outcome
            .and_then(|o| OUTCOMES.iter().position(|x| *x == o))
            .unwrap_or(LOCAL);
        self.requests[o][class_index(r.status)].fetch_add(1, Relaxed);
        self.request_duration.observe(r.total);
        if let Some(d) = r.origin {
            self.origin_duration.observe(d);
        }
        if r.origin_error {
            self.origin_errors.fetch_add(1, Relaxed);
        }
        if r.origin.is_some() || r.origin_error {
            self.origin_requests.fetch_add(1, Relaxed);
            if r.origin_error || r.status >= 500 {
                self.origin_failures.fetch_add(1, Relaxed);
            }
        }
        if r.coalesced {
            self.coalesced_waiters.fetch_add(1, Relaxed);
        }
        if matches!(
            r.outcome,
            Some(CacheOutcome::StaleError | CacheOutcome::StaleRevalidating)
        ) {
            self.stale_served.fetch_add(1, Relaxed);
        }
        if r.maintenance {
            self.maintenance_blocked.fetch_add(1, Relaxed);
        }
        self.response_bytes.fetch_add(r.bytes, Relaxed);
    }

    /// Requests counted for a cache outcome label (tests and status).
    pub fn requests_with(&self, outcome: CacheOutcome) -> u64 {
        OUTCOMES
            .iter()
            .position(|x| *x == outcome)
            .map(|o| self.requests[o].iter().map(|c| c.load(Relaxed)).sum())
            .unwrap_or(0)
    }

    pub fn total_requests(&self) -> u64 {
        self.requests
            .iter()
            .flatten()
            .map(|c| c.load(Relaxed))
            .sum()
    }

    pub fn origin_errors(&self) -> u64 {
        self.origin_errors.load(Relaxed)
    }

    /// The totals the monitor's edge probe takes differences of (the waiting rooms' line is
    /// the shield's: `room_waiting` is left 0 here).
    pub fn health(&self) -> peakguard_admin::EdgeCounters {
        let outcome = |o: CacheOutcome| self.requests_with(o);
        let hits = outcome(CacheOutcome::Hit)
            + outcome(CacheOutcome::StaleError)
            + outcome(CacheOutcome::StaleRevalidating)
            + outcome(CacheOutcome::Revalidated);
        let mut cumulative = 0;
        let latency_buckets = BUCKETS
            .iter()
            .enumerate()
            .map(|(i, b)| {
                cumulative += self.request_duration.buckets[i].load(Relaxed);
                (*b, cumulative)
            })
            .collect();
        peakguard_admin::EdgeCounters {
            requests: self.total_requests(),
            cache_hits: hits,
            cache_lookups: hits + outcome(CacheOutcome::Miss) + outcome(CacheOutcome::Expired),
            origin_requests: self.origin_requests.load(Relaxed),
            origin_failures: self.origin_failures.load(Relaxed),
            latency_buckets,
            latency_count: self.request_duration.count.load(Relaxed),
            room_waiting: 0,
        }
    }

    /// The exposition text, with the cache's gauges read now.
    pub fn render(&self, cache: &CacheSnapshot, maintenance_on: bool) -> String {
        let mut out = String::with_capacity(8192);
        let mut e = Exposition::new(&mut out);
        let mut requests = e.family(
            "peakguard_requests_total",
            Kind::Counter,
            "Requests answered, by cache outcome and status class.",
        );
        for (o, row) in self.requests.iter().enumerate() {
            let label = if o == LOCAL {
                "local"
            } else {
                OUTCOMES[o].label()
            };
            for (c, count) in row.iter().enumerate() {
                requests.sample(
                    &[("cache", label), ("status_class", CLASSES[c])],
                    count.load(Relaxed),
                );
            }
        }
        self.request_duration.write(
            &mut e,
            "peakguard_request_duration_seconds",
            "Time from request to last response byte, as seen by the edge.",
        );
        self.origin_duration.write(
            &mut e,
            "peakguard_origin_duration_seconds",
            "Time from sending a request to the origin to its response header.",
        );
        let counters: [(&str, &str, u64); 5] = [
            (
                "peakguard_origin_errors_total",
                "Origin failures: refused, timed out, or 5xx.",
                self.origin_errors.load(Relaxed),
            ),
            (
                "peakguard_coalesced_waiters_total",
                "Requests that waited for another request's origin fetch instead of making their own.",
                self.coalesced_waiters.load(Relaxed),
            ),
            (
                "peakguard_stale_served_total",
                "Responses served from a stale copy (origin failing or being refreshed).",
                self.stale_served.load(Relaxed),
            ),
            (
                "peakguard_maintenance_blocked_total",
                "Requests answered with the maintenance page.",
                self.maintenance_blocked.load(Relaxed),
            ),
            (
                "peakguard_response_body_bytes_total",
                "Response body bytes sent to clients.",
                self.response_bytes.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            e.single(name, Kind::Counter, help, value);
        }
        let tiers: [(&str, Kind, &str, u64, u64); 3] = [
            (
                "peakguard_cache_bytes",
                Kind::Gauge,
                "Bytes stored per cache tier.",
                cache.memory_bytes,
                cache.disk_bytes,
            ),
            (
                "peakguard_cache_objects",
                Kind::Gauge,
                "Objects stored per cache tier.",
                cache.memory_objects,
                cache.disk_objects,
            ),
            (
                "peakguard_cache_evictions_total",
                Kind::Counter,
                "Objects evicted per cache tier to stay within its size.",
                cache.memory_evictions,
                cache.disk_evictions,
            ),
        ];
        for (name, kind, help, memory, disk) in tiers {
            e.family(name, kind, help)
                .sample(&[("tier", "memory")], memory)
                .sample(&[("tier", "disk")], disk);
        }
        e.single(
            "peakguard_cache_filling_bytes",
            Kind::Gauge,
            "Bytes of responses being received to be stored (counted in the memory budget).",
            cache.filling_bytes,
        );
        e.single(
            "peakguard_cache_fills_not_stored_total",
            Kind::Counter,
            "Responses passed on without being stored because fills in progress held half the memory budget.",
            cache.fills_not_stored,
        );
        e.single(
            "peakguard_cache_disk_hits_total",
            Kind::Counter,
            "Lookups answered from the disk tier.",
            cache.disk_hits,
        );
        e.family(
            "peakguard_cache_encodings_total",
            Kind::Counter,
            "Background encodings of stored responses (gzip, brotli, identity), by result.",
        )
        .sample(&[("result", "queued")], cache.encode_queued)
        .sample(&[("result", "done")], cache.encoded_objects)
        .sample(&[("result", "dropped")], cache.encode_dropped)
        .sample(&[("result", "failed")], cache.encode_failed);
        e.single(
            "peakguard_cache_encode_seconds_total",
            Kind::Counter,
            "CPU time the background encoders spent.",
            cache.encode_seconds,
        );
        e.single(
            "peakguard_maintenance_mode",
            Kind::Gauge,
            "Whether maintenance mode is on (1) or off (0).",
            maintenance_on,
        );
        out
    }
}
