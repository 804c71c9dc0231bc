//! The monitor's extension point: a [`Probe`] is one kind of check (`kind = "..."`). A new
//! kind is a file in this crate with its `PROBE` (the kind's name, the values its results
//! carry for `[[alert]] when`, the checks of its own keys, how it runs) and its name on a
//! line of `probes![...]` in `lib.rs`. A kind's own keys reach it in
//! `ProbeConfig::settings` (read with [`own_settings`]); the built-in kinds still read
//! their keys from `ProbeConfig`'s fields, checked in peakguard-config.

use crate::memory::Memory;
use crate::result::ProbeResult;
use crate::sources::Sources;
use peakguard_config::{ProbeConfig, ProbeKind, ProbeKindSpec};
use std::future::Future;
use std::pin::Pin;

/// A probe's run, bounded by the caller's timeout.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;

/// Checks a registered kind's own keys: (key, message).
pub type CheckFn = fn(&ProbeConfig) -> Vec<(String, String)>;

/// One kind of probe.
pub trait Probe: Sync {
    /// Its `kind = "..."`.
    fn kind(&self) -> &'static str;
    /// The values its results carry, by the names `[[alert]] when` compares.
    fn values(&self) -> &'static [&'static str];
    /// The checks of its own keys, for a kind that owns them (`None`: a built-in kind,
    /// checked by peakguard-config).
    fn check(&self) -> Option<CheckFn> {
        None
    }
    /// Runs once. The caller bounds it with the probe's timeout.
    fn run<'a>(
        &'a self,
        probe: &'a ProbeConfig,
        memory: &'a mut Memory,
        sources: &'a Sources,
    ) -> RunFuture<'a>;
}

/// The probe of `kind`, if one is registered.
pub fn find(kind: &ProbeKind) -> Option<&'static dyn Probe> {
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

/// The values of a built-in kind, as peakguard-config lists them.
pub(crate) fn built_in_values(kind: &str) -> &'static [&'static str] {
    peakguard_config::values_of(&ProbeKind::named(kind), &[])
}

/// The kinds that own their keys, for [`peakguard_config::Extensions::probe_kinds`].
pub fn probe_kinds() -> Vec<ProbeKindSpec> {
    crate::PROBES
        .iter()
        .filter_map(|p| {
            p.check().map(|check| ProbeKindSpec {
                name: p.kind(),
                values: p.values(),
                check,
            })
        })
        .collect()
}

/// A registered kind's own keys read as `T`; the error names what serde found wrong.
pub fn own_settings<T: serde::de::DeserializeOwned>(probe: &ProbeConfig) -> Result<T, String> {
    toml::Value::Table(probe.settings.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().trim().to_string())
}

/// A built-in kind: its name and the function that runs it.
macro_rules! built_in_probe {
    ($kind:literal, |$probe:ident, $memory:ident, $sources:ident| $run:expr) => {
        pub(crate) struct BuiltIn;
        pub(crate) static PROBE: BuiltIn = BuiltIn;
        impl crate::probe::Probe for BuiltIn {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn values(&self) -> &'static [&'static str] {
                crate::probe::built_in_values($kind)
            }
            fn run<'a>(
                &'a self,
                $probe: &'a peakguard_config::ProbeConfig,
                $memory: &'a mut crate::memory::Memory,
                $sources: &'a crate::sources::Sources,
            ) -> crate::probe::RunFuture<'a> {
                Box::pin($run)
            }
        }
    };
}
pub(crate) use built_in_probe;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_registered_once_and_reports_values() {
        let mut kinds: Vec<&str> = crate::PROBES.iter().map(|p| p.kind()).collect();
        kinds.sort_unstable();
        let n = kinds.len();
        kinds.dedup();
        assert_eq!(n, kinds.len(), "two probes share a kind");
        for p in crate::PROBES {
            assert!(p.values().contains(&"success"), "{}", p.kind());
            assert_eq!(
                find(&ProbeKind::named(p.kind())).map(|f| f.kind()),
                Some(p.kind())
            );
        }
    }
}
