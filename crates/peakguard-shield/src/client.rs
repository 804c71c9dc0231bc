//! Who the client is: the peer address, unless the peer is a trusted proxy, in which case the
//! right-most untrusted address of `X-Forwarded-For` (and its `X-Forwarded-Proto`).

use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: IpAddr,
    /// The scheme the client used (from a trusted proxy's `X-Forwarded-Proto`, else ours).
    pub proto: String,
    /// The `X-Forwarded-For` value to send to the origin.
    pub forwarded_for: String,
}

/// Resolves the client. `xff` and `xfp` are the incoming headers (if any), `scheme` is the
/// scheme of our own listener.
pub fn client_info(
    peer: IpAddr,
    xff: Option<&str>,
    xfp: Option<&str>,
    scheme: &str,
    trusted: &[IpNet],
) -> ClientInfo {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        // Anything the client claims is discarded.
        return ClientInfo {
            ip: peer,
            proto: scheme.to_string(),
            forwarded_for: peer.to_string(),
        };
    }
    let chain: Vec<IpAddr> = xff
        .unwrap_or("")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let client = chain
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .copied()
        .unwrap_or(peer);
    let proto = xfp
        .map(|p| {
            p.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| scheme.to_string());
    let mut forwarded_for: Vec<String> = chain.iter().map(|ip| ip.to_string()).collect();
    forwarded_for.push(peer.to_string());
    ClientInfo {
        ip: client,
        proto,
        forwarded_for: forwarded_for.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let c = client_info(
            "203.0.113.9".parse().unwrap(),
            Some("1.2.3.4"),
            Some("https"),
            "http",
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(c.ip.to_string(), "203.0.113.9");
        assert_eq!(c.proto, "http");
        assert_eq!(c.forwarded_for, "203.0.113.9");
    }

    #[test]
    fn trusted_proxy_chain_is_followed() {
        let c = client_info(
            "10.0.0.2".parse().unwrap(),
            Some("198.51.100.7, 10.0.0.5"),
            Some("https"),
            "http",
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(c.ip.to_string(), "198.51.100.7");
        assert_eq!(c.proto, "https");
        assert_eq!(c.forwarded_for, "198.51.100.7, 10.0.0.5, 10.0.0.2");
    }

    #[test]
    fn garbage_proto_is_ignored() {
        let c = client_info(
            "10.0.0.2".parse().unwrap(),
            None,
            Some("gopher"),
            "https",
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(c.proto, "https");
        assert_eq!(c.ip.to_string(), "10.0.0.2");
    }
}
