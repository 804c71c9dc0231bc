//! `kind = "wordpress"`: the updates WordPress knows are pending, read from the data it keeps
//! in its database — the `update_core`, `update_plugins` and `update_themes` site transients
//! (PHP-serialized, read with phpserz) — and a policy: every pending update shows in the
//! values (a rule on `updates_pending > 0` warns), a security release pending longer than
//! `security_delay` (24 h: the "apply after a day" practice) fails the probe.
//!
//! Which releases are security releases: a WordPress minor release (6.4.2 → 6.4.3; the
//! project ships security fixes as minor releases) and a plugin update whose upgrade notice
//! mentions security. How long one has been pending: WordPress does not say, so the probe
//! remembers when it first saw each (kept in the monitor's state, so a restart does not
//! reset the clock).
//!
//! A site with a persistent object cache (Redis, Memcached) keeps transients there, not in
//! the database: the probe then finds no update data and says so.

use crate::db::Connection;
use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::ProbeResult;
use crate::sources::Sources;
use mysql_async::prelude::Queryable;
use peakguard_config::{ProbeConfig, Seconds};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) struct Wordpress;
pub(crate) static PROBE: Registered<Wordpress> = Registered::NEW;

/// A `wordpress` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WordpressSettings {
    #[serde(flatten)]
    connection: Connection,
    /// The tables' prefix (`$table_prefix` in wp-config.php).
    table_prefix: Option<String>,
    /// A security release pending longer than this fails the probe (the "apply after 24 h"
    /// practice); other pending updates only show in its values.
    security_delay: Option<Seconds>,
}

impl Probe for Wordpress {
    type Settings = WordpressSettings;
    const KIND: &'static str = "wordpress";
    const VALUES: &'static [&'static str] = &[
        "success",
        "duration",
        "updates_pending",
        "core_updates",
        "plugin_updates",
        "theme_updates",
        "security_updates",
        "security_overdue",
    ];

    fn check(s: &WordpressSettings) -> Problems {
        let mut problems = s.connection.check(Self::KIND);
        if s.connection.database.is_none() {
            problems.push((
                "database".into(),
                "a wordpress probe needs `database` (DB_NAME in wp-config.php)".into(),
            ));
        }
        if let Some(prefix) = &s.table_prefix
            && !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            problems.push((
                "table_prefix".into(),
                format!("{prefix:?}: a table prefix is letters, digits and _"),
            ));
        }
        problems
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: WordpressSettings,
        memory: &'a mut Memory,
        _sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(run(probe, settings, memory))
    }
}

const DEFAULT_DELAY: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CoreData {
    #[serde(default)]
    updates: BTreeMap<u32, CoreOffer>,
    #[serde(default)]
    version_checked: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CoreOffer {
    #[serde(default)]
    response: String,
    #[serde(default)]
    current: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PluginData {
    #[serde(default)]
    response: BTreeMap<String, PluginOffer>,
}

#[derive(Debug, Deserialize)]
struct PluginOffer {
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    new_version: Option<String>,
    #[serde(default)]
    upgrade_notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ThemeData {
    #[serde(default)]
    response: BTreeMap<String, ThemeOffer>,
}

#[derive(Debug, Deserialize)]
struct ThemeOffer {
    #[serde(default)]
    new_version: Option<String>,
}

/// One pending update.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    /// Stable across checks: what and to which version.
    pub key: String,
    pub kind: &'static str,
    pub shown: String,
    pub security: bool,
}

/// `major.minor` of a version (`6.4.3` → `6.4`).
fn branch(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

pub(crate) fn pending(
    core: Option<&CoreData>,
    plugins: Option<&PluginData>,
    themes: Option<&ThemeData>,
) -> Vec<Pending> {
    let mut out = Vec::new();
    if let Some(core) = core {
        let installed = core.version_checked.clone().unwrap_or_default();
        for offer in core.updates.values() {
            if !matches!(offer.response.as_str(), "upgrade" | "autoupdate") {
                continue;
            }
            let to = offer.current.clone().unwrap_or_default();
            if to.is_empty() || to == installed {
                continue;
            }
            if out.iter().any(|p: &Pending| p.key == format!("core:{to}")) {
                continue; // one offer per locale
            }
            out.push(Pending {
                key: format!("core:{to}"),
                kind: "core",
                shown: format!("WordPress {installed} → {to}"),
                security: !installed.is_empty() && branch(&installed) == branch(&to),
            });
        }
    }
    if let Some(plugins) = plugins {
        for (file, offer) in &plugins.response {
            let to = offer.new_version.clone().unwrap_or_default();
            let name = offer.slug.clone().unwrap_or_else(|| file.clone());
            out.push(Pending {
                key: format!("plugin:{file}:{to}"),
                kind: "plugin",
                shown: format!("plugin {name} → {to}"),
                security: offer
                    .upgrade_notice
                    .as_deref()
                    .is_some_and(|n| n.to_ascii_lowercase().contains("security")),
            });
        }
    }
    if let Some(themes) = themes {
        for (theme, offer) in &themes.response {
            let to = offer.new_version.clone().unwrap_or_default();
            out.push(Pending {
                key: format!("theme:{theme}:{to}"),
                kind: "theme",
                shown: format!("theme {theme} → {to}"),
                security: false,
            });
        }
    }
    out
}

fn parse<'a, T: Deserialize<'a>>(name: &str, bytes: &'a [u8]) -> Result<T, String> {
    let mut de = phpserz::PhpDeserializer::new(bytes);
    T::deserialize(&mut de).map_err(|e| format!("{name}: not the data WordPress writes ({e})"))
}

async fn run(probe: &ProbeConfig, s: WordpressSettings, memory: &mut Memory) -> ProbeResult {
    let prefix = s.table_prefix.as_deref().unwrap_or("wp_");
    let mut conn = match crate::db::connect(&s.connection).await {
        Ok(c) => c,
        Err(e) => return ProbeResult::failed(probe, e),
    };
    let rows: Result<Vec<(String, Vec<u8>)>, _> = conn
        .query(format!(
            "SELECT option_name, option_value FROM `{prefix}options` WHERE option_name IN ('_site_transient_update_core', '_site_transient_update_plugins', '_site_transient_update_themes')"
        ))
        .await;
    let _ = conn.disconnect().await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return ProbeResult::failed(probe, format!("reading {prefix}options: {e}")),
    };
    if rows.is_empty() {
        return ProbeResult::failed(
            probe,
            "no update data: WordPress has not checked for updates yet, or keeps transients in an object cache".into(),
        );
    }
    let find = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == &format!("_site_transient_update_{name}"))
            .map(|(_, v)| v.as_slice())
    };
    let core: Option<CoreData> = match find("core").map(|b| parse("update_core", b)).transpose() {
        Ok(c) => c,
        Err(e) => return ProbeResult::failed(probe, e),
    };
    let plugins: Option<PluginData> = match find("plugins")
        .map(|b| parse("update_plugins", b))
        .transpose()
    {
        Ok(p) => p,
        Err(e) => return ProbeResult::failed(probe, e),
    };
    let themes: Option<ThemeData> = match find("themes")
        .map(|b| parse("update_themes", b))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return ProbeResult::failed(probe, e),
    };
    let found = pending(core.as_ref(), plugins.as_ref(), themes.as_ref());
    let delay = s.security_delay.map_or(DEFAULT_DELAY, |d| d.0);
    let now = crate::result::unix(std::time::SystemTime::now());
    let ages = memory.first_seen(&probe.name, found.iter().map(|p| p.key.clone()), now);
    let count = |kind: &str| found.iter().filter(|p| p.kind == kind).count() as f64;
    let mut overdue = Vec::new();
    let mut shown = Vec::new();
    for p in &found {
        let age = ages.get(&p.key).copied().unwrap_or(0);
        if p.security && age >= delay.as_secs() {
            overdue.push(format!(
                "{} (security, pending {})",
                p.shown,
                crate::humantime_short(Duration::from_secs(age))
            ));
        } else {
            shown.push(format!(
                "{}{}",
                p.shown,
                if p.security { " (security)" } else { "" }
            ));
        }
    }
    let security = found.iter().filter(|p| p.security).count() as f64;
    let message = if !overdue.is_empty() {
        format!(
            "security release pending longer than {}: {}{}",
            crate::humantime_short(delay),
            overdue.join("; "),
            if shown.is_empty() {
                String::new()
            } else {
                format!("; also {}", shown.join("; "))
            }
        )
    } else if found.is_empty() {
        "up to date".into()
    } else {
        format!("{} update(s) pending: {}", found.len(), shown.join("; "))
    };
    ProbeResult::new(probe, overdue.is_empty(), message)
        .with("updates_pending", found.len() as f64)
        .with("core_updates", count("core"))
        .with("plugin_updates", count("plugin"))
        .with("theme_updates", count("theme"))
        .with("security_updates", security)
        .with("security_overdue", overdue.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serialize()` of what WordPress keeps, written by hand (PHP strings count bytes).
    fn php_string(s: &str) -> String {
        format!("s:{}:\"{s}\";", s.len())
    }

    #[test]
    fn minor_core_releases_and_security_notices_count_as_security() {
        let offer = |response: &str, current: &str| {
            format!(
                "O:8:\"stdClass\":3:{{{}{}{}{}{}{}}}",
                php_string("response"),
                php_string(response),
                php_string("current"),
                php_string(current),
                php_string("locale"),
                php_string("en_US")
            )
        };
        let core_text = format!(
            "O:8:\"stdClass\":3:{{{}a:2:{{i:0;{}i:1;{}}}{}i:1700000000;{}{}}}",
            php_string("updates"),
            offer("upgrade", "6.4.3"),
            offer("upgrade", "6.5.0"),
            php_string("last_checked"),
            php_string("version_checked"),
            php_string("6.4.2"),
        );
        let core: CoreData = parse("update_core", core_text.as_bytes()).expect("parsed");
        let plugin = |slug: &str, version: &str, notice: &str| {
            format!(
                "O:8:\"stdClass\":3:{{{}{}{}{}{}{}}}",
                php_string("slug"),
                php_string(slug),
                php_string("new_version"),
                php_string(version),
                php_string("upgrade_notice"),
                php_string(notice)
            )
        };
        let plugins_text = format!(
            "O:8:\"stdClass\":2:{{{}i:1700000000;{}a:2:{{{}{}{}{}}}}}",
            php_string("last_checked"),
            php_string("response"),
            php_string("akismet/akismet.php"),
            plugin("akismet", "5.3.1", "Fixes a Security issue."),
            php_string("hello.php"),
            plugin("hello-dolly", "1.7.3", "New lyrics."),
        );
        let plugins: PluginData = parse("update_plugins", plugins_text.as_bytes()).expect("parsed");
        let found = pending(Some(&core), Some(&plugins), None);
        let summary: Vec<(&str, bool)> = found.iter().map(|p| (p.kind, p.security)).collect();
        assert_eq!(
            summary,
            [
                ("core", true),
                ("core", false),
                ("plugin", true),
                ("plugin", false)
            ]
        );
        assert_eq!(found[0].shown, "WordPress 6.4.2 → 6.4.3");
        assert!(parse::<CoreData>("update_core", b"not serialized").is_err());
    }
}
