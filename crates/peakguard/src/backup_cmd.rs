//! The backup commands: backup, snapshots, diff, restore, check, export, copy, prune,
//! rollback. They parse, call peakguard-backup, and print (text, or `--json`).

use crate::admin_client::AdminClient;
use crate::cli::{BackupCommand, SiteArgs};
use crate::term_progress::TermProgress;
use anyhow::{Context, Result};
use peakguard_backup::{
    BackupSite, EdgeHooks, Kind, Repo, RollbackPlan, SnapshotInfo, WriterLock, human_bytes, pick,
};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

fn site_of(args: &SiteArgs) -> Result<(peakguard_config::Config, BackupSite)> {
    let config = crate::load_config(args.config.as_deref())?
        .context("no configuration: pass --config FILE (or create ./peakguard.toml) with a [site.backup] section")?;
    let site = BackupSite::from_site(pick(&config, args.site.as_deref())?)?;
    Ok((config, site))
}

fn progress(json: bool) -> TermProgress {
    TermProgress {
        visible: !json && std::io::stderr().is_terminal(),
    }
}

fn open(site: &BackupSite, bunker: bool, create: bool, json: bool) -> Result<Repo> {
    let spec = if bunker {
        site.bunker
            .as_ref()
            .with_context(|| format!("site {:?} has no [site.backup.bunker]", site.name))?
    } else {
        &site.main
    };
    Ok(Repo::open(spec, create, progress(json))?)
}

/// How long a command waits for another writer (e.g. `serve`'s scheduled snapshot, which
/// may be dumping a large database) before giving up with the holder's name.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// Takes the writer lock in `dir`, saying so when it has to wait.
fn wait_for_lock(dir: &std::path::Path) -> Result<WriterLock> {
    match WriterLock::acquire(dir, Duration::ZERO) {
        Ok(l) => Ok(l),
        Err(peakguard_backup::BackupError::Locked { holder, .. }) => {
            eprintln!(
                "peakguard: another writer is at work on the repository{holder}; waiting up to {}s…",
                LOCK_WAIT.as_secs()
            );
            Ok(WriterLock::acquire(dir, LOCK_WAIT)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The writer lock of the main repository.
fn lock(site: &BackupSite) -> Result<WriterLock> {
    wait_for_lock(&site.state_dir)
}

/// The writer lock of the bunker (its own, so copies never hold up snapshots).
fn bunker_lock(site: &BackupSite) -> Result<WriterLock> {
    wait_for_lock(&site.state_dir.join("bunker"))
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn snapshot_line(s: &SnapshotInfo) -> String {
    format!(
        "{:28} {:25} {:9} {:>7} files {:>10}  wp {:8} db {}",
        s.id,
        s.time,
        s.kind.map_or("-", |k| k.as_str()),
        s.files,
        human_bytes(s.bytes),
        s.wordpress_version.as_deref().unwrap_or("-"),
        s.database_bytes.map_or("-".into(), human_bytes),
    )
}

pub fn run(command: BackupCommand) -> Result<ExitCode> {
    match command {
        BackupCommand::Backup { site, json } => {
            let (config, site) = site_of(&site)?;
            let lock = lock(&site)?;
            let repo = open(&site, false, true, json)?;
            let out = repo.backup(&lock, &site.plan(Kind::Manual));
            journal(
                &config,
                "backup",
                &site.name,
                out.as_ref().map(|o| site.describe(o)),
            );
            let out = out?;
            if json {
                print_json(&out)?;
            } else {
                println!("{}", site.describe(&out));
                for f in &out.unreadable {
                    println!("  unreadable (allowed): {f}");
                }
            }
            if let Some(bunker) = &site.bunker
                && !json
            {
                println!(
                    "the bunker ({}) receives it at the next `peakguard copy` or scheduled run",
                    bunker.location
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Snapshots { site, bunker, json } => {
            let (_, site) = site_of(&site)?;
            let repo = open(&site, bunker, false, json)?;
            let snaps = repo.snapshots(Some(&site.name))?;
            let lag = if bunker {
                let main = open(&site, false, false, json)?;
                Some(main.missing_in(&repo, &site.name)?)
            } else {
                None
            };
            // A rollback's kept tables, read from the database (best effort: it may be down).
            let kept = site
                .database
                .as_ref()
                .and_then(|db| peakguard_backup::rollback_kept_tables(db).ok())
                .unwrap_or_default();
            if json {
                print_json(&serde_json::json!({
                    "repository": repo.location(),
                    "snapshots": snaps,
                    "bunker_lag": lag,
                    "rollback_kept_tables": kept,
                }))?;
            } else {
                println!(
                    "{} snapshot(s) of {} in {}",
                    snaps.len(),
                    site.name,
                    repo.location()
                );
                for s in &snaps {
                    println!("{}", snapshot_line(s));
                }
                if !kept.is_empty() {
                    println!(
                        "the last rollback kept the previous database as {} `pgold_` table(s); `peakguard rollback --finish` drops them",
                        kept.len()
                    );
                }
                if let Some(lag) = lag {
                    if lag.missing.is_empty() {
                        println!("bunker is up to date");
                    } else {
                        println!(
                            "bunker lags by {} snapshot(s), oldest missing {}s old: {}",
                            lag.missing.len(),
                            lag.lag_secs,
                            lag.missing
                                .iter()
                                .map(|s| s.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Diff {
            site,
            from,
            to,
            json,
        } => {
            let (_, site) = site_of(&site)?;
            let repo = open(&site, false, false, json)?;
            let d = repo.diff(Some(&site.name), &from, &to)?;
            if json {
                print_json(&d)?;
            } else {
                println!("{} → {}", d.from.id, d.to.id);
                for p in &d.added {
                    println!("+ {p}");
                }
                for p in &d.changed {
                    println!("M {p}");
                }
                for p in &d.removed {
                    println!("- {p}");
                }
                println!(
                    "{} added, {} changed, {} removed; database {}",
                    d.added.len(),
                    d.changed.len(),
                    d.removed.len(),
                    if d.database_changed {
                        "CHANGED"
                    } else {
                        "unchanged"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Restore {
            site,
            snapshot,
            to,
            bunker,
            json,
        } => {
            let (_, site) = site_of(&site)?;
            let repo = open(&site, bunker, false, json)?;
            let out = repo.restore(Some(&site.name), &snapshot, &to)?;
            if json {
                print_json(&out)?;
            } else {
                println!(
                    "restored {} into {} (files in site/, database in database.sql) in {:.2}s",
                    out.snapshot.id,
                    out.to.display(),
                    out.seconds
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Check {
            site,
            read_data,
            bunker,
            json,
        } => {
            let (_, site) = site_of(&site)?;
            let repo = open(&site, bunker, false, json)?;
            let out = repo.check(read_data)?;
            let ok = out.errors.is_empty();
            if json {
                print_json(&out)?;
            } else {
                for w in &out.warnings {
                    println!("warning: {w}");
                }
                for e in &out.errors {
                    println!("ERROR: {e}");
                }
                println!(
                    "{}: {} ({}) in {:.2}s",
                    out.location,
                    if ok { "no errors" } else { "DAMAGED" },
                    if read_data {
                        "structure and all data read"
                    } else {
                        "structure; add --read-data to read every pack"
                    },
                    out.seconds
                );
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        BackupCommand::Export {
            site,
            snapshot,
            to,
            bunker,
        } => {
            let (_, site) = site_of(&site)?;
            let repo = open(&site, bunker, false, false)?;
            let out = repo.export(Some(&site.name), &snapshot, &to)?;
            println!(
                "wrote {} ({} entries, {} of content) from {}",
                out.to.display(),
                out.entries,
                human_bytes(out.bytes),
                out.snapshot.id
            );
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Copy { site, json } => {
            let (_, site) = site_of(&site)?;
            let lock = bunker_lock(&site)?;
            let main = open(&site, false, false, json)?;
            let bunker_spec = site
                .bunker
                .as_ref()
                .with_context(|| format!("site {:?} has no [site.backup.bunker]", site.name))?;
            let bunker = Repo::open(bunker_spec, true, progress(json))?;
            let out = main.copy_to(&bunker, &lock, &site.name)?;
            if json {
                print_json(&out)?;
            } else {
                println!(
                    "copied {} snapshot(s) to {} in {:.2}s; {} still missing",
                    out.copied.len(),
                    bunker.location(),
                    out.seconds,
                    out.missing.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Prune { site, bunker, json } => {
            let (_, site) = site_of(&site)?;
            let lock = if bunker {
                bunker_lock(&site)?
            } else {
                lock(&site)?
            };
            let repo = open(&site, bunker, false, json)?;
            let out = repo.apply_retention(&lock, &site.name, &site.retention(bunker), true)?;
            if json {
                print_json(&out)?;
            } else {
                println!(
                    "kept {}, forgot {}; {} no longer used (marked now, deleted by a prune at least 23 h later), {} marked pack(s) deleted now; in {:.2}s",
                    out.kept,
                    out.forgotten.len(),
                    human_bytes(out.unused_bytes),
                    out.packs_deleted,
                    out.seconds
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Rollback {
            site,
            snapshot,
            finish,
            force,
            keep_orders,
            no_keep_orders,
            admin,
            token,
            json,
        } => {
            let admin = crate::cli::AdminArgs {
                admin,
                token,
                config: site.config.clone(),
            };
            let (config, site) = site_of(&site)?;
            let lock = lock(&site)?;
            if finish {
                let db = site
                    .database
                    .as_ref()
                    .context("this site's backups have no database: nothing to finish")?;
                let dropped = peakguard_backup::finish_rollback(db);
                journal(
                    &config,
                    "rollback --finish",
                    &site.name,
                    dropped
                        .as_ref()
                        .map(|d| format!("dropped {} table(s) kept from the rollback", d.len())),
                );
                let dropped = dropped?;
                if json {
                    print_json(&serde_json::json!({ "dropped": dropped }))?;
                } else if dropped.is_empty() {
                    println!("no tables kept from a rollback");
                } else {
                    println!(
                        "dropped {} table(s) kept from the last rollback",
                        dropped.len()
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let snapshot = snapshot.context("name the snapshot to roll back to")?;
            let repo = open(&site, false, false, json)?;
            let hooks = Hooks {
                client: AdminClient::from_args(&admin, Some(&config)).map_err(|e| e.to_string()),
            };
            let plan = RollbackPlan {
                site: site.plan(Kind::Safety),
                target: snapshot,
                keep_orders: if keep_orders {
                    Some(true)
                } else if no_keep_orders {
                    Some(false)
                } else {
                    None
                },
                work_dir: site.state_dir.clone(),
                force,
            };
            let mut print_step = |s: &peakguard_backup::Step| {
                if !json {
                    println!("{:>7.2}s  {:38} {}", s.seconds, s.name, s.note);
                }
            };
            let out = repo.rollback(&lock, &plan, &hooks, &mut print_step);
            journal(
                &config,
                "rollback",
                &site.name,
                out.as_ref().map(|o| {
                    format!(
                        "to snapshot {} in {:.2}s (undo: snapshot {})",
                        o.target.id, o.seconds, o.safety.id
                    )
                }),
            );
            let out = out?;
            if json {
                print_json(&out)?;
            } else {
                println!(
                    "rolled {} back to {} in {:.2}s; undo with `peakguard rollback {}`",
                    site.name, out.target.id, out.seconds, out.safety.id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Journals what this command did by itself (a backup or a rollback run here, not through
/// the admin API), succeeded or not. A journal that cannot be written is reported, and the
/// command's own result stands.
fn journal<E: std::fmt::Display>(
    config: &peakguard_config::Config,
    what: &str,
    site: &str,
    outcome: std::result::Result<String, &E>,
) {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .map_or_else(|_| "cli".to_owned(), |u| format!("cli ({u})"));
    let (detail, result) = match outcome {
        Ok(detail) => (detail, "ok".to_owned()),
        Err(e) => (
            String::new(),
            e.to_string().lines().next().unwrap_or("failed").to_owned(),
        ),
    };
    let event = peakguard_journal::Event {
        who,
        what: what.to_owned(),
        site: Some(site.to_owned()),
        detail,
        result,
    };
    if let Err(e) = peakguard_journal::Journal::new(&config.journal.file).append(event) {
        eprintln!("warning: not journaled: {e}");
    }
}

struct Hooks {
    client: std::result::Result<AdminClient, String>,
}

impl EdgeHooks for Hooks {
    fn maintenance(&self, on: bool) -> std::result::Result<(), String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let q = if on {
            "/maintenance?state=on&message=Restoring%20a%20backup"
        } else {
            "/maintenance?state=off"
        };
        client.post(q).map(|_| ()).map_err(|e| e.to_string())
    }

    fn purge_all(&self) -> std::result::Result<(), String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        client
            .post("/purge?all=1")
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
