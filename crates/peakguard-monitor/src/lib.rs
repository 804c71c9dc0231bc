//! The monitor: the probes a serious host runs against a site and its server, and the
//! alerts that reach a person.
//!
//! Owns: running each `[[probe]]` once (`run`, `run_all`) and what a run found
//! (`ProbeResult`), written out as Prometheus text with the names blackbox_exporter uses
//! (`metrics`); the running monitor (`Monitor`: probes on their intervals, thresholds, the
//! last results, on its own thread) with its alert rules, silences and notifiers, and what
//! it answers through an admin API (`api`, and `api_server` where no edge runs). Must not
//! touch: the request path, the edge's state or the cache; a probe is a client like any
//! other, bounded by its timeout, and the edge's maintenance switch is read from its state
//! file.

pub mod alerts;
mod api;
mod api_server;
mod disk;
mod http_probe;
pub mod metrics;
pub mod notify;
mod result;
mod service;
mod tcp;
mod tls;
mod track;

pub use api_server::serve_api;
pub use service::{Monitor, MonitorError};
pub use track::Track;

pub use result::{DiskDetail, HttpDetail, Phase, ProbeResult, TlsDetail};

use peakguard_config::{ProbeConfig, ProbeKind};
use std::time::Instant;

/// Runs one probe once; never longer than its timeout (then it failed, saying so).
pub async fn run(probe: &ProbeConfig) -> ProbeResult {
    let started = Instant::now();
    let outcome = tokio::time::timeout(probe.timeout.0, async {
        match probe.kind {
            ProbeKind::Http => http_probe::run(probe).await,
            ProbeKind::Tcp => tcp::run(probe).await,
            ProbeKind::Disk => disk::run(probe).await,
            ProbeKind::Tls => tls::run(probe).await,
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

pub(crate) fn humantime_short(d: std::time::Duration) -> String {
    if d.as_secs() >= 1 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
