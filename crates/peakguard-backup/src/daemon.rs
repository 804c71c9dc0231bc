//! `serve`'s backup daemon: for every site with `[site.backup]`, snapshots on a schedule
//! (`every`) and on demand (admin API `POST /backup?site=NAME`), the bunker copy after each
//! snapshot, and retention + prune on `retention.prune_every`. Its status and metrics are
//! what the admin API serves (`GET /backups`, `/status`, `/metrics`; the binary plugs
//! [`BackupDaemon::handle`], [`BackupDaemon::status`] and [`BackupDaemon::metrics`] into
//! the edge's admin API — this crate knows nothing of the edge).
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

/// What a waiting loop got.
enum Woken<T> {
    Asked(T),
    TimeUp,
    Stop,
}

/// Waits for a request on `rx` until `until` (forever if `None`), looking at `stopping` every
/// second.
fn wait_for<T>(rx: &Receiver<T>, until: Option<Instant>, stopping: &AtomicBool) -> Woken<T> {
    loop {
        if stopping.load(Ordering::Relaxed) {
            return Woken::Stop;
        }
        let slice = until.map_or(Duration::from_secs(1), |u| {
            u.saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1))
        });
        match rx.recv_timeout(slice) {
            Ok(v) => return Woken::Asked(v),
            Err(RecvTimeoutError::Disconnected) => return Woken::Stop,
            Err(RecvTimeoutError::Timeout) => {
                if until.is_some_and(|u| Instant::now() >= u) {
                    return Woken::TimeUp;
                }
            }
        }
    }
}

/// Runs `body` on its own thread, again after a panic (reported in the site's status and
/// the log), until it returns.
fn supervised(
    worker: Arc<SiteWorker>,
    name: String,
    what: &'static str,
    body: impl Fn(&SiteWorker) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(move || {
        loop {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&worker)));
            let Err(panic) = run else { return };
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            log::error!(
                "site {:?}: the {what} thread panicked ({message}); starting it again",
                worker.site.name
            );
            {
                let mut s = worker.status.lock();
                s.panics += 1;
                s.running = false;
                s.last_error = Some(format!("the {what} thread panicked ({message}); restarted"));
                s.last_error_unix = Some(now_unix());
            }
            if worker.stopping.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

fn hidden() -> Hidden {
    Hidden
}

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

impl SiteWorker {
    fn backup_loop(&self, rx: &Receiver<Kind>, every: Duration, prune_every: Duration) {
        let mut repo: Option<Repo> = None;
        // The first scheduled run right away: a restarted daemon knows where it stands.
        let mut next = Instant::now();
        let mut next_prune = Instant::now() + prune_every;
        loop {
            self.status.lock().next_run_unix = (!every.is_zero()).then(|| {
                now_unix() + next.saturating_duration_since(Instant::now()).as_secs() as i64
            });
            let until = (!every.is_zero()).then_some(next);
            let kind = match wait_for(rx, until, &self.stopping) {
                Woken::Asked(k) => k,
                Woken::TimeUp => Kind::Scheduled,
                Woken::Stop => return,
            };
            self.run_backup(&mut repo, kind);
            if !every.is_zero() {
                while next <= Instant::now() {
                    next += every;
                }
            }
            if !prune_every.is_zero() && Instant::now() >= next_prune {
                self.run_prune(&mut repo);
                next_prune = Instant::now() + prune_every;
            }
            if let Some(tx) = &self.bunker_tx {
                let _ = tx.try_send(());
            }
        }
    }

    fn open_main(&self, repo: &mut Option<Repo>) -> Result<Repo, String> {
        if let Some(r) = repo {
            return Ok(r.clone());
        }
        let r = Repo::open(&self.site.main, true, hidden()).map_err(|e| e.to_string())?;
        *repo = Some(r.clone());
        Ok(r)
    }

    fn run_backup(&self, repo: &mut Option<Repo>, kind: Kind) {
        {
            let mut s = self.status.lock();
            s.running = true;
            s.queued = false;
        }
        let started = Instant::now();
        let result = (|| -> Result<Option<BackupOutcome>, String> {
            let lock = match WriterLock::acquire(&self.site.state_dir, LOCK_WAIT) {
                Ok(l) => l,
                Err(BackupError::Locked { .. }) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            let r = self.open_main(repo)?;
            let out = r.backup(&self.site.plan(kind)).map_err(|e| e.to_string());
            drop(lock);
            out.map(Some)
        })();
        let mut s = self.status.lock();
        s.running = false;
        match result {
            Ok(Some(out)) => {
                log::info!("{}", self.site.describe(&out));
                s.runs_ok += 1;
                s.last_snapshot = Some(out.snapshot.id.clone());
                s.last_ok_unix = Some(now_unix());
                s.last_duration_secs = started.elapsed().as_secs_f64();
                s.last_reused = Some(out.reused);
            }
            Ok(None) => {
                log::warn!(
                    "site {:?}: backup skipped, another peakguard command held the writer lock for {}s",
                    self.site.name,
                    LOCK_WAIT.as_secs()
                );
                s.runs_skipped += 1;
            }
            Err(e) => {
                log::error!("site {:?}: backup failed: {e}", self.site.name);
                s.runs_failed += 1;
                s.last_error = Some(e);
                s.last_error_unix = Some(now_unix());
                // Reopened at the next run (the repository may have been moved or fixed).
                *repo = None;
            }
        }
    }

    fn run_prune(&self, repo: &mut Option<Repo>) {
        let result = (|| -> Result<(), String> {
            let _lock =
                WriterLock::acquire(&self.site.state_dir, LOCK_WAIT).map_err(|e| e.to_string())?;
            let r = self.open_main(repo)?;
            let out = r
                .apply_retention(&self.site.name, &self.site.retention(false), true)
                .map_err(|e| e.to_string())?;
            log::info!(
                "site {:?}: retention kept {}, forgot {}, pruned in {:.1}s",
                self.site.name,
                out.kept,
                out.forgotten.len(),
                out.seconds
            );
            Ok(())
        })();
        let mut s = self.status.lock();
        match result {
            Ok(()) => {
                s.prunes_ok += 1;
                s.last_prune_unix = Some(now_unix());
            }
            Err(e) => {
                log::error!("site {:?}: prune failed: {e}", self.site.name);
                s.prunes_failed += 1;
                s.last_error = Some(format!("prune: {e}"));
                s.last_error_unix = Some(now_unix());
            }
        }
    }

    fn bunker_loop(&self, rx: &Receiver<()>, every: Duration, prune_every: Duration) {
        let Some(spec) = self.site.bunker.clone() else {
            return;
        };
        let bunker_lock_dir = self.site.state_dir.join("bunker");
        let mut main: Option<Repo> = None;
        let mut bunker: Option<Repo> = None;
        let mut next_prune = Instant::now() + prune_every;
        let idle = if every.is_zero() {
            Duration::from_secs(600)
        } else {
            every
        };
        let mut wait = idle;
        loop {
            if let Woken::Stop = wait_for(rx, Some(Instant::now() + wait), &self.stopping) {
                return;
            }
            let result = (|| -> Result<(usize, usize), String> {
                let _lock =
                    WriterLock::acquire(&bunker_lock_dir, LOCK_WAIT).map_err(|e| e.to_string())?;
                let m = self.open_main(&mut main)?;
                let b = match &bunker {
                    Some(b) => b.clone(),
                    None => {
                        let b = Repo::open(&spec, true, hidden()).map_err(|e| e.to_string())?;
                        bunker = Some(b.clone());
                        b
                    }
                };
                self.note_lag(&m, &b, true)?;
                let copy = m.copy_to(&b, &self.site.name);
                let lag = self.note_lag(&m, &b, false);
                let copied = copy.map_err(|e| e.to_string())?.copied.len();
                let missing = lag?;
                if !prune_every.is_zero() && Instant::now() >= next_prune {
                    b.apply_retention(&self.site.name, &self.site.retention(true), true)
                        .map_err(|e| format!("prune: {e}"))?;
                    next_prune = Instant::now() + prune_every;
                    if let Some(bs) = self.status.lock().bunker.as_mut() {
                        bs.prunes_ok += 1;
                    }
                }
                Ok((copied, missing))
            })();
            let mut s = self.status.lock();
            let Some(bs) = s.bunker.as_mut() else {
                return;
            };
            bs.copying = false;
            match result {
                Ok((copied, missing)) => {
                    bs.copies_ok += 1;
                    bs.snapshots_copied += copied as u64;
                    bs.last_ok_unix = Some(now_unix());
                    bs.last_error = None;
                    wait = if missing > 0 { BUNKER_RETRY } else { idle };
                    if copied > 0 {
                        log::info!(
                            "site {:?}: {copied} snapshot(s) copied to the bunker",
                            self.site.name
                        );
                    }
                }
                Err(e) => {
                    log::error!(
                        "site {:?}: bunker copy to {} failed: {e} (retrying in {}s)",
                        self.site.name,
                        bs.location,
                        BUNKER_RETRY.as_secs()
                    );
                    if e.starts_with("prune:") {
                        bs.prunes_failed += 1;
                    } else {
                        bs.copies_failed += 1;
                    }
                    bs.last_error = Some(e);
                    // Reopened next time: the server may have restarted.
                    bunker = None;
                    wait = BUNKER_RETRY;
                }
            }
        }
    }
}

impl SiteWorker {
    /// Records how far the bunker is behind; returns the number of missing snapshots.
    fn note_lag(&self, main: &Repo, bunker: &Repo, copying: bool) -> Result<usize, String> {
        let lag = main
            .missing_in(bunker, &self.site.name)
            .map_err(|e| e.to_string())?;
        let mut s = self.status.lock();
        if let Some(bs) = s.bunker.as_mut() {
            bs.missing = lag.missing.len();
            bs.oldest_missing_unix = lag.missing.first().map(|m| m.unix_time);
            bs.copying = copying;
        }
        Ok(lag.missing.len())
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

/// One sample: its labels and value.
type Sample = (Vec<(&'static str, String)>, Value);

/// Prometheus text for one gauge or counter family (nothing when it has no sample).
fn family(out: &mut String, name: &str, kind: MetricKind, help: &str, samples: &[Sample]) {
    if samples.is_empty() {
        return;
    }
    let mut e = Exposition::new(out);
    let mut f = e.family(name, kind, help);
    for (labels, value) in samples {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.sample(&labels, *value);
    }
}

/// The daemon in the admin API: `GET /backups`, `POST /backup?site=NAME`, its metrics and
/// status.
impl AdminExtension for BackupDaemon {
    fn name(&self) -> &str {
        "backups"
    }

    /// Answers the daemon's admin endpoints (`GET /backups`, `POST /backup?site=NAME`).
    fn handle(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
    ) -> Option<(u16, serde_json::Value)> {
        match (method, path) {
            ("GET", "/backups") => Some((200, self.statuses())),
            ("POST", "/backup") => Some(self.trigger(query.get("site").map(String::as_str))),
            _ => None,
        }
    }

    /// Every site's status, for `/status`.
    fn status(&self) -> serde_json::Value {
        self.statuses()
    }

    /// Prometheus text for `/metrics`.
    fn metrics(&self) -> String {
        let now = now_unix();
        let mut runs: Vec<Sample> = Vec::new();
        let mut last_ok: Vec<Sample> = Vec::new();
        let mut age: Vec<Sample> = Vec::new();
        let mut duration: Vec<Sample> = Vec::new();
        let mut running: Vec<Sample> = Vec::new();
        let mut prunes: Vec<Sample> = Vec::new();
        let mut copies: Vec<Sample> = Vec::new();
        let mut missing: Vec<Sample> = Vec::new();
        let mut lag: Vec<Sample> = Vec::new();
        let mut bunker_ok: Vec<Sample> = Vec::new();
        for w in &self.sites {
            let s = w.status.lock().now();
            let site = || vec![("site", w.site.name.clone())];
            let with = |more: &[(&'static str, &str)]| {
                let mut labels = site();
                labels.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
                labels
            };
            for (result, n) in [
                ("ok", s.runs_ok),
                ("failed", s.runs_failed),
                ("skipped", s.runs_skipped),
            ] {
                runs.push((with(&[("result", result)]), n.into()));
            }
            if let Some(t) = s.last_ok_unix {
                last_ok.push((site(), t.into()));
                age.push((site(), (now - t).max(0).into()));
                duration.push((site(), s.last_duration_secs.into()));
            }
            running.push((site(), s.running.into()));
            let mut prune_counts = vec![
                ("main", "ok", s.prunes_ok),
                ("main", "failed", s.prunes_failed),
            ];
            if let Some(b) = &s.bunker {
                prune_counts.push(("bunker", "ok", b.prunes_ok));
                prune_counts.push(("bunker", "failed", b.prunes_failed));
                for (result, n) in [("ok", b.copies_ok), ("failed", b.copies_failed)] {
                    copies.push((with(&[("result", result)]), n.into()));
                }
                missing.push((site(), b.missing.into()));
                lag.push((site(), b.lag_secs.into()));
                if let Some(t) = b.last_ok_unix {
                    bunker_ok.push((site(), t.into()));
                }
            }
            for (repo, result, n) in prune_counts {
                prunes.push((with(&[("repository", repo), ("result", result)]), n.into()));
            }
        }
        let mut out = String::new();
        family(
            &mut out,
            "peakguard_backup_runs_total",
            MetricKind::Counter,
            "Backup runs by result (skipped: another peakguard command held the writer lock).",
            &runs,
        );
        family(
            &mut out,
            "peakguard_backup_last_success_timestamp_seconds",
            MetricKind::Gauge,
            "When the last successful snapshot finished (Unix time).",
            &last_ok,
        );
        family(
            &mut out,
            "peakguard_backup_last_snapshot_age_seconds",
            MetricKind::Gauge,
            "Seconds since the last successful snapshot.",
            &age,
        );
        family(
            &mut out,
            "peakguard_backup_last_duration_seconds",
            MetricKind::Gauge,
            "How long the last successful snapshot took.",
            &duration,
        );
        family(
            &mut out,
            "peakguard_backup_running",
            MetricKind::Gauge,
            "1 while a snapshot is being taken.",
            &running,
        );
        family(
            &mut out,
            "peakguard_backup_prunes_total",
            MetricKind::Counter,
            "Retention + prune runs by repository and result.",
            &prunes,
        );
        family(
            &mut out,
            "peakguard_bunker_copies_total",
            MetricKind::Counter,
            "Bunker copy runs by result.",
            &copies,
        );
        family(
            &mut out,
            "peakguard_bunker_missing_snapshots",
            MetricKind::Gauge,
            "Snapshots of the main repository not yet in the bunker.",
            &missing,
        );
        family(
            &mut out,
            "peakguard_bunker_lag_seconds",
            MetricKind::Gauge,
            "Age of the oldest snapshot not yet in the bunker (0 = up to date).",
            &lag,
        );
        family(
            &mut out,
            "peakguard_bunker_last_success_timestamp_seconds",
            MetricKind::Gauge,
            "When the last successful bunker copy finished (Unix time).",
            &bunker_ok,
        );
        out
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
