//! `[[probe]]`: what the monitor checks, how often, and what counts as a failure. The keys
//! every probe has are here; the keys of a kind (`url`, `address`, `path`…) belong to its
//! probe in peakguard-monitor, which reads and checks them ([`ProbeKindSpec`]).

use crate::units::Seconds;
use serde::Deserialize;

/// What a probe checks: the `kind = "..."` of a probe peakguard-monitor registers (`http`,
/// `tcp`, `disk`, `tls`, `icmp`, `mariadb`, `wordpress`, `backup`, `edge`, `dns`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ProbeKind(String);

impl ProbeKind {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind named `name`.
    pub fn named(name: &str) -> ProbeKind {
        ProbeKind(name.to_string())
    }
}

/// A kind of probe the monitor registers: its name, the values it reports (what
/// `[[alert]] when` may compare) and the checks of its own keys.
#[derive(Clone, Copy)]
pub struct ProbeKindSpec {
    pub name: &'static str,
    pub values: &'static [&'static str],
    /// Problems of the probe's own keys ([`ProbeConfig::settings`]), as (key, message).
    pub check: fn(&ProbeConfig) -> Vec<(String, String)>,
}

/// One `[[probe]]`: the keys every probe has, and its kind's own keys in `settings`.
#[derive(Debug, Clone, Deserialize)]
pub struct ProbeConfig {
    /// Names the probe in metrics (`probe="..."`), the status API and alerts.
    pub name: String,
    pub kind: ProbeKind,
    /// How often it runs (continuous monitoring).
    #[serde(default = "default_interval")]
    pub interval: Seconds,
    /// How long one run may take before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// Failed runs in a row before the probe counts as down (one blip pages nobody).
    #[serde(default = "one")]
    pub failures_before_down: u32,
    /// Successful runs in a row before a down probe counts as up again.
    #[serde(default = "one")]
    pub successes_before_up: u32,
    /// Every other key: the kind's own (an http probe's `url`, a dns probe's `query`), read
    /// and checked by its probe.
    #[serde(flatten)]
    pub settings: crate::OwnKeys,
}

fn default_interval() -> Seconds {
    Seconds::secs(60)
}
fn default_timeout() -> Seconds {
    Seconds::secs(10)
}
fn one() -> u32 {
    1
}

/// Checks one probe; `(key path, message)` as the rest of the validation. `kinds`: the kinds
/// the monitor registers, each checking its own keys.
pub fn validate_probe(
    i: usize,
    probe: &ProbeConfig,
    kinds: &[ProbeKindSpec],
    problems: &mut Vec<(String, String)>,
) {
    let key = |k: &str| format!("probe[{i}].{k}");
    let mut p = |k: &str, m: String| problems.push((key(k), m));
    match kinds.iter().find(|k| k.name == probe.kind.as_str()) {
        Some(spec) => {
            for (k, m) in (spec.check)(probe) {
                p(&k, m);
            }
        }
        None => p(
            "kind",
            crate::own_keys::unknown_kind(probe.kind.as_str(), kinds.iter().map(|k| k.name)),
        ),
    }
    if probe.name.trim().is_empty() {
        p(
            "name",
            "a probe needs a name (used in metrics and alerts)".into(),
        );
    }
    if probe.timeout.0.is_zero() || probe.interval.0.is_zero() {
        p(
            "timeout",
            "interval and timeout must be longer than zero".into(),
        );
    }
    if probe.failures_before_down == 0 || probe.successes_before_up == 0 {
        p(
            "failures_before_down",
            "failures_before_down and successes_before_up start at 1".into(),
        );
    }
}
