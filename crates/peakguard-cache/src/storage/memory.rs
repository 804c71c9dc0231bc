//! The memory tier: bounded in bytes, S3-FIFO eviction (a small probation queue, a main queue
//! and a ghost list), which resists scans: a one-time crawl of many URLs passes through the
//! small queue without pushing out pages that are read again and again.

use super::object::StoredObject;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

struct Entry {
    object: Arc<StoredObject>,
    weight: usize,
    freq: AtomicU8,
    main: bool,
    generation: u64,
}

/// Outcome of an insert: the keys that were evicted to make room.
pub type Evicted = Vec<String>;

pub struct MemoryTier {
    capacity: usize,
    used: usize,
    /// Bytes held by fills in progress (bodies being received to be stored): they count
    /// against the capacity like stored objects, so stored objects make room for them.
    reserved: usize,
    small_used: usize,
    entries: HashMap<String, Entry>,
    small: VecDeque<(String, u64)>,
    main: VecDeque<(String, u64)>,
    ghost: HashSet<String>,
    ghost_order: VecDeque<String>,
    next_generation: u64,
}

const MAX_FREQ: u8 = 3;

impl MemoryTier {
    pub fn new(capacity: usize) -> Self {
        MemoryTier {
            capacity,
            used: 0,
            reserved: 0,
            small_used: 0,
            entries: HashMap::new(),
            small: VecDeque::new(),
            main: VecDeque::new(),
            ghost: HashSet::new(),
            ghost_order: VecDeque::new(),
            next_generation: 0,
        }
    }

    /// Reads an object and counts the access (takes only a shared borrow).
    pub fn get(&self, key: &str) -> Option<Arc<StoredObject>> {
        let entry = self.entries.get(key)?;
        let f = entry.freq.load(Ordering::Relaxed);
        if f < MAX_FREQ {
            entry.freq.store(f + 1, Ordering::Relaxed);
        }
        Some(entry.object.clone())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Replaces the object of an existing entry in place (header update after a 304, new
    /// encodings); returns the keys evicted if it grew past capacity, `None` when the key
    /// is not here.
    pub fn replace(&mut self, key: &str, object: Arc<StoredObject>) -> Option<Evicted> {
        let entry = self.entries.get_mut(key)?;
        let weight = object.weight();
        self.used = self.used + weight - entry.weight;
        if !entry.main {
            self.small_used = self.small_used + weight - entry.weight;
        }
        entry.weight = weight;
        entry.object = object;
        Some(self.evict())
    }

    /// Inserts (or replaces) an object; returns the keys evicted to stay within capacity.
    /// An object larger than the whole tier is not stored.
    pub fn insert(&mut self, key: String, object: Arc<StoredObject>) -> Evicted {
        let weight = object.weight();
        self.remove(&key);
        if weight > self.capacity {
            return Vec::new();
        }
        let to_main = self.ghost.remove(&key);
        let generation = self.next_generation;
        self.next_generation += 1;
        if to_main {
            self.main.push_back((key.clone(), generation));
        } else {
            self.small.push_back((key.clone(), generation));
            self.small_used += weight;
        }
        self.used += weight;
        self.entries.insert(
            key,
            Entry {
                object,
                weight,
                freq: AtomicU8::new(0),
                main: to_main,
                generation,
            },
        );
        let evicted = self.evict();
        self.compact_queues();
        evicted
    }

    /// Counts `n` more bytes of a fill in progress, evicting stored objects to make room.
    /// `None` when fills would hold more than half the tier: that fill stops storing.
    pub fn reserve(&mut self, n: usize) -> Option<Evicted> {
        if self.reserved + n > self.capacity / 2 {
            return None;
        }
        self.reserved += n;
        Some(self.evict())
    }

    /// A fill's bytes leave the count (it finished, failed or stopped storing).
    pub fn release(&mut self, n: usize) {
        self.reserved = self.reserved.saturating_sub(n);
    }

    pub fn reserved_bytes(&self) -> usize {
        self.reserved
    }

    pub fn remove(&mut self, key: &str) -> bool {
        match self.entries.remove(key) {
            Some(e) => {
                self.used -= e.weight;
                if !e.main {
                    self.small_used -= e.weight;
                }
                true
            }
            None => false,
        }
    }

    fn evict(&mut self) -> Evicted {
        let mut evicted = Vec::new();
        while self.used + self.reserved > self.capacity {
            let from_small = self.small_used > self.capacity / 10 || self.main.is_empty();
            let popped = if from_small {
                self.small.pop_front()
            } else {
                self.main.pop_front()
            };
            let Some((key, generation)) = popped else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            if entry.generation != generation || entry.main == from_small {
                continue; // a stale queue slot
            }
            let freq = entry.freq.load(Ordering::Relaxed);
            if from_small {
                if freq > 0 {
                    entry.main = true;
                    entry.freq.store(0, Ordering::Relaxed);
                    self.small_used -= entry.weight;
                    self.main.push_back((key, generation));
                    continue;
                }
                self.remember_ghost(key.clone());
            } else if freq > 0 {
                entry.freq.store(freq - 1, Ordering::Relaxed);
                self.main.push_back((key, generation));
                continue;
            }
            self.remove(&key);
            evicted.push(key);
        }
        evicted
    }

    fn remember_ghost(&mut self, key: String) {
        let bound = self.entries.len().max(1024);
        if self.ghost.insert(key.clone()) {
            self.ghost_order.push_back(key);
        }
        while self.ghost_order.len() > bound {
            if let Some(old) = self.ghost_order.pop_front() {
                self.ghost.remove(&old);
            }
        }
    }

    /// Drops queue slots whose entry is gone, so queues stay bounded by the entry count.
    fn compact_queues(&mut self) {
        let bound = 2 * self.entries.len() + 1024;
        if self.small.len() + self.main.len() <= bound {
            return;
        }
        let entries = &self.entries;
        let live = |(k, g): &(String, u64), main: bool| {
            entries
                .get(k)
                .is_some_and(|e| e.generation == *g && e.main == main)
        };
        self.small.retain(|slot| live(slot, false));
        self.main.retain(|slot| live(slot, true));
    }

    pub fn used_bytes(&self) -> usize {
        self.used
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn keys(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::object::{MetaParts, StoredObject};
    use bytes::Bytes;
    use pingora_http::ResponseHeader;
    use std::time::SystemTime;

    fn obj(size: usize) -> Arc<StoredObject> {
        Arc::new(StoredObject::new(
            MetaParts {
                fresh_until: SystemTime::now(),
                updated: SystemTime::now(),
                stale_while_revalidate_sec: 0,
                stale_if_error_sec: 0,
                variance: None,
                header: ResponseHeader::build(200, None).unwrap(),
            },
            Bytes::from(vec![0u8; size]),
            String::new(),
            Vec::new(),
        ))
    }

    #[test]
    fn fills_in_progress_count_against_the_capacity() {
        let mut tier = MemoryTier::new(10_000);
        for i in 0..9 {
            tier.insert(format!("k{i}"), obj(1_000));
        }
        let before = tier.used_bytes();
        let evicted = tier.reserve(4_000).expect("within half the tier");
        assert!(!evicted.is_empty(), "stored objects make room for the fill");
        assert!(tier.used_bytes() + tier.reserved_bytes() <= 10_000);
        assert!(tier.used_bytes() < before);
        assert!(
            tier.reserve(2_000).is_none(),
            "fills may not hold more than half the tier"
        );
        tier.release(4_000);
        assert_eq!(tier.reserved_bytes(), 0);
    }

    #[test]
    fn stays_within_capacity() {
        let mut m = MemoryTier::new(100_000);
        for i in 0..1000 {
            m.insert(format!("k{i}"), obj(1000));
            assert!(m.used_bytes() <= 100_000);
        }
        assert!(m.len() > 50);
    }

    #[test]
    fn a_scan_does_not_evict_the_hot_set() {
        let mut m = MemoryTier::new(200_000);
        let hot: Vec<String> = (0..50).map(|i| format!("hot{i}")).collect();
        for k in &hot {
            m.insert(k.clone(), obj(1000));
        }
        for _ in 0..3 {
            for k in &hot {
                assert!(m.get(k).is_some());
            }
        }
        // A crawl of 5,000 one-time URLs, with the hot set still being read now and then.
        for i in 0..5000 {
            m.insert(format!("scan{i}"), obj(1000));
            if i % 100 == 0 {
                for k in &hot {
                    m.get(k);
                }
            }
        }
        let kept = hot.iter().filter(|k| m.contains(k)).count();
        assert!(kept >= 45, "only {kept}/50 hot objects survived the scan");
    }

    #[test]
    fn oversize_object_is_not_stored() {
        let mut m = MemoryTier::new(10_000);
        m.insert("big".into(), obj(20_000));
        assert!(!m.contains("big"));
        assert_eq!(m.used_bytes(), 0);
    }

    #[test]
    fn queues_stay_bounded_under_churn() {
        let mut m = MemoryTier::new(1 << 30);
        for i in 0..20_000 {
            let k = format!("k{}", i % 10);
            m.insert(k.clone(), obj(10));
            m.remove(&k);
        }
        assert!(m.small.len() + m.main.len() <= 2 * m.len() + 1025);
    }
}
