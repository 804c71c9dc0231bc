//! `rollback SNAPSHOT` on the live site: maintenance on → safety snapshot → files restored to
//! a staging directory → the dump imported beside the live tables, in the site's own
//! database (`pgnew_<table>`; orders and customers carried over) while the staged files are
//! written to disk → files swapped in → tables swapped with one `RENAME TABLE` (the previous
//! ones kept as `pgold_<table>` until `rollback --finish`) → orders placed during the swap
//! carried over → cache purged → maintenance off.
//! Every step is timed and reported; a failure undoes what was done and says so, and
//! maintenance ends on every way out.

mod orders;
mod rename_dump;
mod swap;
mod tables;

pub use orders::Carried;

use crate::backup::BackupPlan;
use crate::database::Database;
use crate::error::{BackupError, Result};
use crate::repo::Repo;
use crate::restore::{Indexed, restore_tree};
use crate::snapshot::{Kind, SnapshotInfo};
use crate::source::{DUMP_PATH, SITE_DIR};
use rename_dump::{Renaming, RenamingWriter};
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
    /// Go on when maintenance cannot be switched on.
    pub force: bool,
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
}

impl Run<'_> {
    fn step<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> Result<(T, String)>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = f();
        let note = match &result {
            Ok((_, note)) => note.clone(),
            Err(e) => format!("FAILED: {e}"),
        };
        let step = Step {
            name,
            seconds: started.elapsed().as_secs_f64(),
            note,
        };
        (self.on_step)(&step);
        self.steps.push(step);
        result.map(|(value, _)| value)
    }
}

/// Maintenance switched on by the rollback, switched off when this value goes: at the end,
/// on every early return and on a panic alike.
struct Maintenance<'a> {
    hooks: &'a dyn EdgeHooks,
    on: bool,
}

impl Maintenance<'_> {
    /// Ends maintenance now, saying whether it worked.
    fn end(&mut self) -> std::result::Result<(), String> {
        if !std::mem::replace(&mut self.on, false) {
            return Ok(());
        }
        self.hooks.maintenance(false)
    }
}

impl Drop for Maintenance<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.end() {
            log::error!("could not end maintenance: {e}; run `peakguard maintenance off`");
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
        };
        let mut maintenance = Maintenance { hooks, on: false };

        run.step("maintenance on", || match hooks.maintenance(true) {
            Ok(()) => {
                maintenance.on = true;
                Ok(((), "visitors see the maintenance page".to_string()))
            }
            Err(why) if plan.force => Ok((
                (),
                format!(
                    "no edge answered ({why}); going on because of --force: visitors may see a \
                     half-restored site for a moment, and orders placed during the swap are \
                     carried over after it"
                ),
            )),
            Err(why) => Err(BackupError::Rollback {
                step: "maintenance on".into(),
                message: format!("no edge answered ({why})"),
                recovery: "nothing was changed; start the edge (or check admin.listen, --admin \
                           and the token), or run again with --force to roll back without \
                           maintenance"
                    .into(),
            }),
        })?;

        let repo = self.indexed()?;
        let has_dump = repo
            .node_from_snapshot_and_path(&target, DUMP_PATH.trim_start_matches('/'))
            .ok();
        let db = site.database.clone().filter(|_| has_dump.is_some());

        if let Some(db) = &db {
            let leftovers = [
                tables::with_prefix(db, tables::NEW)?,
                tables::with_prefix(db, tables::OLD)?,
            ]
            .concat();
            if !leftovers.is_empty() {
                run.step("finish the previous rollback", || {
                    tables::drop_tables(db, &leftovers)?;
                    Ok((
                        (),
                        format!(
                            "dropped {} table(s) it kept (`{}`…)",
                            leftovers.len(),
                            leftovers[0]
                        ),
                    ))
                })
                .map_err(|e| fail("finish the previous rollback", e, "nothing was changed"))?;
            }
        }

        let safety_plan = BackupPlan {
            kind: Kind::Safety,
            ..site.clone()
        };
        let safety = run
            .step("safety snapshot", || {
                let out = self.backup(&safety_plan)?;
                let note = format!(
                    "{} (undo with `peakguard rollback {}`)",
                    out.snapshot.id, out.snapshot.id
                );
                Ok((out.snapshot, note))
            })
            .map_err(|e| fail("safety snapshot", e, "nothing was changed"))?;

        // What the import makes: every snapshot table but those the live site keeps.
        let (live, keep) = match &db {
            Some(db) => {
                let live = tables::live(db)?;
                let keep = match plan.keep_orders {
                    Some(k) => k,
                    None => orders::has_woocommerce(db).unwrap_or(false),
                };
                let kept_live = if keep {
                    orders::kept_live(db, &live)
                } else {
                    Vec::new()
                };
                (live, Some((keep, kept_live)))
            }
            None => (Vec::new(), None),
        };
        let renaming = Renaming {
            prefix: tables::NEW.into(),
            skip: keep
                .as_ref()
                .map(|(_, k)| k.iter().cloned().collect())
                .unwrap_or_default(),
            skip_prefixes: vec![tables::NEW.into(), tables::OLD.into()],
        };
        rename_dump::check_lengths(&renaming, &live)
            .map_err(|e| fail("restore files to staging", e, "nothing was changed"))?;

        let root = site.root.clone();
        let staging = sibling(&root, "peakguard-staging");
        let dump_file = plan.work_dir.join("rollback-database.sql");
        let cleanup_staging = |staging: &Path| {
            let _ = std::fs::remove_dir_all(staging);
        };
        let dump_node = has_dump.as_ref().filter(|_| db.is_some());
        let imported = match run.step("restore files to staging", || {
            if staging.exists() {
                std::fs::remove_dir_all(&staging).map_err(|e| {
                    BackupError::io("removing the old staging directory", &staging, e)
                })?;
            }
            std::fs::create_dir_all(&staging)
                .map_err(|e| BackupError::io("creating", &staging, e))?;
            // The dump is written beside the files, not after them.
            let imported = std::thread::scope(|scope| -> Result<Vec<String>> {
                let dump = dump_node.map(|node| {
                    scope.spawn(|| write_dump(&repo, node, &plan.work_dir, &dump_file, &renaming))
                });
                let files = restore_tree(
                    self,
                    &repo,
                    &target,
                    SITE_DIR.trim_start_matches('/'),
                    &staging,
                );
                let imported = match dump {
                    Some(dump) => dump
                        .join()
                        .map_err(|_| BackupError::Other("the dump writer panicked".into()))??,
                    None => Vec::new(),
                };
                files.map(|()| imported)
            })?;
            Ok((imported, format!("into {}", staging.display())))
        }) {
            Ok(imported) => imported,
            Err(e) => {
                cleanup_staging(&staging);
                let _ = std::fs::remove_file(&dump_file);
                return Err(fail(
                    "restore files to staging",
                    e,
                    "the live site was not changed",
                ));
            }
        };

        // The staged files go to disk while the database imports; the swap waits for it.
        let flushing = {
            let staging = staging.clone();
            std::thread::spawn(move || swap::flush_filesystem(&staging))
        };
        // Undoes the database's part: the imported tables go.
        let drop_imported = |db: &Database| {
            if let Err(e) =
                tables::with_prefix(db, tables::NEW).and_then(|t| tables::drop_tables(db, &t))
            {
                log::warn!("could not drop the imported `{}` tables: {e}", tables::NEW);
            }
        };

        let mut carried = Carried::default();
        if let (Some(db), Some((keep, kept_live))) = (&db, &keep) {
            let prepared = run
                .step("import database beside the live tables", || {
                    db.import(&db.name, &dump_file)?;
                    Ok((
                        (),
                        format!(
                            "{} tables as `{}<table>` in `{}`",
                            imported.len(),
                            tables::NEW,
                            db.name
                        ),
                    ))
                })
                .and_then(|()| {
                    if !keep {
                        return Ok(());
                    }
                    carried = run.step("carry over orders and customers", || {
                        let mut c = orders::carry(db, "", tables::NEW, orders::Carry::Replace)?;
                        c.kept_live = kept_live.clone();
                        let note = format!(
                            "{} order(s) and {} customer(s) as they are now; {} order table(s) stay live",
                            c.orders,
                            c.customers,
                            kept_live.len()
                        );
                        Ok((c, note))
                    })?;
                    Ok(())
                })
                .and_then(|()| {
                    run.step("keep ids unique", || {
                        tables::raise_counters(db, &imported)?;
                        Ok((
                            (),
                            "new rows get ids above every live one".to_string(),
                        ))
                    })
                });
            if let Err(e) = prepared {
                drop_imported(db);
                cleanup_staging(&staging);
                let _ = std::fs::remove_file(&dump_file);
                return Err(fail(
                    "import database",
                    e,
                    "the live database and files were not changed",
                ));
            }
        }

        if let Err(e) = run.step("write staged files to disk", || {
            flushing
                .join()
                .map_err(|_| BackupError::Other("the disk flush thread panicked".into()))??;
            Ok(((), "the snapshot's files are on disk".to_string()))
        }) {
            if let Some(db) = &db {
                drop_imported(db);
            }
            cleanup_staging(&staging);
            return Err(fail(
                "write staged files",
                e,
                "the live site was not changed",
            ));
        }

        let mut swap_failed = None;
        let swapped = run.step("swap files", || {
            if let Err(failed) = swap::exchange(&staging, &root) {
                let error = BackupError::Other(failed.error.to_string());
                swap_failed = Some(failed);
                return Err(error);
            }
            // Swapped already: a failure to persist the rename is told, not undone.
            let durable = match root.parent().map(swap::sync_dir) {
                Some(Err(e)) => format!(" (the swap may not survive a crash yet: {e})"),
                _ => String::new(),
            };
            Ok((
                (),
                format!("{} now holds the snapshot's files{durable}", root.display()),
            ))
        });
        if let Err(e) = swapped {
            if let Some(db) = &db {
                drop_imported(db);
            }
            let recovery = match &swap_failed {
                Some(failed) => failed.discard_staged(&root),
                None => {
                    cleanup_staging(&staging);
                    "the live site was not changed".to_string()
                }
            };
            return Err(fail("swap files", e, &recovery));
        }

        if let (Some(db), Some((_, kept_live))) = (&db, &keep)
            && let Err(e) = run.step("swap database tables", || {
                tables::swap(db, &live, kept_live, &imported)?;
                Ok((
                    (),
                    format!(
                        "the snapshot's tables are live; the previous ones are kept as `{}<table>`",
                        tables::OLD
                    ),
                ))
            })
        {
            drop_imported(db);
            let recovery = match swap::exchange(&staging, &root) {
                Ok(()) => {
                    cleanup_staging(&staging);
                    "the files were swapped back; the live database was not changed".to_string()
                }
                Err(u) => format!(
                    "swapping the files back failed too ({}): the previous files are in {}",
                    u.error,
                    u.a_at.display()
                ),
            };
            return Err(fail("swap database", e, &recovery));
        }

        if let (Some(db), Some((true, _))) = (&db, &keep) {
            let missed = run.step("carry over orders placed during the swap", || {
                let c = orders::carry(db, tables::OLD, "", orders::Carry::Missed)?;
                Ok((
                    c.clone(),
                    format!("{} order(s), {} customer(s)", c.orders, c.customers),
                ))
            });
            match missed {
                Ok(c) => {
                    carried.orders += c.orders;
                    carried.customers += c.customers;
                }
                Err(e) => {
                    return Err(fail(
                        "carry over orders placed during the swap",
                        e,
                        &format!(
                            "the site is rolled back, but orders placed during the swap may be only \
                             in the `{}` tables: copy them before `peakguard rollback --finish`",
                            tables::OLD
                        ),
                    ));
                }
            }
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
        if maintenance.on {
            run.step("maintenance off", || {
                maintenance.end().map_err(|e| {
                    BackupError::Other(format!(
                        "could not end maintenance: {e}; run `peakguard maintenance off`"
                    ))
                })?;
                Ok(((), "visitors see the site again".to_string()))
            })?;
        }
        run.step("clean up", || {
            cleanup_staging(&staging);
            let _ = std::fs::remove_file(&dump_file);
            let kept = if db.is_some() {
                format!(
                    "; the previous tables stay as `{}<table>` until `peakguard rollback --finish`",
                    tables::OLD
                )
            } else {
                String::new()
            };
            Ok((
                (),
                format!("previous files removed (they are in the safety snapshot){kept}"),
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

/// A failed step's error, with what the rollback left as it was.
fn fail(step: &str, err: BackupError, recovery: &str) -> BackupError {
    if let BackupError::Rollback { .. } = err {
        return err;
    }
    BackupError::Rollback {
        step: step.to_string(),
        message: err.to_string(),
        recovery: recovery.to_string(),
    }
}

/// The tables a rollback kept (`pgold_`), for `peakguard snapshots`.
pub fn kept_tables(db: &Database) -> Result<Vec<String>> {
    tables::with_prefix(db, tables::OLD)
}

/// `peakguard rollback --finish`: drops the tables the last rollback kept.
pub fn finish(db: &Database) -> Result<Vec<String>> {
    tables::finish(db)
}

/// Writes the snapshot's dump node to `file` (in `work_dir`, created if needed), its tables
/// renamed for an import beside the live ones; returns the tables it creates.
fn write_dump(
    repo: &Indexed,
    node: &Node,
    work_dir: &Path,
    file: &Path,
    renaming: &Renaming,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(work_dir).map_err(|e| BackupError::io("creating", work_dir, e))?;
    let created = peakguard_config::private_fs::create_private(file)
        .map_err(|e| BackupError::io("creating", file, e))?;
    let out = std::io::BufWriter::with_capacity(1 << 20, created);
    let mut renamed = RenamingWriter::new(out, renaming.clone());
    repo.dump(node, &mut renamed)
        .map_err(|e| BackupError::Damaged {
            path: DUMP_PATH.into(),
            message: e.display_log(),
        })?;
    let (_, tables) = renamed
        .finish()
        .map_err(|e| BackupError::io("writing", file, e))?;
    Ok(tables)
}

/// A hidden sibling of `root` on the same filesystem (so it can be swapped in).
fn sibling(root: &Path, what: &str) -> PathBuf {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site".into());
    root.with_file_name(format!(".{name}.{what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<bool>>);

    impl EdgeHooks for Recorded {
        fn maintenance(&self, on: bool) -> std::result::Result<(), String> {
            self.0.lock().map_err(|e| e.to_string())?.push(on);
            Ok(())
        }
        fn purge_all(&self) -> std::result::Result<(), String> {
            Ok(())
        }
    }

    fn calls(hooks: &Recorded) -> Vec<bool> {
        hooks.0.lock().expect("lock").clone()
    }

    #[test]
    fn maintenance_ends_on_a_panic_an_early_return_and_once_only() {
        let hooks = Recorded::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _m = Maintenance {
                hooks: &hooks,
                on: true,
            };
            panic!("a step panics");
        }));
        assert!(panicked.is_err());
        assert_eq!(calls(&hooks), vec![false], "switched off while unwinding");

        let hooks = Recorded::default();
        let early = || -> Result<()> {
            let _m = Maintenance {
                hooks: &hooks,
                on: true,
            };
            Err(BackupError::Other("a step fails".into()))
        };
        assert!(early().is_err());
        assert_eq!(
            calls(&hooks),
            vec![false],
            "switched off on an early return"
        );

        let hooks = Recorded::default();
        {
            let mut m = Maintenance {
                hooks: &hooks,
                on: true,
            };
            m.end().expect("end");
        }
        assert_eq!(calls(&hooks), vec![false], "ended once, not again on drop");

        let hooks = Recorded::default();
        drop(Maintenance {
            hooks: &hooks,
            on: false,
        });
        assert!(
            calls(&hooks).is_empty(),
            "never switched on, never switched off"
        );
    }
}
