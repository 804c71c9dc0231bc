//! Restoring a snapshot to a directory (`site/` + `database.sql`), and reading single files.
//!
//! rustic's restore unwraps read errors inside its worker threads (a damaged pack panics);
//! it runs under `catch_unwind`, and on any failure every file is re-read to name the
//! damaged ones.

use crate::error::{BackupError, Result};
use crate::repo::Repo;
use crate::snapshot::SnapshotInfo;
use rustic_core::repofile::{Node, NodeType, SnapshotFile};
use rustic_core::{IndexedFullStatus, LocalDestination, LsOptions, Repository, RestoreOptions};
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

/// Restores `path` of `snap` (a directory, "" = everything) into `dest`.
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
    let opts = RestoreOptions::default();
    let ls = repo
        .ls(&node, &LsOptions::default())
        .map_err(|e| owner.err(e))?;
    let dest_text = format!("{}/", dest.display());
    let destination = LocalDestination::new(&dest_text, true, false).map_err(|e| owner.err(e))?;
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<()> {
        let plan = repo
            .prepare_restore(&opts, ls.clone(), &destination, false)
            .map_err(|e| owner.err(e))?;
        repo.restore(plan, &opts, ls.clone(), &destination)
            .map_err(|e| owner.err(e))
    }));
    let failure = match run {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a read failed".into()),
    };
    let damaged = damaged_files(repo, &node)?;
    Err(match damaged.first() {
        Some((first, why)) => BackupError::Damaged {
            path: if damaged.len() == 1 {
                first.clone()
            } else {
                format!("{first} and {} more file(s)", damaged.len() - 1)
            },
            message: format!(
                "{why}; the repository is damaged: run `peakguard check --read-data`, restore from the bunker (`--bunker`)"
            ),
        },
        None => BackupError::Other(format!("restore into {dest:?} failed: {failure}")),
    })
}

/// Every file under `node` whose content cannot be read back, with the reason.
pub(crate) fn damaged_files(repo: &Indexed, node: &Node) -> Result<Vec<(String, String)>> {
    let mut damaged = Vec::new();
    let ls = repo
        .ls(node, &LsOptions::default())
        .map_err(|e| BackupError::Other(e.display_log()))?;
    for item in ls {
        let (path, node) = item.map_err(|e| BackupError::Other(e.display_log()))?;
        if node.node_type != NodeType::File {
            continue;
        }
        if let Err(e) = repo.dump(&node, &mut std::io::sink()) {
            damaged.push((format!("/{}", path.display()), e.display_log()));
        }
    }
    Ok(damaged)
}

/// The size of a file node's content (the dump's node records no size).
pub(crate) fn content_size(repo: &Indexed, node: &Node) -> u64 {
    node.content.iter().flatten().fold(0u64, |sum, id| {
        sum + repo
            .get_index_entry(id)
            .map_or(0, |e| u64::from(e.data_length()))
    })
}
