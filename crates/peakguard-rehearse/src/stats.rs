//! What a rehearsal measured: HDR latency histograms (from the *intended* send time) per URL
//! group and per traffic class, status codes, timeouts, connection errors, bytes, and a
//! per-second series for the charts. Serializable: `--json` and `compare` read it back.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    Timeout,
    ConnectError,
    /// Sent, but the connection failed before a whole response.
    IoError,
}

impl Outcome {
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::Status(s) if s < 400)
    }
}

/// Live counters for one bucket (a group, a class, or everything).
#[derive(Debug, Clone)]
pub struct Bucket {
    pub latency: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    pub io_errors: u64,
    pub bytes: u64,
    pub room: RoomBucket,
}

/// Visitors a waiting room held: the pages it showed them (not requests, not errors), how
/// many were let in after waiting, how many were still in line when the run ended, and how
/// long the ones let in waited.
#[derive(Debug, Clone)]
pub struct RoomBucket {
    pub pages: u64,
    pub visitors: u64,
    pub let_in: u64,
    pub unfinished: u64,
    pub wait: Histogram<u64>,
}

impl Default for RoomBucket {
    fn default() -> Self {
        RoomBucket {
            pages: 0,
            visitors: 0,
            let_in: 0,
            unfinished: 0,
            // 1 ms .. 1 h.
            wait: Histogram::new_with_bounds(1, 3_600_000, 3).expect("static bounds"),
        }
    }
}

impl RoomBucket {
    fn summary(&self) -> RoomSummary {
        let q = |p: f64| {
            if self.wait.is_empty() {
                0.0
            } else {
                self.wait.value_at_quantile(p) as f64
            }
        };
        RoomSummary {
            pages: self.pages,
            visitors: self.visitors,
            let_in: self.let_in,
            unfinished: self.unfinished,
            wait_p50_ms: q(0.5),
            wait_p99_ms: q(0.99),
            wait_max_ms: self.wait.max() as f64,
        }
    }
}

/// A waiting room's part of a bucket, as reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RoomSummary {
    /// Waiting pages shown (each refresh counts).
    pub pages: u64,
    /// Visitors who got at least one.
    pub visitors: u64,
    /// Of those, let in before the run ended (their answer is counted as a request).
    pub let_in: u64,
    /// Still in line when the run ended.
    pub unfinished: u64,
    /// From the first waiting page to the request that went through.
    pub wait_p50_ms: f64,
    pub wait_p99_ms: f64,
    pub wait_max_ms: f64,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            // 1 µs .. 10 min, 3 significant digits.
            latency: Histogram::new_with_bounds(1, 600_000_000, 3).expect("static bounds"),
            statuses: BTreeMap::new(),
            timeouts: 0,
            connect_errors: 0,
            io_errors: 0,
            bytes: 0,
            room: RoomBucket::default(),
        }
    }
}

impl Bucket {
    pub fn record(&mut self, outcome: Outcome, latency: Duration, bytes: u64) {
        let micros = (latency.as_micros() as u64).clamp(1, 600_000_000);
        let _ = self.latency.record(micros);
        self.bytes += bytes;
        match outcome {
            Outcome::Status(s) => *self.statuses.entry(s).or_default() += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::ConnectError => self.connect_errors += 1,
            Outcome::IoError => self.io_errors += 1,
        }
    }

    pub fn requests(&self) -> u64 {
        self.latency.len()
    }

    pub fn errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s >= 400)
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.timeouts
            + self.connect_errors
            + self.io_errors
    }

    pub fn summary(&self) -> Summary {
        let q = |p: f64| self.latency.value_at_quantile(p) as f64 / 1000.0;
        let n = self.requests();
        Summary {
            requests: n,
            errors: self.errors(),
            error_rate: if n == 0 {
                0.0
            } else {
                self.errors() as f64 / n as f64
            },
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: self.latency.max() as f64 / 1000.0,
            mean_ms: self.latency.mean() / 1000.0,
            statuses: self
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            timeouts: self.timeouts,
            connect_errors: self.connect_errors,
            io_errors: self.io_errors,
            bytes: self.bytes,
            waiting_room: (self.room.pages > 0).then(|| self.room.summary()),
        }
    }
}

/// A bucket as reported (milliseconds).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub statuses: BTreeMap<String, u64>,
    pub timeouts: u64,
    pub connect_errors: u64,
    pub io_errors: u64,
    pub bytes: u64,
    /// Present when a waiting room held some of these visitors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<RoomSummary>,
}

/// One second of the run, for the charts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Second {
    pub t: u64,
    /// Requests the profile scheduled in this second.
    pub scheduled: u64,
    /// Responses completed in this second.
    pub completed: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The bucket named `name`, created on first use (no allocation once it exists).
fn bucket<'a>(map: &'a mut BTreeMap<String, Bucket>, name: &str) -> &'a mut Bucket {
    if !map.contains_key(name) {
        map.insert(name.to_string(), Bucket::default());
    }
    map.get_mut(name).expect("inserted above")
}

/// A waiting room's effect on one visitor.
#[derive(Debug, Clone, Copy)]
pub enum RoomEvent {
    /// A waiting page; `first` for the first this visitor got.
    Page { first: bool },
    /// Let in after waiting this long (from the first page).
    LetIn { waited: Duration },
    /// The run ended with them in line.
    Unfinished,
}

/// Everything being measured during a run.
#[derive(Default)]
pub struct Recorder {
    pub total: Bucket,
    pub groups: BTreeMap<String, Bucket>,
    pub classes: BTreeMap<String, Bucket>,
    /// From this time on (the cache warm), each class is also counted in `warm_classes`.
    pub warm_after: Option<Duration>,
    pub warm_classes: BTreeMap<String, Bucket>,
    seconds: Vec<(u64, u64, u64, Histogram<u64>)>, // scheduled, completed, errors, latency
    /// Requests the profile asked for that were never sent (backlog full or run over).
    pub not_sent: u64,
}

impl Recorder {
    pub fn warm_after(warm_after: Option<Duration>) -> Self {
        Recorder {
            warm_after,
            ..Recorder::default()
        }
    }

    fn second(&mut self, at: Duration) -> &mut (u64, u64, u64, Histogram<u64>) {
        let i = at.as_secs() as usize;
        while self.seconds.len() <= i {
            self.seconds.push((
                0,
                0,
                0,
                Histogram::new_with_bounds(1, 600_000_000, 2).expect("static bounds"),
            ));
        }
        &mut self.seconds[i]
    }

    pub fn scheduled(&mut self, at: Duration) {
        self.second(at).0 += 1;
    }

    /// Adds per-second scheduled counts tallied elsewhere.
    pub fn add_scheduled(&mut self, per_second: &[u64]) {
        for (i, n) in per_second.iter().enumerate() {
            self.second(Duration::from_secs(i as u64)).0 += n;
        }
    }

    /// A response (or failure) for a request intended at `intended`, completed at `done`
    /// (both from the start of the run).
    pub fn record(
        &mut self,
        group: &str,
        class: &str,
        outcome: Outcome,
        intended: Duration,
        done: Duration,
        bytes: u64,
    ) {
        let latency = done.saturating_sub(intended);
        self.total.record(outcome, latency, bytes);
        bucket(&mut self.groups, group).record(outcome, latency, bytes);
        bucket(&mut self.classes, class).record(outcome, latency, bytes);
        if self.warm_after.is_some_and(|w| intended >= w) {
            bucket(&mut self.warm_classes, class).record(outcome, latency, bytes);
        }
        let s = self.second(done);
        s.1 += 1;
        if outcome.is_error() {
            s.2 += 1;
        }
        let _ =
            s.3.record((latency.as_micros() as u64).clamp(1, 600_000_000));
    }

    /// What happened to a visitor in a waiting room: `event` applies to the total, its
    /// group and its class.
    pub fn room(&mut self, group: &str, class: &str, event: RoomEvent) {
        let apply = |b: &mut Bucket| match event {
            RoomEvent::Page { first } => {
                b.room.pages += 1;
                b.room.visitors += u64::from(first);
            }
            RoomEvent::LetIn { waited } => {
                b.room.let_in += 1;
                let _ = b
                    .room
                    .wait
                    .record((waited.as_millis() as u64).clamp(1, 3_600_000));
            }
            RoomEvent::Unfinished => b.room.unfinished += 1,
        };
        apply(&mut self.total);
        apply(bucket(&mut self.groups, group));
        apply(bucket(&mut self.classes, class));
    }

    pub fn series(&self) -> Vec<Second> {
        self.seconds
            .iter()
            .enumerate()
            .map(|(t, (scheduled, completed, errors, h))| Second {
                t: t as u64,
                scheduled: *scheduled,
                completed: *completed,
                errors: *errors,
                p50_ms: if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(0.5) as f64 / 1000.0
                },
                p99_ms: if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(0.99) as f64 / 1000.0
                },
                max_ms: h.max() as f64 / 1000.0,
            })
            .collect()
    }

    /// The last few seconds' rate and p99, for the live progress line.
    pub fn recent(&self, now: Duration) -> (f64, f64, u64) {
        let i = now.as_secs() as usize;
        let window: Vec<_> = self.seconds.iter().take(i).rev().take(3).collect();
        if window.is_empty() {
            return (0.0, 0.0, self.total.errors());
        }
        let completed: u64 = window.iter().map(|s| s.1).sum();
        let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 2).expect("static bounds");
        for s in &window {
            let _ = h.add(&s.3);
        }
        (
            completed as f64 / window.len() as f64,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            self.total.errors(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_counts_from_the_intended_time() {
        let mut r = Recorder::default();
        // Intended at 0 s, answered at 1.2 s: 1,200 ms even if sent late.
        r.record(
            "home",
            "anonymous",
            Outcome::Status(200),
            Duration::ZERO,
            Duration::from_millis(1200),
            10,
        );
        r.record(
            "home",
            "anonymous",
            Outcome::Status(503),
            Duration::from_millis(100),
            Duration::from_millis(150),
            10,
        );
        r.record(
            "shop",
            "shopper",
            Outcome::Timeout,
            Duration::from_millis(200),
            Duration::from_millis(5200),
            0,
        );
        let t = r.total.summary();
        assert_eq!(t.requests, 3);
        assert_eq!(t.errors, 2);
        assert!((t.max_ms - 5000.0).abs() < 5.0);
        assert_eq!(r.groups["home"].summary().requests, 2);
        assert_eq!(r.classes["shopper"].summary().timeouts, 1);
        let s = r.series();
        assert_eq!(s.len(), 6);
        assert_eq!(s[1].completed, 1);
        assert_eq!(s[0].errors, 1);
        assert!(r.warm_classes.is_empty(), "no warm phase asked for");
    }

    #[test]
    fn the_warm_phase_counts_requests_intended_from_its_start() {
        let mut r = Recorder::warm_after(Some(Duration::from_secs(10)));
        for (intended, ms) in [(0, 900), (9_999, 800), (10_000, 5), (20_000, 7)] {
            let at = Duration::from_millis(intended);
            r.record(
                "home",
                "anonymous",
                Outcome::Status(200),
                at,
                at + Duration::from_millis(ms),
                1,
            );
        }
        let warm = r.warm_classes["anonymous"].summary();
        assert_eq!(warm.requests, 2);
        assert!(warm.max_ms < 10.0, "{warm:?}");
        assert_eq!(r.classes["anonymous"].summary().requests, 4);
    }
}
