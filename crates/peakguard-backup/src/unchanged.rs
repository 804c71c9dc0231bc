//! Knowing, cheaply, that nothing changed since the last snapshot, so a scheduled run can
//! reuse it instead of reading everything again.
//!
//! - Files: one walk of the site (the same walk, with the same excludes, that the archiver
//!   does) hashing every entry's path, type, size, mode, owner, mtime, ctime and inode —
//!   what restic itself compares against a parent. A file rewritten with its old mtime
//!   still changes ctime.
//! - Database: [`Database::fingerprint`](crate::Database::fingerprint) (InnoDB's log
//!   sequence number and the DDL counters).
//!
//! What the last snapshot was taken from is kept in `<state_dir>/last-snapshot.json`. It is
//! trusted only for the snapshot it names, and only if that snapshot is still the latest: a
//! rollback, a prune or another writer makes the next run a full one.
//!
//! Every fingerprint is read BEFORE the data it describes, so a change that races with a
//! run makes the next run full (never the other way round).

use crate::source::SiteSource;
use rustic_core::ReadSource;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "last-snapshot.json";

/// What the latest snapshot was taken from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSnapshot {
    /// The snapshot's peakguard id.
    pub snapshot: String,
    /// [`files_digest`] of the site when the snapshot was taken.
    pub files: String,
    /// The database fingerprint, when the server gives one.
    pub database: Option<String>,
}

impl LastSnapshot {
    fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    /// The record, if there is a readable one.
    pub fn load(state_dir: &Path) -> Option<LastSnapshot> {
        let text = std::fs::read_to_string(Self::path(state_dir)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the record (atomically: a crash leaves the old one or the new one).
    pub fn store(&self, state_dir: &Path) -> std::io::Result<()> {
        let path = Self::path(state_dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &path)
    }

    /// Forgets the record: the next run reads everything.
    pub fn forget(state_dir: &Path) {
        let _ = std::fs::remove_file(Self::path(state_dir));
    }
}

/// A digest of every entry the archiver would read under the site root: paths and the
/// metadata a parent comparison uses. Walk errors go into the digest too (an unreadable
/// directory is never "unchanged").
pub fn files_digest(source: &SiteSource) -> String {
    let mut hash = Sha256::new();
    let mut entries = 0u64;
    for entry in source.entries() {
        match entry {
            Ok(e) => {
                let m = &e.node.meta;
                hash.update(e.path.as_os_str().as_encoded_bytes());
                hash.update([0]);
                hash.update(
                    format!(
                        "{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
                        e.node.node_type,
                        m.size,
                        m.mode,
                        m.uid,
                        m.gid,
                        m.mtime,
                        m.ctime,
                        m.inode,
                        m.device_id,
                        m.links,
                    )
                    .as_bytes(),
                );
                hash.update([0]);
                entries += 1;
            }
            Err(e) => {
                hash.update(b"error:");
                hash.update(e.display_log().as_bytes());
            }
        }
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{entries}:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(root: &Path) -> String {
        files_digest(&SiteSource::new(root, &["cache".to_string()], None).expect("source"))
    }

    #[test]
    fn the_digest_sees_edits_additions_removals_and_ignores_excluded_paths() {
        let dir = std::env::temp_dir().join(format!("pg-unchanged-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("cache")).expect("dir");
        std::fs::write(dir.join("a.php"), "a").expect("a");
        let first = digest(&dir);
        assert_eq!(first, digest(&dir), "a second walk of the same tree");
        assert!(
            first.starts_with("2:"),
            "the site directory and a.php (cache excluded): {first}"
        );

        std::fs::write(dir.join("cache/page.html"), "x").expect("cache");
        assert_eq!(first, digest(&dir), "excluded paths do not count");

        // Same size, same mtime second: ctime and mtime nanoseconds still differ.
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::write(dir.join("a.php"), "b").expect("edit");
        let edited = digest(&dir);
        assert_ne!(first, edited);

        std::fs::write(dir.join("b.php"), "b").expect("add");
        let added = digest(&dir);
        assert_ne!(edited, added);
        std::fs::remove_file(dir.join("b.php")).expect("remove");
        assert_ne!(added, digest(&dir));

        let record = LastSnapshot {
            snapshot: "s".into(),
            files: edited,
            database: None,
        };
        record.store(&dir).expect("store");
        assert_eq!(LastSnapshot::load(&dir), Some(record));
        LastSnapshot::forget(&dir);
        assert_eq!(LastSnapshot::load(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
