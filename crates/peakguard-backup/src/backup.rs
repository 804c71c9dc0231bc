//! Taking one snapshot: the site's files and its database dump, tagged with a peakguard id.
//! A failed dump or unreadable files remove the snapshot again; nothing half-made remains
//! listed.

use crate::database::Database;
use crate::error::{BackupError, Result};
use crate::repo::Repo;
use crate::snapshot::{self, Kind, SnapshotInfo};
use crate::source::{DUMP_PATH, SITE_DIR, SiteSource};
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

struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupOutcome {
    pub snapshot: SnapshotInfo,
    /// Files that could not be read (only when `allow_unreadable`).
    pub unreadable: Vec<String>,
    pub dump_bytes: u64,
    /// The previous snapshot whose unchanged files were reused.
    pub parent: Option<String>,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub seconds: f64,
}

impl Repo {
    /// Takes a snapshot. The caller holds the site's writer lock.
    pub fn backup(&self, plan: &BackupPlan) -> Result<BackupOutcome> {
        let started = Instant::now();
        if !plan.root.is_dir() {
            return Err(BackupError::Other(format!(
                "site root {:?} is not a directory; check `root` in [site.backup]",
                plan.root
            )));
        }
        let id = snapshot::new_id();
        let db_bytes = match &plan.database {
            Some(db) => Some(db.size_bytes()?),
            None => None,
        };
        log::info!("database size read after {:?}", started.elapsed());
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

        let parent = self
            .snapshot_files(Some(&plan.site))?
            .into_iter()
            .next_back();
        let mut parent_opts = ParentOptions::default();
        parent_opts.parents = parent.iter().map(|p| p.id.to_string()).collect();
        parent_opts.force = parent.is_none();
        let mut backup_opts = BackupOptions::default();
        backup_opts.parent_opts = parent_opts;
        // The size scan only feeds the progress bar's ETA; skip it when nobody watches.
        backup_opts.no_scan = !self.progress.visible;
        // The dump first: if it fails, no snapshot is written at all.
        let dump_file = plan.work_dir.join("database.sql.dump");
        let dump = match &plan.database {
            Some(db) => {
                std::fs::create_dir_all(&plan.work_dir)
                    .map_err(|e| BackupError::io("creating", &plan.work_dir, e))?;
                let size = db.dump_to(&dump_file)?;
                Some((dump_file.clone(), size))
            }
            None => None,
        };
        let dump_bytes = dump.as_ref().map_or(0, |d| d.1);
        let _remove_dump = RemoveOnDrop(dump.as_ref().map(|d| d.0.clone()));
        let source = SiteSource::new(&plan.root, &plan.excludes, dump).map_err(|e| self.err(e))?;
        let report = source.report();
        let mut paths = vec![PathBuf::from(SITE_DIR)];
        if plan.database.is_some() {
            paths.insert(0, PathBuf::from(DUMP_PATH));
        }
        log::info!("parent chosen after {:?}", started.elapsed());
        let indexed = self.handle()?.to_indexed_ids().map_err(|e| self.err(e))?;
        log::info!("index read after {:?}", started.elapsed());
        let saved = indexed
            .archive(&backup_opts, &source, snap, &paths)
            .map_err(|e| self.err(e))?;

        log::info!("archived after {:?}", started.elapsed());
        let report = report.lock();
        let remove = |why: BackupError| -> BackupError {
            if let Err(e) = indexed.delete_snapshots(&[saved.id]) {
                log::error!(
                    "could not remove the failed snapshot {}: {}",
                    saved.id,
                    e.display_log()
                );
            }
            why
        };
        if !report.unreadable.is_empty() && !plan.allow_unreadable {
            return Err(remove(BackupError::Unreadable {
                root: plan.root.clone(),
                count: report.unreadable.len(),
                first: report.unreadable[0].clone(),
            }));
        }
        let summary = saved.summary.clone().unwrap_or_default();
        Ok(BackupOutcome {
            snapshot: SnapshotInfo::from_file(&saved),
            unreadable: report.unreadable.clone(),
            dump_bytes,
            parent: parent.map(|p| SnapshotInfo::from_file(&p).id),
            files_new: summary.files_new,
            files_changed: summary.files_changed,
            files_unmodified: summary.files_unmodified,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
