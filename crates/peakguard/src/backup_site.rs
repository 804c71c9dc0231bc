//! From the configuration's `[site.backup]` to what the backup engine needs: the site's
//! plan, the main and bunker repository specs, the state directory. Shared by the backup
//! commands and `serve`'s scheduler.

use anyhow::{Context, Result, bail};
use peakguard_backup::{BackupPlan, Database, Kind, RepoSpec, Retention};
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
                .with_context(|| format!("no site named {n:?} in the configuration"))?;
            if site.backup.is_none() {
                bail!(
                    "site {n:?} has no [site.backup] section: add one with at least `root = \"/var/www/...\"`"
                );
            }
            Ok(site)
        }
        None => match with_backup.as_slice() {
            [one] => Ok(one),
            [] => bail!(
                "no site has a [site.backup] section; add one, e.g.\n  [[site]]\n  name = \"shop\"\n  [site.backup]\n  root = \"/var/www/shop\""
            ),
            many => bail!(
                "{} sites have backups ({}); choose one with --site",
                many.len(),
                many.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
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
            None => bail!("{what}: give `password_file` (or `password`)"),
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
            .context("reading /dev/urandom for a new repository password")?;
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(dir) = generated.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_private(generated, &text)?;
        eprintln!(
            "peakguard: generated the repository password in {} — copy it somewhere safe: without it the backups cannot be read",
            generated.display()
        );
        return Ok(text);
    }
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("{what}: reading {}", path.display()))?
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
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    Ok(())
}

impl BackupSite {
    pub fn from_site(site: &SiteConfig) -> Result<BackupSite> {
        let config = site
            .backup
            .clone()
            .with_context(|| format!("site {:?} has no [site.backup]", site.name))?;
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
                .with_context(|| format!("site {:?}", site.name))?,
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
