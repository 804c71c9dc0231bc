//! Opening (and on first use creating) a restic-format repository, and listing its
//! snapshots. The key is derived once per `Repo`: the daemon keeps it open.

use crate::error::{BackupError, Result};
use crate::progress::{Reporter, SharedReporter};
use crate::snapshot::{SnapshotInfo, TAG_MARK};
use rustic_backend::BackendOptions;
use rustic_core::repofile::{MasterKey, SnapshotFile};
use rustic_core::{
    ConfigOptions, Credentials, KeyOptions, OpenStatus, Repository, RepositoryBackends,
    RepositoryOptions,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a repository is and how to open it. Its `Debug` hides the password and the
/// location's credentials.
#[derive(Clone)]
pub struct RepoSpec {
    /// A local directory or `rest:http://…` (or an opendal backend with the feature).
    pub location: String,
    pub password: String,
    pub options: BTreeMap<String, String>,
    /// Local cache for remote repositories (none for local ones).
    pub cache_dir: Option<PathBuf>,
}

/// An open repository. The master key is kept, so re-opening for each operation (to see
/// what other runs wrote) costs no key derivation.
#[derive(Clone)]
pub struct Repo {
    backends: RepositoryBackends,
    opts: RepositoryOptions,
    key: MasterKey,
    pub(crate) location: String,
    pub(crate) progress: SharedReporter,
}

impl std::fmt::Debug for RepoSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoSpec")
            .field(
                "location",
                &peakguard_config::redact::location(&self.location),
            )
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("location", &self.location)
            .finish()
    }
}

/// Set once an opendal repository was opened by this process (see [`close_remote_sessions`]).
static OPENDAL_OPENED: AtomicBool = AtomicBool::new(false);

/// Call before the process exits, after every [`Repo`] was dropped. opendal's SFTP
/// connections run an `ssh` control master (`ControlPersist=yes`) that is told to exit by
/// a task on rustic's background runtime once the connection is dropped; a process that
/// exits at once kills that task first, and the `ssh` master (with its session on the
/// server) stays behind, one per run. Waiting briefly lets the task finish. No-op unless an
/// opendal repository was opened.
pub fn close_remote_sessions() {
    if OPENDAL_OPENED.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

impl Repo {
    /// Opens the repository; creates it when `create` and it does not exist yet.
    pub fn open(spec: &RepoSpec, create: bool, progress: impl Reporter) -> Result<Repo> {
        let progress = SharedReporter::new(progress);
        let loc = spec.location.as_str();
        let err = |e: Box<rustic_core::RusticError>| BackupError::repo(loc, e.display_log());
        if cfg!(not(feature = "opendal")) && loc.starts_with("opendal:") {
            return Err(BackupError::repo(
                loc,
                "this peakguard was built without the opendal backends (S3, SFTP, …): \
                 build it with `cargo build --release --features opendal`, or use a local \
                 directory or `rest:http://…` (e.g. `rclone serve restic`)"
                    .to_string(),
            ));
        }
        if loc.starts_with("opendal:") {
            OPENDAL_OPENED.store(true, Ordering::Relaxed);
        }
        let mut backend = BackendOptions::default().repository(loc);
        backend.options = spec.options.clone();
        let backends = backend.to_backends().map_err(err)?;
        let mut opts = RepositoryOptions::default();
        match &spec.cache_dir {
            Some(dir) => opts.cache_dir = Some(dir.clone()),
            None => opts.no_cache = true,
        }
        let repo =
            Repository::new_with_progress(&opts, &backends, progress.clone()).map_err(err)?;
        let backends_kept = backends.clone();
        let credentials = Credentials::password(&spec.password);
        let exists = repo.config_id().map_err(err)?.is_some();
        let inner = if exists {
            repo.open(&credentials).map_err(|e| {
                BackupError::repo(
                    loc,
                    format!("cannot open: {} (is the password right?)", e.display_log()),
                )
            })?
        } else if create {
            log::info!(
                "creating repository {}",
                peakguard_config::redact::location(loc)
            );
            repo.init(
                &credentials,
                &KeyOptions::default(),
                &ConfigOptions::default(),
            )
            .map_err(err)?
        } else {
            return Err(BackupError::NoRepository {
                location: peakguard_config::redact::location(loc).into_owned(),
            });
        };
        Ok(Repo {
            backends: backends_kept,
            opts,
            key: inner.key(),
            // Shown in reports, errors and /status, never used to connect: redacted.
            location: peakguard_config::redact::location(loc).into_owned(),
            progress,
        })
    }

    /// A freshly opened handle (reads the repository config; no key derivation).
    pub(crate) fn handle(&self) -> Result<Repository<OpenStatus>> {
        self.handle_with(self.progress.clone())
    }

    pub(crate) fn handle_with(&self, progress: SharedReporter) -> Result<Repository<OpenStatus>> {
        Repository::new_with_progress(&self.opts, &self.backends, progress)
            .and_then(|r| r.open(&Credentials::Masterkey(self.key.clone())))
            .map_err(|e| self.err(e))
    }

    /// Shows (or hides) progress bars for the operations that follow.
    pub fn set_progress(&mut self, progress: impl Reporter) {
        self.progress = SharedReporter::new(progress);
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    #[allow(clippy::boxed_local)] // rustic returns its errors boxed
    pub(crate) fn err(&self, e: Box<rustic_core::RusticError>) -> BackupError {
        BackupError::repo(&self.location, e.display_log())
    }

    /// peakguard's snapshots of `site` (all sites when `None`), oldest first.
    pub fn snapshots(&self, site: Option<&str>) -> Result<Vec<SnapshotInfo>> {
        Ok(self
            .snapshot_files(site)?
            .iter()
            .map(SnapshotInfo::from_file)
            .collect())
    }

    pub(crate) fn snapshot_files(&self, site: Option<&str>) -> Result<Vec<SnapshotFile>> {
        let mut snaps: Vec<SnapshotFile> = self
            .handle()?
            .get_all_snapshots()
            .map_err(|e| self.err(e))?
            .into_iter()
            .filter(|s| s.tags.contains(TAG_MARK))
            .filter(|s| site.is_none_or(|name| s.label == name))
            .collect();
        snaps.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(snaps)
    }

    /// The snapshot `query` names: `latest`, or a prefix of a peakguard or repository id.
    pub(crate) fn find(&self, site: Option<&str>, query: &str) -> Result<SnapshotFile> {
        let snaps = self.snapshot_files(site)?;
        if query == "latest" {
            return snaps
                .into_iter()
                .next_back()
                .ok_or_else(|| BackupError::NoSuchSnapshot {
                    query: query.to_string(),
                });
        }
        let mut found: Vec<SnapshotFile> = snaps
            .into_iter()
            .filter(|s| SnapshotInfo::from_file(s).matches(query))
            .collect();
        match found.len() {
            0 => Err(BackupError::NoSuchSnapshot {
                query: query.to_string(),
            }),
            1 => Ok(found.remove(0)),
            n => Err(BackupError::AmbiguousSnapshot {
                query: query.to_string(),
                count: n,
            }),
        }
    }
}
