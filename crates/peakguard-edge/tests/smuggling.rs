//! Request smuggling (Pingora had CVEs here, one in the caching path: CVE-2025-4366). Every
//! case sends a request whose framing is ambiguous, with a second request hidden behind it;
//! the hidden request must never reach the origin, and the client must not get a response
//! for it.

mod support;
use peakguard_sim as origin;

use std::time::Duration;
use support::*;

fn edge_with_origin() -> (Edge, origin::SimOrigin) {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&format!(
        "[[site]]\nname = \"t\"\norigin = \"http://{addr}\"\n"
    ));
    (edge, origin)
}

const HIDDEN: &str = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";

fn assert_not_smuggled(edge: &Edge, origin: &origin::SimOrigin, n: usize, case: &str, raw: String) {
    // The edge may answer 400 or close the connection: both are fine, what counts is below.
    let responses =
        exchange(edge.addr, raw.as_bytes(), Duration::from_millis(1500)).unwrap_or_default();
    // The edge still answers (a crash would pass the checks below), and a request the case
    // smuggled would have reached the origin before this one.
    let marker = format!("/cacheable-alive-{n}/");
    let alive = get(edge.addr, "t", &marker);
    assert_eq!(alive.status, 200, "{case}: the edge no longer answers");
    assert_eq!(origin.count(&marker), 1, "{case}");
    assert_eq!(
        origin.count("/smuggled"),
        0,
        "{case}: the hidden request reached the origin"
    );
    assert!(
        responses.len() <= 1,
        "{case}: the client got {} responses: {:?}",
        responses.len(),
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    if let Some(r) = responses.first() {
        assert!(
            r.status == 400 || r.status < 300 || r.status == 303 || r.status == 501,
            "{case}: status {}",
            r.status
        );
    }
}

#[test]
fn ambiguous_framing_never_smuggles_a_request() {
    let (edge, origin) = edge_with_origin();
    let cases = [
        (
            "CL+TE",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{HIDDEN}"
            ),
        ),
        (
            "TE+CL",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n{HIDDEN}"
            ),
        ),
        (
            "duplicate CL",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{HIDDEN}",
                HIDDEN.len()
            ),
        ),
        (
            "CL list",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 0, {}\r\n\r\n{HIDDEN}",
                HIDDEN.len()
            ),
        ),
        (
            "obs-fold TE",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n{HIDDEN}"
            ),
        ),
        (
            "obs-fold header",
            format!(
                "GET /cacheable-fold HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\nContent-Length: {}\r\n\r\n{HIDDEN}",
                HIDDEN.len()
            ),
        ),
        (
            "bad chunk size",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n{HIDDEN}"
            ),
        ),
        (
            "chunk size overflow",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF1\r\nabc\r\n0\r\n\r\n{HIDDEN}"
            ),
        ),
        (
            "TE chunked,identity",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{HIDDEN}"
            ),
        ),
        (
            "TE xchunked",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{HIDDEN}"
            ),
        ),
        (
            "TE with space before colon",
            format!(
                "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{HIDDEN}"
            ),
        ),
    ];
    for (n, (case, raw)) in cases.into_iter().enumerate() {
        assert_not_smuggled(&edge, &origin, n, case, raw);
    }
}

#[test]
fn a_request_body_on_a_cache_hit_is_drained() {
    let (edge, origin) = edge_with_origin();
    assert_eq!(get(edge.addr, "t", "/cacheable-drain").status, 200);
    let raw = format!(
        "GET /cacheable-drain HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{HIDDEN}",
        HIDDEN.len()
    );
    let responses = exchange(edge.addr, raw.as_bytes(), Duration::from_millis(1500)).unwrap();
    assert_eq!(
        responses.len(),
        1,
        "the body must be read as a body, not as a second request"
    );
    assert!(
        responses[0].cache_status().contains("hit"),
        "{:?}",
        responses[0].cache_status()
    );
    assert_eq!(origin.count("/smuggled"), 0);
    // The body is drained, not left to be parsed: the same connection serves a next request.
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(edge.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let read_one = |conn: &mut std::net::TcpStream| {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some((r, _)) = parse_response(&buf, false) {
                return r;
            }
            let n = conn.read(&mut chunk).expect("read response");
            assert!(n > 0, "connection closed before a whole response");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    conn.write_all(b"GET /cacheable-drain HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert!(read_one(&mut conn).cache_status().contains("hit"));
    conn.write_all(b"GET /cacheable-drain HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_one(&mut conn).status,
        200,
        "the connection was reused after draining"
    );
    assert_eq!(origin.count("/cacheable-drain"), 1);
    // On a miss, the origin gets the GET without the body's framing, and answers.
    conn.write_all(
        b"GET /cacheable-drain-miss HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    )
    .unwrap();
    assert_eq!(read_one(&mut conn).status, 200);
    let seen = origin
        .last("/cacheable-drain-miss")
        .expect("origin saw the miss");
    assert_eq!(seen.body_len, 0);
    assert!(
        !seen
            .headers
            .iter()
            .any(|(k, v)| k == "content-length" && v != "0"),
        "{:?}",
        seen.headers
    );
    // Too large to drain: refused, connection closed.
    let raw = format!(
        "GET /cacheable-drain HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\nxx",
        10 << 20
    );
    let r = exchange(edge.addr, raw.as_bytes(), Duration::from_secs(2)).unwrap();
    assert_eq!(r.first().map(|r| r.status), Some(413));
}
