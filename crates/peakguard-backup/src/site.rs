//! From the configuration's `[site.backup]` to what the backup engine needs: the site's
//! plan, the main and bunker repository specs, the state directory. Shared by the backup
//! commands and the daemon.

use crate::backup::{BackupOutcome, BackupPlan, Reuse};
use crate::database::Database;
use crate::error::{BackupError, Result};
use crate::repo::RepoSpec;
use crate::retention::Retention;
use crate::snapshot::Kind;
use peakguard_config::{BackupConfig, Config, RetentionConfig, SiteConfig};
use std::path::{Path, PathBuf};

pub struct BackupSite {
    pub name: String,
    pub config: BackupConfig,
    pub state_dir: PathBuf,
    pub main: RepoSpec,
    pub bunker: Option<RepoSpec>,
    pub database: Option<Database>,
}

/// The site named `name`, or the only site with `[site.backup]`.
pub fn pick<'a>(config: &'a Config, name: Option<&str>) -> Result<&'a SiteConfig> {
    let with_backup: Vec<&SiteConfig> =
        config.sites.iter().filter(|s| s.backup.is_some()).collect();
    match name {
        Some(n) => {
            let site = config
                .sites
                .iter()
                .find(|s| s.name == n)
                .ok_or_else(|| {
                    BackupError::Config(format!("no site named {n:?} in the configuration"))
                })?;
            if site.backup.is_none() {
                return Err(BackupError::Config(format!(
                    "site {n:?} has no [site.backup] section: add one with at least `root = \"/var/www/...\"`"
                )));
            }
            Ok(site)
        }
        None => match with_backup.as_slice() {
            [one] => Ok(one),
            [] => Err(BackupError::Config(
                "no site has a [site.backup] section; add one, e.g.\n  [[site]]\n  name = \"shop\"\n  [site.backup]\n  root = \"/var/www/shop\"".into()
            )),
            many => Err(BackupError::Config(format!(
                "{} sites have backups ({}); choose one with --site",
                many.len(),
                many.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        },
    }
}

fn password(inline: &str, file: &Path, fallback: Option<&Path>, what: &str) -> Result<String> {
    if !inline.is_empty() {
        return Ok(inline.to_string());
    }
    let path = if file.as_os_str().is_empty() {
        match fallback {
            Some(p) => p,
            None => {
                return Err(BackupError::Config(format!(
                    "{what}: give `password_file` (or `password`)"
                )));
            }
        }
    } else {
        file
    };
    if !path.exists()
        && let Some(generated) = fallback.filter(|f| *f == path)
    {
        let mut bytes = [0u8; 24];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .map_err(|e| {
                BackupError::io("reading for a new repository password", "/dev/urandom", e)
            })?;
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(dir) = generated.parent() {
            std::fs::create_dir_all(dir).map_err(|e| BackupError::io("creating", dir, e))?;
        }
        write_private(generated, &text)?;
        log::warn!(
            "generated the repository password in {} — copy it somewhere safe: without it the backups cannot be read",
            generated.display()
        );
        return Ok(text);
    }
    Ok(std::fs::read_to_string(path)
        .map_err(|e| BackupError::io("reading the password file", path, e))?
        .trim()
        .to_string())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BackupError::io("creating", path, e))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .map_err(|e| BackupError::io("writing", path, e))
}

impl BackupSite {
    pub fn from_site(site: &SiteConfig) -> Result<BackupSite> {
        let config = site.backup.clone().ok_or_else(|| {
            BackupError::Config(format!("site {:?} has no [site.backup]", site.name))
        })?;
        let state_dir = if config.state_dir.as_os_str().is_empty() {
            PathBuf::from("/var/lib/peakguard/backup").join(&site.name)
        } else {
            config.state_dir.clone()
        };
        let location = if config.repository.is_empty() {
            state_dir.join("repo").display().to_string()
        } else {
            config.repository.clone()
        };
        let remote = |loc: &str| loc.contains(':') && !loc.starts_with('/');
        let generated = state_dir.join("password");
        let main_password = password(
            config.password.expose(),
            &config.password_file,
            Some(&generated),
            &format!("site {:?} backup repository", site.name),
        )?;
        let main = RepoSpec {
            cache_dir: remote(&location).then(|| state_dir.join("cache")),
            location,
            password: main_password,
            options: Default::default(),
        };
        let bunker = match &config.bunker {
            Some(b) => Some(RepoSpec {
                location: b.repository.clone(),
                password: password(b.password.expose(), &b.password_file, None, "the bunker")?,
                options: b.options.clone(),
                cache_dir: remote(&b.repository).then(|| state_dir.join("bunker-cache")),
            }),
            None => None,
        };
        let database = if config.database.skip {
            None
        } else {
            let d = &config.database;
            let wp_config = if config.wp_config.as_os_str().is_empty() {
                config.root.join("wp-config.php")
            } else {
                config.wp_config.clone()
            };
            Some(
                Database::resolve(
                    Database {
                        name: d.name.clone(),
                        user: d.user.clone(),
                        password: d.password.expose().to_string(),
                        host: d.host.clone(),
                        table_prefix: String::new(),
                        dump_command: d.dump_command.clone(),
                        client_command: d.client_command.clone(),
                        timeout: d.timeout.0,
                    },
                    &wp_config,
                )
                .map_err(|e| BackupError::Config(format!("site {:?}: {e}", site.name)))?,
            )
        };
        Ok(BackupSite {
            name: site.name.clone(),
            config,
            state_dir,
            main,
            bunker,
            database,
        })
    }

    pub fn plan(&self, kind: Kind) -> BackupPlan {
        BackupPlan {
            site: self.name.clone(),
            root: self.config.root.clone(),
            excludes: self.config.exclude.clone(),
            database: self.database.clone(),
            allow_unreadable: self.config.allow_unreadable,
            kind,
            work_dir: self.state_dir.clone(),
        }
    }

    /// One line saying what a snapshot held and reused (the CLI prints it, the daemon logs it).
    pub fn describe(&self, out: &BackupOutcome) -> String {
        let what = match out.reused {
            Reuse::Everything => {
                "nothing changed since the last snapshot: its files and database reused".to_string()
            }
            Reuse::Files => format!(
                "files unchanged (reused), database dump {}",
                human_bytes(out.dump_bytes)
            ),
            Reuse::Nothing | Reuse::Database => format!(
                "{} new, {} changed, {} unchanged files, {} added, database {}",
                out.files_new,
                out.files_changed,
                out.files_unmodified,
                human_bytes(out.snapshot.added_bytes),
                match (self.database.is_some(), out.reused) {
                    (false, _) => "skipped".to_string(),
                    (true, Reuse::Database) => "unchanged (previous dump kept)".to_string(),
                    (true, _) => format!("dump {}", human_bytes(out.dump_bytes)),
                },
            ),
        };
        format!(
            "snapshot {} of {}: {} files, {}; {what}; in {:.2}s",
            out.snapshot.id,
            self.name,
            out.snapshot.files,
            human_bytes(out.snapshot.bytes),
            out.seconds
        )
    }

    pub fn retention(&self, bunker: bool) -> Retention {
        let r: &RetentionConfig = match (&self.config.bunker, bunker) {
            (Some(b), true) => b.retention.as_ref().unwrap_or(&self.config.retention),
            _ => &self.config.retention,
        };
        Retention {
            keep_last: r.keep_last,
            keep_hourly: r.keep_hourly,
            keep_daily: r.keep_daily,
            keep_weekly: r.keep_weekly,
            keep_monthly: r.keep_monthly,
        }
    }
}

/// `1.5 MiB`-style sizes for people.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}
