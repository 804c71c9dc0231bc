//! The edge's own behaviour, in this process (`peakguard_edge::harness`): Pingora and the
//! edge's hooks, a simulated origin (peakguard-sim) on loopback, no binary. Moved here from
//! the binary's `tests/edge_http.rs` with their assertions as they were; tests that need the
//! CLI, signals or a second process stay there.

mod support;

use peakguard_sim as origin;
use std::time::Duration;
use support::*;

const BROWSER_AE: &str = "gzip, deflate, br";

fn site(addr: std::net::SocketAddr, extra: &str) -> String {
    format!("[[site]]\nname = \"t\"\norigin = \"http://{addr}\"\n{extra}\n")
}

#[test]
fn http_profile_revalidates_with_304_and_updates_stored_headers() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&site(addr, "profile = \"http\""));
    let first = get(edge.addr, "t", "/etag");
    assert_eq!(first.header("x-revision"), Some("1"));
    let second = get(edge.addr, "t", "/etag");
    assert_eq!(second.status, 200);
    assert_eq!(
        second.text(),
        "etag body",
        "the stored body is reused after a 304"
    );
    assert_eq!(
        second.header("x-revision"),
        Some("2"),
        "the 304's headers update the stored ones"
    );
    assert!(
        second.cache_status().contains("fwd-status=304"),
        "{:?}",
        second.cache_status()
    );
    let last = origin.last("/etag").unwrap();
    assert!(
        last.headers
            .iter()
            .any(|(k, v)| k == "if-none-match" && v == "\"v1\""),
        "conditional request sent"
    );
}

#[test]
fn vary_keeps_one_variant_per_value_and_vary_star_is_not_stored() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&site(addr, ""));
    let a = request(edge.addr, "GET", "t", "/vary", &[("X-Variant", "a")], b"");
    let b = request(edge.addr, "GET", "t", "/vary", &[("X-Variant", "b")], b"");
    assert_eq!(
        (a.text().as_str(), b.text().as_str()),
        ("variant a", "variant b")
    );
    let a2 = request(edge.addr, "GET", "t", "/vary", &[("X-Variant", "a")], b"");
    assert_eq!(a2.text(), "variant a");
    assert!(a2.cache_status().contains("hit"));
    let b2 = request(edge.addr, "GET", "t", "/vary", &[("X-Variant", "b")], b"");
    assert_eq!(b2.text(), "variant b");
    assert!(b2.cache_status().contains("hit"));
    assert_eq!(origin.count("/vary"), 2);
    get(edge.addr, "t", "/varystar");
    let again = get(edge.addr, "t", "/varystar");
    assert!(
        !again.cache_status().contains("hit"),
        "Vary: * is never stored"
    );
    assert_eq!(origin.count("/varystar"), 2);
}

#[test]
fn unsafe_methods_invalidate_the_url_and_its_location() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&site(addr, ""));
    get(edge.addr, "t", "/cacheable-form");
    get(edge.addr, "t", "/cacheable-target");
    assert!(
        get(edge.addr, "t", "/cacheable-form")
            .cache_status()
            .contains("hit")
    );
    let post = request(edge.addr, "POST", "t", "/cacheable-form", &[], b"a=1");
    assert_eq!(post.status, 303);
    assert!(
        !get(edge.addr, "t", "/cacheable-form")
            .cache_status()
            .contains("hit"),
        "target URI invalidated"
    );
    assert!(
        !get(edge.addr, "t", "/cacheable-target")
            .cache_status()
            .contains("hit"),
        "Location URI invalidated"
    );
    assert_eq!(origin.count("/cacheable-target"), 2);
}

#[test]
fn responses_that_set_cookies_are_not_stored() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&site(addr, ""));
    let first = get(edge.addr, "t", "/setcookie");
    assert_eq!(
        first.header("set-cookie"),
        Some("session=secret"),
        "the cookie still reaches its owner"
    );
    let second = get(edge.addr, "t", "/setcookie");
    assert!(!second.cache_status().contains("hit"));
    assert_eq!(origin.count("/setcookie"), 2);
}

#[test]
fn an_origin_5xx_becomes_the_branded_page() {
    let (addr, _origin) = origin::start();
    let edge = Edge::start(&site(addr, ""));
    let r = get(edge.addr, "t", "/fail");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("be right back") && !r.text().contains("origin broke"));
}

#[test]
fn hop_by_hop_and_connection_listed_headers_are_not_forwarded_to_clients() {
    let (addr, _origin) = origin::start();
    let edge = Edge::start(&site(addr, ""));
    let r = get(edge.addr, "t", "/hop");
    assert_eq!(r.status, 200);
    assert!(
        r.header("x-internal").is_none(),
        "a Connection-listed header is dropped: {:?}",
        r.headers
    );
    assert!(r.header("keep-alive").is_none() || r.header("keep-alive") != Some("timeout=99"));
}

/// RFC 9111 §1.2.2: an origin's `max-age` larger than a cache can represent counts as 2³¹
/// seconds. Before, it made the request panic and the client got an empty reply, on every
/// request for that URL.
#[test]
fn a_max_age_beyond_any_integer_is_cached_not_a_crash() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&format!(
        "[[site]]\nname = \"s\"\norigin = \"http://{addr}\"\nprofile = \"http\"\n"
    ));
    let first = get(edge.addr, "s.test", "/huge-max-age");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.text(), "huge /huge-max-age");
    let second = get(edge.addr, "s.test", "/huge-max-age");
    assert_eq!(second.status, 200);
    assert!(
        second.cache_status().contains("hit"),
        "{:?}",
        second.cache_status()
    );
    assert_eq!(origin.count("/huge-max-age"), 1);
}

fn with_ae(edge: &Edge, path: &str, ae: &str) -> Response {
    request(edge.addr, "GET", "t", path, &[("Accept-Encoding", ae)], b"")
}

/// Waits (bounded) until the store holds the brotli representation of `path`.
fn wait_stored_brotli(edge: &Edge, path: &str) -> Response {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = with_ae(edge, path, "br");
        if r.header("content-encoding") == Some("br") && r.header("content-length").is_some() {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no stored brotli copy of {path} within 30 s: {:?}",
            r.headers
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw origin answering every request with a short-lived cacheable page (one request per
/// connection, so nothing is pooled), until told to stop: `Refuse` closes the listening
/// socket (connections are refused), `Hang` accepts and never answers.
#[derive(Clone, Copy, PartialEq)]
enum Failure {
    None,
    Refuse,
    Hang,
}

fn failing_origin() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Failure>>,
) {
    use std::io::{Read, Write};
    let mode = std::sync::Arc::new(std::sync::Mutex::new(Failure::None));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let m = mode.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        loop {
            let now = *m.lock().unwrap();
            if now == Failure::Refuse {
                return; // the listener is dropped: connections are refused
            }
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    if now == Failure::Hang {
                        held.push(s);
                        continue;
                    }
                    let body = "the page";
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nCache-Control: max-age=1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (addr, mode)
}

#[test]
fn forwarding_headers_are_trusted_only_from_configured_proxies() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&site(addr, ""));
    request(
        edge.addr,
        "GET",
        "shop.test:8080",
        "/echo",
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
        ],
        b"",
    );
    let seen = origin.last("/echo").unwrap();
    let h = |n: &str| seen.header(n);
    assert_eq!(
        h("x-forwarded-for"),
        Some("127.0.0.1"),
        "a client cannot claim another address"
    );
    assert_eq!(h("x-forwarded-proto"), Some("http"));
    assert_eq!(h("host"), Some("shop.test:8080"), "Host is preserved");
    drop(edge);
    let edge = Edge::start(&format!(
        "trusted_proxies = [\"127.0.0.1/32\"]\n#END-SERVER\n{}",
        site(addr, "")
    ));
    request(
        edge.addr,
        "GET",
        "t",
        "/echo",
        &[
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-Proto", "https"),
        ],
        b"",
    );
    let seen = origin.last("/echo").unwrap();
    let h = |n: &str| seen.header(n);
    assert_eq!(h("x-forwarded-for"), Some("198.51.100.7, 127.0.0.1"));
    assert_eq!(h("x-forwarded-proto"), Some("https"));
    assert_eq!(h("x-real-ip"), Some("198.51.100.7"));
}

#[test]
fn an_object_over_the_size_limit_is_served_whole_and_not_stored() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&format!(
        "max_object_size = \"4MiB\"\n#END-CACHE\n{}",
        site(addr, "")
    ));
    for _ in 0..2 {
        let r = get(edge.addr, "t", "/large?mb=8");
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 8 << 20, "the whole body reaches the client");
        assert!(!r.cache_status().contains("hit"));
    }
    assert_eq!(origin.count("/large"), 2, "not stored");
    for _ in 0..2 {
        let r = get(edge.addr, "t", "/chunked-large?mb=8");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body.len(),
            8 << 20,
            "a chunked oversize body also reaches the client whole"
        );
    }
    assert_eq!(origin.count("/chunked-large"), 2, "not stored");
    assert_eq!(get(edge.addr, "t", "/cacheable-small").status, 200);
    assert!(
        get(edge.addr, "t", "/cacheable-small")
            .cache_status()
            .contains("hit"),
        "small objects still are"
    );
}

#[test]
fn stale_while_revalidate_serves_at_once_and_refreshes_in_the_background() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&site(addr, ""));
    assert_eq!(get(edge.addr, "t", "/swr").text(), "rev 1");
    // Fresh hits until max-age=1 has passed; then the stale copy, served at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(edge.addr, "t", "/swr");
        assert_eq!(r.text(), "rev 1", "the stored copy, fresh or stale");
        if r.cache_status().contains("fwd=stale") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never stale: {:?}",
            r.cache_status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Waits on the condition, up to a deadline that holds on a loaded machine.
    let mut refreshed = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        refreshed = get(edge.addr, "t", "/swr").text();
        if refreshed == "rev 2" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        refreshed, "rev 2",
        "the background refresh stored the new copy"
    );
    assert_eq!(origin.count("/swr"), 2, "exactly one background refresh");
}

#[test]
fn coalesced_waiters_stop_waiting_after_the_bound() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&format!(
        "coalesce_wait = \"1s\"\n#END-CACHE\n{}",
        site(addr, "")
    ));
    let first = std::thread::spawn({
        let a = edge.addr;
        move || get(a, "t", "/slow?ms=4000")
    });
    // The first request is at the origin before the second one comes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while origin.count("/slow") < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first request never reached the origin"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = std::time::Instant::now();
    let second = get(edge.addr, "t", "/slow?ms=4000");
    assert_eq!(second.status, 200);
    assert_eq!(first.join().unwrap().status, 200);
    assert_eq!(
        origin.count("/slow"),
        2,
        "the waiter gave up after coalesce_wait and fetched itself"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "it then waited for its own fetch"
    );
}

#[test]
fn origin_down_on_an_unseen_page_is_a_branded_503() {
    let port = ports()[3];
    let edge = Edge::start(&format!(
        "[[site]]\nname = \"t\"\norigin = \"http://127.0.0.1:{port}\"\nconnect_timeout = \"1s\"\n"
    ));
    let r = get(edge.addr, "t", "/never-seen");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("30"));
    assert!(r.text().contains("be right back"));
    let metrics = edge.admin_get("/metrics").text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("peakguard_origin_errors_total ") && !l.ends_with(" 0")),
        "origin errors are counted"
    );
}

#[test]
fn stale_copies_are_served_when_the_origin_refuses_or_times_out() {
    for failure in [Failure::Refuse, Failure::Hang] {
        let (addr, mode) = failing_origin();
        let name = if failure == Failure::Refuse {
            "refuse"
        } else {
            "hang"
        };
        let edge = Edge::start(&site(
            addr,
            "read_timeout = \"1s\"\nconnect_timeout = \"1s\"",
        ));
        assert_eq!(get(edge.addr, "t", "/seen").text(), "the page");
        *mode.lock().unwrap() = failure;
        // Until its second is over the copy is a fresh hit; then the stale copy is served,
        // within the origin timeouts (1 s), however long the failing origin takes.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let started = std::time::Instant::now();
            let r = get(edge.addr, "t", "/seen");
            assert_eq!(r.status, 200, "{name}: the copy is served");
            assert_eq!(r.text(), "the page");
            if r.cache_status().contains("fwd=stale") {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{name}: within the timeouts"
                );
                // Pingora closes the connection after it: the client is told, so it never
                // sends its next request into a closing connection.
                assert_eq!(r.header("connection"), Some("close"), "{name}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: never served stale: {:?}",
                r.cache_status()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let unseen = get(edge.addr, "t", "/unseen");
        assert_eq!(
            unseen.status, 503,
            "{name}: a page never seen gets the branded 503"
        );
        assert!(
            unseen.cache_status().contains("origin-unavailable"),
            "{:?}",
            unseen.cache_status()
        );
        assert_eq!(unseen.header("connection"), Some("close"), "{name}");
    }
}

#[test]
fn a_failing_origin_is_retried_once_per_backoff_not_once_per_request() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&format!(
        "origin_error_backoff = \"3s\"\n#END-CACHE\n{}",
        site(addr, "")
    ));
    assert_eq!(get(edge.addr, "t", "/flaky").text(), "flaky page");
    origin.set_db_down(true);
    // The stored copy lives 1 s (max-age=1): wait until it is stale, as a client sees it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !get(edge.addr, "t", "/flaky")
        .cache_status()
        .contains("fwd=stale")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the copy never went stale"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = origin.count("/flaky");
    let started = std::time::Instant::now();
    for _ in 0..30 {
        let r = get(edge.addr, "t", "/flaky");
        assert_eq!((r.status, r.text().as_str()), (200, "flaky page"));
        assert!(
            r.cache_status().contains("fwd=stale"),
            "{:?}",
            r.cache_status()
        );
    }
    // One retry per 3 s window the requests spanned (however slow a loaded machine made
    // them), not one per request.
    let windows = (started.elapsed().as_secs_f64() / 3.0).ceil() as usize + 1;
    let during = origin.count("/flaky") - before;
    assert!(
        during <= windows,
        "the failing origin got {during} requests for one page over {windows} back-off windows (30 requests)"
    );
    // When the window ends and the origin is back, the page is refreshed.
    origin.set_db_down(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    // A fresh hit (a stale one says `hit; fwd=stale`).
    while get(edge.addr, "t", "/flaky").cache_status() != "peakguard; hit" {
        assert!(
            std::time::Instant::now() < deadline,
            "never refreshed after the window"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        origin.count("/flaky") > before + during,
        "retried after the window"
    );
}

#[test]
fn each_coding_is_compressed_once_and_hits_send_the_stored_bytes() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(&site(addr, ""));
    let path = "/page/spring-sale/";
    let page = origin::html_page(path).into_bytes();

    // The miss is compressed on its way (the client prefers brotli among its codings).
    let miss = with_ae(&edge, path, BROWSER_AE);
    assert!(
        miss.cache_status().contains("uri-miss"),
        "{}",
        miss.cache_status()
    );
    assert_eq!(miss.header("content-encoding"), Some("br"));
    assert_eq!(decoded(&miss), page);

    wait_stored_brotli(&edge, path);
    for (ae, coding, etag) in [
        (BROWSER_AE, Some("br"), "W/\"page-1\""),
        ("br", Some("br"), "W/\"page-1\""),
        ("gzip", Some("gzip"), "W/\"page-1\""),
        ("br;q=0.5, gzip;q=0.9", Some("gzip"), "W/\"page-1\""),
        ("identity", None, "\"page-1\""),
        ("gzip;q=0, br;q=0", None, "\"page-1\""),
        ("", None, "\"page-1\""),
    ] {
        let r = with_ae(&edge, path, ae);
        assert_eq!(r.status, 200);
        assert!(
            r.cache_status().contains("hit"),
            "{ae}: {}",
            r.cache_status()
        );
        assert_eq!(r.header("content-encoding"), coding, "{ae:?}");
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str()),
            "{ae:?}: a stored representation is sent with its length"
        );
        assert!(
            r.header("vary")
                .is_some_and(|v| v.contains("Accept-Encoding")),
            "{ae:?}: {:?}",
            r.header("vary")
        );
        assert_eq!(r.header("etag"), Some(etag), "{ae:?}");
        assert_eq!(decoded(&r), page, "{ae:?}: decodes to the page");
    }
    // A client that refuses identity and every coding peakguard has: it still gets bytes it
    // can read if any exist (brotli here).
    let strict = with_ae(&edge, path, "identity;q=0, br");
    assert_eq!(strict.header("content-encoding"), Some("br"));

    let head = request(
        edge.addr,
        "HEAD",
        "t",
        path,
        &[("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    let gz = with_ae(&edge, path, "gzip");
    assert_eq!(head.header("content-length"), gz.header("content-length"));

    assert_eq!(origin.count(path), 1, "one origin fetch for every coding");
    let seen = origin.last(path).unwrap();
    assert!(
        !seen.headers.iter().any(|(k, _)| k == "accept-encoding"),
        "the stored copy is fetched as identity"
    );
    let metrics = edge.admin_get("/metrics").text();
    let done = metrics
        .lines()
        .find(|l| l.starts_with("peakguard_cache_encodings_total{result=\"done\"}"))
        .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok());
    assert_eq!(done, Some(1), "compressed once, not per hit:\n{metrics}");
}

#[test]
fn images_are_never_compressed_and_an_origin_gzip_is_kept_as_it_came() {
    let (addr, _origin) = origin::start();
    let edge = Edge::start(&site(addr, ""));
    let photo = origin::photo();
    for _ in 0..3 {
        let r = with_ae(&edge, "/photo.jpg", BROWSER_AE);
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.body, photo);
    }

    let path = "/pregzip/a/";
    let page = origin::html_page(path).into_bytes();
    let first = with_ae(&edge, path, "gzip");
    assert_eq!(first.header("content-encoding"), Some("gzip"));
    let as_sent = first.body.clone();
    assert_eq!(decoded(&first), page);
    // A client that takes no gzip gets the page decoded (on the way, then from the store).
    let plain = with_ae(&edge, path, "");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body, page);
    wait_stored_brotli(&edge, path);
    let gz = with_ae(&edge, path, "gzip");
    assert!(gz.cache_status().contains("hit"));
    assert_eq!(
        gz.body, as_sent,
        "the origin's gzip bytes are sent as they came"
    );
    let plain = with_ae(&edge, path, "identity");
    assert_eq!(
        plain.header("content-length"),
        Some(page.len().to_string().as_str())
    );
    assert_eq!(plain.body, page);
}
