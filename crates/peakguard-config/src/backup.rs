//! The `[site.backup]` section: where a site's files and database are, where snapshots go,
//! how often, how long they are kept, and the offsite bunker.

use crate::units::Seconds;
use serde::Deserialize;
use std::path::PathBuf;

/// Backups of one site. Present only when the site has `[site.backup]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// The WordPress root (the directory holding `wp-config.php` or the site's files).
    pub root: PathBuf,
    /// Paths under `root` left out of snapshots (globs, relative to `root`).
    pub exclude: Vec<String>,
    /// The main repository: a local directory, or `rest:http://host:port/path`.
    /// Empty = `<state_dir>/repo`.
    pub repository: String,
    /// Repository password; prefer `password_file`. When both are empty a random password is
    /// generated at the first backup into `<state_dir>/password` (copy it somewhere safe).
    pub password: crate::Secret,
    pub password_file: PathBuf,
    /// Local state: the writer lock, the generated password, the cache of the repository.
    /// Empty = `/var/lib/peakguard/backup/<site name>`.
    pub state_dir: PathBuf,
    /// WordPress config read for database credentials when `[site.backup.database]` leaves
    /// them empty. Empty = `<root>/wp-config.php`.
    pub wp_config: PathBuf,
    pub database: DatabaseConfig,
    /// Scheduled snapshots in `peakguard serve` (0 = off; at least 1 minute otherwise).
    pub every: Seconds,
    /// Snapshot even when some files under `root` cannot be read (they are listed).
    pub allow_unreadable: bool,
    pub retention: RetentionConfig,
    /// The offsite copy; every snapshot is copied there after it is taken.
    pub bunker: Option<BunkerConfig>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            root: PathBuf::new(),
            exclude: vec![
                "wp-content/cache".into(),
                "wp-content/upgrade".into(),
                "wp-content/wflogs".into(),
            ],
            repository: String::new(),
            password: crate::Secret::default(),
            password_file: PathBuf::new(),
            state_dir: PathBuf::new(),
            wp_config: PathBuf::new(),
            database: DatabaseConfig::default(),
            every: Seconds::secs(15 * 60),
            allow_unreadable: false,
            retention: RetentionConfig::default(),
            bunker: None,
        }
    }
}

/// The site's MariaDB. Empty fields are read from `wp-config.php`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub name: String,
    pub user: String,
    pub password: crate::Secret,
    /// `localhost`, `127.0.0.1:3306`, or `localhost:/run/mysqld/mysqld.sock`, as in wp-config.
    pub host: String,
    /// The dump command (`mariadb-dump`) and the client used for imports (`mariadb`).
    pub dump_command: String,
    pub client_command: String,
    /// Leave the database out (files only).
    pub skip: bool,
    /// A dump, an import or a query running longer is killed and reported (the backup's
    /// lock is released with it).
    pub timeout: crate::Seconds,
}

/// How many snapshots are kept (0 = that rule keeps none), and how often pruning runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub keep_last: u32,
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    /// How often `serve` applies the rules and prunes (0 = never).
    pub prune_every: Seconds,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep_last: 8,
            keep_hourly: 48,
            keep_daily: 14,
            keep_weekly: 8,
            keep_monthly: 12,
            prune_every: Seconds::secs(24 * 3600),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            name: String::new(),
            user: String::new(),
            password: crate::Secret::default(),
            host: String::new(),
            dump_command: String::new(),
            client_command: String::new(),
            skip: false,
            timeout: crate::Seconds::secs(3600),
        }
    }
}

/// The bunker: an independent repository with its own credentials.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BunkerConfig {
    /// `rest:http://…`, a local path, or (with the `opendal` build feature) `opendal:s3` /
    /// `opendal:sftp` with `options`.
    pub repository: String,
    pub password: crate::Secret,
    pub password_file: PathBuf,
    /// Backend options (for opendal: bucket, endpoint, …).
    pub options: std::collections::BTreeMap<String, String>,
    /// Retention in the bunker (defaults to the main repository's).
    pub retention: Option<RetentionConfig>,
}
