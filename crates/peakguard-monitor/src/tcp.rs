//! `kind = "tcp"`: can a connection be opened, and how fast.

use crate::result::ProbeResult;
use peakguard_config::ProbeConfig;
use std::time::Instant;

crate::probe::built_in_probe!("tcp", |probe, _memory, _sources| run(probe));

pub(crate) async fn run(probe: &ProbeConfig) -> ProbeResult {
    let Some(address) = probe.address.as_deref() else {
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
