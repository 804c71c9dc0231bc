//! A simulated WordPress-like origin: the one origin of `peakguard demo`, of the edge and
//! rehearse tests that need no real WordPress, and of the rehearse benchmark.
//!
//! Owns: a small real HTTP/1.1 server (hyper) on a loopback listener the caller hands it,
//! answering by path (see [`routes`]), with the knobs a peak needs: a pool of "PHP workers"
//! and a time per page (a queue forms, as at a real PHP-FPM), a "database" that fails (every
//! page a fast 500, as WordPress answers), a stall (every request waits), and a record of
//! the requests it parsed; and a recording receiver for notifications ([`receiver`]: the
//! monitor's tests). Must not touch: the edge, its configuration or anything on disk;
//! it never binds a listener itself except [`start`] and [`start_receiver`], which bind 127.0.0.1 only.
//!
//! Bounded: the record keeps the last [`RECORD_LIMIT`] requests (older ones are dropped,
//! `requests()` still counts them); each connection is one task, ended with the connection.
#![forbid(unsafe_code)]

mod body;
pub mod receiver;
pub mod routes;
mod server;

pub use body::{html_page, photo};
pub use receiver::start_receiver;
pub use server::{serve, start, try_start};

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How many parsed requests the record keeps (the oldest go first).
pub const RECORD_LIMIT: usize = 100_000;

/// One request as the origin parsed it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

impl Seen {
    /// The first value of a request header (names are lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A handle on the origin; clones share one origin.
#[derive(Clone)]
pub struct SimOrigin {
    pub seen: Arc<Mutex<VecDeque<Seen>>>,
    requests: Arc<AtomicU64>,
    /// A counter the validator routes (`/etag`, `/swr`) advance on every fetch.
    pub revision: Arc<Mutex<u32>>,
    /// While set, the "database" is down: every page answers a fast 500 with WordPress's
    /// "Error establishing a database connection"; static files (`/photo.jpg`) still answer.
    pub db_down: Arc<AtomicBool>,
    /// Until this instant every request waits (a stalled server).
    pub stall_until: Arc<Mutex<Option<Instant>>>,
    /// A one-second stall that begins this long after the first request (the rehearse
    /// benchmark's stalled server).
    stall_after_first: Option<Duration>,
    first_request: Arc<Mutex<Option<Instant>>>,
    /// The "PHP workers": at most this many requests are worked on at once, the rest queue.
    workers: Option<Arc<Semaphore>>,
    worker_count: usize,
    /// How long a worker takes for one page.
    page_time: Duration,
}

impl Default for SimOrigin {
    fn default() -> Self {
        SimOrigin {
            seen: Arc::default(),
            requests: Arc::default(),
            revision: Arc::default(),
            db_down: Arc::default(),
            stall_until: Arc::default(),
            stall_after_first: None,
            first_request: Arc::default(),
            workers: None,
            worker_count: 0,
            page_time: Duration::ZERO,
        }
    }
}

/// A lock that survives a panicked holder (the record is plain data, always consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimOrigin {
    /// An origin that answers at once, with no worker limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// A WordPress-like origin: `workers` PHP workers (at least 1), each taking `page_time`
    /// per request; the rest queue, as at a PHP-FPM pool.
    pub fn wordpress_like(workers: usize, page_time: Duration) -> Self {
        let workers = workers.max(1);
        SimOrigin {
            workers: Some(Arc::new(Semaphore::new(workers))),
            worker_count: workers,
            page_time,
            ..Self::default()
        }
    }

    /// Every response due in the one second that begins `after` the first request waits
    /// until that second is over.
    pub fn stalling_once(after: Duration) -> Self {
        SimOrigin {
            stall_after_first: Some(after),
            ..Self::default()
        }
    }

    /// The PHP workers, if limited.
    pub fn workers(&self) -> Option<usize> {
        self.workers.as_ref().map(|_| self.worker_count)
    }

    /// The time per page.
    pub fn page_time(&self) -> Duration {
        self.page_time
    }

    /// Requests answered or being answered since the start (also those the record dropped).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Switches the "database" off (`true`) or on again.
    pub fn set_db_down(&self, down: bool) {
        self.db_down.store(down, Ordering::Relaxed);
    }

    /// Recorded requests whose path (with query) starts with `path_prefix`.
    pub fn count(&self, path_prefix: &str) -> usize {
        lock(&self.seen)
            .iter()
            .filter(|s| s.path.starts_with(path_prefix))
            .count()
    }

    /// The last recorded request whose path starts with `path_prefix`.
    pub fn last(&self, path_prefix: &str) -> Option<Seen> {
        lock(&self.seen)
            .iter()
            .rev()
            .find(|s| s.path.starts_with(path_prefix))
            .cloned()
    }

    /// A copy of the record, oldest first.
    pub fn recorded(&self) -> Vec<Seen> {
        lock(&self.seen).iter().cloned().collect()
    }

    pub(crate) fn record(&self, seen: Seen) {
        let mut record = lock(&self.seen);
        if record.len() >= RECORD_LIMIT {
            record.pop_front();
        }
        record.push_back(seen);
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits while the origin is stalled (either stall).
    pub(crate) async fn wait_out_stalls(&self) {
        let now = Instant::now();
        if let Some(after) = self.stall_after_first {
            let first = *lock(&self.first_request).get_or_insert(now);
            let (from, to) = (first + after, first + after + Duration::from_secs(1));
            if now >= from && now < to {
                tokio::time::sleep_until(to.into()).await;
            }
        }
        let until = *lock(&self.stall_until);
        if let Some(until) = until.filter(|u| *u > Instant::now()) {
            tokio::time::sleep_until(until.into()).await;
        }
    }

    /// Holds one PHP worker for the page time (no limit: only the page time).
    pub(crate) async fn work(&self) {
        let _worker = match &self.workers {
            Some(w) => w.acquire().await.ok(),
            None => None,
        };
        if !self.page_time.is_zero() {
            tokio::time::sleep(self.page_time).await;
        }
    }
}
