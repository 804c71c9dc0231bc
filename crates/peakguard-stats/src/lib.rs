//! Statistics for the console and the report: what every request did (by site, how it was
//! served, status class, refusing guard; client and origin latency; top pages; referring
//! sites), counted off the request path into minute and hour time series on disk.
//!
//! The request path only pushes an [`Event`] into a bounded lock-free queue
//! ([`recorder`]); a thread of ours drains the queues four times a second into the
//! minutes being counted ([`aggregator`]), writes each finished minute and hour
//! ([`store`]) and saves what is being counted every few seconds, so a restart or a crash
//! loses at most that interval. Minutes are kept 14 days and hours 400 days by default;
//! older files are removed once an hour.
//!
//! Owns: counting, the on-disk format and its retention, ranges of records. Must not touch:
//! requests or responses (the edge builds the [`Event`]), configuration files, the network.
#![forbid(unsafe_code)]

pub mod aggregator;
pub mod bucket;
pub mod campaign;
pub mod event;
mod frame;
mod keys;
pub mod latency;
mod order;
pub mod recorder;
pub mod store;
pub mod top;
pub mod view;
pub mod visitors;

pub use aggregator::{Aggregator, total};
pub use bucket::Bucket;
pub use event::{Event, Served, StatusClass};
pub use recorder::Recorder;
pub use store::{Current, Record, Resolution, Retention, StatsError, Store};

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The response field in which the companion plugin reports a confirmed order
/// (`id=…; total=…; currency=…`); the edge takes it off the response.
pub const ORDER_FIELD: &str = "x-peakguard-order";
/// A longer order field is ignored.
pub const MAX_ORDER_FIELD: usize = 200;

/// How often queued events are counted.
const DRAIN_EVERY: Duration = Duration::from_millis(250);
/// How often old files are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// How the statistics run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub retention: Retention,
    /// How often what is being counted is saved (what a crash may lose).
    pub save_every: Duration,
    /// Threads that record (sizes the queues).
    pub threads: usize,
    /// Path prefixes whose successful GET is a conversion.
    pub goals: Vec<String>,
}

/// Running statistics: record from any thread, read ranges, stop (which saves).
pub struct Stats {
    recorder: Arc<Recorder>,
    aggregator: Arc<Mutex<Aggregator>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Stats {
    /// Opens the store, resumes what was being counted and starts the counting thread.
    pub fn start(store: Store, settings: Settings) -> Result<Stats, StatsError> {
        let mut aggregator = Aggregator::resume(store, now_unix())?;
        aggregator.set_goals(settings.goals.clone());
        let aggregator = Arc::new(Mutex::new(aggregator));
        let recorder = Arc::new(Recorder::new(settings.threads));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let (recorder, aggregator, stop) = (recorder.clone(), aggregator.clone(), stop.clone());
            std::thread::Builder::new()
                .name("peakguard-stats".into())
                .spawn(move || run(&recorder, &aggregator, &stop, &settings))
                .map_err(|source| StatsError::Io {
                    path: "(statistics thread)".into(),
                    source,
                })?
        };
        Ok(Stats {
            recorder,
            aggregator,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Hands over one finished request (never waits).
    pub fn record(&self, e: Event) {
        self.recorder.record(e);
    }

    /// Events dropped because the counting thread was behind.
    pub fn dropped(&self) -> u64 {
        self.recorder.dropped()
    }

    /// Records of periods starting in `[from, to)` (unix seconds), including those being
    /// counted.
    pub fn range(
        &self,
        res: Resolution,
        from: i64,
        to: i64,
        site: Option<&str>,
    ) -> Result<Vec<Record>, StatsError> {
        // The counting thread waits only for the copy of what is in memory, not for the
        // files to be read.
        let live = {
            let mut a = self.aggregator.lock();
            let now = now_unix();
            self.recorder.drain(|e| a.add(now, e));
            a.live(res, from, to, site)
        };
        live.complete(res, from, to, site)
    }

    /// Counts what is queued, saves, and stops the thread. Idempotent.
    pub fn stop(&self) {
        let (flag, cv) = &*self.stop;
        *flag.lock() = true;
        cv.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    recorder: &Recorder,
    aggregator: &Mutex<Aggregator>,
    stop: &(Mutex<bool>, Condvar),
    settings: &Settings,
) {
    let (mut saved, mut pruned) = (Instant::now(), None::<Instant>);
    loop {
        let stopping = {
            let mut flag = stop.0.lock();
            if !*flag {
                stop.1.wait_for(&mut flag, DRAIN_EVERY);
            }
            *flag
        };
        let now = now_unix();
        let mut a = aggregator.lock();
        recorder.drain(|e| a.add(now, e));
        a.roll(now);
        if stopping || saved.elapsed() >= settings.save_every {
            let result = if stopping { a.release() } else { a.save() };
            if let Err(e) = result {
                log::error!("statistics: {e}");
            }
            saved = Instant::now();
        }
        if pruned.is_none_or(|p| p.elapsed() >= PRUNE_EVERY) {
            match a.store().prune(now) {
                Ok(n) if n > 0 => log::info!("statistics: {n} old file(s) removed"),
                Ok(_) => {}
                Err(e) => log::error!("statistics: {e}"),
            }
            pruned = Some(Instant::now());
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
