//! Swapping two directory trees in one step (`renameat2(RENAME_EXCHANGE)`), so the site is
//! never seen half-restored; two renames where the filesystem cannot exchange.

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
