//! The state guards share: counters and held keys with a time to live, behind one small
//! trait. The in-process [`MemoryStore`] is the embedded default; a Redis store (several edges
//! behind a load balancer) implements the same trait. The trait is asynchronous on purpose:
//! a network store answers later, so no guard may assume an answer without waiting for it.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// Every entry is held (a lockout or a limit in force) and none has expired: nothing
    /// can be evicted for a new counter.
    #[error(
        "the shield's store is full ({0} entries, all held); raise shield.store_entries or wait for lockouts to expire"
    )]
    Full(usize),
    #[error("the shield's store failed: {0}")]
    Backend(String),
}

pub trait Store: Send + Sync {
    /// Adds `by` to the counter `key` and returns its new value. A new counter lives `ttl`;
    /// later increments do not extend it.
    fn incr<'a>(&'a self, key: &'a str, by: u64, ttl: Duration) -> StoreFuture<'a, u64>;

    /// Like [`Store::incr`], and the key is held: never evicted before it expires (the
    /// waiting room's ticket counters).
    fn incr_held<'a>(&'a self, key: &'a str, by: u64, ttl: Duration) -> StoreFuture<'a, u64>;

    /// The value at `key`, 0 when absent or expired.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64>;

    /// Sets `key` to `value` for `ttl` and holds it: a held key is never evicted before it
    /// expires (a lockout, a limit in force).
    fn hold<'a>(&'a self, key: &'a str, value: u64, ttl: Duration) -> StoreFuture<'a, ()>;

    /// How long `key` still lives, `None` when absent or expired.
    fn ttl<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Duration>>;

    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
}

/// One entry as it is saved across a restart (the edge writes and reads the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedEntry {
    pub key: String,
    pub value: u64,
    /// Milliseconds since the Unix epoch.
    pub expires: u64,
    pub held: bool,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(u64::MAX as u128) as u64)
}

struct Entry {
    value: u64,
    expires: Instant,
    held: bool,
}

struct Map {
    entries: HashMap<String, Entry>,
    /// Keys of counters in creation order: the eviction order when the map is full. Stale
    /// names (removed, expired, re-created as held) are skipped when popped.
    order: VecDeque<String>,
}

/// The in-process store: bounded at `capacity` entries. When full, expired entries go first,
/// then the oldest counters; held keys are never evicted before they expire, and when only
/// held keys remain a new counter is refused ([`StoreError::Full`]).
pub struct MemoryStore {
    capacity: usize,
    map: Mutex<Map>,
}

fn ready<'a, T: Send + 'a>(value: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        MemoryStore {
            capacity: capacity.max(1),
            map: Mutex::new(Map {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live entry, for a restart: counters in eviction order, then held keys.
    pub fn save(&self) -> Vec<SavedEntry> {
        let (now, wall) = (Instant::now(), unix_ms(SystemTime::now()));
        let map = self.map.lock();
        let saved = |key: &String, e: &Entry| SavedEntry {
            key: key.clone(),
            value: e.value,
            expires: wall + e.expires.saturating_duration_since(now).as_millis() as u64,
            held: e.held,
        };
        let mut out: Vec<SavedEntry> = map
            .order
            .iter()
            .filter_map(|k| map.entries.get(k).map(|e| (k, e)))
            .filter(|(_, e)| !e.held && e.expires > now)
            .map(|(k, e)| saved(k, e))
            .collect();
        out.extend(
            map.entries
                .iter()
                .filter(|(_, e)| e.held && e.expires > now)
                .map(|(k, e)| saved(k, e)),
        );
        out
    }

    /// Puts saved entries back (expired ones are skipped; past `capacity` the rest is
    /// dropped). Returns how many were restored.
    pub fn restore(&self, saved: Vec<SavedEntry>) -> usize {
        let (now, wall) = (Instant::now(), unix_ms(SystemTime::now()));
        let mut map = self.map.lock();
        let mut n = 0;
        for s in saved {
            if s.expires <= wall || map.entries.len() >= self.capacity {
                continue;
            }
            let entry = Entry {
                value: s.value,
                expires: now + Duration::from_millis(s.expires - wall),
                held: s.held,
            };
            if !s.held {
                map.order.push_back(s.key.clone());
            }
            if map.entries.insert(s.key, entry).is_none() {
                n += 1;
            }
        }
        n
    }

    /// Makes room for one new entry.
    fn make_room(&self, map: &mut Map, now: Instant) -> Result<(), StoreError> {
        if map.entries.len() < self.capacity {
            return Ok(());
        }
        map.entries.retain(|_, e| e.expires > now);
        if map.entries.len() < self.capacity {
            let entries = &map.entries;
            map.order
                .retain(|k| entries.get(k).is_some_and(|e| !e.held));
            return Ok(());
        }
        while let Some(key) = map.order.pop_front() {
            if map.entries.get(&key).is_some_and(|e| !e.held) {
                map.entries.remove(&key);
                return Ok(());
            }
        }
        Err(StoreError::Full(map.entries.len()))
    }

    fn live<'m>(map: &'m mut Map, key: &str, now: Instant) -> Option<&'m mut Entry> {
        match map.entries.get(key) {
            Some(e) if e.expires <= now => {
                map.entries.remove(key);
                None
            }
            Some(_) => map.entries.get_mut(key),
            None => None,
        }
    }

    fn incr_now(&self, key: &str, by: u64, ttl: Duration, held: bool) -> Result<u64, StoreError> {
        let now = Instant::now();
        let mut map = self.map.lock();
        if let Some(e) = Self::live(&mut map, key, now) {
            e.value = e.value.saturating_add(by);
            e.held |= held;
            return Ok(e.value);
        }
        self.make_room(&mut map, now)?;
        map.entries.insert(
            key.to_string(),
            Entry {
                value: by,
                expires: now + ttl,
                held,
            },
        );
        if !held {
            map.order.push_back(key.to_string());
        }
        Ok(by)
    }

    fn hold_now(&self, key: &str, value: u64, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut map = self.map.lock();
        if let Some(e) = Self::live(&mut map, key, now) {
            *e = Entry {
                value,
                expires: now + ttl,
                held: true,
            };
            return Ok(());
        }
        self.make_room(&mut map, now)?;
        map.entries.insert(
            key.to_string(),
            Entry {
                value,
                expires: now + ttl,
                held: true,
            },
        );
        Ok(())
    }
}

impl Store for MemoryStore {
    fn incr<'a>(&'a self, key: &'a str, by: u64, ttl: Duration) -> StoreFuture<'a, u64> {
        ready(self.incr_now(key, by, ttl, false))
    }

    fn incr_held<'a>(&'a self, key: &'a str, by: u64, ttl: Duration) -> StoreFuture<'a, u64> {
        ready(self.incr_now(key, by, ttl, true))
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        let now = Instant::now();
        let mut map = self.map.lock();
        ready(Ok(Self::live(&mut map, key, now).map_or(0, |e| e.value)))
    }

    fn hold<'a>(&'a self, key: &'a str, value: u64, ttl: Duration) -> StoreFuture<'a, ()> {
        ready(self.hold_now(key, value, ttl))
    }

    fn ttl<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Duration>> {
        let now = Instant::now();
        let mut map = self.map.lock();
        ready(Ok(
            Self::live(&mut map, key, now).map(|e| e.expires.saturating_duration_since(now))
        ))
    }

    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.map.lock().entries.remove(key);
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn counters_count_and_expire() {
        let s = MemoryStore::new(10);
        assert_eq!(s.incr("a", 1, MIN).await, Ok(1));
        assert_eq!(s.incr("a", 2, MIN).await, Ok(3));
        assert_eq!(s.get("a").await, Ok(3));
        assert_eq!(s.get("b").await, Ok(0));
        s.incr("short", 1, Duration::from_millis(1))
            .await
            .expect("incr");
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.get("short").await != Ok(0) {
            assert!(Instant::now() < deadline, "never expired");
            tokio::task::yield_now().await;
        }
        assert_eq!(s.ttl("short").await, Ok(None));
        assert!(s.ttl("a").await.expect("ttl").is_some_and(|t| t <= MIN));
        s.remove("a").await.expect("remove");
        assert_eq!(s.get("a").await, Ok(0));
    }

    #[tokio::test]
    async fn when_full_the_oldest_counter_goes_and_held_keys_stay() {
        let s = MemoryStore::new(3);
        s.hold("locked:1.2.3.4", 1, MIN).await.expect("hold");
        s.incr("c1", 1, MIN).await.expect("c1");
        s.incr("c2", 1, MIN).await.expect("c2");
        s.incr("c3", 1, MIN).await.expect("c3 evicts c1");
        assert_eq!(s.get("c1").await, Ok(0), "the oldest counter went");
        assert_eq!(s.get("locked:1.2.3.4").await, Ok(1), "the held key stayed");
        assert_eq!(s.len(), 3);
        // Only held keys left: a new counter is refused, never a lockout dropped.
        let s = MemoryStore::new(2);
        s.hold("h1", 1, MIN).await.expect("h1");
        s.hold("h2", 1, MIN).await.expect("h2");
        assert_eq!(s.incr("c", 1, MIN).await, Err(StoreError::Full(2)));
        assert_eq!(s.get("h1").await, Ok(1));
    }

    #[tokio::test]
    async fn a_restart_keeps_live_entries_and_their_kind() {
        let s = MemoryStore::new(10);
        s.incr("count", 4, MIN).await.expect("incr");
        s.hold("locked", 2, MIN).await.expect("hold");
        s.hold("gone", 1, Duration::from_millis(1))
            .await
            .expect("hold");
        let held_at = Instant::now();
        while held_at.elapsed() < Duration::from_millis(5) {
            tokio::task::yield_now().await;
        }
        let saved = s.save();
        assert_eq!(saved.len(), 2, "{saved:?}");
        let text = serde_json::to_string(&saved).expect("json");
        let back = MemoryStore::new(2);
        assert_eq!(back.restore(serde_json::from_str(&text).expect("json")), 2);
        assert_eq!(back.get("count").await, Ok(4));
        assert_eq!(back.get("locked").await, Ok(2));
        assert!(
            back.ttl("locked")
                .await
                .expect("ttl")
                .is_some_and(|t| t <= MIN)
        );
        // The held key stays held: a new counter evicts the restored counter, not it.
        back.incr("new", 1, MIN).await.expect("incr");
        assert_eq!(back.get("count").await, Ok(0));
        assert_eq!(back.get("locked").await, Ok(2));
    }

    #[tokio::test]
    async fn expired_entries_make_room_first() {
        let s = MemoryStore::new(2);
        s.hold("old", 1, Duration::from_millis(1))
            .await
            .expect("hold");
        s.incr("keep", 1, MIN).await.expect("keep");
        let held_at = Instant::now();
        while held_at.elapsed() < Duration::from_millis(5) {
            tokio::task::yield_now().await;
        }
        assert_eq!(s.len(), 2, "the expired key is still in the map");
        s.incr("new", 1, MIN)
            .await
            .expect("room from the expired key");
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.get("keep").await,
            Ok(1),
            "the live counter was not evicted"
        );
    }
}
