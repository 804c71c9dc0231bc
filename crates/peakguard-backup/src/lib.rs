//! peakguard-backup: snapshots of a WordPress site's files and MariaDB database in
//! restic-format repositories (through rustic_core), the bunker copy, retention, check,
//! restore, diff, export and rollback; the mapping from a site's `[site.backup]` to all that
//! (site.rs) and `serve`'s daemon (daemon.rs: schedule, bunker copies, prunes, status and
//! metrics). Progress is reported through rustic's `ProgressBars` trait, which the caller
//! implements (progress.rs); nothing here draws on a terminal.
//!
//! Every rustic type stays inside this crate (its API changes every minor release): callers
//! see `Repo`, `SnapshotInfo`, plans and outcomes. It must not touch the edge or the cache:
//! the rollback's maintenance and purge steps are callbacks the binary provides.
//!
//! Never run `restic prune` on these repositories while peakguard may write: rustic writes
//! no repository locks; `WriterLock` keeps peakguard's own writers one at a time.
#![forbid(unsafe_code)]

mod backup;
mod bunker;
mod check;
mod daemon;
mod database;
mod diff;
mod error;
mod export;
mod lock;
pub mod progress;
mod repo;
mod restore;
mod retention;
mod rollback;
mod site;
mod snapshot;
mod source;
pub mod unchanged;
mod watchdog;
mod write_tree;

pub use backup::{BackupOutcome, BackupPlan, Reuse};
pub use bunker::{BunkerLag, CopyOutcome};
pub use check::CheckOutcome;
pub use daemon::BackupDaemon;
pub use database::{Database, sql_ident, sql_string};
pub use diff::DiffOutcome;
pub use error::{BackupError, Result};
pub use export::ExportOutcome;
pub use lock::WriterLock;
pub use progress::{Hidden, Reporter};
pub use repo::{Repo, RepoSpec, close_remote_sessions};
pub use restore::RestoreOutcome;
pub use retention::{Retention, RetentionOutcome};
pub use rollback::{
    Carried, EdgeHooks, RollbackOutcome, RollbackPlan, Step, finish as finish_rollback,
    kept_tables as rollback_kept_tables,
};
pub use site::{BackupSite, human_bytes, pick};
pub use snapshot::{Kind, SnapshotInfo};
