//! The rollback's tables, all in the site's own database: the snapshot is imported as
//! `pgnew_<table>`, one `RENAME TABLE` moves the live tables to `pgold_<table>` and the
//! imported ones into place, and the `pgold_` tables stay until `peakguard rollback --finish`
//! (they are the previous state, and what orders written during the swap are read from).

use super::orders;
use crate::database::{Database, sql_ident, sql_string};
use crate::error::Result;

/// The imported snapshot's tables, before the swap.
pub const NEW: &str = "pgnew_";
/// The previous live tables, after the swap.
pub const OLD: &str = "pgold_";

/// Ids left free above the live tables' counters for rows written between the copy of the
/// orders and the swap: those get ids below it in the previous tables and are carried after
/// the swap without meeting an id the new tables hand out.
const ID_MARGIN: u64 = 1000;

/// The live site's tables: every base table but the rollback's own.
pub fn live(db: &Database) -> Result<Vec<String>> {
    Ok(orders::tables(db)?
        .into_iter()
        .filter(|t| !t.starts_with(NEW) && !t.starts_with(OLD))
        .collect())
}

/// Tables named with `prefix` (a rollback's imported or kept tables).
pub fn with_prefix(db: &Database, prefix: &str) -> Result<Vec<String>> {
    Ok(orders::tables(db)?
        .into_iter()
        .filter(|t| t.starts_with(prefix))
        .collect())
}

/// Drops `tables` (one statement; missing ones are fine).
pub fn drop_tables(db: &Database, tables: &[String]) -> Result<()> {
    if tables.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = tables.iter().map(|t| sql_ident(t)).collect();
    db.execute_script(
        Some(&db.name),
        &format!(
            "SET SESSION foreign_key_checks = 0;\nDROP TABLE IF EXISTS {};",
            list.join(", ")
        ),
    )
}

/// The previous state a rollback kept (`pgold_` tables), dropped: `rollback --finish`.
pub fn finish(db: &Database) -> Result<Vec<String>> {
    let kept = with_prefix(db, OLD)?;
    drop_tables(db, &kept)?;
    Ok(kept)
}

/// Sets each imported table's id counter above the live one's (plus a margin), so ids never
/// repeat across the rollback: not for rows written during the swap, not for orders carried
/// over, not after rolling forward again.
pub fn raise_counters(db: &Database, imported: &[String]) -> Result<()> {
    let rows = db.query(
        None,
        &format!(
            "SELECT table_name, auto_increment FROM information_schema.tables WHERE table_schema = {} AND auto_increment IS NOT NULL",
            sql_string(&db.name)
        ),
    )?;
    let counter = |table: &str| {
        rows.iter()
            .find(|r| r.first().is_some_and(|t| t == table))
            .and_then(|r| r.get(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let mut script = String::new();
    for table in imported {
        let (Some(live), Some(_)) = (counter(table), counter(&format!("{NEW}{table}"))) else {
            continue;
        };
        script.push_str(&format!(
            "ALTER TABLE {} AUTO_INCREMENT = {};\n",
            sql_ident(&format!("{NEW}{table}")),
            live.saturating_add(ID_MARGIN)
        ));
    }
    if script.is_empty() {
        return Ok(());
    }
    db.execute_script(Some(&db.name), &script)
}

/// One `RENAME TABLE`: every live table but those kept live to `pgold_`, every imported one
/// into place. Atomic: the site sees the old set or the new one.
pub fn swap(
    db: &Database,
    live: &[String],
    kept_live: &[String],
    imported: &[String],
) -> Result<()> {
    let mut renames = Vec::new();
    for t in live.iter().filter(|t| !kept_live.contains(t)) {
        renames.push(format!(
            "{} TO {}",
            sql_ident(t),
            sql_ident(&format!("{OLD}{t}"))
        ));
    }
    for t in imported {
        renames.push(format!(
            "{} TO {}",
            sql_ident(&format!("{NEW}{t}")),
            sql_ident(t)
        ));
    }
    if renames.is_empty() {
        return Ok(());
    }
    db.execute_script(
        Some(&db.name),
        &format!("RENAME TABLE {};", renames.join(",\n  ")),
    )
}
