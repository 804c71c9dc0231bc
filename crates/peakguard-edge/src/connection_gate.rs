//! Open connections per client, at accept: pingora's connection filter asks the shield's
//! [`AcceptGate`], and a background service counts the kernel's established sockets on the
//! edge's ports about once a second (`/proc/net/tcp` and `tcp6`, read on the blocking pool),
//! so that closed connections free their slot and idle ones that never sent a byte count.

use async_trait::async_trait;
use peakguard_shield::connections::AcceptGate;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use procfs::net::TcpState;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How often the kernel is asked.
const COUNT_EVERY: Duration = Duration::from_secs(1);

/// The filter pingora's listeners call for each accepted connection.
pub struct GateFilter(pub Arc<AcceptGate>);

impl std::fmt::Debug for GateFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GateFilter(limit {})", self.0.limit())
    }
}

#[async_trait]
impl pingora_core::listeners::ConnectionFilter for GateFilter {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        addr.is_none_or(|a| self.0.admit(a.ip()))
    }
}

/// The ports of the listeners (`host:port` strings as configured).
pub fn listen_ports<'a>(addrs: impl IntoIterator<Item = &'a String>) -> Vec<u16> {
    addrs
        .into_iter()
        .filter_map(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .collect()
}

/// Peers of the established connections to `ports`.
fn established_peers(ports: &[u16]) -> Result<Vec<IpAddr>, procfs::ProcError> {
    let mut peers = Vec::new();
    let v4 = procfs::net::tcp()?;
    // A host without IPv6 has no tcp6 table.
    let v6 = procfs::net::tcp6().unwrap_or_default();
    for entry in v4.into_iter().chain(v6) {
        if entry.state == TcpState::Established && ports.contains(&entry.local_address.port()) {
            peers.push(entry.remote_address.ip());
        }
    }
    Ok(peers)
}

/// Counts the kernel's sockets while the gate has a limit; stops with the edge.
pub struct KernelCount {
    pub gate: Arc<AcceptGate>,
    pub ports: Vec<u16>,
}

#[async_trait]
impl BackgroundService for KernelCount {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut every = tokio::time::interval(COUNT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.changed() => return,
            }
            if self.gate.limit() == 0 {
                continue;
            }
            self.gate.counting();
            let ports = self.ports.clone();
            match tokio::task::spawn_blocking(move || established_peers(&ports)).await {
                Ok(Ok(peers)) => self.gate.counted(peers),
                Ok(Err(e)) => {
                    if !warned {
                        log::warn!(
                            "connections: cannot read the kernel's socket table ({e}); only bursts within a second are limited"
                        );
                        warned = true;
                    }
                    // Fail open: without the kernel's count, closed connections would
                    // never free their slot.
                    self.gate.counted([]);
                }
                Err(e) => log::warn!("connections: the count failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_of_the_configured_listeners() {
        let addrs = [
            "0.0.0.0:80".to_string(),
            "[::]:443".to_string(),
            "bad".to_string(),
        ];
        assert_eq!(listen_ports(&addrs), vec![80, 443]);
    }

    #[test]
    fn the_kernel_table_lists_an_established_connection_to_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (_server, _) = listener.accept().expect("accept");
        let peers = established_peers(&[port]).expect("/proc/net/tcp");
        assert_eq!(peers, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }
}
