//! `kind = "icmp"`: one echo request (surge-ping), through an unprivileged datagram ICMP
//! socket where the kernel allows it (`net.ipv4.ping_group_range`), else a raw one (root or
//! CAP_NET_RAW). Where neither may be opened the result says "not permitted" and how to
//! allow it; it is a failed run, never a crash.

use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::ProbeResult;
use crate::sources::Sources;
use peakguard_config::ProbeConfig;
use serde::Deserialize;
use std::net::IpAddr;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};

pub(crate) struct Icmp;
pub(crate) static PROBE: Registered<Icmp> = Registered::NEW;

/// An `icmp` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IcmpSettings {
    /// A host name or an address (no port).
    address: Option<String>,
}

impl Probe for Icmp {
    type Settings = IcmpSettings;
    const KIND: &'static str = "icmp";
    const VALUES: &'static [&'static str] = &["success", "duration", "rtt"];

    fn check(s: &IcmpSettings) -> Problems {
        match s.address.as_deref() {
            None => vec![(
                "address".into(),
                "an icmp probe needs `address = \"203.0.113.7\"` (or a host name)".into(),
            )],
            Some(a) if a.parse::<std::net::SocketAddr>().is_ok() => vec![(
                "address".into(),
                format!("{a:?}: ICMP has no port; give the host or address alone"),
            )],
            Some(_) => Vec::new(),
        }
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: IcmpSettings,
        _memory: &'a mut Memory,
        _sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(run(probe, settings))
    }
}

async fn run(probe: &ProbeConfig, s: IcmpSettings) -> ProbeResult {
    let Some(address) = s.address.as_deref() else {
        return ProbeResult::failed(probe, "no address".into());
    };
    let ip: IpAddr = match address.parse() {
        Ok(ip) => ip,
        Err(_) => match tokio::net::lookup_host((address, 0)).await {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => a.ip(),
                None => return ProbeResult::failed(probe, format!("{address} has no address")),
            },
            Err(e) => return ProbeResult::failed(probe, format!("cannot resolve {address}: {e}")),
        },
    };
    let config = match ip {
        IpAddr::V4(_) => Config::default(),
        IpAddr::V6(_) => Config::builder().kind(ICMP::V6).build(),
    };
    let client = match Client::new(&config) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return ProbeResult::failed(
                probe,
                "not permitted: this process may not open an ICMP socket (allow its group in net.ipv4.ping_group_range, or give it CAP_NET_RAW)".into(),
            );
        }
        Err(e) => return ProbeResult::failed(probe, format!("cannot open an ICMP socket: {e}")),
    };
    let ident = PingIdentifier((std::process::id() & 0xffff) as u16);
    let mut pinger = client.pinger(ip, ident).await;
    pinger.timeout(probe.timeout.0);
    // Timed here: surge-ping takes its start after the send, so a loopback reply that its
    // receiving task saw first measures zero.
    let started = std::time::Instant::now();
    match pinger.ping(PingSequence(0), &[0u8; 56]).await {
        Ok(_) => {
            let rtt = started.elapsed();
            ProbeResult::new(
                probe,
                true,
                format!("{ip} answered in {:.2}ms", rtt.as_secs_f64() * 1000.0),
            )
            .with("rtt", rtt.as_secs_f64())
        }
        Err(SurgeError::Timeout { .. }) => {
            ProbeResult::failed(probe, format!("no echo reply from {ip}"))
        }
        Err(e) => ProbeResult::failed(probe, format!("ping {ip}: {e}")),
    }
}
