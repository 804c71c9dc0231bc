//! A latency distribution in fixed buckets: small on disk, mergeable, and enough for the
//! views' p50/p99 and "share of pages under 200 ms".

use serde::{Deserialize, Serialize};

/// Upper edges of the buckets, in milliseconds; a last bucket holds everything slower.
pub const EDGES_MS: [u32; 20] = [
    1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000,
];
const SLOTS: usize = EDGES_MS.len() + 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    /// Counts per bucket; empty when nothing was observed (keeps idle minutes small).
    counts: Vec<u64>,
    /// Sum of the observations in microseconds (for the mean).
    sum_micros: u64,
}

impl Latency {
    pub fn observe_micros(&mut self, micros: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; SLOTS];
        }
        let ms = micros / 1000;
        let slot = EDGES_MS
            .iter()
            .position(|e| ms < u64::from(*e))
            .unwrap_or(SLOTS - 1);
        self.counts[slot] += 1;
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    pub fn merge(&mut self, other: &Latency) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.len() != SLOTS {
            self.counts = vec![0; SLOTS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn mean_ms(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| self.sum_micros as f64 / n as f64 / 1000.0)
    }

    /// The upper edge (ms) of the bucket where the `q` quantile falls (`None` when empty or
    /// when it falls in the last, open bucket: "over 10 s").
    pub fn quantile_ms(&self, q: f64) -> Option<u32> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let want = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return EDGES_MS.get(i).copied();
            }
        }
        None
    }

    /// The share (0–1) of observations under `ms`, counted in whole buckets: `ms` should be
    /// one of [`EDGES_MS`].
    pub fn share_under_ms(&self, ms: u32) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let under: u64 = EDGES_MS
            .iter()
            .zip(&self.counts)
            .take_while(|(e, _)| **e <= ms)
            .map(|(_, c)| c)
            .sum();
        Some(under as f64 / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_shares_come_from_the_buckets() {
        let mut l = Latency::default();
        assert_eq!(l.quantile_ms(0.5), None);
        for _ in 0..98 {
            l.observe_micros(40_000); // 40 ms: the "< 50" bucket
        }
        l.observe_micros(250_000);
        l.observe_micros(20_000_000); // over 10 s
        assert_eq!(l.count(), 100);
        assert_eq!(l.quantile_ms(0.5), Some(50));
        assert_eq!(l.quantile_ms(0.99), Some(300));
        assert_eq!(l.quantile_ms(1.0), None, "the open bucket has no edge");
        assert_eq!(l.share_under_ms(200), Some(0.98));
        let mut m = Latency::default();
        m.merge(&l);
        m.merge(&l);
        assert_eq!(m.count(), 200);
        assert_eq!(m.share_under_ms(200), Some(0.98));
    }
}
