//! Errors of the backup engine: each says what failed, on what, and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("repository {location}: {message}")]
    Repository { location: String, message: String },
    #[error(
        "repository {location} does not exist yet; run `peakguard backup` once to create it (or check the path/URL)"
    )]
    NoRepository { location: String },
    #[error(
        "another backup, prune or rollback of this site is running (lock {path:?}{holder}); wait for it or stop it"
    )]
    Locked { path: PathBuf, holder: String },
    #[error("{what} {path:?}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database dump failed ({command}): {message}; the snapshot was removed")]
    DumpFailed { command: String, message: String },
    #[error(
        "{count} file(s) under {root:?} could not be read (first: {first}); the snapshot was removed. Fix their permissions, exclude them, or set `allow_unreadable = true`"
    )]
    Unreadable {
        root: PathBuf,
        count: usize,
        first: String,
    },
    #[error("no snapshot matches {query:?}; `peakguard snapshots` lists them")]
    NoSuchSnapshot { query: String },
    #[error("{query:?} matches {count} snapshots; give more characters")]
    AmbiguousSnapshot { query: String, count: usize },
    #[error("database credentials: {0}")]
    Credentials(String),
    #[error("{command} failed: {message}")]
    Command { command: String, message: String },
    #[error("check found {count} problem(s) in {location}: {first}")]
    CheckFailed {
        location: String,
        count: usize,
        first: String,
    },
    #[error("restore of {path} failed: {message}")]
    Damaged { path: String, message: String },
    #[error("rollback stopped at step \"{step}\": {message}. {recovery}")]
    Rollback {
        step: String,
        message: String,
        recovery: String,
    },
    /// A `[site.backup]` setting that cannot be used, said with what to do.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

impl BackupError {
    pub(crate) fn repo(location: &str, err: impl std::fmt::Display) -> Self {
        BackupError::Repository {
            location: peakguard_config::redact::location(location).into_owned(),
            message: err.to_string(),
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BackupError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
