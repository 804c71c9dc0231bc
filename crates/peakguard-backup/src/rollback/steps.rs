//! The rollback's steps, one method each, in the order `Repo::rollback` calls them.

use super::{
    Carried, EdgeHooks, Maintenance, RollbackPlan, Run, fail, orders, rename_dump, swap, tables,
    write_dump,
};
use crate::backup::BackupPlan;
use crate::database::Database;
use crate::error::{BackupError, Result};
use crate::lock::WriterLock;
use crate::repo::Repo;
use crate::restore::{Indexed, restore_tree};
use crate::snapshot::{Kind, SnapshotInfo};
use crate::source::SITE_DIR;
use rename_dump::Renaming;
use rustic_core::repofile::Node;
use std::path::PathBuf;

/// The live tables, and whether (and which) orders stay live: `keep` is
/// `Some((keep_orders, kept_live))` when the snapshot's database is imported.
pub(super) struct Tables {
    pub(super) live: Vec<String>,
    pub(super) keep: Option<(bool, Vec<String>)>,
}

/// One rollback in progress. Each step is a method, in the order [`Repo::rollback`] calls
/// them; a failing step undoes what the earlier ones changed and says what it left as it was.
pub(super) struct Rollback<'a> {
    pub(super) repo: &'a Repo,
    pub(super) lock: &'a WriterLock,
    pub(super) plan: &'a RollbackPlan,
    pub(super) hooks: &'a dyn EdgeHooks,
    pub(super) run: Run<'a>,
    pub(super) maintenance: Maintenance<'a>,
    /// The site's database, when the snapshot holds a dump of it.
    pub(super) db: Option<Database>,
    pub(super) root: PathBuf,
    pub(super) staging: PathBuf,
    pub(super) dump_file: PathBuf,
}

impl Rollback<'_> {
    pub(super) fn maintenance_on(&mut self) -> Result<()> {
        let (hooks, force, maintenance) = (self.hooks, self.plan.force, &mut self.maintenance);
        self.run
            .step("maintenance on", || match hooks.maintenance(true) {
                Ok(()) => {
                    maintenance.on = true;
                    Ok(((), "visitors see the maintenance page".to_string()))
                }
                Err(why) if force => Ok((
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
                    recovery:
                        "nothing was changed; start the edge (or check admin.listen, --admin \
                           and the token), or run again with --force to roll back without \
                           maintenance"
                            .into(),
                }),
            })
    }

    /// Tables an earlier rollback kept (`pgnew_`, `pgold_`) are dropped first.
    pub(super) fn finish_previous(&mut self) -> Result<()> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        let leftovers = [
            tables::with_prefix(db, tables::NEW)?,
            tables::with_prefix(db, tables::OLD)?,
        ]
        .concat();
        if leftovers.is_empty() {
            return Ok(());
        }
        self.run
            .step("finish the previous rollback", || {
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
            .map_err(|e| fail("finish the previous rollback", e, "nothing was changed"))
    }

    pub(super) fn safety_snapshot(&mut self) -> Result<SnapshotInfo> {
        let safety_plan = BackupPlan {
            kind: Kind::Safety,
            ..self.plan.site.clone()
        };
        let (repo, lock) = (self.repo, self.lock);
        self.run
            .step("safety snapshot", || {
                let out = repo.backup(lock, &safety_plan)?;
                let note = format!(
                    "{} (undo with `peakguard rollback {}`)",
                    out.snapshot.id, out.snapshot.id
                );
                Ok((out.snapshot, note))
            })
            .map_err(|e| fail("safety snapshot", e, "nothing was changed"))
    }

    /// What the import makes: every snapshot table but those the live site keeps.
    pub(super) fn tables(&self) -> Result<Tables> {
        let Some(db) = &self.db else {
            return Ok(Tables {
                live: Vec::new(),
                keep: None,
            });
        };
        let live = tables::live(db)?;
        let keep = match self.plan.keep_orders {
            Some(k) => k,
            None => orders::has_woocommerce(db).unwrap_or(false),
        };
        let kept_live = if keep {
            orders::kept_live(db, &live)
        } else {
            Vec::new()
        };
        Ok(Tables {
            live,
            keep: Some((keep, kept_live)),
        })
    }

    fn remove_staging(&self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }

    /// The snapshot's files restored to a staging directory beside the live root, while
    /// its dump is written (renamed to `pgnew_<table>`) to the work directory. Returns the
    /// tables the dump creates.
    pub(super) fn stage(
        &mut self,
        indexed: &Indexed,
        target: &rustic_core::repofile::SnapshotFile,
        dump: Option<&Node>,
        tables: &Tables,
    ) -> Result<Vec<String>> {
        let renaming = Renaming {
            prefix: tables::NEW.into(),
            skip: tables
                .keep
                .as_ref()
                .map(|(_, k)| k.iter().cloned().collect())
                .unwrap_or_default(),
            skip_prefixes: vec![tables::NEW.into(), tables::OLD.into()],
        };
        rename_dump::check_lengths(&renaming, &tables.live)
            .map_err(|e| fail("restore files to staging", e, "nothing was changed"))?;
        let dump = dump.filter(|_| self.db.is_some());
        let (repo, staging, work_dir, dump_file) = (
            self.repo,
            &self.staging,
            &self.plan.work_dir,
            &self.dump_file,
        );
        let staged = self.run.step("restore files to staging", || {
            if staging.exists() {
                std::fs::remove_dir_all(staging).map_err(|e| {
                    BackupError::io("removing the old staging directory", staging, e)
                })?;
            }
            std::fs::create_dir_all(staging)
                .map_err(|e| BackupError::io("creating", staging, e))?;
            // The dump is written beside the files, not after them.
            let imported = std::thread::scope(|scope| -> Result<Vec<String>> {
                let dump = dump.map(|node| {
                    scope.spawn(|| write_dump(indexed, node, work_dir, dump_file, &renaming))
                });
                let files = restore_tree(
                    repo,
                    indexed,
                    target,
                    SITE_DIR.trim_start_matches('/'),
                    staging,
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
        });
        staged.map_err(|e| {
            self.remove_staging();
            let _ = std::fs::remove_file(&self.dump_file);
            fail(
                "restore files to staging",
                e,
                "the live site was not changed",
            )
        })
    }

    /// The staged files go to disk while the database imports; the swap waits for it.
    pub(super) fn start_flush(&self) -> std::thread::JoinHandle<Result<()>> {
        let staging = self.staging.clone();
        std::thread::spawn(move || swap::flush_filesystem(&staging))
    }

    /// Undoes the database's part: the imported tables go.
    fn drop_imported(&self) {
        let Some(db) = &self.db else { return };
        if let Err(e) =
            tables::with_prefix(db, tables::NEW).and_then(|t| tables::drop_tables(db, &t))
        {
            log::warn!("could not drop the imported `{}` tables: {e}", tables::NEW);
        }
    }

    /// The dump imported beside the live tables; orders and customers carried over into the
    /// imported ones; counters raised so new rows never reuse a live id.
    pub(super) fn import_database(
        &mut self,
        tables: &Tables,
        imported: &[String],
    ) -> Result<Carried> {
        let mut carried = Carried::default();
        let (Some(db), Some((keep, kept_live))) = (&self.db, &tables.keep) else {
            return Ok(carried);
        };
        let dump_file = &self.dump_file;
        let run = &mut self.run;
        let prepared = run
            .step("import database beside the live tables", || {
                db.import(&db.name, dump_file)?;
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
                    tables::raise_counters(db, imported)?;
                    Ok(((), "new rows get ids above every live one".to_string()))
                })
            });
        if let Err(e) = prepared {
            self.drop_imported();
            self.remove_staging();
            let _ = std::fs::remove_file(&self.dump_file);
            return Err(fail(
                "import database",
                e,
                "the live database and files were not changed",
            ));
        }
        Ok(carried)
    }

    pub(super) fn write_staged(
        &mut self,
        flushing: std::thread::JoinHandle<Result<()>>,
    ) -> Result<()> {
        let written = self.run.step("write staged files to disk", || {
            flushing
                .join()
                .map_err(|_| BackupError::Other("the disk flush thread panicked".into()))??;
            Ok(((), "the snapshot's files are on disk".to_string()))
        });
        written.map_err(|e| {
            self.drop_imported();
            self.remove_staging();
            fail("write staged files", e, "the live site was not changed")
        })
    }

    pub(super) fn swap_files(&mut self) -> Result<()> {
        let mut swap_failed = None;
        let (staging, root) = (&self.staging, &self.root);
        let swapped = self.run.step("swap files", || {
            if let Err(failed) = swap::exchange(staging, root) {
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
        swapped.map_err(|e| {
            self.drop_imported();
            let recovery = match &swap_failed {
                Some(failed) => failed.discard_staged(&self.root),
                None => {
                    self.remove_staging();
                    "the live site was not changed".to_string()
                }
            };
            fail("swap files", e, &recovery)
        })
    }

    /// One `RENAME TABLE`: the imported tables live, the previous ones kept as `pgold_`.
    pub(super) fn swap_tables(&mut self, tables: &Tables, imported: &[String]) -> Result<()> {
        let (Some(db), Some((_, kept_live))) = (&self.db, &tables.keep) else {
            return Ok(());
        };
        let swapped = self.run.step("swap database tables", || {
            tables::swap(db, &tables.live, kept_live, imported)?;
            Ok((
                (),
                format!(
                    "the snapshot's tables are live; the previous ones are kept as `{}<table>`",
                    tables::OLD
                ),
            ))
        });
        swapped.map_err(|e| {
            self.drop_imported();
            let recovery = match swap::exchange(&self.staging, &self.root) {
                Ok(()) => {
                    self.remove_staging();
                    "the files were swapped back; the live database was not changed".to_string()
                }
                Err(u) => format!(
                    "swapping the files back failed too ({}): the previous files are in {}",
                    u.error,
                    u.a_at.display()
                ),
            };
            fail("swap database", e, &recovery)
        })
    }

    /// Orders placed during the swap (in the `pgold_` tables now) carried over.
    pub(super) fn carry_missed(&mut self, tables: &Tables, carried: &mut Carried) -> Result<()> {
        let (Some(db), Some((true, _))) = (&self.db, &tables.keep) else {
            return Ok(());
        };
        let missed = self
            .run
            .step("carry over orders placed during the swap", || {
                let c = orders::carry(db, tables::OLD, "", orders::Carry::Missed)?;
                Ok((
                    c.clone(),
                    format!("{} order(s), {} customer(s)", c.orders, c.customers),
                ))
            })
            .map_err(|e| {
                fail(
                    "carry over orders placed during the swap",
                    e,
                    &format!(
                        "the site is rolled back, but orders placed during the swap may be only \
                         in the `{}` tables: copy them before `peakguard rollback --finish`",
                        tables::OLD
                    ),
                )
            })?;
        carried.orders += missed.orders;
        carried.customers += missed.customers;
        Ok(())
    }

    /// The cache purged, then the site opened again.
    pub(super) fn purge_and_reopen(&mut self) -> Result<()> {
        let hooks = self.hooks;
        self.run.step("purge cache", || {
            Ok((
                (),
                match hooks.purge_all() {
                    Ok(()) => "all cached pages dropped".to_string(),
                    Err(why) => format!("not purged ({why}); purge by hand if an edge runs"),
                },
            ))
        })?;
        if self.maintenance.on {
            let maintenance = &mut self.maintenance;
            self.run.step("maintenance off", || {
                maintenance.end().map_err(|e| {
                    BackupError::Other(format!(
                        "could not end maintenance: {e}; run `peakguard maintenance off`"
                    ))
                })?;
                Ok(((), "visitors see the site again".to_string()))
            })?;
        }
        Ok(())
    }

    pub(super) fn clean_up(&mut self) -> Result<()> {
        let (staging, dump_file, db) = (&self.staging, &self.dump_file, &self.db);
        self.run.step("clean up", || {
            let _ = std::fs::remove_dir_all(staging);
            let _ = std::fs::remove_file(dump_file);
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
        })
    }
}
