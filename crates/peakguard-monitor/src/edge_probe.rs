//! `kind = "edge"`: the edge's own health over the window since the probe's previous run,
//! read in-process (no HTTP round trip to itself): origin error rate, cache hit ratio, the
//! waiting room's line, the 99th percentile of response times.

use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::ProbeResult;
use crate::sources::{EdgeCounters, Sources};
use peakguard_config::{ProbeConfig, Seconds};
use serde::Deserialize;

pub(crate) struct Edge;
pub(crate) static PROBE: Registered<Edge> = Registered::NEW;

const DEFAULT_MIN_REQUESTS: u64 = 20;

/// An `edge` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EdgeSettings {
    /// Fail when more than this share of origin requests failed (0-1) over the interval.
    max_origin_error_rate: Option<f64>,
    /// Fail when fewer than this share of cacheable requests were hits (0-1).
    min_hit_ratio: Option<f64>,
    /// Fail when more visitors than this wait in the waiting room(s).
    max_room_queue: Option<u64>,
    /// Fail when the 99th percentile of response times is longer.
    max_p99: Option<Seconds>,
    /// Ratios count only over a window with at least this many requests (default 20).
    min_requests: Option<u64>,
}

impl Probe for Edge {
    type Settings = EdgeSettings;
    const KIND: &'static str = "edge";
    const VALUES: &'static [&'static str] = &[
        "success",
        "duration",
        "requests",
        "origin_error_rate",
        "hit_ratio",
        "room_queue",
        "p99",
    ];

    fn check(s: &EdgeSettings) -> Problems {
        [
            ("max_origin_error_rate", s.max_origin_error_rate),
            ("min_hit_ratio", s.min_hit_ratio),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            v.filter(|v| !(0.0..=1.0).contains(v))
                .map(|v| (k.to_string(), format!("{v} is not a share between 0 and 1")))
        })
        .collect()
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: EdgeSettings,
        memory: &'a mut Memory,
        sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(run(probe, settings, memory, sources))
    }
}

/// The `q` quantile of the requests between two histogram readings, interpolated within
/// its bucket as Prometheus' `histogram_quantile` does; `None` without requests. Past the
/// last finite bucket it is that bucket's bound (the histogram knows no more).
pub(crate) fn quantile(
    q: f64,
    before: &[(f64, u64)],
    after: &[(f64, u64)],
    count: u64,
) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let mut lower_bound = 0.0;
    let mut lower_count = 0u64;
    for (i, (bound, cumulative)) in after.iter().enumerate() {
        let earlier = before.get(i).map_or(0, |(_, c)| *c);
        let in_window = cumulative.saturating_sub(earlier);
        if in_window as f64 >= rank {
            let in_bucket = in_window.saturating_sub(lower_count);
            if in_bucket == 0 {
                return Some(*bound);
            }
            let share = (rank - lower_count as f64) / in_bucket as f64;
            return Some(lower_bound + (bound - lower_bound) * share.clamp(0.0, 1.0));
        }
        lower_bound = *bound;
        lower_count = in_window;
    }
    Some(lower_bound)
}

async fn run(
    probe: &ProbeConfig,
    s: EdgeSettings,
    memory: &mut Memory,
    sources: &Sources,
) -> ProbeResult {
    let Some(source) = &sources.edge else {
        return ProbeResult::failed(
            probe,
            "no edge here: edge probes run inside `peakguard serve`".into(),
        );
    };
    let now = source().await;
    let Some(before) = memory.previous_edge.replace(now.clone()) else {
        return ProbeResult::new(probe, true, "first reading: the window starts now".into())
            .with("room_queue", now.room_waiting as f64);
    };
    let before = if now.requests < before.requests {
        EdgeCounters::default() // the counters started again
    } else {
        before
    };
    let requests = now.requests - before.requests;
    let lookups = now.cache_lookups.saturating_sub(before.cache_lookups);
    let hits = now.cache_hits.saturating_sub(before.cache_hits);
    let origin = now.origin_requests.saturating_sub(before.origin_requests);
    let failures = now.origin_failures.saturating_sub(before.origin_failures);
    let min_requests = s.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS);
    let mut result = ProbeResult::new(probe, true, String::new())
        .with("requests", requests as f64)
        .with("room_queue", now.room_waiting as f64);
    let mut problems = Vec::new();
    let mut facts = vec![format!("{requests} requests")];
    if origin > 0 {
        let rate = failures as f64 / origin as f64;
        result = result.with("origin_error_rate", rate);
        facts.push(format!("origin errors {:.1} %", rate * 100.0));
        if let Some(max) = s.max_origin_error_rate
            && origin >= min_requests
            && rate > max
        {
            problems.push(format!(
                "{failures} of {origin} origin requests failed ({:.1} %, max {:.1} %)",
                rate * 100.0,
                max * 100.0
            ));
        }
    }
    if lookups > 0 {
        let ratio = hits as f64 / lookups as f64;
        result = result.with("hit_ratio", ratio);
        facts.push(format!("hit ratio {:.1} %", ratio * 100.0));
        if let Some(min) = s.min_hit_ratio
            && lookups >= min_requests
            && ratio < min
        {
            problems.push(format!(
                "hit ratio {:.1} % under {:.1} % ({hits} of {lookups})",
                ratio * 100.0,
                min * 100.0
            ));
        }
    }
    let count = now.latency_count.saturating_sub(before.latency_count);
    if let Some(p99) = quantile(0.99, &before.latency_buckets, &now.latency_buckets, count) {
        result = result.with("p99", p99);
        facts.push(format!("p99 {:.0}ms", p99 * 1000.0));
        if let Some(max) = s.max_p99
            && count >= min_requests
            && p99 > max.0.as_secs_f64()
        {
            problems.push(format!(
                "p99 {:.0}ms over {}",
                p99 * 1000.0,
                crate::humantime_short(max.0)
            ));
        }
    }
    if now.room_waiting > 0 {
        facts.push(format!("{} in the waiting room", now.room_waiting));
    }
    if let Some(max) = s.max_room_queue
        && now.room_waiting > max
    {
        problems.push(format!(
            "{} visitors wait in the waiting room (max {max})",
            now.room_waiting
        ));
    }
    if problems.is_empty() {
        result.message = facts.join(", ");
    } else {
        result.success = false;
        result.message = problems.join("; ");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_99th_percentile_of_a_window_is_read_from_the_histogram_difference() {
        let before = [(0.01, 100), (0.1, 100), (1.0, 100)];
        // 100 more requests: 90 under 10 ms, 9 under 100 ms, 1 under 1 s.
        let after = [(0.01, 190), (0.1, 199), (1.0, 200)];
        let p99 = quantile(0.99, &before, &after, 100).expect("requests");
        assert!((p99 - 0.1).abs() < 1e-9, "{p99}");
        let p50 = quantile(0.5, &before, &after, 100).expect("requests");
        assert!(p50 > 0.0 && p50 <= 0.01, "{p50}");
        assert_eq!(quantile(0.99, &before, &before, 0), None);
        // Every request past the last bucket: its bound.
        let slow = [(0.01, 100), (0.1, 100), (1.0, 100)];
        assert_eq!(quantile(0.99, &before, &slow, 50), Some(1.0));
    }
}
