//! Restoring a snapshot to a directory (`site/` + `database.sql`), and reading single files.
//!
//! The tree is written by [`write_tree`](crate::write_tree) (not rustic's restore, see
//! there); a file whose content cannot be read is named in the error.

use crate::error::{BackupError, Result};
use crate::repo::Repo;
use crate::snapshot::SnapshotInfo;
use crate::write_tree::write_tree;
use rustic_core::repofile::{Node, SnapshotFile};
use rustic_core::{IndexedFullStatus, Repository};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    pub snapshot: SnapshotInfo,
    pub to: PathBuf,
    pub seconds: f64,
}

pub(crate) type Indexed = Repository<IndexedFullStatus>;

impl Repo {
    pub(crate) fn indexed(&self) -> Result<Indexed> {
        self.handle()?.to_indexed().map_err(|e| self.err(e))
    }

    /// Restores snapshot `query` of `site` into `dest` (created; must be empty or absent).
    pub fn restore(&self, site: Option<&str>, query: &str, dest: &Path) -> Result<RestoreOutcome> {
        let started = Instant::now();
        let snap = self.find(site, query)?;
        let repo = self.indexed()?;
        if dest.exists()
            && std::fs::read_dir(dest)
                .map_err(|e| BackupError::io("reading", dest, e))?
                .next()
                .is_some()
        {
            return Err(BackupError::Other(format!(
                "{dest:?} is not empty; restore into a new or empty directory"
            )));
        }
        std::fs::create_dir_all(dest).map_err(|e| BackupError::io("creating", dest, e))?;
        restore_tree(self, &repo, &snap, "", dest)?;
        Ok(RestoreOutcome {
            snapshot: SnapshotInfo::from_file(&snap),
            to: dest.to_path_buf(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// Restores `path` of `snap` (a directory, "" = everything) into `dest` (existing, empty).
pub(crate) fn restore_tree(
    owner: &Repo,
    repo: &Indexed,
    snap: &SnapshotFile,
    path: &str,
    dest: &Path,
) -> Result<()> {
    let node = repo
        .node_from_snapshot_and_path(snap, path)
        .map_err(|e| owner.err(e))?;
    let damaged = write_tree(repo, &node, dest)?;
    match damaged.first() {
        None => Ok(()),
        Some((first, why)) => Err(BackupError::Damaged {
            path: if damaged.len() == 1 {
                first.clone()
            } else {
                format!("{first} and {} more file(s)", damaged.len() - 1)
            },
            message: format!(
                "{why}; the repository is damaged: run `peakguard check --read-data`, restore from the bunker (`--bunker`)"
            ),
        }),
    }
}

/// The size of a file node's content (the dump's node records no size).
pub(crate) fn content_size(repo: &Indexed, node: &Node) -> u64 {
    node.content.iter().flatten().fold(0u64, |sum, id| {
        sum + repo
            .get_index_entry(id)
            .map_or(0, |e| u64::from(e.data_length()))
    })
}
