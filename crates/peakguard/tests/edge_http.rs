//! The edge's HTTP behaviour against a real (in-test) hyper origin: RFC 9111 details,
//! forwarding headers, compression, streaming, failures, reload, TLS + HTTP/2, metrics.

mod common;
use peakguard_sim as origin;

use common::*;
use std::process::Command;
use std::time::Duration;

fn site(addr: std::net::SocketAddr, extra: &str) -> String {
    format!("[[site]]\nname = \"t\"\norigin = \"http://{addr}\"\n{extra}\n")
}

#[test]
fn http_profile_revalidates_with_304_and_updates_stored_headers() {
    let (addr, origin) = origin::start();
    let edge = Edge::start("etag", &site(addr, "profile = \"http\""));
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
    let edge = Edge::start("vary", &site(addr, ""));
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
    let edge = Edge::start("invalidate", &site(addr, ""));
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
    let edge = Edge::start("cookie", &site(addr, ""));
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
fn forwarding_headers_are_trusted_only_from_configured_proxies() {
    let (addr, origin) = origin::start();
    let edge = Edge::start("xff", &site(addr, ""));
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
    let edge = Edge::start(
        "xff-trusted",
        &format!(
            "trusted_proxies = [\"127.0.0.1/32\"]\n#END-SERVER\n{}",
            site(addr, "")
        ),
    );
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

const BROWSER_AE: &str = "gzip, deflate, br";

#[test]
fn each_coding_is_compressed_once_and_hits_send_the_stored_bytes() {
    let (addr, origin) = origin::start();
    let edge = Edge::start("compress", &site(addr, ""));
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
    let edge = Edge::start("compress-kinds", &site(addr, ""));
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

fn rss_peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn two_hundred_megabyte_bodies_are_streamed_not_buffered() {
    use std::io::{Read, Write};
    let (addr, origin) = origin::start();
    // Bodies this large are uploads: the default body limit (16 MiB) is raised for it.
    let edge = Edge::start(
        "stream",
        &site(addr, "[site.shield.body]\nmax_size = \"512MiB\""),
    );
    let before = rss_peak_kib(edge.pid());
    // Download: read it slowly-ish in 1 MiB pieces, counting bytes.
    let mut s = std::net::TcpStream::connect(edge.addr).unwrap();
    s.write_all(b"GET /big?mb=200 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total > 200 << 20, "whole body received ({total} bytes)");
    // Upload: 200 MiB POST body, streamed to the origin.
    let mut s = std::net::TcpStream::connect(edge.addr).unwrap();
    s.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            200usize << 20
        )
        .as_bytes(),
    )
    .unwrap();
    let chunk = vec![b'u'; 1 << 20];
    for _ in 0..200 {
        s.write_all(&chunk).unwrap();
    }
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    assert!(String::from_utf8_lossy(&resp).contains(&format!("received {} bytes", 200usize << 20)));
    assert_eq!(origin.last("/upload").unwrap().body_len, 200 << 20);
    let peak = rss_peak_kib(edge.pid());
    eprintln!("edge peak RSS: {before} KiB before, {peak} KiB after 2 x 200 MiB");
    assert!(
        peak < before + 100 * 1024,
        "the edge buffered a body: peak RSS grew from {before} KiB to {peak} KiB"
    );
}

#[test]
fn an_object_over_the_size_limit_is_served_whole_and_not_stored() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(
        "oversize",
        &format!("max_object_size = \"4MiB\"\n#END-CACHE\n{}", site(addr, "")),
    );
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
fn origin_down_on_an_unseen_page_is_a_branded_503() {
    let port = ports()[3];
    let edge = Edge::start(
        "down",
        &format!(
            "[[site]]\nname = \"t\"\norigin = \"http://127.0.0.1:{port}\"\nconnect_timeout = \"1s\"\n"
        ),
    );
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
fn an_origin_5xx_becomes_the_branded_page() {
    let (addr, _origin) = origin::start();
    let edge = Edge::start("fivexx", &site(addr, ""));
    let r = get(edge.addr, "t", "/fail");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("be right back") && !r.text().contains("origin broke"));
}

#[test]
fn unknown_hosts_are_refused_and_sighup_reloads_sites() {
    let (addr, _origin) = origin::start();
    let site_a =
        format!("[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://{addr}\"\n");
    let edge = Edge::start("reload", &site_a);
    assert_eq!(get(edge.addr, "a.test", "/cacheable-a").status, 200);
    let unknown = get(edge.addr, "b.test", "/cacheable-b");
    assert_eq!(unknown.status, 421);
    assert!(
        unknown.cache_status().contains("unknown-host"),
        "every response says what the cache did"
    );
    let text = std::fs::read_to_string(&edge.config).unwrap()
        + &format!("[[site]]\nname = \"b\"\nhosts = [\"b.test\"]\norigin = \"http://{addr}\"\n");
    std::fs::write(&edge.config, text).unwrap();
    edge.signal("HUP");
    let mut status = 0;
    for _ in 0..50 {
        status = get(edge.addr, "b.test", "/cacheable-b").status;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 200, "after SIGHUP the new site is served");
    // A broken file is refused (the edge says so) and the running configuration kept.
    std::fs::write(&edge.config, "[[site]]\norigin = 3\n").unwrap();
    edge.signal("HUP");
    let log = edge.dir.join("edge.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("SIGHUP: keeping the running configuration")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the broken reload was never refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(edge.addr, "b.test", "/cacheable-b").status, 200);
}

#[test]
fn tls_with_http2_uses_the_authority_as_host() {
    let (addr, origin) = origin::start();
    let [_, _, tls_port, _] = ports();
    let dir = fresh_dir("tls-files");
    let (cert, key) = self_signed(&dir, "shop.test");
    let extra = format!(
        "tls_listen = [\"127.0.0.1:{tls_port}\"]\n#END-SERVER\n[[site]]\nname = \"t\"\nhosts = [\"shop.test\"]\norigin = \"http://{addr}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let _edge = Edge::start("tls", &extra);
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args([
                "-sk",
                "--http2",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
                "-D",
                "-",
            ])
            .arg("--resolve")
            .arg(format!("shop.test:{tls_port}:127.0.0.1"))
            .arg(format!("https://shop.test:{tls_port}{path}"))
            .output()
            .expect("curl is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = curl("/cacheable-h2");
    assert!(
        first.trim_end().ends_with("2 200"),
        "HTTP/2 over TLS: {first}"
    );
    let second = curl("/cacheable-h2");
    assert!(second.contains("cache-status: peakguard; hit"), "{second}");
    let seen = origin.last("/cacheable-h2").unwrap();
    assert!(
        seen.headers
            .iter()
            .any(|(k, v)| k == "host" && v == &format!("shop.test:{tls_port}")),
        "Host from :authority: {:?}",
        seen.headers
    );
    assert!(
        seen.headers
            .iter()
            .any(|(k, v)| k == "x-forwarded-proto" && v == "https")
    );
    assert_eq!(origin.count("/cacheable-h2"), 1);
}

#[test]
fn config_check_names_key_and_line() {
    let dir = fresh_dir("check");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[server]\nlisten = [\"0.0.0.0:80\"]\n\n[[site]]\nname = \"shop\"\norigin = \"ftp://x\"\ndefault_ttl = \"5m\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 6") && err.contains("site[0].origin") && err.contains("http://"),
        "{err}"
    );
    std::fs::write(&file, "[[site]]\norigin = \"http://127.0.0.1:80\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn metrics_pass_promtool() {
    let (addr, _origin) = origin::start();
    let edge = Edge::start("metrics", &site(addr, ""));
    get(edge.addr, "t", "/cacheable-m");
    get(edge.addr, "t", "/cacheable-m");
    let m = edge.admin_get("/metrics");
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(
        text.contains("peakguard_requests_total{cache=\"hit\",status_class=\"2xx\"} 1"),
        "{text}"
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A password-reset link: its key is a secret the log must not keep.
    get(
        edge.addr,
        "t",
        "/cacheable-reset?action=rp&key=RESETKEY123&login=bob",
    );
    // The access log has one JSON line per request with the documented fields (written as
    // each request ends: wait for the third).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log = std::fs::read_to_string(edge.dir.join("access.log")).unwrap_or_default();
        if log.lines().count() >= 3 {
            break log;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!log.contains("RESETKEY123"), "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert_eq!(
        lines[2]["path"],
        "/cacheable-reset?action=rp&key=***&login=bob"
    );
    for field in [
        "time",
        "client",
        "host",
        "path",
        "status",
        "cache",
        "bytes",
        "total_ms",
        "origin_ms",
    ] {
        assert!(
            lines[1].get(field).is_some(),
            "access log lacks {field}: {}",
            lines[1]
        );
    }
    assert_eq!(lines[0]["cache"], "miss");
    assert_eq!(lines[1]["cache"], "hit");
    assert_eq!(lines[1]["path"], "/cacheable-m");
    assert!(lines[0]["origin_ms"].is_number() && lines[1]["origin_ms"].is_null());
    let unauthorized = get(edge.admin, "admin", "/metrics");
    assert_eq!(unauthorized.status, 401, "the admin API wants its token");
}

fn presented_subject(port: u16, server_name: Option<&str>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")]);
    match server_name {
        Some(n) => cmd.args(["-servername", n]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or("")
        .to_string()
}

#[test]
fn each_site_presents_its_own_certificate_by_sni_and_http_redirects_to_https() {
    let (addr, _origin) = origin::start();
    let [_, _, tls_port, _] = ports();
    let dir = fresh_dir("sni-certs");
    let (ca, ka) = self_signed(&dir, "a.test");
    let (cb, kb) = self_signed(&dir, "b.test");
    let site = |name: &str, cert: &std::path::Path, key: &std::path::Path, redirect: bool| {
        format!(
            "[[site]]\nname = \"{name}\"\nhosts = [\"{name}\"]\norigin = \"http://{addr}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nhttps_redirect = {redirect}\n",
            cert.display(),
            key.display()
        )
    };
    let extra = format!(
        "tls_listen = [\"127.0.0.1:{tls_port}\"]\n#END-SERVER\n{}{}",
        site("a.test", &ca, &ka, true),
        site("b.test", &cb, &kb, false)
    );
    let edge = Edge::start("sni", &extra);
    assert!(presented_subject(tls_port, Some("a.test")).contains("a.test"));
    assert!(presented_subject(tls_port, Some("b.test")).contains("b.test"));
    assert!(
        presented_subject(tls_port, None).contains("a.test"),
        "no SNI: the first site's certificate"
    );
    let r = get(edge.addr, "a.test", "/cacheable-r?x=1");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://a.test/cacheable-r?x=1"));
    assert_eq!(
        get(edge.addr, "b.test", "/cacheable-r").status,
        200,
        "b.test does not redirect"
    );
}

#[test]
fn a_bad_certificate_file_is_a_clear_startup_error() {
    let dir = fresh_dir("badcert");
    std::fs::write(dir.join("bad.pem"), "not a certificate").unwrap();
    let [p, a, t, _] = ports();
    let config = Edge::config_text(
        &dir,
        p,
        a,
        &format!(
            "tls_listen = [\"127.0.0.1:{t}\"]\n#END-SERVER\n[[site]]\norigin = \"http://127.0.0.1:1\"\ntls_cert = \"{0}/bad.pem\"\ntls_key = \"{0}/bad.pem\"\n",
            dir.display()
        ),
    );
    std::fs::write(dir.join("c.toml"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["serve", "--config"])
        .arg(dir.join("c.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.pem") && err.contains("TLS listener"),
        "{err}"
    );
}

#[test]
fn hop_by_hop_and_connection_listed_headers_are_not_forwarded_to_clients() {
    let (addr, _origin) = origin::start();
    let edge = Edge::start("hop", &site(addr, ""));
    let r = get(edge.addr, "t", "/hop");
    assert_eq!(r.status, 200);
    assert!(
        r.header("x-internal").is_none(),
        "a Connection-listed header is dropped: {:?}",
        r.headers
    );
    assert!(r.header("keep-alive").is_none() || r.header("keep-alive") != Some("timeout=99"));
}

#[test]
fn stale_while_revalidate_serves_at_once_and_refreshes_in_the_background() {
    let (addr, origin) = origin::start();
    let edge = Edge::start("swr", &site(addr, ""));
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
    let mut refreshed = String::new();
    for _ in 0..50 {
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
    let edge = Edge::start(
        "bound",
        &format!("coalesce_wait = \"1s\"\n#END-CACHE\n{}", site(addr, "")),
    );
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

/// Names in /tmp that peakguard might have written (test directories aside).
fn peakguard_files_in_tmp() -> Vec<std::ffi::OsString> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| {
            let n = n.to_string_lossy();
            n.starts_with("peakguard-") && !n.starts_with("peakguard-test-")
        })
        .collect()
}

#[test]
fn quick_start_serves_without_a_configuration_file() {
    let (addr, origin) = origin::start();
    let [p, a, ..] = ports();
    let dir = fresh_dir("quick");
    // Where the defaults go is the process's private directories; systemd's variables name
    // them here, so the test keeps to its own directory (as root they would be /var/lib,
    // /var/cache and /run/peakguard).
    let (state, cache, run) = (dir.join("state"), dir.join("cache"), dir.join("run"));
    let tmp_before = peakguard_files_in_tmp();
    let mut child = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{p}"),
            "--origin",
            &format!("http://{addr}"),
        ])
        .args(["--admin-listen", &format!("127.0.0.1:{a}")])
        .env("STATE_DIRECTORY", &state)
        .env("CACHE_DIRECTORY", &cache)
        .env("RUNTIME_DIRECTORY", &run)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let edge: std::net::SocketAddr = ([127, 0, 0, 1], p).into();
    let mut status = 0;
    for _ in 0..100 {
        let first = exchange(
            edge,
            b"GET /cacheable-q HTTP/1.1\r\nHost: any.test\r\nConnection: close\r\n\r\n",
            Duration::from_secs(2),
        )
        .ok()
        .and_then(|r| r.first().map(|r| r.status));
        if let Some(s) = first {
            status = s;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = get(edge, "any.test", "/cacheable-q?utm_source=x");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    assert_eq!(status, 200);
    // The token (0600) and the pid file are in the private directories (0700), nothing new
    // in /tmp.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state.join("admin.token")), 0o600);
    assert!(run.join("peakguard.pid").exists());
    for d in [&state, &cache, &run] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    let tmp_after: Vec<_> = peakguard_files_in_tmp()
        .into_iter()
        .filter(|n| !tmp_before.contains(n))
        .collect();
    assert!(tmp_after.is_empty(), "written to /tmp: {tmp_after:?}");
    assert!(
        second.cache_status().contains("hit"),
        "wordpress profile by default: {:?}",
        second.cache_status()
    );
    assert_eq!(origin.count("/cacheable-q"), 1);
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
fn stale_copies_are_served_when_the_origin_refuses_or_times_out() {
    for failure in [Failure::Refuse, Failure::Hang] {
        let (addr, mode) = failing_origin();
        let name = if failure == Failure::Refuse {
            "refuse"
        } else {
            "hang"
        };
        let edge = Edge::start(
            name,
            &site(addr, "read_timeout = \"1s\"\nconnect_timeout = \"1s\""),
        );
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
    let edge = Edge::start(
        "backoff",
        &format!(
            "origin_error_backoff = \"3s\"\n#END-CACHE\n{}",
            site(addr, "")
        ),
    );
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

/// RFC 9111 §1.2.2: an origin's `max-age` larger than a cache can represent counts as 2³¹
/// seconds. Before, it made the request panic and the client got an empty reply, on every
/// request for that URL.
#[test]
fn a_max_age_beyond_any_integer_is_cached_not_a_crash() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(
        "huge-max-age",
        &format!("[[site]]\nname = \"s\"\norigin = \"http://{addr}\"\nprofile = \"http\"\n"),
    );
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
