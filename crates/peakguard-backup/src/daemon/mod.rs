//! `serve`'s backup daemon: for every site with `[site.backup]`, snapshots on a schedule
//! (`every`) and on demand (admin API `POST /backup?site=NAME`), the bunker copy after each
//! snapshot, and retention + prune on `retention.prune_every`. Its status and metrics are
//! what the admin API serves (`GET /backups`, `/status`, `/metrics`: the daemon is an
//! `AdminExtension`, admin.rs — this crate knows nothing of the edge).
//!
//! Files: this one (the daemon, its sites' status, start and stop), worker.rs (each site's
//! snapshot and bunker loops), supervise.rs (restart on panic, waits), admin.rs (endpoints,
//! status, metrics).
//!
//! A thread that panics is reported (log, `panics` and `last_error` in its status) and
//! started again; [`BackupDaemon::stop`] ends every thread between runs (the binary calls
//! it when the edge has stopped).
//!
//! Each site has two OS threads (the backup engine blocks; the proxy's runtime never waits
//! for it): one takes snapshots and prunes the main repository, one copies to the bunker
//! and prunes it. Their requests travel on channels of capacity one, so a burst of
//! triggers queues one run, never a backlog. Repositories stay open between runs (the key
//! is derived once). The writer locks are the same as the CLI's: the main lock for
//! snapshots and main prunes, `<state_dir>/bunker/writer.lock` for the bunker, so a
//! scheduled run waits for (or skips past) a `peakguard rollback` in progress.

use crate::backup::{BackupOutcome, Reuse};
use crate::error::{BackupError, Result};
use crate::lock::WriterLock;
use crate::progress::Hidden;
use crate::repo::Repo;
use crate::site::BackupSite;
use crate::snapshot::Kind;
use parking_lot::Mutex;
use peakguard_admin::{AdminExtension, BackupFreshness};
use peakguard_config::Config;
use peakguard_prometheus::{Exposition, Kind as MetricKind, Value};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// How long a scheduled run waits for another writer (a CLI command) before skipping.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// How soon the bunker copy is retried while the bunker is behind or failing.
const BUNKER_RETRY: Duration = Duration::from_secs(15);

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[derive(Debug, Default, Clone, Serialize)]
struct BunkerStatus {
    location: String,
    copies_ok: u64,
    copies_failed: u64,
    snapshots_copied: u64,
    /// A copy is running.
    copying: bool,
    /// Snapshots of the main repository not in the bunker yet (at the last look).
    missing: usize,
    /// When the oldest snapshot not in the bunker yet was taken (`None`: up to date).
    oldest_missing_unix: Option<i64>,
    /// Its age now (0 = up to date).
    lag_secs: i64,
    last_ok_unix: Option<i64>,
    last_error: Option<String>,
    prunes_ok: u64,
    prunes_failed: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
struct SiteStatus {
    every_secs: u64,
    running: bool,
    queued: bool,
    runs_ok: u64,
    runs_failed: u64,
    /// Runs skipped because another peakguard command held the writer lock.
    runs_skipped: u64,
    last_snapshot: Option<String>,
    last_ok_unix: Option<i64>,
    last_duration_secs: f64,
    last_reused: Option<Reuse>,
    last_error: Option<String>,
    last_error_unix: Option<i64>,
    next_run_unix: Option<i64>,
    prunes_ok: u64,
    prunes_failed: u64,
    last_prune_unix: Option<i64>,
    /// Times one of this site's threads panicked (it was started again each time).
    panics: u64,
    bunker: Option<BunkerStatus>,
}

struct SiteWorker {
    site: BackupSite,
    status: Mutex<SiteStatus>,
    backup_tx: SyncSender<Kind>,
    bunker_tx: Option<SyncSender<()>>,
    /// Set by [`BackupDaemon::stop`]: the loops end at their next look (within a second).
    stopping: Arc<AtomicBool>,
}

/// The running daemon: what the admin API asks.
pub struct BackupDaemon {
    sites: Vec<Arc<SiteWorker>>,
    stopping: Arc<AtomicBool>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

mod admin;
mod supervise;
mod worker;

use supervise::{Woken, hidden, supervised, wait_for};

impl BackupDaemon {
    /// Starts the threads of every site with `[site.backup]`; `None` when there is none.
    /// A site whose backup settings cannot be resolved (unreadable wp-config.php, password
    /// file) stops `serve` with the reason.
    pub fn start(config: &Config) -> Result<Option<Arc<BackupDaemon>>> {
        let stopping = Arc::new(AtomicBool::new(false));
        let mut sites = Vec::new();
        let mut threads = Vec::new();
        for site_config in config.sites.iter().filter(|s| s.backup.is_some()) {
            let site = BackupSite::from_site(site_config)?;
            let every = site.config.every.0;
            let prune_every = site.config.retention.prune_every.0;
            let (backup_tx, backup_rx) = sync_channel(1);
            let (bunker_tx, bunker_rx) = if site.bunker.is_some() {
                let (tx, rx) = sync_channel(1);
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            let status = SiteStatus {
                every_secs: every.as_secs(),
                bunker: site.bunker.as_ref().map(|b| BunkerStatus {
                    location: b.location.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let worker = Arc::new(SiteWorker {
                site,
                status: Mutex::new(status),
                backup_tx,
                bunker_tx,
                stopping: stopping.clone(),
            });
            let spawned =
                |e: std::io::Error| BackupError::Other(format!("starting a backup thread: {e}"));
            threads.push(
                supervised(
                    worker.clone(),
                    format!("pg-backup-{}", worker.site.name),
                    "backup",
                    move |w| w.backup_loop(&backup_rx, every, prune_every),
                )
                .map_err(spawned)?,
            );
            if let Some(rx) = bunker_rx {
                threads.push(
                    supervised(
                        worker.clone(),
                        format!("pg-bunker-{}", worker.site.name),
                        "bunker",
                        move |w| w.bunker_loop(&rx, every, prune_every),
                    )
                    .map_err(spawned)?,
                );
            }
            log::info!(
                "backups of site {:?}: {}",
                worker.site.name,
                if every.is_zero() {
                    "on demand only (every = 0)".to_string()
                } else {
                    format!("every {}", humantime::format_duration(every))
                }
            );
            sites.push(worker);
        }
        Ok((!sites.is_empty()).then(|| {
            Arc::new(BackupDaemon {
                sites,
                stopping,
                threads: Mutex::new(threads),
            })
        }))
    }

    /// Ends every thread between runs; waits up to `within` for a run in progress to finish
    /// (what is still running then is cut off by the process's exit: a snapshot not
    /// finished is never saved, and its lock goes with the process). Returns whether all
    /// ended in time.
    pub fn stop(&self, within: Duration) -> bool {
        self.stopping.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + within;
        let threads = std::mem::take(&mut *self.threads.lock());
        let mut all = true;
        for t in threads {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                all = false;
            }
        }
        all
    }

    fn site(&self, name: Option<&str>) -> Result<&Arc<SiteWorker>, (u16, serde_json::Value)> {
        match name {
            Some(n) => self.sites.iter().find(|w| w.site.name == n).ok_or_else(|| {
                (
                    404,
                    json!({"error": format!("no site {n:?} with [site.backup]")}),
                )
            }),
            None if self.sites.len() == 1 => Ok(&self.sites[0]),
            None => Err((
                400,
                json!({"error": "several sites have backups: say which with ?site=NAME"}),
            )),
        }
    }

    fn trigger(&self, name: Option<&str>) -> (u16, serde_json::Value) {
        let worker = match self.site(name) {
            Ok(w) => w,
            Err(e) => return e,
        };
        match worker.backup_tx.try_send(Kind::Manual) {
            Ok(()) => {
                worker.status.lock().queued = true;
                (
                    202,
                    json!({"queued": true, "site": worker.site.name,
                           "see": "GET /backups for the outcome"}),
                )
            }
            Err(TrySendError::Full(_)) => (
                409,
                json!({"queued": false, "site": worker.site.name,
                       "error": "a run is already queued for this site"}),
            ),
            Err(TrySendError::Disconnected(_)) => (
                500,
                json!({"error": "the backup thread of this site has stopped; see the log"}),
            ),
        }
    }

    /// Each site's last good snapshot and bunker lag (the monitor's backup probe reads it).
    pub fn freshness(&self) -> Vec<BackupFreshness> {
        self.sites
            .iter()
            .map(|w| {
                let s = w.status.lock().now();
                BackupFreshness {
                    site: w.site.name.clone(),
                    every_secs: s.every_secs,
                    last_ok_unix: s.last_ok_unix,
                    last_error: s.last_error.clone(),
                    // A bunker not reached since the start holds none of this run's
                    // snapshots as far as anyone knows: it is as far behind as the last one.
                    bunker_lag_secs: s.bunker.as_ref().map(|b| {
                        if b.last_ok_unix.is_none() && b.last_error.is_some() {
                            let age = s.last_ok_unix.map_or(0, |t| (now_unix() - t).max(0));
                            b.lag_secs.max(age)
                        } else {
                            b.lag_secs
                        }
                    }),
                    bunker_error: s.bunker.as_ref().and_then(|b| b.last_error.clone()),
                }
            })
            .collect()
    }

    fn statuses(&self) -> serde_json::Value {
        let mut sites = serde_json::Map::new();
        for w in &self.sites {
            let s = w.status.lock().now();
            sites.insert(
                w.site.name.clone(),
                serde_json::to_value(s).unwrap_or_default(),
            );
        }
        serde_json::Value::Object(sites)
    }
}

impl SiteStatus {
    /// The status as served, with ages computed now.
    fn now(&self) -> SiteStatus {
        let mut s = self.clone();
        if let Some(b) = s.bunker.as_mut() {
            b.lag_secs = b.oldest_missing_unix.map_or(0, |t| (now_unix() - t).max(0));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn worker(dir: &std::path::Path) -> Arc<SiteWorker> {
        let text = format!(
            "[[site]]\nname = \"shop\"\norigin = \"http://127.0.0.1:1\"\n[site.backup]\nroot = \"{d}\"\nstate_dir = \"{d}/state\"\n[site.backup.database]\nskip = true\n",
            d = dir.display()
        );
        let config = peakguard_config::parse(&text, "test").expect("config");
        let site = BackupSite::from_site(&config.sites[0]).expect("site");
        let (backup_tx, _rx) = sync_channel(1);
        Arc::new(SiteWorker {
            site,
            status: Mutex::new(SiteStatus::default()),
            backup_tx,
            bunker_tx: None,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    #[test]
    fn a_thread_that_panics_is_reported_and_started_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = worker(dir.path());
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let thread = supervised(w.clone(), "pg-test".into(), "backup", move |_| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a damaged repository");
            }
        })
        .expect("spawn");
        thread.join().expect("the supervisor itself never panics");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "started again after the panic"
        );
        let s = w.status.lock().clone();
        assert_eq!(s.panics, 1);
        assert!(
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("panicked (a damaged repository)")),
            "{:?}",
            s.last_error
        );
    }

    #[test]
    fn stop_ends_a_waiting_loop() {
        let (_tx, rx) = sync_channel::<Kind>(1);
        let stopping = AtomicBool::new(true);
        assert!(matches!(wait_for(&rx, None, &stopping), Woken::Stop));
        let stopping = AtomicBool::new(false);
        let soon = Instant::now() + Duration::from_millis(10);
        assert!(matches!(
            wait_for(&rx, Some(soon), &stopping),
            Woken::TimeUp
        ));
    }
}
