//! `rollback SNAPSHOT` on the live site: maintenance on → safety snapshot → files restored to
//! a staging directory → the dump imported into a fresh schema (orders carried over) while
//! the staged files are written to disk → files swapped in → tables swapped with one
//! `RENAME TABLE` → cache purged → maintenance off.
//! Every step is timed and reported; a failure undoes what was done and says so.

mod orders;
mod swap;

pub use orders::Carried;

use crate::backup::BackupPlan;
use crate::database::{Database, sql_ident, sql_string};
use crate::error::{BackupError, Result};
use crate::repo::Repo;
use crate::restore::{Indexed, restore_tree};
use crate::snapshot::{Kind, SnapshotInfo};
use crate::source::{DUMP_PATH, SITE_DIR};
use rustic_core::repofile::Node;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the rollback asks of the edge (the binary talks to its admin API).
pub trait EdgeHooks {
    fn maintenance(&self, on: bool) -> std::result::Result<(), String>;
    fn purge_all(&self) -> std::result::Result<(), String>;
}

#[derive(Debug, Clone)]
pub struct RollbackPlan {
    /// The site as backed up (the safety snapshot uses it too).
    pub site: BackupPlan,
    /// The snapshot to go back to.
    pub target: String,
    /// Carry WooCommerce orders/customers over; `None` = when WooCommerce tables exist.
    pub keep_orders: Option<bool>,
    /// Scratch space for the dump file.
    pub work_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: &'static str,
    pub seconds: f64,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackOutcome {
    pub target: SnapshotInfo,
    pub safety: SnapshotInfo,
    pub steps: Vec<Step>,
    pub carried: Carried,
    pub seconds: f64,
}

struct Run<'a> {
    steps: Vec<Step>,
    on_step: &'a mut dyn FnMut(&Step),
    hooks: &'a dyn EdgeHooks,
    maintenance_set: bool,
}

impl Run<'_> {
    fn step<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> Result<(T, String)>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = f();
        let (value, note) = match result {
            Ok(v) => v,
            Err(e) => {
                let step = Step {
                    name,
                    seconds: started.elapsed().as_secs_f64(),
                    note: format!("FAILED: {e}"),
                };
                (self.on_step)(&step);
                self.steps.push(step);
                return Err(e);
            }
        };
        let step = Step {
            name,
            seconds: started.elapsed().as_secs_f64(),
            note,
        };
        (self.on_step)(&step);
        self.steps.push(step);
        Ok(value)
    }

    /// Ends maintenance after a failure (best effort) and wraps the error.
    fn fail(&mut self, step: &str, err: BackupError, recovery: &str) -> BackupError {
        if self.maintenance_set {
            let _ = self.hooks.maintenance(false);
        }
        BackupError::Rollback {
            step: step.to_string(),
            message: err.to_string(),
            recovery: recovery.to_string(),
        }
    }
}

impl Repo {
    /// Rolls the live site back to `plan.target`. The caller holds the writer lock.
    pub fn rollback(
        &self,
        plan: &RollbackPlan,
        hooks: &dyn EdgeHooks,
        on_step: &mut dyn FnMut(&Step),
    ) -> Result<RollbackOutcome> {
        let started = Instant::now();
        let site = &plan.site;
        let target = self.find(Some(&site.site), &plan.target)?;
        let target_info = SnapshotInfo::from_file(&target);
        let mut run = Run {
            steps: Vec::new(),
            on_step,
            hooks,
            maintenance_set: false,
        };

        let maintenance = run.step("maintenance on", || {
            Ok(match hooks.maintenance(true) {
                Ok(()) => (true, "visitors see the maintenance page".to_string()),
                Err(why) => (
                    false,
                    format!("no edge answered ({why}); going on without it"),
                ),
            })
        })?;
        run.maintenance_set = maintenance;

        let safety_plan = BackupPlan {
            kind: Kind::Safety,
            ..site.clone()
        };
        let safety = match run.step("safety snapshot", || {
            let out = self.backup(&safety_plan)?;
            let note = format!(
                "{} (undo with `peakguard rollback {}`)",
                out.snapshot.id, out.snapshot.id
            );
            Ok((out.snapshot, note))
        }) {
            Ok(s) => s,
            Err(e) => return Err(run.fail("safety snapshot", e, "nothing was changed")),
        };

        let root = site.root.clone();
        let staging = sibling(&root, "peakguard-staging");
        let dump_file = plan.work_dir.join("rollback-database.sql");
        let cleanup_staging = |staging: &Path| {
            let _ = std::fs::remove_dir_all(staging);
        };
        let repo = self.indexed()?;
        let has_dump = repo
            .node_from_snapshot_and_path(&target, DUMP_PATH.trim_start_matches('/'))
            .ok();
        if let Err(e) = run.step("restore files to staging", || {
            if staging.exists() {
                std::fs::remove_dir_all(&staging).map_err(|e| {
                    BackupError::io("removing the old staging directory", &staging, e)
                })?;
            }
            std::fs::create_dir_all(&staging)
                .map_err(|e| BackupError::io("creating", &staging, e))?;
            // The dump is written beside the files, not after them.
            std::thread::scope(|scope| -> Result<()> {
                let dump = has_dump.as_ref().map(|node| {
                    scope.spawn(|| write_dump(&repo, node, &plan.work_dir, &dump_file))
                });
                let files = restore_tree(
                    self,
                    &repo,
                    &target,
                    SITE_DIR.trim_start_matches('/'),
                    &staging,
                );
                if let Some(dump) = dump {
                    dump.join()
                        .map_err(|_| BackupError::Other("the dump writer panicked".into()))??;
                }
                files
            })?;
            Ok(((), format!("into {}", staging.display())))
        }) {
            cleanup_staging(&staging);
            return Err(run.fail(
                "restore files to staging",
                e,
                "the live site was not changed",
            ));
        }

        // The staged files go to disk while the database imports; the swap waits for it.
        let flushing = {
            let staging = staging.clone();
            std::thread::spawn(move || swap::flush_filesystem(&staging))
        };

        let db = site.database.clone().filter(|_| has_dump.is_some());
        let fresh = db.as_ref().map(|d| format!("{}__pgnew", d.name));
        let old = db.as_ref().map(|d| format!("{}__pgold", d.name));
        let mut carried = Carried::default();
        if let (Some(db), Some(fresh)) = (&db, &fresh) {
            if let Err(e) = run.step("import database into a fresh schema", || {
                refuse_triggers(db)?;
                db.execute_script(
                    None,
                    &format!(
                        "DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0} CHARACTER SET utf8mb4;",
                        sql_ident(fresh)
                    ),
                )?;
                db.import(fresh, &dump_file)?;
                Ok(((), format!("into `{fresh}`")))
            }) {
                drop_schema(db, fresh);
                cleanup_staging(&staging);
                return Err(run.fail(
                    "import database",
                    e,
                    "the live database and files were not changed",
                ));
            }
            let keep = match plan.keep_orders {
                Some(k) => k,
                None => orders::has_woocommerce(db, &db.name).unwrap_or(false),
            };
            if keep {
                match run.step("carry over new orders and customers", || {
                    let c = orders::carry_over(db, &db.name, fresh)?;
                    let note = if c.rows.is_empty() {
                        "none since the snapshot".to_string()
                    } else {
                        c.rows
                            .iter()
                            .map(|(t, n)| format!("{t} +{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    Ok((c, note))
                }) {
                    Ok(c) => carried = c,
                    Err(e) => {
                        drop_schema(db, fresh);
                        cleanup_staging(&staging);
                        return Err(run.fail(
                            "carry over orders",
                            e,
                            "the live database and files were not changed",
                        ));
                    }
                }
            }
        }

        if let Err(e) = run.step("write staged files to disk", || {
            flushing
                .join()
                .map_err(|_| BackupError::Other("the disk flush thread panicked".into()))??;
            Ok(((), "the snapshot's files are on disk".to_string()))
        }) {
            if let (Some(db), Some(fresh)) = (&db, &fresh) {
                drop_schema(db, fresh);
            }
            cleanup_staging(&staging);
            return Err(run.fail("write staged files", e, "the live site was not changed"));
        }

        if let Err(e) = run.step("swap files", || {
            swap::exchange(&staging, &root)?;
            // Swapped already: a failure to persist the rename is told, not undone.
            let durable = match root.parent().map(swap::sync_dir) {
                Some(Err(e)) => format!(" (the swap may not survive a crash yet: {e})"),
                _ => String::new(),
            };
            Ok((
                (),
                format!("{} now holds the snapshot's files{durable}", root.display()),
            ))
        }) {
            if let (Some(db), Some(fresh)) = (&db, &fresh) {
                drop_schema(db, fresh);
            }
            cleanup_staging(&staging);
            return Err(run.fail("swap files", e, "the live site was not changed"));
        }

        if let (Some(db), Some(fresh), Some(old)) = (&db, &fresh, &old)
            && let Err(e) = run.step("swap database tables", || {
                swap_tables(db, fresh, old)?;
                Ok((
                    (),
                    format!(
                        "live tables moved to `{old}`, snapshot tables in `{}`",
                        db.name
                    ),
                ))
            })
        {
            let undo = swap::exchange(&staging, &root);
            drop_schema(db, fresh);
            let recovery = match undo {
                Ok(()) => {
                    cleanup_staging(&staging);
                    "the files were swapped back; the live database was not changed".to_string()
                }
                Err(u) => format!(
                    "swapping the files back failed too ({u}): the previous files are in {}",
                    staging.display()
                ),
            };
            return Err(run.fail("swap database", e, &recovery));
        }

        run.step("purge cache", || {
            Ok((
                (),
                match hooks.purge_all() {
                    Ok(()) => "all cached pages dropped".to_string(),
                    Err(why) => format!("not purged ({why}); purge by hand if an edge runs"),
                },
            ))
        })?;
        if maintenance {
            run.step("maintenance off", || {
                hooks.maintenance(false).map_err(|e| {
                    BackupError::Other(format!(
                        "could not end maintenance: {e}; run `peakguard maintenance off`"
                    ))
                })?;
                Ok(((), "visitors see the site again".to_string()))
            })?;
            run.maintenance_set = false;
        }
        run.step("clean up", || {
            cleanup_staging(&staging);
            let _ = std::fs::remove_file(&dump_file);
            if let (Some(db), Some(fresh), Some(old)) = (&db, &fresh, &old) {
                drop_schema(db, old);
                drop_schema(db, fresh);
            }
            Ok((
                (),
                "previous files and tables removed (they are in the safety snapshot)".to_string(),
            ))
        })?;
        Ok(RollbackOutcome {
            target: target_info,
            safety,
            steps: run.steps,
            carried,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// Writes the snapshot's dump node to `file` (in `work_dir`, created if needed).
fn write_dump(repo: &Indexed, node: &Node, work_dir: &Path, file: &Path) -> Result<()> {
    std::fs::create_dir_all(work_dir).map_err(|e| BackupError::io("creating", work_dir, e))?;
    let created = peakguard_config::private_fs::create_private(file)
        .map_err(|e| BackupError::io("creating", file, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, created);
    repo.dump(node, &mut out)
        .map_err(|e| BackupError::Damaged {
            path: DUMP_PATH.into(),
            message: e.display_log(),
        })?;
    std::io::Write::flush(&mut out).map_err(|e| BackupError::io("writing", file, e))
}

/// A hidden sibling of `root` on the same filesystem (so it can be swapped in).
fn sibling(root: &Path, what: &str) -> PathBuf {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site".into());
    root.with_file_name(format!(".{name}.{what}"))
}

fn drop_schema(db: &Database, schema: &str) {
    if let Err(e) = db.execute_script(
        None,
        &format!("DROP DATABASE IF EXISTS {};", sql_ident(schema)),
    ) {
        log::warn!("could not drop schema {schema}: {e}");
    }
}

fn refuse_triggers(db: &Database) -> Result<()> {
    let n = db.scalar(&format!(
        "SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = {}",
        sql_string(&db.name)
    ))?;
    if n > 0 {
        return Err(BackupError::Other(format!(
            "`{}` has {n} trigger(s): tables with triggers cannot be swapped between schemas with RENAME TABLE; restore with `peakguard restore` and import by hand",
            db.name
        )));
    }
    Ok(())
}

/// One `RENAME TABLE` moving every live table to `old` and every imported one into place.
fn swap_tables(db: &Database, fresh: &str, old: &str) -> Result<()> {
    let live_tables = orders::tables(db, &db.name)?;
    let fresh_tables = orders::tables(db, fresh)?;
    let (live, f, o) = (sql_ident(&db.name), sql_ident(fresh), sql_ident(old));
    let mut renames = Vec::new();
    for t in &live_tables {
        let t = sql_ident(t);
        renames.push(format!("{live}.{t} TO {o}.{t}"));
    }
    for t in &fresh_tables {
        let t = sql_ident(t);
        renames.push(format!("{f}.{t} TO {live}.{t}"));
    }
    db.execute_script(
        None,
        &format!(
            "DROP DATABASE IF EXISTS {o}; CREATE DATABASE {o};\nRENAME TABLE {};",
            renames.join(",\n  ")
        ),
    )
}
