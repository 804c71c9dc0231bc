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
mod steps;
mod swap;
mod tables;

pub use orders::Carried;

use crate::backup::BackupPlan;
use crate::database::Database;
use crate::error::{BackupError, Result};
use crate::lock::WriterLock;
use crate::repo::Repo;
use crate::restore::Indexed;
use crate::snapshot::SnapshotInfo;
use crate::source::DUMP_PATH;
use rename_dump::{Renaming, RenamingWriter};
use rustic_core::repofile::Node;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use steps::Rollback;

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
    /// Rolls the live site back to `plan.target`, under the site's writer lock: the steps
    /// of [`Rollback`], in order.
    pub fn rollback(
        &self,
        lock: &WriterLock,
        plan: &RollbackPlan,
        hooks: &dyn EdgeHooks,
        on_step: &mut dyn FnMut(&Step),
    ) -> Result<RollbackOutcome> {
        let started = Instant::now();
        let target = self.find(Some(&plan.site.site), &plan.target)?;
        let target_info = SnapshotInfo::from_file(&target);
        let mut r = Rollback {
            repo: self,
            lock,
            plan,
            hooks,
            run: Run {
                steps: Vec::new(),
                on_step,
            },
            maintenance: Maintenance { hooks, on: false },
            db: None,
            root: plan.site.root.clone(),
            staging: sibling(&plan.site.root, "peakguard-staging"),
            dump_file: plan.work_dir.join("rollback-database.sql"),
        };
        r.maintenance_on()?;
        let indexed = self.indexed()?;
        let dump = indexed
            .node_from_snapshot_and_path(&target, DUMP_PATH.trim_start_matches('/'))
            .ok();
        r.db = plan.site.database.clone().filter(|_| dump.is_some());
        r.finish_previous()?;
        let safety = r.safety_snapshot()?;
        let tables = r.tables()?;
        let imported = r.stage(&indexed, &target, dump.as_ref(), &tables)?;
        let flushing = r.start_flush();
        let mut carried = r.import_database(&tables, &imported)?;
        r.write_staged(flushing)?;
        r.swap_files()?;
        r.swap_tables(&tables, &imported)?;
        r.carry_missed(&tables, &mut carried)?;
        r.purge_and_reopen()?;
        r.clean_up()?;
        Ok(RollbackOutcome {
            target: target_info,
            safety,
            steps: r.run.steps,
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
