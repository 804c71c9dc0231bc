//! `diff A B`: files added, changed and removed between two snapshots (by content, not by
//! timestamps), and whether the database changed. Also the first look after a hack.

use crate::error::{BackupError, Result};
use crate::repo::Repo;
use crate::restore::Indexed;
use crate::snapshot::SnapshotInfo;
use crate::source::{DUMP_PATH, SITE_DIR};
use rustic_core::LsOptions;
use rustic_core::repofile::{NodeType, SnapshotFile};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct DiffOutcome {
    pub from: SnapshotInfo,
    pub to: SnapshotInfo,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub database_changed: bool,
}

/// What identifies a path's content: its type, content ids (files), target (links), mode.
type Fingerprint = (String, Vec<String>, Option<u32>);

impl Repo {
    pub fn diff(&self, site: Option<&str>, a: &str, b: &str) -> Result<DiffOutcome> {
        let snap_a = self.find(site, a)?;
        let snap_b = self.find(site, b)?;
        let repo = self.indexed()?;
        let before = listing(&repo, &snap_a)?;
        let after = listing(&repo, &snap_b)?;
        let dump = DUMP_PATH.trim_start_matches('/');
        let database_changed = before.get(dump) != after.get(dump);
        let site_prefix = format!("{}/", SITE_DIR.trim_start_matches('/'));
        let shown = |p: &String| p.strip_prefix(&site_prefix).map(str::to_string);
        let mut added = Vec::new();
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        for (path, print) in &after {
            match before.get(path) {
                None => added.extend(shown(path)),
                Some(old) if old != print => changed.extend(shown(path)),
                Some(_) => {}
            }
        }
        for path in before.keys() {
            if !after.contains_key(path) {
                removed.extend(shown(path));
            }
        }
        Ok(DiffOutcome {
            from: SnapshotInfo::from_file(&snap_a),
            to: SnapshotInfo::from_file(&snap_b),
            added,
            changed,
            removed,
            database_changed,
        })
    }
}

fn listing(repo: &Indexed, snap: &SnapshotFile) -> Result<BTreeMap<String, Fingerprint>> {
    let root = repo
        .node_from_snapshot_and_path(snap, "")
        .map_err(|e| BackupError::Other(e.display_log()))?;
    let mut map = BTreeMap::new();
    for item in repo
        .ls(&root, &LsOptions::default())
        .map_err(|e| BackupError::Other(e.display_log()))?
    {
        let (path, node) = item.map_err(|e| BackupError::Other(e.display_log()))?;
        if node.node_type == NodeType::Dir {
            continue;
        }
        let content = node
            .content
            .iter()
            .flatten()
            .map(|id| id.to_string())
            .collect();
        let kind = match &node.node_type {
            NodeType::Symlink { .. } => format!("link:{}", node.node_type.to_link().display()),
            other => format!("{other:?}").chars().take(16).collect(),
        };
        map.insert(path.display().to_string(), (kind, content, node.meta.mode));
    }
    Ok(map)
}
