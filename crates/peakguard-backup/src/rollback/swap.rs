//! Swapping two directory trees in one step (`renameat2(RENAME_EXCHANGE)`), so the site is
//! never seen half-restored; two renames where the filesystem cannot exchange. And making
//! both durable: the staged files are on disk before the swap, the swap itself after it.

use crate::error::{BackupError, Result};
use std::path::{Path, PathBuf};

/// Where each tree is after a failed exchange: `a_at` holds what was at `a`, `b_at` what
/// was at `b`. Nothing is ever deleted by the exchange itself.
#[derive(Debug)]
pub struct SwapFailed {
    pub error: BackupError,
    pub a_at: PathBuf,
    pub b_at: PathBuf,
}

impl SwapFailed {
    /// Removes the staged tree (`a`'s content) only when the live one (`b`'s) is back at
    /// `live_root`; otherwise removes nothing and says where each tree is.
    pub fn discard_staged(&self, live_root: &Path) -> String {
        if self.b_at == live_root {
            let _ = std::fs::remove_dir_all(&self.a_at);
            "the live files were not changed".to_string()
        } else {
            format!(
                "the live files are in {} and must be moved back to {} by hand (`mv`); the \
                 snapshot's files are in {}",
                self.b_at.display(),
                live_root.display(),
                self.a_at.display()
            )
        }
    }
}

/// Exchanges `a` and `b` (both must exist, on the same filesystem).
pub fn exchange(a: &Path, b: &Path) -> std::result::Result<(), SwapFailed> {
    let failed = |error| SwapFailed {
        error,
        a_at: a.to_path_buf(),
        b_at: b.to_path_buf(),
    };
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => return Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
        Err(e) => {
            return Err(failed(BackupError::io(
                "exchanging with",
                b,
                std::io::Error::from(e),
            )));
        }
    }
    exchange_by_renames(a, b, &mut |from, to| std::fs::rename(from, to))
}

/// Where the filesystem cannot exchange: three renames through a temporary name. A failure
/// midway is undone as far as it can be; whatever happens, both trees still exist and the
/// result says where.
pub fn exchange_by_renames(
    a: &Path,
    b: &Path,
    rename: &mut dyn FnMut(&Path, &Path) -> std::io::Result<()>,
) -> std::result::Result<(), SwapFailed> {
    let tmp = a.with_extension("peakguard-swap");
    let at = |a_at: &Path, b_at: &Path, error| SwapFailed {
        error,
        a_at: a_at.to_path_buf(),
        b_at: b_at.to_path_buf(),
    };
    if let Err(e) = rename(a, &tmp) {
        return Err(at(a, b, BackupError::io("renaming", a, e)));
    }
    if let Err(e) = rename(b, a) {
        let error = BackupError::io("renaming", b, e);
        return Err(match rename(&tmp, a) {
            Ok(()) => at(a, b, error),
            Err(_) => at(&tmp, b, error),
        });
    }
    if let Err(e) = rename(&tmp, b) {
        let error = BackupError::io("renaming", &tmp, e);
        // `b`'s tree is at `a` now, nothing at `b`: put it back first.
        if rename(a, b).is_err() {
            return Err(at(&tmp, a, error));
        }
        return Err(match rename(&tmp, a) {
            Ok(()) => at(a, b, error),
            Err(_) => at(&tmp, b, error),
        });
    }
    Ok(())
}

/// Writes everything pending on `path`'s filesystem to disk (`syncfs`). Before the swap, so
/// that a crash right after a rollback cannot leave empty files in the live site (ext4
/// allocates blocks late, and a renamed directory does not make it write them first).
pub fn flush_filesystem(path: &Path) -> Result<()> {
    let dir = std::fs::File::open(path).map_err(|e| BackupError::io("opening", path, e))?;
    if let Err(e) = rustix::fs::syncfs(&dir) {
        return Err(BackupError::io(
            "writing to disk the files under",
            path,
            std::io::Error::from(e),
        ));
    }
    Ok(())
}

/// Makes renames inside `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io("writing to disk the directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_trees() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("staged"), dir.path().join("live"));
        std::fs::create_dir_all(&a).expect("a");
        std::fs::create_dir_all(&b).expect("b");
        std::fs::write(a.join("f"), "SNAPSHOT").expect("write a");
        std::fs::write(b.join("f"), "LIVE").expect("write b");
        (dir, a, b)
    }

    #[test]
    fn exchanges_two_trees() {
        let (_dir, a, b) = two_trees();
        exchange(&a, &b).expect("exchange");
        assert_eq!(std::fs::read_to_string(a.join("f")).expect("read"), "LIVE");
        assert_eq!(
            std::fs::read_to_string(b.join("f")).expect("read"),
            "SNAPSHOT"
        );
        exchange_by_renames(&a, &b, &mut |x, y| std::fs::rename(x, y)).expect("renames");
        assert_eq!(std::fs::read_to_string(b.join("f")).expect("read"), "LIVE");
    }

    /// Every rename of the fallback fails in turn (and, each time, every rename after it as
    /// well, so the undo fails too): the live tree is never lost, the rollback's cleanup
    /// never deletes it, and it is back in place whenever the undo could run.
    #[test]
    fn a_failure_at_any_rename_never_deletes_the_live_tree() {
        for fail_at in 1..=3 {
            for undo_fails in [false, true] {
                let (_dir, a, b) = two_trees();
                let mut n = 0;
                let result = exchange_by_renames(&a, &b, &mut |x, y| {
                    n += 1;
                    if n == fail_at || (undo_fails && n > fail_at) {
                        Err(std::io::Error::other("injected"))
                    } else {
                        std::fs::rename(x, y)
                    }
                });
                let failed = result.expect_err("the injected failure is reported");
                let case = format!("rename {fail_at} fails, undo fails: {undo_fails}");
                assert!(failed.error.to_string().contains("injected"), "{case}");
                let said = failed.discard_staged(&b);
                assert_eq!(
                    std::fs::read_to_string(failed.b_at.join("f")).expect(&case),
                    "LIVE",
                    "{case}: the live tree is where the failure says ({said})"
                );
                if !undo_fails {
                    assert_eq!(failed.b_at, b, "{case}: undone, the live tree is in place");
                    assert!(!a.exists(), "{case}: the staged copy is removed");
                } else if failed.b_at != b {
                    assert!(said.contains("must be moved back"), "{case}: {said}");
                    assert_eq!(
                        std::fs::read_to_string(failed.a_at.join("f")).expect(&case),
                        "SNAPSHOT",
                        "{case}: the staged copy is kept while the live tree is out of place"
                    );
                }
            }
        }
    }
}
