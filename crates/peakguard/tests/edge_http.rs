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
