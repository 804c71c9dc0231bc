//! `kind = "tcp"`: can a connection be opened, and how fast.

use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::ProbeResult;
use crate::sources::Sources;
use peakguard_config::ProbeConfig;
use serde::Deserialize;
use std::time::Instant;

pub(crate) struct Tcp;
pub(crate) static PROBE: Registered<Tcp> = Registered::NEW;

/// A `tcp` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TcpSettings {
    /// `host:port` to connect to.
    address: Option<String>,
}

impl Probe for Tcp {
    type Settings = TcpSettings;
    const KIND: &'static str = "tcp";
    const VALUES: &'static [&'static str] = &["success", "duration"];
    const SILENCED_BY_MAINTENANCE: bool = true;

    fn check(s: &TcpSettings) -> Problems {
        crate::probe::check_host_port(Self::KIND, s.address.as_deref())
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: TcpSettings,
        _memory: &'a mut Memory,
        _sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(run(probe, settings))
    }
}

async fn run(probe: &ProbeConfig, s: TcpSettings) -> ProbeResult {
    let Some(address) = s.address.as_deref() else {
        return ProbeResult::failed(probe, "no address".into());
    };
    let started = Instant::now();
    match tokio::net::TcpStream::connect(address).await {
        Ok(_) => ProbeResult::new(
            probe,
            true,
            format!("connected in {}", crate::humantime_short(started.elapsed())),
        ),
        Err(e) => ProbeResult::failed(probe, format!("cannot connect to {address}: {e}")),
    }
}
