//! The site's MariaDB as the command-line tools see it: credentials (from the config or
//! `wp-config.php`), the consistent dump stream, and SQL run through the `mariadb` client.

use crate::error::{BackupError, Result};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Where and how to reach the database. Its `Debug` hides the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Database {
    pub name: String,
    pub user: String,
    pub password: String,
    /// `localhost`, `host:port`, or `localhost:/path/to/socket`, as WordPress writes it.
    pub host: String,
    pub table_prefix: String,
    pub dump_command: String,
    pub client_command: String,
    /// How long a dump, an import or a query may run before it is killed (zero: the
    /// default, an hour).
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.name)
            .field("user", &self.user)
            .field(
                "password",
                &peakguard_config::Secret::new(self.password.clone()),
            )
            .field("host", &self.host)
            .field("table_prefix", &self.table_prefix)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Fills the empty fields of `given` from `wp-config.php`.
    pub fn resolve(given: Database, wp_config: &Path) -> Result<Database> {
        let mut db = given;
        let needs_file = db.name.is_empty() || db.user.is_empty() || db.host.is_empty();
        if needs_file || db.table_prefix.is_empty() {
            match std::fs::read_to_string(wp_config) {
                Ok(text) => {
                    let fill = |field: &mut String, key: &str| {
                        if field.is_empty()
                            && let Some(v) = php_define(&text, key)
                        {
                            *field = v;
                        }
                    };
                    fill(&mut db.name, "DB_NAME");
                    fill(&mut db.user, "DB_USER");
                    fill(&mut db.password, "DB_PASSWORD");
                    fill(&mut db.host, "DB_HOST");
                    if db.table_prefix.is_empty()
                        && let Some(p) = php_table_prefix(&text)
                    {
                        db.table_prefix = p;
                    }
                }
                Err(e) if needs_file => {
                    return Err(BackupError::Credentials(format!(
                        "cannot read {wp_config:?} ({e}); set [site.backup.database] name/user/password/host or `wp_config`"
                    )));
                }
                Err(_) => {}
            }
        }
        if db.name.is_empty() || db.user.is_empty() {
            return Err(BackupError::Credentials(format!(
                "no DB_NAME/DB_USER found in {wp_config:?}; set [site.backup.database] or point `wp_config` at the file with the define()s"
            )));
        }
        if db.host.is_empty() {
            db.host = "localhost".into();
        }
        if db.table_prefix.is_empty() {
            db.table_prefix = "wp_".into();
        }
        if db.dump_command.is_empty() {
            db.dump_command = "mariadb-dump".into();
        }
        if db.client_command.is_empty() {
            db.client_command = "mariadb".into();
        }
        Ok(db)
    }

    /// Connection arguments (the password goes through the environment, never argv).
    pub fn connection_args(&self) -> Vec<String> {
        let mut args = vec![format!("--user={}", self.user)];
        let (host, rest) = match self.host.split_once(':') {
            Some((h, r)) => (h, Some(r)),
            None => (self.host.as_str(), None),
        };
        match rest {
            Some(r) if r.starts_with('/') => {
                args.push(format!("--socket={r}"));
            }
            Some(port) => {
                args.push(format!(
                    "--host={}",
                    if host == "localhost" {
                        "127.0.0.1"
                    } else {
                        host
                    }
                ));
                args.push(format!("--port={port}"));
            }
            None if host != "localhost" => args.push(format!("--host={host}")),
            None => {}
        }
        args
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(self.connection_args());
        cmd.env("MYSQL_PWD", &self.password);
        cmd
    }

    fn limit(&self) -> std::time::Duration {
        if self.timeout.is_zero() {
            crate::watchdog::DEFAULT_TIMEOUT
        } else {
            self.timeout
        }
    }

    fn killed_message(&self) -> String {
        format!(
            "killed after {}: it did not finish in time (a locked table, a stuck server?); raise [site.backup.database] timeout if the database is that large",
            humantime_secs(self.limit())
        )
    }

    /// Runs a client command within the timeout; a killed one is an error that says so.
    fn bounded(
        &self,
        cmd: &mut Command,
        input: Option<&[u8]>,
        hint: &str,
    ) -> Result<std::process::Output> {
        let command = self.client_command.clone();
        let (out, killed) = crate::watchdog::output(cmd, input, self.timeout).map_err(|e| {
            BackupError::Command {
                command: command.clone(),
                message: format!("{e} {hint}").trim().to_string(),
            }
        })?;
        if killed {
            return Err(BackupError::Command {
                command,
                message: self.killed_message(),
            });
        }
        Ok(out)
    }

    /// `mariadb-dump --single-transaction --routines --triggers` of the site's database.
    pub fn dump_command_line(&self) -> Command {
        let mut cmd = self.command(&self.dump_command);
        cmd.args([
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--default-character-set=utf8mb4",
            "--skip-dump-date",
        ]);
        cmd.arg(&self.name);
        cmd
    }

    /// Dumps the database into `path` (replaced); returns its size. A non-zero exit status is
    /// an error and the file is removed.
    pub fn dump_to(&self, path: &Path) -> Result<u64> {
        let fail = |message: String| BackupError::DumpFailed {
            command: self.dump_command.clone(),
            message,
        };
        // A dump holds the shop's customers and orders: 0600 from the start.
        let file = peakguard_config::private_fs::create_private(path)
            .map_err(|e| BackupError::io("creating", path, e))?;
        let mut cmd = self.dump_command_line();
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| {
            fail(format!(
                "cannot start it: {e} (is the MariaDB client installed?)"
            ))
        })?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail("no output pipe".into()))?;
        let mut stderr = child.stderr.take();
        let child: crate::watchdog::Shared = std::sync::Arc::new(std::sync::Mutex::new(child));
        let watchdog = crate::watchdog::Watchdog::start(child.clone(), self.timeout);
        let err_reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(e) = stderr.as_mut() {
                let _ = std::io::Read::read_to_string(e, &mut text);
            }
            text
        });
        let mut out = std::io::BufWriter::with_capacity(8 << 20, file);
        let copied = std::io::copy(&mut stdout, &mut out).and_then(|n| out.flush().map(|_| n));
        let status = crate::watchdog::wait(&child);
        let killed = watchdog.stop();
        let stderr_text = err_reader.join().unwrap_or_default();
        let result = match (copied, status) {
            _ if killed => Err(fail(self.killed_message())),
            (Err(e), _) => Err(fail(format!("writing {}: {e}", path.display()))),
            (Ok(_), Err(e)) => Err(fail(format!("waiting for it: {e}"))),
            (Ok(_), Ok(s)) if !s.success() => Err(fail(format!("{s}: {}", stderr_text.trim()))),
            (Ok(n), Ok(_)) => Ok(n),
        };
        if result.is_err() {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    /// Runs SQL on `schema` (or none) and returns the tab-separated rows.
    pub fn query(&self, schema: Option<&str>, sql: &str) -> Result<Vec<Vec<String>>> {
        let mut cmd = self.command(&self.client_command);
        cmd.args(["--batch", "--skip-column-names", "--raw"]);
        if let Some(s) = schema {
            cmd.arg(format!("--database={s}"));
        }
        cmd.arg("--execute").arg(sql).stdin(Stdio::null());
        let out = self.bounded(&mut cmd, None, "(is the MariaDB client installed?)")?;
        let out = succeeded(
            format!(
                "{} on {}",
                self.client_command,
                schema.unwrap_or("(server)")
            ),
            out,
        )?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect())
    }

    /// Feeds a dump file into `schema` through the client; fails on the first error.
    pub fn import(&self, schema: &str, dump: &Path) -> Result<()> {
        let file = std::fs::File::open(dump).map_err(|e| BackupError::io("opening", dump, e))?;
        let mut cmd = self.command(&self.client_command);
        cmd.arg(format!("--database={schema}"));
        cmd.stdin(Stdio::from(file));
        let out = self.bounded(&mut cmd, None, "")?;
        succeeded(format!("import into {schema}"), out)?;
        Ok(())
    }

    /// The database's size and a fingerprint of its state, read in one query: `None` as
    /// fingerprint when the server gives none (then every run dumps).
    ///
    /// The fingerprint is InnoDB's current log sequence number (it moves with every
    /// committed write and every InnoDB DDL, and stands still while the server only reads:
    /// checked against a dump, which leaves it unchanged), the server's DDL counters for
    /// what does not live in InnoDB (routines, triggers, events, views), and every
    /// non-InnoDB table of the schema with its update time and row count. A restart moves
    /// the sequence number too (checked), so counters that restart from zero cannot
    /// repeat an old fingerprint.
    pub fn fingerprint(&self) -> Result<(u64, Option<String>)> {
        let schema = sql_string(&self.name);
        let sql = format!(
            "SET SESSION group_concat_max_len = 16777216; \
             SELECT \
               (SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = {schema}), \
               (SELECT variable_value FROM information_schema.global_status WHERE variable_name = 'INNODB_LSN_CURRENT'), \
               SHA2(CONCAT_WS('|', \
                 (SELECT GROUP_CONCAT(CONCAT(variable_name, '=', variable_value) ORDER BY variable_name) \
                    FROM information_schema.global_status \
                    WHERE variable_name REGEXP '^COM_(CREATE|DROP|ALTER|RENAME)_|^COM_TRUNCATE'), \
                 (SELECT GROUP_CONCAT(CONCAT_WS(':', table_name, engine, create_time, IFNULL(update_time, '-'), IF(engine = 'InnoDB', '', table_rows)) ORDER BY table_name) \
                    FROM information_schema.tables WHERE table_schema = {schema})), 256)"
        );
        let rows = self.query(None, &sql)?;
        let row = rows.first().cloned().unwrap_or_default();
        let size = row.first().and_then(|v| v.parse().ok()).unwrap_or(0);
        let lsn = row.get(1).filter(|v| !v.is_empty() && *v != "NULL");
        let rest = row.get(2).filter(|v| !v.is_empty() && *v != "NULL");
        Ok((
            size,
            lsn.zip(rest).map(|(lsn, rest)| format!("lsn={lsn};{rest}")),
        ))
    }

    /// The first cell of a query's result as a number (0 when empty).
    pub fn scalar(&self, sql: &str) -> Result<u64> {
        Ok(self
            .query(None, sql)?
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Runs a statement list read from a script (used by tests and the rollback).
    pub fn execute_script(&self, schema: Option<&str>, script: &str) -> Result<()> {
        let mut cmd = self.command(&self.client_command);
        if let Some(s) = schema {
            cmd.arg(format!("--database={s}"));
        }
        let out = self.bounded(&mut cmd, Some(script.as_bytes()), "")?;
        succeeded(self.client_command.clone(), out)?;
        Ok(())
    }
}

/// `out` when the client exited with success; its stderr as the error otherwise.
fn succeeded(command: String, out: std::process::Output) -> Result<std::process::Output> {
    if out.status.success() {
        return Ok(out);
    }
    Err(BackupError::Command {
        command,
        message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

fn humantime_secs(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    match s {
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A SQL string literal.
pub fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A quoted identifier.
pub fn sql_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// The value of `define('KEY', 'value')` in PHP source (single or double quotes).
fn php_define(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("//") || line.starts_with('#') {
            continue;
        }
        let Some(pos) = line.find("define") else {
            continue;
        };
        let rest = &line[pos + "define".len()..];
        let rest = rest.trim_start().strip_prefix('(')?.trim_start();
        let (name, rest) = php_string(rest)?;
        if name != key {
            continue;
        }
        let rest = rest.trim_start().strip_prefix(',')?.trim_start();
        return php_string(rest).map(|(v, _)| v);
    }
    None
}

fn php_table_prefix(text: &str) -> Option<String> {
    let pos = text.find("$table_prefix")?;
    let rest = text[pos + "$table_prefix".len()..]
        .trim_start()
        .strip_prefix('=')?;
    php_string(rest.trim_start()).map(|(v, _)| v)
}

/// A PHP quoted string at the start of `s`, and what follows it.
fn php_string(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            if let Some((_, n)) = chars.next() {
                out.push(n);
            }
        } else if c == quote {
            return Some((out, &s[1 + i + 1..]));
        } else {
            out.push(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump that never ends (a table locked by someone else) is killed after the timeout,
    /// reported as such, and leaves no partial file; queries are bounded the same way.
    #[test]
    fn a_stuck_dump_or_query_is_killed_after_the_timeout() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pg-stuck-dump-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let stuck = dir.join("stuck-client");
        std::fs::write(&stuck, "#!/bin/sh\necho -- partial output\nexec sleep 60\n")
            .expect("script");
        std::fs::set_permissions(&stuck, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let db = Database {
            name: "shop".into(),
            host: "localhost".into(),
            dump_command: stuck.display().to_string(),
            client_command: stuck.display().to_string(),
            timeout: std::time::Duration::from_millis(500),
            ..Database::default()
        };
        let started = std::time::Instant::now();
        let dump = dir.join("db.sql");
        let err = db.dump_to(&dump).expect_err("killed");
        assert!(err.to_string().contains("killed after"), "{err}");
        assert!(!dump.exists(), "no partial dump is left");
        let err = db.scalar("SELECT 1").expect_err("killed");
        assert!(err.to_string().contains("killed after"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "neither waited for the minute"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn reads_wp_config_defines_and_prefix() {
        let text = r#"<?php
// define('DB_NAME', 'commented');
define( 'DB_NAME', 'shop' );
define("DB_USER", "shop_user");
define('DB_PASSWORD', 'p\'w"d');
define('DB_HOST', 'localhost:/run/mysqld/mysqld.sock');
$table_prefix = 'wpx_';
"#;
        assert_eq!(php_define(text, "DB_NAME").as_deref(), Some("shop"));
        assert_eq!(php_define(text, "DB_USER").as_deref(), Some("shop_user"));
        assert_eq!(php_define(text, "DB_PASSWORD").as_deref(), Some("p'w\"d"));
        assert_eq!(php_table_prefix(text).as_deref(), Some("wpx_"));
        let dir = std::env::temp_dir().join(format!("pg-wpconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("wp-config.php");
        std::fs::write(&file, text).expect("write");
        let db = Database::resolve(Database::default(), &file).expect("resolve");
        assert_eq!(
            db.connection_args(),
            vec!["--user=shop_user", "--socket=/run/mysqld/mysqld.sock"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn host_forms() {
        let db = |host: &str| Database {
            user: "u".into(),
            host: host.into(),
            ..Database::default()
        };
        assert_eq!(db("localhost").connection_args(), vec!["--user=u"]);
        assert_eq!(
            db("127.0.0.1:3307").connection_args(),
            vec!["--user=u", "--host=127.0.0.1", "--port=3307"]
        );
        assert_eq!(
            db("db.internal").connection_args(),
            vec!["--user=u", "--host=db.internal"]
        );
    }

    #[test]
    fn missing_config_says_what_to_set() {
        let err = Database::resolve(Database::default(), Path::new("/nonexistent/wp-config.php"))
            .expect_err("no file");
        assert!(err.to_string().contains("[site.backup.database]"), "{err}");
    }
}
