//! Directories and secret files only this user may change: a directory peakguard keeps state,
//! cache or sockets in must be owned by the running user and not writable by group or others
//! (created 0700 when missing); a secret file must be owned by the running user, readable by
//! nobody else, and not a symbolic link. A planted file or directory is refused with the path
//! and the fix, never used.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    #[error(
        "{path} belongs to uid {owner}, not to this user (uid {me}): another user could have planted it. Fix: `chown {me} {path}` if it is yours, or choose another path"
    )]
    NotOwned { path: String, owner: u32, me: u32 },
    #[error(
        "{path} is open to other users (mode {mode:o}): they could change or plant what peakguard reads there. Fix: `chmod {fix:o} {path}`, or choose a private path"
    )]
    OpenToOthers { path: String, mode: u32, fix: u32 },
    #[error("{path} is a symbolic link: secrets and state are never read through one")]
    Symlink { path: String },
    #[error("{path} is not a {expected}")]
    WrongKind {
        path: String,
        expected: &'static str,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PrivateError + '_ {
    move |source| PrivateError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn me() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Checks ownership and mode: `forbidden` are the mode bits others must not have.
fn check(
    path: &Path,
    meta: &std::fs::Metadata,
    forbidden: u32,
    fix: u32,
) -> Result<(), PrivateError> {
    let show = path.display().to_string();
    if meta.file_type().is_symlink() {
        return Err(PrivateError::Symlink { path: show });
    }
    if meta.uid() != me() {
        return Err(PrivateError::NotOwned {
            path: show,
            owner: meta.uid(),
            me: me(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & forbidden != 0 {
        return Err(PrivateError::OpenToOthers {
            path: show,
            mode,
            fix,
        });
    }
    Ok(())
}

/// Creates `dir` (and missing parents) 0700, or checks the one that is there: owned by this
/// user, not writable by group or others, not a symbolic link.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PrivateError> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => {
            if !meta.file_type().is_symlink() && !meta.is_dir() {
                return Err(PrivateError::WrongKind {
                    path: dir.display().to_string(),
                    expected: "directory",
                });
            }
            check(dir, &meta, 0o022, 0o700)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir)),
        Err(e) => Err(io_error(dir)(e)),
    }
}

/// The directory a file lives in, made private (see [`ensure_private_dir`]).
pub fn ensure_private_parent(file: &Path) -> Result<(), PrivateError> {
    match file.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => ensure_private_dir(dir),
        None => Ok(()),
    }
}

fn no_follow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Reads a secret file, if there is one: owned by this user, readable by nobody else, opened
/// without following a symbolic link.
pub fn read_private(path: &Path) -> Result<Option<String>, PrivateError> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(no_follow())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(PrivateError::Symlink {
                path: path.display().to_string(),
            });
        }
        Err(e) => return Err(io_error(path)(e)),
    };
    let meta = file.metadata().map_err(io_error(path))?;
    if !meta.is_file() {
        return Err(PrivateError::WrongKind {
            path: path.display().to_string(),
            expected: "regular file",
        });
    }
    check(path, &meta, 0o077, 0o600)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io_error(path))?;
    Ok(Some(text))
}

/// Creates (or replaces) a file that may hold secrets — a database dump, an export — 0600 from
/// the start, never through a symbolic link: an existing file is removed first, so its old
/// mode never carries over.
pub fn create_private(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(no_follow())
        .open(path)
}

/// Writes a secret file 0600 from the start: a new file (never through a symbolic link), or
/// an existing one this user owns and nobody else can read, replaced atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PrivateError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        check(path, &meta, 0o077, 0o600)?;
    }
    let tmp = PathBuf::from(format!("{}.new-{}", path.display(), std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(no_follow())
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_created_private_and_an_open_one_refused() {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("a/b");
        ensure_private_dir(&dir).expect("created");
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        ensure_private_dir(&dir).expect("ours, private");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = ensure_private_dir(&dir).expect_err("world-writable");
        assert!(
            matches!(err, PrivateError::OpenToOthers { mode: 0o777, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 700"), "{err}");
        // /tmp itself: shared by everyone.
        assert!(ensure_private_dir(Path::new("/tmp")).is_err());
        let link = base.path().join("link");
        std::os::unix::fs::symlink(base.path(), &link).expect("symlink");
        assert!(matches!(
            ensure_private_dir(&link),
            Err(PrivateError::Symlink { .. })
        ));
        // Someone else's directory (this needs root to set up; CI runs as root).
        let theirs = base.path().join("theirs");
        ensure_private_dir(&theirs).expect("created");
        if std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).is_ok() {
            assert!(matches!(
                ensure_private_dir(&theirs),
                Err(PrivateError::NotOwned { owner: 65534, .. })
            ));
        }
    }

    #[test]
    fn files_that_may_hold_secrets_are_created_0600_even_over_an_open_one() {
        let base = tempfile::tempdir().expect("tempdir");
        let dump = base.path().join("db.sql");
        std::fs::write(&dump, "old").expect("write");
        std::fs::set_permissions(&dump, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let mut f = create_private(&dump).expect("created");
        f.write_all(b"new").expect("write");
        let mode = std::fs::metadata(&dump).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&dump).expect("read"), "new");
    }

    #[test]
    fn secrets_are_written_0600_and_planted_ones_refused() {
        let base = tempfile::tempdir().expect("tempdir");
        let token = base.path().join("admin.token");
        assert_eq!(read_private(&token).expect("none yet"), None);
        write_private(&token, b"s3cret").expect("written");
        let mode = std::fs::metadata(&token)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            read_private(&token).expect("read").as_deref(),
            Some("s3cret")
        );
        // Readable by others (a planted or carelessly copied token): refused.
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            read_private(&token),
            Err(PrivateError::OpenToOthers { .. })
        ));
        assert!(
            write_private(&token, b"x").is_err(),
            "not overwritten either"
        );
        // A symbolic link pointing elsewhere is never followed.
        let target = base.path().join("elsewhere");
        std::fs::write(&target, "attacker").expect("write");
        let link = base.path().join("linked.token");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(matches!(
            read_private(&link),
            Err(PrivateError::Symlink { .. })
        ));
        assert!(write_private(&link, b"x").is_err());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "attacker");
    }
}
