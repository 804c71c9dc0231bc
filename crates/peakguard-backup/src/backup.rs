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
        let source = SiteSource::new(&plan.root, &plan.excludes, plan.database.clone())
            .map_err(|e| self.err(e))?;
        let report = source.report();
        let mut paths = vec![PathBuf::from(SITE_DIR)];
        if plan.database.is_some() {
            paths.insert(0, PathBuf::from(DUMP_PATH));
        }
        let indexed = self.handle()?.to_indexed_ids().map_err(|e| self.err(e))?;
        let saved = indexed
            .archive(&backup_opts, &source, snap, &paths)
            .map_err(|e| self.err(e))?;

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
        if let Some(db) = &plan.database {
            match &report.dump_result {
                Some(Ok(())) => {}
                Some(Err(why)) => {
                    return Err(remove(BackupError::DumpFailed {
                        command: db.dump_command.clone(),
                        message: why.clone(),
                    }));
                }
                None => {
                    return Err(remove(BackupError::DumpFailed {
                        command: db.dump_command.clone(),
                        message: "the dump was never read (reused from the parent?)".into(),
                    }));
                }
            }
        }
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
            dump_bytes: report.dump_bytes,
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
