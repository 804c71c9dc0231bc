//! An adaptive origin limit (after Netflix's Gradient2): it follows how long the origin takes.
//! A long-term average of that time is the baseline; while recent requests take longer than
//! the baseline (PHP workers queueing, the database slowing), the limit falls in proportion;
//! while they take about the baseline, it grows by about √limit, but only while the origin is
//! actually busy. It never leaves `[min, max]`.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Gradient {
    limit: f64,
    min: f64,
    max: f64,
    /// Slow moving average of request time, seconds (the baseline).
    long: f64,
    /// Fast moving average, seconds.
    short: f64,
}

/// How much slower than the baseline recent requests may be before the limit falls.
const TOLERANCE: f64 = 1.5;
/// Weight of a new estimate in the limit (smoothing).
const SMOOTHING: f64 = 0.2;

impl Gradient {
    pub fn new(start: usize, min: usize, max: usize) -> Self {
        let min = min.max(1) as f64;
        let max = (max as f64).max(min);
        Gradient {
            limit: (start as f64).clamp(min, max),
            min,
            max,
            long: 0.0,
            short: 0.0,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit.round() as usize
    }

    /// One request's time at the origin, with `in_flight` requests there when it ended.
    /// Returns the new limit.
    pub fn sample(&mut self, took: Duration, in_flight: usize) -> usize {
        let rtt = took.as_secs_f64().max(1e-6);
        if self.long == 0.0 {
            self.long = rtt;
            self.short = rtt;
            return self.limit();
        }
        self.short += (rtt - self.short) / 10.0;
        self.long += (rtt - self.long) / 500.0;
        // After a long slow spell the baseline itself has crept up; let it come down
        // quickly when requests are fast again, or the limit would never recover.
        if self.long > self.short * 2.0 {
            self.long *= 0.95;
        }
        let gradient = (TOLERANCE * self.long / self.short).clamp(0.5, 1.0);
        let mut next = self.limit * gradient + self.limit.sqrt();
        // Growing only makes sense while the origin is busy (not when traffic is light).
        if next > self.limit && (in_flight as f64) < self.limit / 2.0 {
            next = self.limit;
        }
        self.limit = (self.limit * (1.0 - SMOOTHING) + next * SMOOTHING).clamp(self.min, self.max);
        self.limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_slowing_origin_lowers_the_limit_and_a_recovered_one_raises_it_again() {
        let mut g = Gradient::new(8, 2, 64);
        // A healthy, busy origin: 50 ms per request, always full.
        for _ in 0..300 {
            g.sample(ms(50), g.limit());
        }
        let healthy = g.limit();
        assert!(
            healthy > 8,
            "a busy healthy origin earns more slots: {healthy}"
        );
        // The database slows down: requests take 6× longer.
        for _ in 0..100 {
            g.sample(ms(300), g.limit());
        }
        let slow = g.limit();
        assert!(slow < healthy / 2, "the limit falls: {healthy} → {slow}");
        // Back to normal: it grows again.
        for _ in 0..600 {
            g.sample(ms(50), g.limit());
        }
        assert!(g.limit() > slow * 2, "it recovers: {slow} → {}", g.limit());
    }

    #[test]
    fn light_traffic_does_not_inflate_the_limit_and_bounds_hold() {
        let mut g = Gradient::new(8, 6, 16);
        for _ in 0..1000 {
            g.sample(ms(20), 1);
        }
        assert_eq!(
            g.limit(),
            8,
            "one request at a time says nothing about capacity"
        );
        for _ in 0..1000 {
            g.sample(ms(20), 64);
        }
        assert_eq!(g.limit(), 16, "never above max");
        for _ in 0..100 {
            g.sample(ms(2000), 64);
        }
        assert_eq!(g.limit(), 6, "never below min");
    }
}
