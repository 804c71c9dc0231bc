//! The request path's side: a finished request is pushed, as it is, into a bounded
//! lock-free queue of the calling thread's shard — no lock, no waiting, no classification.
//! When a shard is full (the aggregating thread is behind) the event is dropped and counted
//! (`dropped`), never waited for.

use crate::event::Event;
use crossbeam_queue::ArrayQueue;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Events held per shard between two drains (a drain runs every quarter second).
pub const SHARD_CAPACITY: usize = 16_384;

pub struct Recorder {
    shards: Box<[ArrayQueue<Event>]>,
    dropped: AtomicU64,
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static THREAD: Cell<usize> = Cell::new(NEXT_THREAD.fetch_add(1, Relaxed));
}

impl Recorder {
    /// One shard per expected thread (at least 2, at most 64).
    pub fn new(threads: usize) -> Recorder {
        let n = threads.clamp(2, 64);
        Recorder {
            shards: (0..n).map(|_| ArrayQueue::new(SHARD_CAPACITY)).collect(),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn record(&self, e: Event) {
        let i = THREAD.with(Cell::get) % self.shards.len();
        if self.shards[i].push(e).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Takes every event queued so far.
    pub fn drain(&self, mut each: impl FnMut(Event)) {
        for s in &self.shards {
            // Bounded by what was there: events pushed meanwhile wait for the next drain.
            for _ in 0..s.len() {
                match s.pop() {
                    Some(e) => each(e),
                    None => break,
                }
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}
