//! The bunker copy: every snapshot of the main repository copied to an independent one.
//! Snapshots are matched by their peakguard id (restic ids differ between repositories, and
//! rustic's own copy matching compares only times). One snapshot at a time, oldest first:
//! an interrupted copy keeps what finished and the next run catches up.

use crate::error::Result;
use crate::repo::Repo;
use crate::snapshot::SnapshotInfo;
use serde::Serialize;
use std::collections::HashSet;

#[derive(Debug, Clone, Serialize)]
pub struct CopyOutcome {
    pub copied: Vec<String>,
    /// Main-repository snapshots still missing from the bunker after this run.
    pub missing: Vec<String>,
    pub seconds: f64,
}

/// How far the bunker is behind.
#[derive(Debug, Clone, Serialize)]
pub struct BunkerLag {
    pub missing: Vec<SnapshotInfo>,
    /// Age in seconds of the oldest snapshot not yet in the bunker (0 = up to date).
    pub lag_secs: i64,
    pub newest_in_bunker: Option<SnapshotInfo>,
}

impl Repo {
    /// The snapshots of `site` here that `bunker` does not have.
    pub fn missing_in(&self, bunker: &Repo, site: &str) -> Result<BunkerLag> {
        let there = bunker.snapshots(Some(site))?;
        let have: HashSet<&str> = there.iter().map(|s| s.id.as_str()).collect();
        let missing: Vec<SnapshotInfo> = self
            .snapshots(Some(site))?
            .into_iter()
            .filter(|s| !have.contains(s.id.as_str()))
            .collect();
        let now = rustic_core::jiff::Timestamp::now().as_second();
        Ok(BunkerLag {
            lag_secs: missing.first().map_or(0, |s| (now - s.unix_time).max(0)),
            missing,
            newest_in_bunker: there.last().cloned(),
        })
    }

    /// Copies every missing snapshot of `site` to `bunker`, under the bunker's writer lock.
    pub fn copy_to(
        &self,
        bunker: &Repo,
        _bunker_lock: &crate::lock::WriterLock,
        site: &str,
    ) -> Result<CopyOutcome> {
        let started = std::time::Instant::now();
        let lag = self.missing_in(bunker, site)?;
        let mut copied = Vec::new();
        if !lag.missing.is_empty() {
            let source = self.indexed()?;
            let all = self.snapshot_files(Some(site))?;
            for info in &lag.missing {
                let Some(snap) = all.iter().find(|s| s.id.to_string() == info.repo_id) else {
                    continue;
                };
                // Re-index the destination each time: it must know what the last copy added.
                let dest = bunker
                    .handle()?
                    .to_indexed_ids()
                    .map_err(|e| bunker.err(e))?;
                source.copy(&dest, [snap]).map_err(|e| bunker.err(e))?;
                copied.push(info.id.clone());
            }
        }
        let missing = lag
            .missing
            .iter()
            .map(|s| s.id.clone())
            .filter(|id| !copied.contains(id))
            .collect();
        Ok(CopyOutcome {
            copied,
            missing,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}
