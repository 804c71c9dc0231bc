//! Rewrites a snapshot's `mariadb-dump` output so that it imports beside the live tables, in
//! the site's own database: every table `T` becomes `<prefix>T`, foreign keys point at the
//! renamed tables and get names that do not clash with the live ones, and the tables the
//! live site keeps (order data) are left out.
//!
//! Why: a WordPress database user has rights on its own database only; it may not create
//! the `<db>__pgnew` schema an import elsewhere needs. Prefixed tables in the same database
//! are swapped in with one `RENAME TABLE` all the same.
//!
//! The dump is ours (`Database::dump_command_line`), so its shape is known: statements that
//! name a table start a line. Anything else that could change the database (a view, a
//! trigger, a routine, an event) is refused before a byte is imported: importing it would act
//! on the live database, not on the prefixed copy.

use crate::error::{BackupError, Result};
use std::collections::HashSet;
use std::io::Write;

/// The longest dump line accepted (an extended INSERT is at most `max_allowed_packet`).
const MAX_LINE: usize = 1 << 30;

/// How tables are renamed, and which are left out.
#[derive(Debug, Clone)]
pub struct Renaming {
    /// Added in front of every table name (`pgn_`).
    pub prefix: String,
    /// Tables the live site keeps: their statements are dropped from the dump.
    pub skip: HashSet<String>,
    /// Tables named so are left out too (an earlier rollback's, caught in a snapshot).
    pub skip_prefixes: Vec<String>,
}

impl Renaming {
    fn skips(&self, table: &str) -> bool {
        self.skip.contains(table) || self.skip_prefixes.iter().any(|p| table.starts_with(p))
    }

    pub fn table(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A foreign key's new name. A generated one (`<table>_ibfk_N`) follows the table's new
    /// name, as InnoDB renames it with the table; any other name toggles the prefix, so it
    /// differs from the live table's (constraint names are unique per database) and does not
    /// grow with every rollback.
    fn constraint(&self, name: &str, table: &str) -> String {
        if let Some(rest) = name.strip_prefix(&format!("{table}_ibfk_")) {
            return format!("{}_ibfk_{rest}", self.table(table));
        }
        match name.strip_prefix(&self.prefix) {
            Some(rest) if !rest.is_empty() => rest.to_string(),
            _ => format!("{}{name}", self.prefix),
        }
    }
}

/// A `Write` adapter: whole lines in, rewritten lines out to `inner`.
pub struct RenamingWriter<W: Write> {
    inner: W,
    renaming: Renaming,
    line: Vec<u8>,
    /// Inside a statement spanning lines: a `CREATE TABLE` block or an `INSERT` whose rows
    /// follow one per line.
    open: Option<Open>,
    line_no: u64,
    /// Tables whose CREATE was seen (so the caller knows what the import makes).
    pub created: Vec<String>,
}

impl<W: Write> RenamingWriter<W> {
    pub fn new(inner: W, renaming: Renaming) -> Self {
        RenamingWriter {
            inner,
            renaming,
            line: Vec::new(),
            open: None,
            line_no: 0,
            created: Vec::new(),
        }
    }

    /// Writes what is left (a last line without a newline) and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<(W, Vec<String>)> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.rewrite_line(&line)?;
        }
        self.inner.flush()?;
        Ok((self.inner, self.created))
    }

    fn rewrite_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.line_no += 1;
        match rewrite(&self.renaming, &mut self.open, line) {
            Ok(Rewritten::Copy) => self.inner.write_all(line),
            Ok(Rewritten::Skip) => Ok(()),
            Ok(Rewritten::Replace(bytes)) => self.inner.write_all(&bytes),
            Ok(Rewritten::Created(table, bytes)) => {
                self.created.push(table);
                self.inner.write_all(&bytes)
            }
            Err(why) => Err(std::io::Error::other(format!(
                "line {} of the snapshot's dump: {why}",
                self.line_no
            ))),
        }
    }
}

impl<W: Write> Write for RenamingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(end + 1);
            if self.line.is_empty() {
                self.rewrite_line(head)?;
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.rewrite_line(&line)?;
            }
            rest = tail;
        }
        if self.line.len() + rest.len() > MAX_LINE {
            return Err(std::io::Error::other(
                "a line of the snapshot's dump is longer than 1 GiB",
            ));
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

enum Rewritten {
    Copy,
    Skip,
    Replace(Vec<u8>),
    Created(String, Vec<u8>),
}

/// Statements that name one table right after their opening words.
const TABLE_STATEMENTS: &[&str] = &[
    "DROP TABLE IF EXISTS ",
    "LOCK TABLES ",
    "/*!40000 ALTER TABLE ",
    "INSERT INTO ",
];

/// A statement that goes on over the next lines.
#[derive(Debug, Clone)]
enum Open {
    /// `CREATE TABLE` until the line starting with `)`: the table, and whether it is skipped.
    Create(String, bool),
    /// Rows of an `INSERT` until the line ending with `;`; whether it is skipped.
    Insert(bool),
}

fn rewrite(
    renaming: &Renaming,
    open: &mut Option<Open>,
    line: &[u8],
) -> std::result::Result<Rewritten, String> {
    match open.clone() {
        Some(Open::Create(table, skipped)) => {
            if line.starts_with(b")") {
                *open = None;
            }
            if skipped {
                return Ok(Rewritten::Skip);
            }
            if line.starts_with(b"  CONSTRAINT `") {
                return constraint_line(renaming, &table, line).map(Rewritten::Replace);
            }
            return Ok(Rewritten::Copy);
        }
        Some(Open::Insert(skipped)) => {
            // Rows are `(...),` or `(...);`: string values never hold a raw newline.
            if line.trim_ascii_end().ends_with(b";") {
                *open = None;
            }
            return Ok(if skipped {
                Rewritten::Skip
            } else {
                Rewritten::Copy
            });
        }
        None => {}
    }
    let trimmed = line.trim_ascii();
    if trimmed.is_empty()
        || line.starts_with(b"--")
        || line.starts_with(b"UNLOCK TABLES;")
        || line.starts_with(b"/*M!999999\\- enable the sandbox mode */")
        || (line.starts_with(b"/*!") && is_session_setting(trimmed))
    {
        return Ok(Rewritten::Copy);
    }
    if let Some(rest) = line.strip_prefix(b"CREATE TABLE `") {
        let (table, after) = identifier(rest).ok_or("a CREATE TABLE without a table name")?;
        let skipped = renaming.skips(&table);
        *open = Some(Open::Create(table.clone(), skipped));
        if skipped {
            return Ok(Rewritten::Skip);
        }
        let mut out = b"CREATE TABLE ".to_vec();
        out.extend_from_slice(quote(&renaming.table(&table)).as_bytes());
        out.extend_from_slice(after);
        return Ok(Rewritten::Created(table, out));
    }
    for start in TABLE_STATEMENTS {
        if let Some(rest) = line.strip_prefix(start.as_bytes()) {
            let rest = rest
                .strip_prefix(b"`")
                .ok_or_else(|| format!("`{}` without a quoted table name", start.trim()))?;
            let (table, after) = identifier(rest).ok_or("an unterminated table name")?;
            let skipped = renaming.skips(&table);
            if *start == "INSERT INTO " && !line.trim_ascii_end().ends_with(b";") {
                *open = Some(Open::Insert(skipped));
            }
            if skipped {
                return Ok(Rewritten::Skip);
            }
            let mut out = start.as_bytes().to_vec();
            out.extend_from_slice(quote(&renaming.table(&table)).as_bytes());
            out.extend_from_slice(after);
            return Ok(Rewritten::Replace(out));
        }
    }
    let shown: String = String::from_utf8_lossy(&trimmed[..trimmed.len().min(80)]).into();
    Err(format!(
        "`{shown}` cannot be rolled back beside the live tables (views, triggers, routines and \
         events are not supported by the in-place rollback); restore the snapshot with \
         `peakguard restore` and import its database.sql by hand"
    ))
}

/// `/*!40101 SET ... */;` and the like: session settings, harmless to repeat.
fn is_session_setting(line: &[u8]) -> bool {
    let Some(body) = line.get(3..) else {
        return false;
    };
    let body = body.trim_ascii_start();
    let body = body
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(body, |i| &body[i..])
        .trim_ascii_start();
    body.starts_with(b"SET ") && line.ends_with(b"*/;")
}

/// `  CONSTRAINT `name` FOREIGN KEY (...) REFERENCES `table` (...)...`
fn constraint_line(
    renaming: &Renaming,
    table: &str,
    line: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    // e.g. `  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `wp_x` (`id`) ON DELETE CASCADE,`
    let rest = &line[b"  CONSTRAINT `".len()..];
    let (name, after) = identifier(rest).ok_or("an unterminated constraint name")?;
    const REFS: &[u8] = b" REFERENCES `";
    let at = after
        .windows(REFS.len())
        .position(|w| w == REFS)
        .ok_or("a constraint that is not a foreign key")?;
    let (target, tail) =
        identifier(&after[at + REFS.len()..]).ok_or("an unterminated referenced table")?;
    // A table the live site keeps is not renamed: the reference stays on it.
    let target = if renaming.skips(&target) {
        target
    } else {
        renaming.table(&target)
    };
    let mut out = b"  CONSTRAINT ".to_vec();
    out.extend_from_slice(quote(&renaming.constraint(&name, table)).as_bytes());
    out.extend_from_slice(&after[..at]);
    out.extend_from_slice(b" REFERENCES ");
    out.extend_from_slice(quote(&target).as_bytes());
    out.extend_from_slice(tail);
    Ok(out)
}

/// A backquoted identifier's name (after the opening quote; doubled quotes inside) and the
/// bytes after its closing quote.
fn identifier(rest: &[u8]) -> Option<(String, &[u8])> {
    let mut name = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        if rest[i] == b'`' {
            if rest.get(i + 1) == Some(&b'`') {
                name.push(b'`');
                i += 2;
                continue;
            }
            return Some((String::from_utf8(name).ok()?, &rest[i + 1..]));
        }
        name.push(rest[i]);
        i += 1;
    }
    None
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Fails when a renamed table name would pass MariaDB's 64-character limit.
pub fn check_lengths(renaming: &Renaming, tables: &[String]) -> Result<()> {
    for t in tables {
        let renamed = renaming.table(t);
        if renamed.chars().count() > 64 {
            return Err(BackupError::Other(format!(
                "table `{t}` is too long to be renamed to `{renamed}` (MariaDB allows 64 characters); \
                 restore with `peakguard restore` and import by hand"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renaming(skip: &[&str]) -> Renaming {
        Renaming {
            prefix: "pgn_".into(),
            skip: skip.iter().map(|s| s.to_string()).collect(),
            skip_prefixes: vec!["pgold_".into()],
        }
    }

    fn run(dump: &str, skip: &[&str]) -> std::io::Result<(String, Vec<String>)> {
        let mut w = RenamingWriter::new(Vec::new(), renaming(skip));
        // Written in small uneven pieces: lines cross write calls.
        for chunk in dump.as_bytes().chunks(7) {
            w.write_all(chunk)?;
        }
        let (out, created) = w.finish()?;
        Ok((String::from_utf8(out).expect("utf8"), created))
    }

    const DUMP: &str = r#"/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19
/*!40101 SET NAMES utf8mb4 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;

DROP TABLE IF EXISTS `wp_fkc`;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `wp_fkc` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  KEY `fk_named` (`p`),
  CONSTRAINT `fk_named` FOREIGN KEY (`p`) REFERENCES `wp_fkp` (`id`),
  CONSTRAINT `wp_fkc_ibfk_1` FOREIGN KEY (`id`) REFERENCES `wp_fkp` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB;
LOCK TABLES `wp_fkc` WRITE;
/*!40000 ALTER TABLE `wp_fkc` DISABLE KEYS */;
INSERT INTO `wp_fkc` VALUES (1,'CREATE TABLE `x` (\n'),(2,'INSERT INTO `wp_fkp`');
/*!40000 ALTER TABLE `wp_fkc` ENABLE KEYS */;
UNLOCK TABLES;
DROP TABLE IF EXISTS `wp_wc_orders`;
CREATE TABLE `wp_wc_orders` (
  `id` bigint(20) NOT NULL
) ENGINE=InnoDB;
LOCK TABLES `wp_wc_orders` WRITE;
INSERT INTO `wp_wc_orders` VALUES
(1),
(2);
UNLOCK TABLES;
LOCK TABLES `wp_options` WRITE;
INSERT INTO `wp_options` VALUES
(1,'siteurl','x;'),
(2,'home','(y)');
UNLOCK TABLES;
LOCK TABLES `pgold_wp_posts` WRITE;
INSERT INTO `pgold_wp_posts` VALUES (1);
UNLOCK TABLES;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;
"#;

    #[test]
    fn renames_tables_and_foreign_keys_and_leaves_out_kept_tables() {
        let (out, created) = run(DUMP, &["wp_wc_orders"]).expect("rewrite");
        assert_eq!(created, vec!["wp_fkc".to_string()]);
        for expected in [
            "DROP TABLE IF EXISTS `pgn_wp_fkc`;",
            "CREATE TABLE `pgn_wp_fkc` (",
            "  KEY `fk_named` (`p`),",
            "  CONSTRAINT `pgn_fk_named` FOREIGN KEY (`p`) REFERENCES `pgn_wp_fkp` (`id`),",
            "  CONSTRAINT `pgn_wp_fkc_ibfk_1` FOREIGN KEY (`id`) REFERENCES `pgn_wp_fkp` (`id`) ON DELETE CASCADE",
            "LOCK TABLES `pgn_wp_fkc` WRITE;",
            "/*!40000 ALTER TABLE `pgn_wp_fkc` DISABLE KEYS */;",
            // Table names inside values are data, never rewritten.
            "INSERT INTO `pgn_wp_fkc` VALUES (1,'CREATE TABLE `x` (\\n'),(2,'INSERT INTO `wp_fkp`');",
            "INSERT INTO `pgn_wp_options` VALUES\n(1,'siteurl','x;'),\n(2,'home','(y)');\nUNLOCK",
            "/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;",
        ] {
            assert!(out.contains(expected), "{expected:?} missing in:\n{out}");
        }
        assert!(!out.contains("wc_orders"), "kept tables left out:\n{out}");
        assert!(
            !out.contains("pgold_"),
            "an earlier rollback's kept tables left out:\n{out}"
        );
    }

    #[test]
    fn a_prefixed_constraint_name_loses_the_prefix_so_names_alternate() {
        let r = renaming(&[]);
        assert_eq!(r.constraint("pgn_fk_named", "wp_fkc"), "fk_named");
        assert_eq!(r.constraint("fk_named", "wp_fkc"), "pgn_fk_named");
        assert_eq!(r.constraint("wp_fkc_ibfk_2", "wp_fkc"), "pgn_wp_fkc_ibfk_2");
    }

    #[test]
    fn statements_that_would_act_on_the_live_database_are_refused() {
        for bad in [
            "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER t BEFORE INSERT ON `wp_posts` FOR EACH ROW SET @x = 1 */;;\n",
            "/*!50001 DROP VIEW IF EXISTS `v`*/;\n",
            "DROP PROCEDURE IF EXISTS `p`;\n",
            "UPDATE `wp_options` SET option_value = 'x';\n",
        ] {
            let err = run(bad, &[]).expect_err(bad);
            let text = err.to_string();
            assert!(text.contains("line 1"), "{text}");
            assert!(text.contains("peakguard restore"), "{text}");
        }
    }

    #[test]
    fn quoted_names_with_backquotes_survive() {
        let (out, _) = run("INSERT INTO `odd``name` VALUES (1);\n", &[]).expect("rewrite");
        assert_eq!(out, "INSERT INTO `pgn_odd``name` VALUES (1);\n");
    }

    #[test]
    fn too_long_names_are_refused_before_the_import() {
        let long = "w".repeat(62);
        assert!(check_lengths(&renaming(&[]), &[long]).is_err());
        assert!(check_lengths(&renaming(&[]), &["wp_posts".into()]).is_ok());
    }
}
