//! The monitor: the probes a serious host runs against a site and its server, and the
//! alerts that reach a person.
//!
//! Owns: the kinds of probe ([`probe::Probe`], one file each, listed in `probes![...]`),
//! running each `[[probe]]` once (`run`, `run_all`) and what a run found
//! (`ProbeResult`), written out as Prometheus text with the names blackbox_exporter uses
//! (`metrics`); the running monitor (`Monitor`: probes on their intervals, thresholds, the
//! last results, on its own thread) with its alert rules, silences and notifiers, and what
//! it answers through an admin API (`api`, an `AdminExtension`: the edge's admin API serves it,
//! or peakguard-admin's listener where no edge runs). Must not
//! touch: the request path, the edge's state or the cache; a probe is a client like any
//! other, bounded by its timeout, and the edge's maintenance switch is read from its state
//! file.
#![forbid(unsafe_code)]

pub mod alerts;
mod api;
mod db;
mod memory;
pub mod metrics;
pub mod notify;
mod own_keys;
pub mod probe;
mod result;
mod service;
pub mod sources;
mod track;

/// Declares each probe's module and [`PROBES`].
macro_rules! probes {
    ($($probe:ident),* $(,)?) => {
        $(mod $probe;)*
        /// Every kind of probe (each module's `PROBE`).
        pub static PROBES: &[&dyn probe::AnyProbe] = &[$(&$probe::PROBE),*];
    };
}

// A new kind of probe: its file in this folder, and its name on a line of this list.
probes![
    http_probe,
    tcp,
    disk,
    tls,
    icmp,
    mariadb,
    wordpress,
    backup_probe,
    edge_probe,
    dns,
];

pub use memory::Memory;
pub use notify::notifier_kinds;
pub use probe::{probe_kinds, values_of};
pub use service::{Monitor, MonitorError};
pub use sources::Sources;
pub use track::Track;

pub use result::{DiskDetail, HttpDetail, Phase, ProbeResult, TlsDetail};

use peakguard_config::ProbeConfig;
use std::time::Instant;

/// What the monitor adds to the configuration (its kinds of probe and of notifier), for
/// [`peakguard_config::parse_with`] and `load_with`.
pub fn extensions() -> peakguard_config::Extensions<'static> {
    peakguard_config::Extensions {
        probe_kinds: probe_kinds(),
        notifier_kinds: notifier_kinds(),
        ..Default::default()
    }
}

/// Runs one probe once, alone (no memory of earlier runs, no in-process sources: edge and
/// backup probes say they need `serve`); never longer than its timeout.
pub async fn run(probe: &ProbeConfig) -> ProbeResult {
    run_with(probe, &mut Memory::default(), &Sources::default()).await
}

/// Runs one probe once with what it remembers and what it may read in-process; never longer
/// than its timeout (then it failed, saying so).
pub async fn run_with(probe: &ProbeConfig, memory: &mut Memory, sources: &Sources) -> ProbeResult {
    let started = Instant::now();
    let outcome = tokio::time::timeout(probe.timeout.0, async {
        match probe::find(&probe.kind) {
            Some(kind) => kind.run(probe, memory, sources).await,
            None => ProbeResult::failed(
                probe,
                format!("no probe of kind {:?} in this build", probe.kind.as_str()),
            ),
        }
    })
    .await;
    let mut result = match outcome {
        Ok(result) => result,
        Err(_) => ProbeResult::failed(
            probe,
            format!(
                "no answer within the timeout ({})",
                humantime_short(probe.timeout.0)
            ),
        ),
    };
    result.duration = started.elapsed();
    result
}

/// Runs every probe once, all at the same time; results in the configuration's order.
pub async fn run_all(probes: &[ProbeConfig]) -> Vec<ProbeResult> {
    let mut set = tokio::task::JoinSet::new();
    for (i, probe) in probes.iter().cloned().enumerate() {
        set.spawn(async move { (i, run(&probe).await) });
    }
    let mut results: Vec<Option<ProbeResult>> = vec![None; probes.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, result)) = joined {
            results[i] = Some(result);
        }
    }
    results
        .into_iter()
        .zip(probes)
        .map(|(r, p)| r.unwrap_or_else(|| ProbeResult::failed(p, "the probe panicked".into())))
        .collect()
}

/// `250ms`, `2s`, `1day 2h 5m` (whole seconds from a second up).
pub(crate) fn humantime_short(d: std::time::Duration) -> String {
    if d.as_secs() >= 1 && (d.subsec_millis() == 0 || d.as_secs() >= 60) {
        humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
    } else {
        format!("{}ms", d.as_millis())
    }
}
