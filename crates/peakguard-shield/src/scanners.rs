//! Refuses the probes scanners send to every WordPress, before the cache and before PHP:
//! hidden files and folders (`/.env`, `/.git/`, `/.aws/credentials`; `/.well-known/` is let
//! through), `wp-config.php` and its copies, editor and backup copies of files
//! (`index.php~`, `functions.php.bak`, `#wp-config.php#`), `phpinfo.php`, PHPUnit's
//! `eval-stdin.php` left in a `vendor/` folder, database dumps (`*.sql`, `*.sql.gz`), archives
//! of the site at its root or in `wp-content/`, backup plugins' folders, and log files
//! (`wp-content/debug.log`). nginx ignores the `.htaccess` files that hide some of these on
//! Apache, so on Debian they are served unless something refuses them.
//!
//! On by default for the WordPress profile. `[site.shield.scanners]`:
//! `enabled`, `dry_run`, `allow` (paths let through although they match) and `paths` (more
//! to refuse); an entry ending in `/` is a prefix, any other an exact path.

use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use crate::registry::{Build, GuardEntry};
use crate::guard::rule_paths;
use peakguard_config::{Profile, SiteConfig};
use serde::Deserialize;
use std::sync::Arc;

pub const GUARD: GuardEntry = GuardEntry {
    name: "scanners",
    table: "scanners",
    build,
    check: Some(check),
};

/// `[site.shield.scanners]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScannersConfig {
    /// Default: on for the WordPress profile, off for `profile = "http"`.
    pub enabled: Option<bool>,
    /// Count and log what would be refused, refuse nothing.
    pub dry_run: bool,
    /// Paths let through although they match (`/` at the end: a prefix).
    pub allow: Vec<String>,
    /// More paths to refuse (`/` at the end: a prefix).
    pub paths: Vec<String>,
}

pub struct ScannersGuard {
    /// Normalized as [`RequestFacts::path`] gives paths.
    allow: Vec<String>,
    paths: Vec<String>,
    dry_run: bool,
}

fn build(b: &Build<'_>) -> Result<Option<Arc<dyn Guard>>, String> {
    let c: ScannersConfig = b.table()?;
    if !c.enabled.unwrap_or(b.site.profile == Profile::Wordpress) {
        return Ok(None);
    }
    Ok(Some(Arc::new(ScannersGuard {
        allow: rule_paths(&c.allow),
        paths: rule_paths(&c.paths),
        dry_run: c.dry_run,
    })))
}

fn check(_site: &SiteConfig, value: &toml::Value) -> Vec<(String, String)> {
    let c: ScannersConfig = match crate::registry::checked_table(Some(value)) {
        Ok(c) => c,
        Err(problems) => return problems,
    };
    let mut problems = Vec::new();
    for (list, entries) in [("allow", &c.allow), ("paths", &c.paths)] {
        for (i, path) in entries.iter().enumerate() {
            if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
                problems.push((
                    format!("{list}[{i}]"),
                    format!(
                        "{path:?} is not a path: give one such as \"/.well-known/\" (a prefix) or \"/backup.zip\""
                    ),
                ));
            }
        }
    }
    problems
}

/// What kind of probe `path` (normalized: decoded, resolved, lower-case) is, if it is one.
pub fn probe_kind(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments
        .iter()
        .any(|s| s.starts_with('.') && *s != ".well-known")
    {
        return Some("hidden file");
    }
    if segments.windows(2).any(|w| w == ["vendor", "phpunit"]) {
        return Some("phpunit");
    }
    if segments.len() >= 2
        && segments[0] == "wp-content"
        && BACKUP_FOLDERS.contains(&segments[1])
    {
        return Some("backup folder");
    }
    let name = *segments.last()?;
    if name.starts_with("wp-config") {
        return Some("wp-config");
    }
    if PHPINFO.contains(&name) || name == "eval-stdin.php" {
        return Some(if name == "eval-stdin.php" {
            "phpunit"
        } else {
            "phpinfo"
        });
    }
    if name.ends_with('~')
        || (name.starts_with('#') && name.ends_with('#'))
        || COPY_SUFFIXES.iter().any(|s| name.ends_with(s))
    {
        return Some("backup copy");
    }
    if name.ends_with(".sql") || name.contains(".sql.") || name.ends_with(".wpress") {
        return Some("database dump");
    }
    if name.ends_with(".log") || name == "error_log" || name == "php.ini" {
        return Some("server file");
    }
    let at_root = segments.len() == 1 || (segments.len() == 2 && segments[0] == "wp-content");
    if at_root && ARCHIVES.iter().any(|s| name.ends_with(s)) {
        return Some("site archive");
    }
    None
}

const PHPINFO: [&str; 4] = ["phpinfo.php", "info.php", "php_info.php", "php-info.php"];
const COPY_SUFFIXES: [&str; 8] = [
    ".bak", ".backup", ".old", ".orig", ".save", ".swp", ".swo", ".php.txt",
];
const ARCHIVES: [&str; 10] = [
    ".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".rar", ".7z", ".tbz2", ".zst",
];
/// Where backup and migration plugins keep their archives under `wp-content/`.
const BACKUP_FOLDERS: [&str; 7] = [
    "updraft",
    "ai1wm-backups",
    "backup-db",
    "backups-dup-lite",
    "backups-dup-pro",
    "backupwordpress",
    "wpvividbackups",
];

fn listed(list: &[String], path: &str) -> bool {
    list.iter().any(|p| {
        if p.ends_with('/') {
            path.starts_with(p.as_str())
        } else {
            path == p
        }
    })
}

/// What a probe gets: a bare 404, nothing to learn from it, and the connection closed.
fn not_found() -> LocalResponse {
    LocalResponse {
        status: 404,
        headers: Vec::new(),
        content_type: "text/plain; charset=utf-8",
        body: bytes::Bytes::from_static(b"Not found\n"),
        close: true,
    }
}

impl Guard for ScannersGuard {
    fn name(&self) -> &'static str {
        "scanners"
    }

    fn on_request(&self, req: &RequestFacts<'_>) -> Verdict {
        let path = req.path();
        if listed(&self.allow, &path) {
            return Verdict::Pass;
        }
        let kind = if listed(&self.paths, &path) {
            "listed path"
        } else {
            match probe_kind(&path) {
                Some(kind) => kind,
                None => return Verdict::Pass,
            }
        };
        let reason = format!("scanner probe ({kind})");
        if self.dry_run {
            return Verdict::DryRun {
                reason: format!("refuse ({reason})").into(),
            };
        }
        Verdict::Respond {
            reason: reason.into(),
            response: not_found(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Req;

    fn kind(path: &str) -> Option<&'static str> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        probe_kind(&peakguard_config::rule_path::normalized(path))
    }

    #[test]
    fn the_probes_scanners_send_are_recognized() {
        for (path, expected) in [
            ("/.env", "hidden file"),
            ("/.git/config", "hidden file"),
            ("/wp-content/.env", "hidden file"),
            ("/.aws/credentials", "hidden file"),
            ("/%2egit/HEAD", "hidden file"),
            ("/wp-config.php", "wp-config"),
            ("/wp-config.php.bak", "wp-config"),
            ("/WP-CONFIG.PHP~", "wp-config"),
            ("/wp-config.old", "wp-config"),
            ("/phpinfo.php", "phpinfo"),
            ("/wp-content/info.php", "phpinfo"),
            (
                "/wp-content/plugins/x/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
                "phpunit",
            ),
            ("/vendor/phpunit/", "phpunit"),
            ("/wp-content/themes/t/functions.php.bak", "backup copy"),
            ("/index.php~", "backup copy"),
            ("/%23wp-config.php%23", "backup copy"),
            ("/wp-content/themes/t/%23functions.php%23", "backup copy"),
            ("/backup.sql", "database dump"),
            ("/wp-content/uploads/db.sql.gz", "database dump"),
            ("/wp-content/ai1wm-backups/site.wpress", "backup folder"),
            ("/wp-content/updraft/backup_db.gz", "backup folder"),
            ("/wp-content/debug.log", "server file"),
            ("/error_log", "server file"),
            ("/backup.zip", "site archive"),
            ("/www.example.com.tar.gz", "site archive"),
            ("/wp-content/site.zip", "site archive"),
        ] {
            assert_eq!(kind(path), Some(expected), "{path}");
        }
    }

    #[test]
    fn real_pages_and_files_are_not_probes() {
        for path in [
            "/",
            "/shop/",
            "/?s=backup.zip",
            "/hello-world/",
            "/wp-login.php",
            "/wp-admin/",
            "/wp-admin/admin-ajax.php",
            "/wp-json/wp/v2/posts",
            "/xmlrpc.php",
            "/.well-known/acme-challenge/abc",
            "/wp-content/themes/twentytwentyfour/style.css",
            "/wp-content/uploads/2026/12/photo.jpg",
            "/wp-content/uploads/2026/12/catalogue.zip",
            "/wp-includes/js/jquery/jquery.min.js",
            "/feed/",
            "/sitemap.xml",
            "/robots.txt",
            "/old-products/",
            "/blog/information/",
        ] {
            assert_eq!(kind(path), None, "{path}");
        }
    }

    fn guard(allow: &[&str], paths: &[&str], dry_run: bool) -> ScannersGuard {
        let list = |l: &[&str]| rule_paths(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        ScannersGuard {
            allow: list(allow),
            paths: list(paths),
            dry_run,
        }
    }

    #[test]
    fn a_probe_gets_a_404_and_the_connection_closed_unless_allowed_or_dry_run() {
        let g = guard(&["/wp-content/ai1wm-backups/"], &["/secret-export/"], false);
        match g.on_request(&Req::get("/.env").facts()) {
            Verdict::Respond { reason, response } => {
                assert_eq!(reason, "scanner probe (hidden file)");
                assert_eq!(response.status, 404);
                assert!(response.close);
            }
            _ => panic!("/.env is refused"),
        }
        assert!(matches!(
            g.on_request(&Req::get("/secret-export/all.csv").facts()),
            Verdict::Respond { .. }
        ));
        assert!(matches!(
            g.on_request(&Req::get("/wp-content/ai1wm-backups/site.wpress").facts()),
            Verdict::Pass
        ));
        assert!(matches!(
            g.on_request(&Req::get("/hello-world/").facts()),
            Verdict::Pass
        ));
        let dry = guard(&[], &[], true);
        assert!(matches!(
            dry.on_request(&Req::get("/.git/config").facts()),
            Verdict::DryRun { .. }
        ));
    }

    #[test]
    fn its_table_is_checked_with_the_key() {
        let value: toml::Value = toml::from_str("allow = [\"backup.zip\"]").expect("toml");
        let site = SiteConfig::quick("http://127.0.0.1:1", Profile::Wordpress);
        let problems = check(&site, &value);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "allow[0]");
        let value: toml::Value = toml::from_str("enable = true").expect("toml");
        let problems = check(&site, &value);
        assert!(problems[0].1.contains("enable"), "{problems:?}");
    }
}
