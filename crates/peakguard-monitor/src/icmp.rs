//! `kind = "icmp"`: one echo request (surge-ping), through an unprivileged datagram ICMP
//! socket where the kernel allows it (`net.ipv4.ping_group_range`), else a raw one (root or
//! CAP_NET_RAW). Where neither may be opened the result says "not permitted" and how to
//! allow it; it is a failed run, never a crash.

use crate::result::ProbeResult;
use peakguard_config::ProbeConfig;
use std::net::IpAddr;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};

crate::probe::built_in_probe!("icmp", |probe, _memory, _sources| run(probe));

pub(crate) async fn run(probe: &ProbeConfig) -> ProbeResult {
    let Some(address) = probe.address.as_deref() else {
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
