//! Retention: which snapshots of a site are kept (keep-last/hourly/daily/weekly/monthly),
//! the others forgotten, then unreferenced data pruned, under the writer lock (a value the
//! caller passes);
//! never run `restic prune` beside peakguard (rustic writes no repository locks).

use crate::error::Result;
use crate::repo::Repo;
use rustic_core::{KeepOptions, PruneOptions};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Retention {
    pub keep_last: u32,
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetentionOutcome {
    pub kept: usize,
    pub forgotten: Vec<String>,
    pub pruned: bool,
    /// Bytes of data no kept snapshot uses, found by this prune. Their packs are marked
    /// and deleted by a prune at least 23 hours later (rustic's two-phase prune: a restore
    /// or copy that started before never loses a pack under it).
    pub unused_bytes: u64,
    /// Packs marked by an earlier prune and deleted now.
    pub packs_deleted: u64,
    pub seconds: f64,
}

fn limit(n: u32) -> Option<i32> {
    (n > 0).then(|| i32::try_from(n).unwrap_or(i32::MAX))
}

impl Repo {
    /// Forgets the snapshots of `site` that no rule keeps; prunes when `prune`.
    pub fn apply_retention(
        &self,
        _lock: &crate::lock::WriterLock,
        site: &str,
        rules: &Retention,
        prune: bool,
    ) -> Result<RetentionOutcome> {
        let started = std::time::Instant::now();
        let mut keep = KeepOptions::default();
        keep.keep_last = limit(rules.keep_last);
        keep.keep_hourly = limit(rules.keep_hourly);
        keep.keep_daily = limit(rules.keep_daily);
        keep.keep_weekly = limit(rules.keep_weekly);
        keep.keep_monthly = limit(rules.keep_monthly);
        let snaps = self.snapshot_files(Some(site))?;
        let total = snaps.len();
        let mut forgotten = Vec::new();
        let mut ids = Vec::new();
        if total > 0
            && keep
                .keep_last
                .or(keep.keep_hourly)
                .or(keep.keep_daily)
                .or(keep.keep_weekly)
                .or(keep.keep_monthly)
                .is_some()
        {
            let decided = keep
                .apply(snaps, &rustic_core::jiff::Zoned::now())
                .map_err(|e| self.err(e))?;
            for d in decided {
                if !d.keep {
                    forgotten.push(crate::snapshot::SnapshotInfo::from_file(&d.snapshot).id);
                    ids.push(d.snapshot.id);
                }
            }
        }
        let repo = self.handle()?;
        if !ids.is_empty() {
            repo.delete_snapshots(&ids).map_err(|e| self.err(e))?;
        }
        let (mut unused_bytes, mut packs_deleted) = (0, 0);
        if prune {
            let opts = PruneOptions::default();
            let plan = repo.prune_plan(&opts).map_err(|e| self.err(e))?;
            let size = plan.stats.size_sum();
            unused_bytes = size.remove + size.repackrm;
            packs_deleted = plan.stats.packs_to_delete.remove;
            repo.prune(&opts, plan).map_err(|e| self.err(e))?;
        }
        Ok(RetentionOutcome {
            kept: total - forgotten.len(),
            forgotten,
            pruned: prune,
            unused_bytes,
            packs_deleted,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}
