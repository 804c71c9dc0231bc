//! The response header of each stored representation.

use super::Coding;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, ETAG, TRANSFER_ENCODING, VARY};
use pingora_http::ResponseHeader;

/// Adds `Accept-Encoding` to `Vary` unless it is there already (or `Vary: *`).
pub fn ensure_vary_accept_encoding(header: &mut ResponseHeader) {
    let mut names: Vec<String> = Vec::new();
    for v in header.headers.get_all(VARY) {
        let Ok(v) = v.to_str() else { continue };
        for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" || name.eq_ignore_ascii_case("accept-encoding") {
                return;
            }
            names.push(name.to_string());
        }
    }
    names.push("Accept-Encoding".to_string());
    let _ = header.insert_header(VARY, names.join(", "));
}

/// The header of the `coding` representation (`len` bytes) of a stored response whose
/// header is `base` (in `base_coding`): its `Content-Encoding` and `Content-Length`, `Vary`
/// naming `Accept-Encoding`, and a weakened `ETag` where the bytes differ from the origin's
/// (RFC 9110 §8.8.1: a strong validator belongs to one representation; an ETag that is not
/// a valid quoted string is dropped, as nginx's gzip filter does).
pub fn representation_header(
    base: &ResponseHeader,
    base_coding: Coding,
    coding: Coding,
    len: usize,
) -> ResponseHeader {
    let mut h = base.clone();
    match coding.token() {
        Some(token) => {
            let _ = h.insert_header(CONTENT_ENCODING, token);
        }
        None => {
            h.remove_header(&CONTENT_ENCODING);
        }
    }
    h.remove_header(&TRANSFER_ENCODING);
    let _ = h.insert_header(CONTENT_LENGTH, len.to_string());
    ensure_vary_accept_encoding(&mut h);
    if coding != base_coding {
        weaken_etag(&mut h);
    }
    h
}

/// Weakens a strong `ETag`; removes one that is not a quoted string.
pub fn weaken_etag(h: &mut ResponseHeader) {
    let Some(etag) = h.headers.get(ETAG).map(|v| v.as_bytes().to_vec()) else {
        return;
    };
    if etag.starts_with(b"W/") {
        return;
    }
    if etag.starts_with(b"\"") {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(&etag);
        if let Ok(v) = http::HeaderValue::from_bytes(&weak) {
            let _ = h.insert_header(ETAG, v);
            return;
        }
    }
    h.remove_header(&ETAG);
}

/// After a revalidation pingora hands back the header of the representation that was served
/// (say, the brotli one), merged with the 304's fields. The stored object's base header is
/// that merge with the fields describing the base representation put back from `old_base`.
pub fn rebase_header(merged: &ResponseHeader, old_base: &ResponseHeader) -> ResponseHeader {
    let mut h = merged.clone();
    for name in [
        CONTENT_ENCODING,
        CONTENT_LENGTH,
        ETAG,
        VARY,
        TRANSFER_ENCODING,
    ] {
        h.remove_header(&name);
        for v in old_base.headers.get_all(&name) {
            let _ = h.append_header(name.clone(), v.clone());
        }
    }
    h
}
