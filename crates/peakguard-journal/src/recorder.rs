//! What peakguard does by itself (a lockout, an alert firing, a scheduled backup failing) is
//! journaled from where it happens — the request path included — through a [`Recorder`]:
//! `record` hands the event to a thread of its own that appends it, and never waits. When
//! that thread is behind by [`CAPACITY`] events, further ones are dropped, counted and
//! logged (once per burst), never blocking the caller.

use crate::entry::Event;
use crate::file::Journal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Events waiting to be appended.
pub const CAPACITY: usize = 1024;

#[derive(Clone)]
pub struct Recorder {
    tx: SyncSender<Event>,
    dropped: Arc<AtomicU64>,
    said: Arc<AtomicBool>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dropped", &self.dropped.load(Relaxed))
            .finish()
    }
}

impl Recorder {
    /// Starts the appending thread; it ends when the last clone of the recorder is dropped.
    pub fn start(journal: Journal) -> std::io::Result<Recorder> {
        let (tx, rx) = sync_channel(CAPACITY);
        std::thread::Builder::new()
            .name("peakguard-journal".into())
            .spawn(move || append_all(&journal, &rx))?;
        Ok(Recorder {
            tx,
            dropped: Arc::default(),
            said: Arc::default(),
        })
    }

    /// Hands `event` over to be appended (never waits).
    pub fn record(&self, event: Event) {
        match self.tx.try_send(event) {
            Ok(()) => self.said.store(false, Relaxed),
            Err(TrySendError::Full(e) | TrySendError::Disconnected(e)) => {
                self.dropped.fetch_add(1, Relaxed);
                if !self.said.swap(true, Relaxed) {
                    log::error!(
                        "journal: behind by {CAPACITY} events; not journaled: {} {}",
                        e.who,
                        e.what
                    );
                }
            }
        }
    }

    /// Events dropped because the appending thread was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

fn append_all(journal: &Journal, rx: &Receiver<Event>) {
    while let Ok(event) = rx.recv() {
        let what = format!("{} {}", event.who, event.what);
        if let Err(e) = journal.append(event) {
            log::error!("journal: {what} not journaled: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_recorded_from_many_threads_are_all_appended_in_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private").join("journal.jsonl");
        let recorder = Recorder::start(Journal::new(&path)).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let r = recorder.clone();
                s.spawn(move || {
                    for i in 0..50 {
                        r.record(Event {
                            who: "shield".into(),
                            what: "login lockout".into(),
                            site: Some("shop".into()),
                            detail: format!("thread {t} event {i}"),
                            result: "locked 60s".into(),
                        });
                    }
                });
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while crate::read(&path).map_or(0, |e| e.len()) + (recorder.dropped() as usize) < 200 {
            assert!(std::time::Instant::now() < deadline, "not appended in time");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(recorder.dropped(), 0, "200 events fit the queue");
        assert_eq!(crate::verify(&path).unwrap(), 200);
    }
}
