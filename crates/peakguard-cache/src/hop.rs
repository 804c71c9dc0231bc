//! Hop-by-hop header fields (RFC 9110 §7.6.1): never stored, never forwarded.

pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Names listed in `Connection` header values (also hop-by-hop).
pub fn connection_listed(values: impl Iterator<Item = impl AsRef<[u8]>>) -> Vec<String> {
    let mut out = Vec::new();
    for v in values {
        if let Ok(s) = std::str::from_utf8(v.as_ref()) {
            out.extend(
                s.split(',')
                    .map(|f| f.trim().to_ascii_lowercase())
                    .filter(|f| !f.is_empty() && f != "close" && f != "keep-alive"),
            );
        }
    }
    out
}
