//! Taking one snapshot: the site's files and its database dump, tagged with a peakguard id.
//! A failed dump or unreadable files remove the snapshot again; nothing half-made remains
//! listed.

use crate::database::Database;
use crate::error::{BackupError, Result};
use crate::lock::WriterLock;
use crate::repo::Repo;
use crate::snapshot::{self, Kind, SnapshotInfo};
use crate::source::{DUMP_PATH, DumpEntry, SITE_DIR, SiteSource};
use crate::unchanged::{LastSnapshot, files_digest};
use rustic_core::repofile::SnapshotFile;
use rustic_core::{BackupOptions, ParentOptions, SnapshotOptions};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// What to back up.
#[derive(Debug, Clone)]
pub struct BackupPlan {
    pub site: String,
    pub root: PathBuf,
    pub excludes: Vec<String>,
    /// `None` = files only.
    pub database: Option<Database>,
    pub allow_unreadable: bool,
    pub kind: Kind,
    /// Where the dump file is written while it is archived (the state directory).
    pub work_dir: PathBuf,
}

/// How much of the previous snapshot a run could reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reuse {
    /// Files and database read (unchanged files still deduplicated against the parent).
    Nothing,
    /// The files were unchanged: only the database was dumped and stored.
    Files,
    /// The database was unchanged: its previous dump kept, the files read.
    Database,
    /// Nothing changed: the new snapshot points at the previous snapshot's tree.
    Everything,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupOutcome {
    pub snapshot: SnapshotInfo,
    /// Files that could not be read (only when `allow_unreadable`).
    pub unreadable: Vec<String>,
    pub dump_bytes: u64,
    /// The previous snapshot whose unchanged files were reused.
    pub parent: Option<String>,
    pub reused: Reuse,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub seconds: f64,
}

/// The tag of the short-lived database-only snapshot a [`Reuse::Files`] run merges from.
const PARTIAL_TAG: &str = "peakguard-partial";

impl Repo {
    /// Takes a snapshot, under the repository's writer lock (held by the caller: the value
    /// proves it).
    ///
    /// When the files and the database are as the latest snapshot recorded them (see
    /// [`crate::unchanged`]), the run reuses that snapshot instead of reading everything.
    pub fn backup(&self, _lock: &WriterLock, plan: &BackupPlan) -> Result<BackupOutcome> {
        let started = Instant::now();
        if !plan.root.is_dir() {
            return Err(BackupError::Other(format!(
                "site root {:?} is not a directory; check `root` in [site.backup]",
                plan.root
            )));
        }
        let id = snapshot::new_id();
        let parent = self
            .snapshot_files(Some(&plan.site))?
            .into_iter()
            .next_back();
        let parent_id = parent.as_ref().map(|p| SnapshotInfo::from_file(p).id);
        let recorded =
            LastSnapshot::load(&plan.work_dir).filter(|r| Some(&r.snapshot) == parent_id.as_ref());
        // Fingerprints first, data second: a change racing with this run shows next time.
        let (db_bytes, db_print) = match &plan.database {
            Some(db) => {
                let (size, print) = db.fingerprint()?;
                (Some(size), print)
            }
            None => (None, None),
        };
        let files = files_digest(
            &SiteSource::new(&plan.root, &plan.excludes, None).map_err(|e| self.err(e))?,
        );
        log::info!("fingerprints read after {:?}", started.elapsed());
        let files_same = recorded.as_ref().is_some_and(|r| r.files == files);
        let database_same = plan.database.is_none()
            || (db_print.is_some() && recorded.as_ref().is_some_and(|r| r.database == db_print));

        let wp = snapshot::wordpress_version(&plan.root);
        let mut opts = SnapshotOptions::default();
        opts.label = Some(plan.site.clone());
        opts.host = Some(hostname());
        opts.command = Some(format!("peakguard backup ({})", plan.kind.as_str()));
        let mut snap = opts.to_snapshot().map_err(|e| self.err(e))?;
        let tags = snapshot::tags_for(&id, plan.kind, wp.as_deref(), db_bytes);
        snap.add_tags(vec![tags.join(",").parse().map_err(|e| {
            BackupError::Other(format!("snapshot tags {tags:?}: {e}"))
        })?]);

        let mut outcome = match (&parent, files_same, database_same) {
            (Some(p), true, true) => self.reuse_everything(plan, p, snap, &id)?,
            (Some(p), true, false) => self.reuse_files(plan, p, snap)?,
            (Some(_), false, true) => self.read_everything(plan, parent.as_ref(), snap, true)?,
            _ => self.read_everything(plan, parent.as_ref(), snap, false)?,
        };
        outcome.seconds = started.elapsed().as_secs_f64();
        let record = LastSnapshot {
            snapshot: outcome.snapshot.id.clone(),
            files,
            database: db_print,
        };
        if !outcome.unreadable.is_empty() {
            // Files skipped (allowed) are not in the snapshot: the next run must read again.
            LastSnapshot::forget(&plan.work_dir);
        } else if let Err(e) = record.store(&plan.work_dir) {
            log::warn!(
                "could not record what snapshot {} holds in {}: {e} (the next run reads everything)",
                record.snapshot,
                plan.work_dir.display()
            );
        }
        log::info!(
            "snapshot {} ({:?} reused) in {:?}",
            outcome.snapshot.id,
            outcome.reused,
            started.elapsed()
        );
        Ok(outcome)
    }

    /// Nothing changed: a new snapshot (its own id, time and tags) of the parent's tree.
    fn reuse_everything(
        &self,
        plan: &BackupPlan,
        parent: &SnapshotFile,
        mut snap: SnapshotFile,
        id: &str,
    ) -> Result<BackupOutcome> {
        snap.tree = parent.tree;
        snap.paths = parent.paths.clone();
        snap.parent = Some(parent.id);
        let mut summary = parent.summary.clone().unwrap_or_default();
        summary.files_unmodified = summary.total_files_processed;
        summary.files_new = 0;
        summary.files_changed = 0;
        summary.dirs_unmodified = summary.total_dirs_processed;
        summary.dirs_new = 0;
        summary.dirs_changed = 0;
        summary.data_blobs = 0;
        summary.tree_blobs = 0;
        summary.data_added = 0;
        summary.data_added_packed = 0;
        summary.data_added_files = 0;
        summary.data_added_files_packed = 0;
        summary.data_added_trees = 0;
        summary.data_added_trees_packed = 0;
        summary.command = snap
            .summary
            .as_ref()
            .map(|s| s.command.clone())
            .unwrap_or_default();
        summary.backup_start = snap.time.clone();
        summary.backup_end = rustic_core::jiff::Zoned::now();
        summary.backup_duration = 0.0;
        summary.total_duration = 0.0;
        snap.summary = Some(summary);
        self.handle()?
            .save_snapshots(vec![snap])
            .map_err(|e| self.err(e))?;
        let saved = self.find(Some(&plan.site), id)?;
        Ok(self.outcome(&saved, Some(parent), Reuse::Everything, 0, Vec::new()))
    }

    /// Only the database changed: its dump is stored alone, then merged with the parent's
    /// tree (whose `/site` is reused as it is).
    fn reuse_files(
        &self,
        plan: &BackupPlan,
        parent: &SnapshotFile,
        mut snap: SnapshotFile,
    ) -> Result<BackupOutcome> {
        let dump = Dump::take(plan)?;
        let source = SiteSource::dump_only((dump.file.clone(), dump.bytes));
        let mut partial = SnapshotOptions::default();
        partial.label = Some(plan.site.clone());
        partial.host = Some(hostname());
        let mut partial = partial.to_snapshot().map_err(|e| self.err(e))?;
        partial.add_tags(vec![PARTIAL_TAG.parse().map_err(|e| {
            BackupError::Other(format!("snapshot tag {PARTIAL_TAG}: {e}"))
        })?]);
        let mut opts = BackupOptions::default();
        opts.parent_opts.force = true;
        opts.no_scan = !self.progress.visible();
        let indexed = self.handle()?.to_indexed_ids().map_err(|e| self.err(e))?;
        let partial = indexed
            .archive(&opts, &source, partial, &[PathBuf::from(DUMP_PATH)])
            .map_err(|e| self.err(e))?;
        snap.parent = Some(parent.id);
        // Indexed again: the merge reads the tree the archive just wrote.
        let indexed = self.handle()?.to_indexed_ids().map_err(|e| self.err(e))?;
        // The newer node wins: the fresh dump over the parent's.
        let merged = indexed.merge_snapshots(
            &[partial.clone(), parent.clone()],
            &|a, b| a.meta.mtime.cmp(&b.meta.mtime),
            snap,
        );
        if let Err(e) = indexed.delete_snapshots(&[partial.id]) {
            log::warn!(
                "could not remove the helper snapshot {} ({PARTIAL_TAG}): {}",
                partial.id,
                e.display_log()
            );
        }
        let merged = merged.map_err(|e| self.err(e))?;
        Ok(self.outcome(&merged, Some(parent), Reuse::Files, dump.bytes, Vec::new()))
    }

    /// Files read (unchanged files deduplicated against the parent); the database dumped,
    /// unless `database_unchanged` and the parent has a dump to keep.
    fn read_everything(
        &self,
        plan: &BackupPlan,
        parent: Option<&SnapshotFile>,
        snap: SnapshotFile,
        database_unchanged: bool,
    ) -> Result<BackupOutcome> {
        let mut parent_opts = ParentOptions::default();
        parent_opts.parents = parent.iter().map(|p| p.id.to_string()).collect();
        parent_opts.force = parent.is_none();
        let mut backup_opts = BackupOptions::default();
        backup_opts.parent_opts = parent_opts;
        // The size scan only feeds the progress bar's ETA; skip it when nobody watches.
        backup_opts.no_scan = !self.progress.visible();
        let indexed = self.handle()?.to_indexed_ids().map_err(|e| self.err(e))?;
        let kept_dump = match (parent, database_unchanged && plan.database.is_some()) {
            (Some(p), true) => indexed
                .node_from_snapshot_and_path(p, DUMP_PATH)
                .ok()
                .map(|node| node.meta),
            _ => None,
        };
        // The dump first: if it fails, no snapshot is written at all.
        let dump = match (&plan.database, &kept_dump) {
            (Some(_), None) => Some(Dump::take(plan)?),
            _ => None,
        };
        let entry = match (&dump, &kept_dump) {
            (Some(d), _) => Some(DumpEntry::File(d.file.clone(), d.bytes)),
            (None, Some(meta)) => Some(DumpEntry::Unchanged(meta.clone())),
            (None, None) => None,
        };
        let source = SiteSource::new(&plan.root, &plan.excludes, entry).map_err(|e| self.err(e))?;
        let report = source.report();
        let mut paths = vec![PathBuf::from(SITE_DIR)];
        if plan.database.is_some() {
            paths.insert(0, PathBuf::from(DUMP_PATH));
        }
        let saved = indexed
            .archive(&backup_opts, &source, snap.clone(), &paths)
            .map_err(|e| self.err(e))?;
        let report = report.lock();
        let unreadable = !report.unreadable.is_empty() && !plan.allow_unreadable;
        if unreadable || report.dump_not_matched {
            if let Err(e) = indexed.delete_snapshots(&[saved.id]) {
                log::error!(
                    "could not remove the failed snapshot {}: {}",
                    saved.id,
                    e.display_log()
                );
            }
            LastSnapshot::forget(&plan.work_dir);
        }
        if unreadable {
            return Err(BackupError::Unreadable {
                root: plan.root.clone(),
                count: report.unreadable.len(),
                first: report.unreadable[0].clone(),
            });
        }
        if report.dump_not_matched {
            log::warn!("the archiver did not match the unchanged dump with the parent's; dumping");
            drop(report);
            return self.read_everything(plan, parent, snap, false);
        }
        Ok(self.outcome(
            &saved,
            parent,
            if kept_dump.is_some() {
                Reuse::Database
            } else {
                Reuse::Nothing
            },
            dump.map_or(0, |d| d.bytes),
            report.unreadable.clone(),
        ))
    }

    fn outcome(
        &self,
        saved: &SnapshotFile,
        parent: Option<&SnapshotFile>,
        reused: Reuse,
        dump_bytes: u64,
        unreadable: Vec<String>,
    ) -> BackupOutcome {
        let summary = saved.summary.clone().unwrap_or_default();
        BackupOutcome {
            snapshot: SnapshotInfo::from_file(saved),
            unreadable,
            dump_bytes,
            parent: parent.map(|p| SnapshotInfo::from_file(p).id),
            reused,
            files_new: summary.files_new,
            files_changed: summary.files_changed,
            files_unmodified: summary.files_unmodified,
            seconds: 0.0,
        }
    }
}

/// The database dump in the state directory while it is archived; removed when dropped.
struct Dump {
    file: PathBuf,
    bytes: u64,
}

impl Dump {
    /// Dumps the plan's database; a failed dump is an error (and leaves no file).
    fn take(plan: &BackupPlan) -> Result<Dump> {
        let db = plan.database.as_ref().ok_or_else(|| {
            BackupError::Other("internal: a dump was asked for a plan without database".into())
        })?;
        std::fs::create_dir_all(&plan.work_dir)
            .map_err(|e| BackupError::io("creating", &plan.work_dir, e))?;
        let file = plan.work_dir.join("database.sql.dump");
        let bytes = db.dump_to(&file)?;
        Ok(Dump { file, bytes })
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
