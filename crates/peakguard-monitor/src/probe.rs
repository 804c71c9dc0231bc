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
use peakguard_config::{OwnKeys, ProbeConfig, ProbeKind, ProbeKindSpec};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::LazyLock;

/// A probe's run, bounded by the caller's timeout.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;

pub use crate::own_keys::Problems;
use crate::own_keys::{KeyedKind, Kind, check_among, read_settings};

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
pub trait AnyProbe: KeyedKind {
    fn values(&self) -> &'static [&'static str];
    fn silenced_by_maintenance(&self) -> bool;
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

impl<P: Probe> KeyedKind for Registered<P> {
    fn kind(&self) -> &'static str {
        P::KIND
    }

    fn check(&self, keys: &OwnKeys) -> Problems {
        let (settings, mut problems) = read_settings::<P::Settings>(kind_of::<P>(), keys);
        if let Some(settings) = settings {
            problems.extend(P::check(&settings));
        }
        problems
    }
}

impl<P: Probe> AnyProbe for Registered<P> {
    fn values(&self) -> &'static [&'static str] {
        P::VALUES
    }

    fn silenced_by_maintenance(&self) -> bool {
        P::SILENCED_BY_MAINTENANCE
    }

    fn run<'a>(
        &'a self,
        probe: &'a ProbeConfig,
        memory: &'a mut Memory,
        sources: &'a Sources,
    ) -> RunFuture<'a> {
        match crate::own_keys::own_settings::<P::Settings>(kind_of::<P>(), &probe.settings) {
            Ok(settings) => P::run(probe, settings, memory, sources),
            Err(e) => Box::pin(std::future::ready(ProbeResult::failed(probe, e))),
        }
    }
}

fn kind_of<P: Probe>() -> Kind<'static> {
    Kind {
        name: P::KIND,
        of: "probe",
    }
}

/// A registered kind's own keys read as `T`, or what is wrong with them.
pub fn own_settings<T: DeserializeOwned>(probe: &ProbeConfig) -> Result<T, String> {
    crate::own_keys::own_settings(
        Kind {
            name: probe.kind.as_str(),
            of: "probe",
        },
        &probe.settings,
    )
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

/// The checks of any probe's own keys: its kind's, with a key that belongs to another kind
/// named as such (`path` belongs to kind = "disk", not "tcp").
fn check_any(probe: &ProbeConfig) -> Problems {
    let Some(kind) = find(&probe.kind) else {
        return Vec::new(); // peakguard-config names the unknown kind
    };
    check_among(
        kind,
        &probe.settings,
        crate::PROBES.iter().map(|k| *k as &dyn KeyedKind),
    )
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
