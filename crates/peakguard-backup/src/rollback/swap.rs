//! Swapping two directory trees in one step (`renameat2(RENAME_EXCHANGE)`), so the site is
//! never seen half-restored; two renames where the filesystem cannot exchange. And making
//! both durable: the staged files are on disk before the swap, the swap itself after it.

use crate::error::{BackupError, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Exchanges `a` and `b` (both must exist, on the same filesystem).
pub fn exchange(a: &Path, b: &Path) -> Result<()> {
    let ca = CString::new(a.as_os_str().as_bytes())
        .map_err(|_| BackupError::Other(format!("{a:?} contains a NUL byte")))?;
    let cb = CString::new(b.as_os_str().as_bytes())
        .map_err(|_| BackupError::Other(format!("{b:?} contains a NUL byte")))?;
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EINVAL) && err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(BackupError::io("exchanging with", b, err));
    }
    // No atomic exchange here: three renames through a temporary name.
    let tmp = a.with_extension("peakguard-swap");
    std::fs::rename(a, &tmp).map_err(|e| BackupError::io("renaming", a, e))?;
    if let Err(e) = std::fs::rename(b, a) {
        let _ = std::fs::rename(&tmp, a);
        return Err(BackupError::io("renaming", b, e));
    }
    std::fs::rename(&tmp, b).map_err(|e| BackupError::io("renaming", &tmp, e))
}

/// Writes everything pending on `path`'s filesystem to disk (`syncfs`). Before the swap, so
/// that a crash right after a rollback cannot leave empty files in the live site (ext4
/// allocates blocks late, and a renamed directory does not make it write them first).
pub fn flush_filesystem(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(path).map_err(|e| BackupError::io("opening", path, e))?;
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(BackupError::io(
            "writing to disk the files under",
            path,
            std::io::Error::last_os_error(),
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

    #[test]
    fn exchanges_two_trees() {
        let dir = std::env::temp_dir().join(format!("pg-swap-{}", std::process::id()));
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&a).expect("a");
        std::fs::create_dir_all(&b).expect("b");
        std::fs::write(a.join("f"), "A").expect("write a");
        std::fs::write(b.join("f"), "B").expect("write b");
        exchange(&a, &b).expect("exchange");
        assert_eq!(std::fs::read_to_string(a.join("f")).expect("read"), "B");
        assert_eq!(std::fs::read_to_string(b.join("f")).expect("read"), "A");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
