//! After the origin fails for a key, leave it alone for a while: the stale copy is served as
//! is instead of every request starting another doomed refresh. Bounded: expired entries are
//! dropped as new ones arrive, and the map never holds more than `capacity` keys.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;
// tokio's clock: the same as std's outside tests, pausable in them.
use tokio::time::Instant;

pub struct OriginBackoff {
    until: Mutex<HashMap<String, Instant>>,
    period: Duration,
    capacity: usize,
}

impl OriginBackoff {
    pub fn new(period: Duration, capacity: usize) -> Self {
        OriginBackoff {
            until: Mutex::new(HashMap::new()),
            period,
            capacity,
        }
    }

    /// The origin just failed for `key`.
    pub fn note_failure(&self, key: &str) {
        if self.period.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut map = self.until.lock();
        if map.len() >= self.capacity {
            map.retain(|_, t| *t > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key.to_string(), now + self.period);
    }

    /// Is `key` in its back-off window?
    pub fn active(&self, key: &str) -> bool {
        let mut map = self.until.lock();
        match map.get(key) {
            Some(t) if *t > Instant::now() => true,
            Some(_) => {
                map.remove(key);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failure_opens_a_window_that_closes() {
        let b = OriginBackoff::new(Duration::from_millis(50), 10);
        assert!(!b.active("k"));
        b.note_failure("k");
        assert!(b.active("k"));
        tokio::time::advance(Duration::from_millis(60)).await;
        assert!(!b.active("k"));
    }

    #[test]
    fn the_map_is_bounded() {
        let b = OriginBackoff::new(Duration::from_secs(60), 100);
        for i in 0..1000 {
            b.note_failure(&i.to_string());
        }
        assert!(b.until.lock().len() <= 100);
        assert!(b.active("999"));
    }

    #[test]
    fn zero_disables_it() {
        let b = OriginBackoff::new(Duration::ZERO, 10);
        b.note_failure("k");
        assert!(!b.active("k"));
    }
}
