//! peakguard's configuration: the TOML schema, its defaults and its validation.
//!
//! Owns: turning one TOML text into a checked [`Config`], and errors that name the key,
//! the line and what is allowed — the tables other crates own (a guard's `[site.shield.NAME]`,
//! a probe kind's own keys) kept as written and checked by their owners ([`Extensions`]);
//! where state, cache and sockets go by default ([`dirs`]); and
//! the checks that keep those places private ([`private_fs`]: owned by this user, closed to
//! others, secrets 0600 and never read through a symbolic link). Must not touch: sockets,
//! the cache, the runtime. Its I/O is reading the file the caller names and the private
//! directory and secret-file helpers the other crates call.
#![forbid(unsafe_code)]

mod alerts;
mod backup;
pub mod dirs;
mod error;
mod locate;
mod monitor;
mod own_keys;
pub mod private_fs;
pub mod redact;
pub mod rule_path;
mod schema;
mod secret;
mod shield;
mod units;
mod validate;
pub mod waf;
mod wordpress;

pub use alerts::{
    AlertRule, Condition, MonitorSettings, NotifierConfig, NotifierKind, NotifierKindSpec, Op,
    valid_label_name, values_of,
};
pub use backup::{BackupConfig, BunkerConfig, DatabaseConfig, RetentionConfig};
pub use error::{ConfigError, Problem};
pub mod typed;
pub use monitor::{ProbeConfig, ProbeKind, ProbeKindSpec};
pub use own_keys::OwnKeys;
pub use schema::*;
pub use secret::Secret;
pub use shield::{ShieldConfig, ShieldSettings};
pub use units::{ByteSize, Seconds};
pub use waf::{SetupValue, WafConfig, WafException, WafFailure, WafMode, WafSettings};
pub use wordpress::{WordpressConfig, is_admin_bar_scope, is_purge_only, pick_token};

use std::path::Path;

/// A `[site.shield.NAME]` table a guard outside this crate owns: the shield's registry
/// lists them ([`parse_with`] rejects a name nobody claims).
#[derive(Clone, Copy)]
pub struct GuardTable {
    pub name: &'static str,
    /// The table's problems for one site, as (key inside the table, what is wrong and what
    /// is allowed); an empty key names the table itself.
    pub check: fn(&SiteConfig, &toml::Value) -> Vec<(String, String)>,
}

/// What the crates above this one add to the configuration: the `[site.shield.NAME]` tables
/// guards own (peakguard-shield) and the kinds of probe (peakguard-monitor). The binary gathers them; the edge re-reads its file
/// with the reader the binary gives it.
#[derive(Clone, Copy, Default)]
pub struct Extensions<'a> {
    pub guard_tables: &'a [GuardTable],
    pub probe_kinds: &'a [ProbeKindSpec],
    pub notifier_kinds: &'a [NotifierKindSpec],
}

/// Parses and validates a configuration text. `origin` names the text in errors (a path).
/// A `[site.shield.NAME]` table of a guard that owns its configuration, or a `[[probe]]`,
/// is an error here: the CLI reads the file with [`parse_with`] and the
/// extensions.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_with(text, origin, &Extensions::default())
}

/// [`parse`], with the guards' tables and the registered probe kinds checked by their owners.
pub fn parse_with(
    text: &str,
    origin: &str,
    extensions: &Extensions<'_>,
) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| locate::line_of_offset(text, s.start));
        ConfigError::Invalid {
            origin: origin.to_string(),
            problems: vec![Problem {
                key: String::new(),
                line,
                message: e.message().to_string(),
            }],
        }
    })?;
    let mut config = config;
    apply_profiles(&mut config, text);
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    dirs::apply(
        &mut config,
        &dirs::DefaultDirs::of_this_process(),
        |section, key| table.get(section).and_then(|s| s.get(key)).is_some(),
    );
    let mut problems = validate::validate(&config, extensions);
    guard_tables(&config, extensions.guard_tables, &mut problems);
    if problems.is_empty() {
        return Ok(config);
    }
    let problems = problems
        .into_iter()
        .map(|(key, message)| Problem {
            line: locate::line_of_key(text, &key),
            key,
            message,
        })
        .collect();
    Err(ConfigError::Invalid {
        origin: origin.to_string(),
        problems,
    })
}

/// Each site's guard-owned tables, checked by their guard; a table no guard owns is named.
fn guard_tables(config: &Config, tables: &[GuardTable], problems: &mut Vec<(String, String)>) {
    for (i, site) in config.sites.iter().enumerate() {
        for (name, value) in &site.shield.guards {
            let key = format!("site[{i}].shield.{name}");
            let Some(table) = tables.iter().find(|t| t.name == name) else {
                let mut known: Vec<&str> = tables.iter().map(|t| t.name).collect();
                known.sort_unstable();
                problems.push((
                    key,
                    format!(
                        "unknown section [site.shield.{name}]; the shield's sections are: {}",
                        known.join(", ")
                    ),
                ));
                continue;
            };
            for (inner, message) in (table.check)(site, value) {
                let key = if inner.is_empty() {
                    key.clone()
                } else {
                    format!("{key}.{inner}")
                };
                problems.push((key, message));
            }
        }
    }
}

/// `profile = "http"` sites get no WordPress rules unless a key sets them explicitly.
fn apply_profiles(config: &mut Config, text: &str) {
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    let entries = table.get("site").and_then(|s| s.as_array());
    for (i, site) in config.sites.iter_mut().enumerate() {
        if site.profile != Profile::Http {
            continue;
        }
        let given = |k: &str| {
            entries
                .and_then(|a| a.get(i))
                .and_then(|t| t.get(k))
                .is_some()
        };
        let explicit = site.clone();
        site.apply_profile(Profile::Http);
        // Keys the file sets keep their value; the rest take the http profile's defaults.
        macro_rules! keep_given {
            ($($field:ident),*) => {$(
                if given(stringify!($field)) {
                    site.$field = explicit.$field.clone();
                }
            )*};
        }
        keep_given!(
            default_ttl,
            tracking_params,
            bypass_cookies,
            bypass_paths,
            bypass_query,
            stale_if_error,
            stale_while_revalidate
        );
    }
}

/// The embedded defaults with this process's directories filled in (what an empty
/// configuration file gives).
pub fn defaults() -> Config {
    let mut config = Config {
        server: ServerConfig::default(),
        admin: AdminConfig::default(),
        cache: CacheConfig::default(),
        maintenance: MaintenanceConfig::default(),
        shield: ShieldSettings::default(),
        waf: WafSettings::default(),
        sites: Vec::new(),
        probes: Vec::new(),
        monitor: MonitorSettings::default(),
        alerts: Vec::new(),
        notifiers: Vec::new(),
        journal: schema::JournalConfig::default(),
        stats: schema::StatsConfig::default(),
        campaigns: Vec::new(),
    };
    dirs::apply(
        &mut config,
        &dirs::DefaultDirs::of_this_process(),
        |_, _| false,
    );
    config
}

/// Reads and validates the configuration file at `path` (see [`parse`]).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, &Extensions::default())
}

/// Reads the configuration file at `path` and validates it with the extensions.
pub fn load_with(path: &Path, extensions: &Extensions<'_>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_with(&text, &path.display().to_string(), extensions)
}

#[cfg(test)]
mod tests;
