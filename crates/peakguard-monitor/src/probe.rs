//! The monitor's extension point: a [`Probe`] is one kind of check (`kind = "..."`). A new
//! kind is a file in this crate — its settings struct (the kind's own keys, with
//! `deny_unknown_fields`), the values its results carry for `[[alert]] when`, the checks of
//! its keys, how it runs — with a `static PROBE: Registered<…>` line, and its name on a line
//! of `probes![...]` in `lib.rs`. The keys every probe has (name, interval, timeout…) are
//! peakguard-config's `ProbeConfig`; a kind's own keys reach it as its settings struct, read
//! from `ProbeConfig::settings` by [`own_settings`].

use crate::memory::Memory;
use crate::result::ProbeResult;
use crate::sources::Sources;
use peakguard_config::typed::from_value;
use peakguard_config::{ProbeConfig, ProbeKind, ProbeKindSpec};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::LazyLock;

/// A probe's run, bounded by the caller's timeout.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;

/// Problems of a probe's keys, as (key, what is wrong and what to write).
pub type Problems = Vec<(String, String)>;

/// One kind of probe, as its file writes it.
pub trait Probe: Send + Sync + 'static {
    /// The kind's own keys.
    type Settings: DeserializeOwned + Send + 'static;
    /// Its `kind = "..."`.
    const KIND: &'static str;
    /// The values its results carry, by the names `[[alert]] when` compares.
    const VALUES: &'static [&'static str];
    /// Whether the edge's maintenance explains a failure of this kind (the default of an
    /// alert's `silenced_by_maintenance`): a site probe, yes; a full disk, no.
    const SILENCED_BY_MAINTENANCE: bool = false;
    /// The checks of its keys' values beyond their types (a URL's scheme, a share in 0–1).
    fn check(_settings: &Self::Settings) -> Problems {
        Vec::new()
    }
    /// Runs once. The caller bounds it with the probe's timeout.
    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: Self::Settings,
        memory: &'a mut Memory,
        sources: &'a Sources,
    ) -> RunFuture<'a>;
}

/// A kind in the registry, whatever its settings' type.
pub trait AnyProbe: Sync {
    fn kind(&self) -> &'static str;
    fn values(&self) -> &'static [&'static str];
    fn silenced_by_maintenance(&self) -> bool;
    /// Problems of the probe's own keys: unknown ones, wrong types, wrong values.
    fn check(&self, probe: &ProbeConfig) -> Problems;
    fn run<'a>(
        &'a self,
        probe: &'a ProbeConfig,
        memory: &'a mut Memory,
        sources: &'a Sources,
    ) -> RunFuture<'a>;
}

/// What a probe file registers: `pub(crate) static PROBE: Registered<Tcp> = Registered::NEW;`.
pub struct Registered<P>(PhantomData<fn() -> P>);

impl<P> Registered<P> {
    pub const NEW: Registered<P> = Registered(PhantomData);
}

impl<P: Probe> AnyProbe for Registered<P> {
    fn kind(&self) -> &'static str {
        P::KIND
    }

    fn values(&self) -> &'static [&'static str] {
        P::VALUES
    }

    fn silenced_by_maintenance(&self) -> bool {
        P::SILENCED_BY_MAINTENANCE
    }

    fn check(&self, probe: &ProbeConfig) -> Problems {
        let (settings, mut problems) = read_settings::<P::Settings>(probe);
        if let Some(settings) = settings {
            problems.extend(P::check(&settings));
        }
        problems
    }

    fn run<'a>(
        &'a self,
        probe: &'a ProbeConfig,
        memory: &'a mut Memory,
        sources: &'a Sources,
    ) -> RunFuture<'a> {
        match own_settings::<P::Settings>(probe) {
            Ok(settings) => P::run(probe, settings, memory, sources),
            Err(e) => Box::pin(std::future::ready(ProbeResult::failed(probe, e))),
        }
    }
}

/// The probe of `kind`, if one is registered.
pub fn find(kind: &ProbeKind) -> Option<&'static dyn AnyProbe> {
    crate::PROBES
        .iter()
        .copied()
        .find(|p| p.kind() == kind.as_str())
}

/// The kind's name as the registry spells it (`"unknown"` for none).
pub(crate) fn kind_name(kind: &ProbeKind) -> &'static str {
    find(kind).map_or("unknown", |p| p.kind())
}

/// The values a kind's results carry (none for an unknown kind).
pub fn values_of(kind: &ProbeKind) -> &'static [&'static str] {
    find(kind).map_or(&[], |p| p.values())
}

/// Every kind, for [`peakguard_config::Extensions::probe_kinds`].
pub fn probe_kinds() -> &'static [ProbeKindSpec] {
    static KINDS: LazyLock<Vec<ProbeKindSpec>> = LazyLock::new(|| {
        crate::PROBES
            .iter()
            .map(|p| ProbeKindSpec {
                name: p.kind(),
                values: p.values(),
                check: check_any,
            })
            .collect()
    });
    &KINDS
}

/// What the monitor adds to the configuration (its kinds of probe), for
/// [`peakguard_config::parse_with`] and `load_with`.
pub fn extensions() -> peakguard_config::Extensions<'static> {
    peakguard_config::Extensions {
        probe_kinds: probe_kinds(),
        ..Default::default()
    }
}

/// The checks of any probe's own keys: its kind's, with a key that belongs to another kind
/// named as such (`path` belongs to kind = "disk", not "tcp").
fn check_any(probe: &ProbeConfig) -> Problems {
    let Some(kind) = find(&probe.kind) else {
        return Vec::new(); // peakguard-config names the unknown kind
    };
    let mut problems = kind.check(probe);
    for (key, message) in &mut problems {
        if !message.starts_with(UNKNOWN_KEY) {
            continue;
        }
        let Some(value) = probe.settings.table().get(key.as_str()) else {
            continue;
        };
        let alone = ProbeConfig {
            settings: toml::Table::from_iter([(key.clone(), value.clone())]).into(),
            ..probe.clone()
        };
        let owners: Vec<String> = crate::PROBES
            .iter()
            .filter(|other| other.kind() != kind.kind())
            .filter(|other| {
                !other
                    .check(&alone)
                    .iter()
                    .any(|(k, m)| k == key && m.starts_with(UNKNOWN_KEY))
            })
            .map(|other| format!("\"{}\"", other.kind()))
            .collect();
        if !owners.is_empty() {
            *message = format!(
                "`{key}` belongs to kind = {}, not \"{}\"",
                owners.join(" or "),
                kind.kind()
            );
        }
    }
    problems
}

/// How the message of a key no field of the kind takes begins.
const UNKNOWN_KEY: &str = "unknown key";

/// A kind's own keys read as `T`, or one sentence saying what is wrong (for a run: the
/// configuration was checked when it was loaded, so this only fails for a probe built by hand).
pub fn own_settings<T: DeserializeOwned>(probe: &ProbeConfig) -> Result<T, String> {
    match read_settings::<T>(probe) {
        (Some(settings), problems) if problems.is_empty() => Ok(settings),
        (_, problems) => Err(problems
            .iter()
            .map(|(k, m)| format!("{k}: {m}"))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// Reads a kind's own keys as `T`: each key `T` has no field for is a problem of its own, the
/// others are read (so a wrong value is reported beside an unknown key), and a wrong type
/// names its key.
fn read_settings<T: DeserializeOwned>(probe: &ProbeConfig) -> (Option<T>, Problems) {
    let kind = probe.kind.as_str();
    let alone = |key: &str, value: &toml::Value| {
        from_value::<T>(toml::Value::Table(toml::Table::from_iter([(
            key.to_string(),
            value.clone(),
        )])))
        .err()
        .map(|(_, message)| message)
    };
    let mut problems = Vec::new();
    let mut known = toml::Table::new();
    for (key, value) in probe.settings.table() {
        match alone(key, value) {
            Some(m) if m.starts_with("unknown field") => problems.push((
                key.clone(),
                format!("{UNKNOWN_KEY} `{key}` for kind = \"{kind}\""),
            )),
            _ => {
                known.insert(key.clone(), value.clone());
            }
        }
    }
    match from_value::<T>(toml::Value::Table(known.clone())) {
        Ok(settings) => (Some(settings), problems),
        Err((key, message)) => {
            let key = match key {
                key if !key.is_empty() => key,
                // A key read through a flattened struct: the one that fails alone.
                _ => between_backticks(&message, "missing field `")
                    .or_else(|| {
                        known.iter().find_map(|(k, v)| {
                            alone(k, v)
                                .filter(|m| !m.starts_with("missing field"))
                                .map(|_| k.clone())
                        })
                    })
                    .unwrap_or_else(|| "kind".to_string()),
            };
            let message = match between_backticks(&message, "missing field `") {
                Some(field) => format!("a {kind} probe needs `{field}`"),
                None => message,
            };
            problems.push((key, message));
            (None, problems)
        }
    }
}

/// `NAME` in `"...PREFIXNAME`..."`.
fn between_backticks(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split_once('`').map(|(name, _)| name.to_string())
}

/// `address`, checked as `host:port` for a kind that connects to one.
pub(crate) fn check_host_port(kind: &str, address: Option<&str>) -> Problems {
    match address {
        None => vec![(
            "address".into(),
            format!("a {kind} probe needs `address = \"host:port\"`"),
        )],
        Some(a) if !is_host_port(a) => vec![("address".into(), format!("{a:?} is not host:port"))],
        Some(_) => Vec::new(),
    }
}

fn is_host_port(address: &str) -> bool {
    address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .is_some()
}

#[cfg(test)]
mod tests;
