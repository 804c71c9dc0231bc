//! A site's two loops: snapshots and main-repository prunes on their schedule and on
//! demand; bunker copies after each snapshot and the bunker's prunes.

use super::*;

impl SiteWorker {
    pub(super) fn backup_loop(&self, rx: &Receiver<Kind>, every: Duration, prune_every: Duration) {
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

    pub(super) fn open_main(&self, repo: &mut Option<Repo>) -> Result<Repo, String> {
        if let Some(r) = repo {
            return Ok(r.clone());
        }
        let r = Repo::open(&self.site.main, true, hidden()).map_err(|e| e.to_string())?;
        *repo = Some(r.clone());
        Ok(r)
    }

    pub(super) fn run_backup(&self, repo: &mut Option<Repo>, kind: Kind) {
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
            let out = r
                .backup(&lock, &self.site.plan(kind))
                .map_err(|e| e.to_string());
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

    pub(super) fn run_prune(&self, repo: &mut Option<Repo>) {
        let result = (|| -> Result<(), String> {
            let lock =
                WriterLock::acquire(&self.site.state_dir, LOCK_WAIT).map_err(|e| e.to_string())?;
            let r = self.open_main(repo)?;
            let out = r
                .apply_retention(&lock, &self.site.name, &self.site.retention(false), true)
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

    pub(super) fn bunker_loop(&self, rx: &Receiver<()>, every: Duration, prune_every: Duration) {
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
                let lock =
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
                let copy = m.copy_to(&b, &lock, &self.site.name);
                let lag = self.note_lag(&m, &b, false);
                let copied = copy.map_err(|e| e.to_string())?.copied.len();
                let missing = lag?;
                if !prune_every.is_zero() && Instant::now() >= next_prune {
                    b.apply_retention(&lock, &self.site.name, &self.site.retention(true), true)
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
    pub(super) fn note_lag(
        &self,
        main: &Repo,
        bunker: &Repo,
        copying: bool,
    ) -> Result<usize, String> {
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
