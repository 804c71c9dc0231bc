//! The `http` profile against the RFCs, one table row per requirement (each cites its
//! section): a scripted origin sends exact bytes, the real edge is asked over a socket.
//! These are the classes of failure an external cache conformance suite found.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use support::*;

/// What the origin answers: the raw response for the n-th request (from 0) to a path, and
/// the request head it got.
type Script = dyn Fn(&str, usize, &str) -> Vec<u8> + Send + Sync;

/// An origin that answers each request with the bytes its script gives, then closes.
struct ScriptedOrigin {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ScriptedOrigin {
    fn start(script: Arc<Script>) -> ScriptedOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let script = script.clone();
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    let n = {
                        let mut seen = log.lock().expect("log");
                        let n = seen
                            .iter()
                            .filter(|h| h.split(' ').nth(1) == Some(path.as_str()))
                            .count();
                        seen.push(head.clone());
                        n
                    };
                    // `PAUSE` in a script's bytes: what comes before is sent, then the
                    // origin thinks for a moment (as a server sending 103 Early Hints does).
                    let bytes = script(&path, n, &head);
                    for (i, part) in bytes.split_inner(PAUSE).into_iter().enumerate() {
                        if i > 0 {
                            std::thread::sleep(Duration::from_millis(300));
                        }
                        if conn.write_all(part).and_then(|()| conn.flush()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        ScriptedOrigin { addr, seen }
    }

    fn requests_to(&self, path: &str) -> usize {
        self.seen
            .lock()
            .expect("log")
            .iter()
            .filter(|h| h.split(' ').nth(1) == Some(path))
            .count()
    }
}

const PAUSE: &[u8] = b"\0PAUSE\0";

trait SplitInner {
    fn split_inner<'a>(&'a self, sep: &'a [u8]) -> Vec<&'a [u8]>;
}

impl SplitInner for Vec<u8> {
    fn split_inner<'a>(&'a self, sep: &'a [u8]) -> Vec<&'a [u8]> {
        let mut parts = Vec::new();
        let mut rest = &self[..];
        while let Some(at) = rest.windows(sep.len()).position(|w| w == sep) {
            parts.push(&rest[..at]);
            rest = &rest[at + sep.len()..];
        }
        parts.push(rest);
        parts
    }
}

fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// A complete response: status line, fields, body with its Content-Length, connection close.
fn response(status: &str, fields: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in fields {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !status.starts_with("304") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn html(n: usize) -> Vec<u8> {
    let mut page = b"<!doctype html><title>t</title><p>".to_vec();
    while page.len() < n {
        page.extend_from_slice(b"peakguard conformance text, compressible. ");
    }
    page.truncate(n);
    page
}

fn edge_for(origin: &ScriptedOrigin) -> Edge {
    Edge::start(&format!(
        "[[site]]\nname = \"t\"\nprofile = \"http\"\norigin = \"http://{}\"\n",
        origin.addr
    ))
}

fn browser_get(edge: &Edge, path: &str) -> Response {
    request(
        edge.addr,
        "GET",
        "t",
        path,
        &[("Accept-Encoding", "gzip, deflate, br")],
        b"",
    )
}

fn age_of(r: &Response) -> u64 {
    r.header("age")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no Age: {:?}", r.headers))
}

/// RFC 9111 §5.1 and §4.2.3: a cache passes on the Age it received, and a response it
/// serves from storage carries that age plus the time it was stored.
#[test]
fn age_is_carried_on_a_miss_and_added_to_on_a_hit() {
    let origin = ScriptedOrigin::start(Arc::new(|_, _, _| {
        response(
            "200 OK",
            &[
                ("Cache-Control", "max-age=600".into()),
                ("Age", "100".into()),
                ("Date", http_date(SystemTime::now())),
                ("Content-Type", "text/plain".into()),
            ],
            b"aged",
        )
    }));
    let edge = edge_for(&origin);
    let miss = browser_get(&edge, "/aged");
    assert_eq!(miss.status, 200);
    assert!(
        age_of(&miss) >= 100,
        "the origin's Age is forwarded: {:?}",
        miss.headers
    );
    let hit = browser_get(&edge, "/aged");
    assert!(hit.cache_status().contains("hit"), "{}", hit.cache_status());
    let age = age_of(&hit);
    assert!(
        (100..600).contains(&age),
        "the hit's Age counts the age it arrived with: {age}"
    );
    assert_eq!(origin.requests_to("/aged"), 1);
}

/// RFC 9110 §8.4 (a content coding is the server's choice) with RFC 9110 §8.8.3 (a strong
/// ETag names exact bytes): a body too small to gain, or of a type that does not compress,
/// goes as the origin sent it — same bytes, same ETag, no `Vary: Accept-Encoding` added.
#[test]
fn tiny_and_non_text_bodies_are_sent_as_they_came() {
    let origin = ScriptedOrigin::start(Arc::new(|path, _, _| {
        let (ctype, body) = if path == "/tiny" {
            ("text/html", b"<p>hi</p>".to_vec())
        } else {
            ("application/octet-stream", html(20_000))
        };
        response(
            "200 OK",
            &[
                ("Cache-Control", "max-age=600".into()),
                ("Content-Type", ctype.into()),
                ("ETag", "\"strong-1\"".into()),
            ],
            &body,
        )
    }));
    let edge = edge_for(&origin);
    for path in ["/tiny", "/binary"] {
        for round in ["miss", "hit"] {
            let r = browser_get(&edge, path);
            assert_eq!(r.status, 200, "{path} {round}");
            assert_eq!(r.header("content-encoding"), None, "{path} {round}");
            assert_eq!(r.header("etag"), Some("\"strong-1\""), "{path} {round}");
            assert!(
                !r.header_all("vary")
                    .iter()
                    .any(|v| v.to_ascii_lowercase().contains("accept-encoding")),
                "{path} {round}: {:?}",
                r.headers
            );
        }
    }
}

/// RFC 9110 §15.6.3 and §15.6.5: a gateway's 502 and 504 are the origin's answer; a plain
/// HTTP cache forwards them (the branded page belongs to the `wordpress` profile).
#[test]
fn origin_502_and_504_are_forwarded_in_the_http_profile() {
    let origin = ScriptedOrigin::start(Arc::new(|path, _, _| {
        let status = if path == "/bad-gateway" {
            "502 Bad Gateway"
        } else {
            "504 Gateway Timeout"
        };
        response(
            status,
            &[("Content-Type", "text/plain".into())],
            format!("origin says {status}").as_bytes(),
        )
    }));
    let edge = edge_for(&origin);
    for (path, code) in [("/bad-gateway", 502), ("/gateway-timeout", 504)] {
        let r = get(edge.addr, "t", path);
        assert_eq!(r.status, code, "{path}");
        assert!(r.text().starts_with("origin says"), "{path}: {}", r.text());
    }
}

/// RFC 9111 §4.3.4 and §3.2: a 304 updates the stored response's fields, except
/// `Content-Length`, which describes the stored body. (`Date` is merged into the stored
/// copy too, but what a client sees is Pingora's: its HTTP/1 and HTTP/2 servers write their
/// own `Date` on every response; `Age` carries the age downstream caches need.)
#[test]
fn a_304_updates_the_stored_fields_but_not_content_length() {
    let first_date = SystemTime::now() - Duration::from_secs(5);
    let origin = ScriptedOrigin::start(Arc::new(move |_, n, head| {
        let conditional = head.to_ascii_lowercase().contains("if-none-match: \"v1\"");
        if n > 0 && conditional {
            return response(
                "304 Not Modified",
                &[
                    ("ETag", "\"v1\"".into()),
                    ("Cache-Control", "max-age=0".into()),
                    ("Date", http_date(SystemTime::now())),
                    ("Content-Length", "999".into()),
                    ("Content-MD5", "bm90IHRoaXMgYm9keQ==".into()),
                    ("X-Revision", "2".into()),
                ],
                b"",
            );
        }
        response(
            "200 OK",
            &[
                ("ETag", "\"v1\"".into()),
                ("Cache-Control", "max-age=0".into()),
                ("Date", http_date(first_date)),
                ("Content-Type", "text/plain".into()),
                ("Content-MD5", "c3RvcmVkIGJvZHk=".into()),
                ("X-Revision", "1".into()),
            ],
            b"stored body",
        )
    }));
    let edge = edge_for(&origin);
    let first = get(edge.addr, "t", "/validated");
    assert_eq!(first.header("x-revision"), Some("1"));
    let second = get(edge.addr, "t", "/validated");
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "stored body");
    assert_eq!(second.header("x-revision"), Some("2"), "fields updated");
    assert_eq!(
        second.header("content-length"),
        Some("11"),
        "Content-Length describes the stored body, not the 304"
    );
    assert_eq!(
        second.header("content-md5"),
        Some("c3RvcmVkIGJvZHk="),
        "a digest of the stored body stays with it"
    );
    assert_eq!(origin.requests_to("/validated"), 2);
}

/// RFC 9110 §15.2: a proxy forwards 1xx responses (here 103 Early Hints, RFC 8297) before
/// the final one. The origin sends the hint, then thinks, as a server sending hints does.
/// (Pingora reads the origin's responses in batches; a hint that arrives in the same batch as
/// a cacheable final response is dropped with it — it would reach the client no earlier than
/// the page itself.)
#[test]
fn interim_1xx_responses_are_forwarded() {
    let origin = ScriptedOrigin::start(Arc::new(|_, _, _| {
        let mut out =
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n".to_vec();
        out.extend_from_slice(PAUSE);
        out.extend(response(
            "200 OK",
            &[
                ("Cache-Control", "max-age=60".into()),
                ("Content-Type", "text/plain".into()),
            ],
            b"final",
        ));
        out
    }));
    let edge = edge_for(&origin);
    let responses = exchange(
        edge.addr,
        b"GET /hints HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .expect("exchange");
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![103, 200], "{responses:?}");
    assert_eq!(
        responses[0].header("link"),
        Some("</style.css>; rel=preload")
    );
    assert_eq!(responses[1].text(), "final");
    assert!(
        responses[0].header("cache-status").is_none(),
        "the interim response is the origin's, untouched: {:?}",
        responses[0].headers
    );
    // The final response was stored; a hit has no interim response to forward.
    let hit = get(edge.addr, "t", "/hints");
    assert!(hit.cache_status().contains("hit"), "{}", hit.cache_status());
    assert_eq!(hit.text(), "final");
}

/// RFC 9213 §2.1: a `CDN-Cache-Control` that is not a valid Dictionary (RFC 8941) is
/// ignored, and `Cache-Control` applies.
#[test]
fn an_invalid_cdn_cache_control_is_ignored() {
    let origin = ScriptedOrigin::start(Arc::new(|path, _, _| {
        let cdn = match path {
            "/cdn-invalid" => "max-age=60, \"quoted-key\"",
            "/cdn-upper" => "Max-Age=60",
            _ => "max-age=60",
        };
        response(
            "200 OK",
            &[
                ("Cache-Control", "no-store".into()),
                ("CDN-Cache-Control", cdn.into()),
                ("Content-Type", "text/plain".into()),
            ],
            b"cdn",
        )
    }));
    let edge = edge_for(&origin);
    for (path, stored) in [
        ("/cdn-valid", true),
        ("/cdn-invalid", false),
        ("/cdn-upper", false),
    ] {
        get(edge.addr, "t", path);
        let again = get(edge.addr, "t", path);
        assert_eq!(
            again.cache_status().contains("hit"),
            stored,
            "{path}: {}",
            again.cache_status()
        );
        assert_eq!(
            origin.requests_to(path),
            if stored { 1 } else { 2 },
            "{path}"
        );
    }
}
