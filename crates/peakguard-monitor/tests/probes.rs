//! Each probe against real servers on loopback: the simulated origin (hyper), a closed port,
//! a real filesystem.

use peakguard_config::ProbeConfig;
use peakguard_monitor::{ProbeResult, run, run_all};
use std::net::SocketAddr;

fn probes(toml: &str) -> Vec<ProbeConfig> {
    peakguard_config::parse_with(toml, "test", &peakguard_monitor::extensions())
        .unwrap_or_else(|e| panic!("{e}"))
        .probes
}

fn probe(toml: &str) -> ProbeConfig {
    probes(toml).remove(0)
}

fn once(toml: &str) -> ProbeResult {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(&probe(toml)))
}

fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

fn http(name: &str, url: &str, extra: &str) -> String {
    format!("[[probe]]\nname = '{name}'\nkind = \"http\"\nurl = \"{url}\"\n{extra}\n")
}

#[test]
fn an_http_probe_checks_status_keywords_and_times_each_phase() {
    let (addr, origin) = peakguard_sim::start();
    let ok = once(&http(
        "home",
        &format!("http://{addr}/page/home"),
        "keyword = \"Product 399\"\nkeyword_absent = \"Fatal error\"",
    ));
    assert!(ok.success, "{}", ok.message);
    let detail = ok.http.as_ref().expect("http detail");
    assert_eq!(detail.status, 200);
    assert!(detail.body_bytes > 30_000, "{}", detail.body_bytes);
    assert_eq!(detail.phases.len(), 5);
    assert!(detail.phases.iter().all(|(_, s)| *s >= 0.0));
    assert_eq!(
        origin
            .last("/page/home")
            .and_then(|s| s.header("user-agent").map(str::to_string))
            .as_deref(),
        Some("peakguard-probe")
    );

    let absent = once(&http(
        "home",
        &format!("http://{addr}/page/home"),
        "keyword_absent = \"Product 399\"",
    ));
    assert!(
        !absent.success && absent.message.contains("contains"),
        "{}",
        absent.message
    );
    let missing = once(&http(
        "home",
        &format!("http://{addr}/page/home"),
        "keyword = \"Checkout\"",
    ));
    assert!(
        !missing.success && missing.message.contains("lacks"),
        "{}",
        missing.message
    );
}

#[test]
fn an_http_probe_fails_on_a_500_a_slow_answer_and_a_closed_port() {
    let (addr, _origin) = peakguard_sim::start();
    let error = once(&http("err", &format!("http://{addr}/fail"), ""));
    assert!(!error.success);
    assert!(error.message.contains("status 500"), "{}", error.message);
    assert_eq!(error.http.as_ref().map(|h| h.status), Some(500));

    let slow = once(&http(
        "slow",
        &format!("http://{addr}/slow?ms=800"),
        "max_time = \"200ms\"",
    ));
    assert!(
        !slow.success && slow.message.contains("over max_time"),
        "{}",
        slow.message
    );

    let stalled = once(&http(
        "stalled",
        &format!("http://{addr}/slow?ms=20000"),
        "timeout = \"500ms\"",
    ));
    assert!(
        !stalled.success && stalled.message.contains("timeout"),
        "{}",
        stalled.message
    );
    assert!(stalled.duration < std::time::Duration::from_secs(10));

    let closed = once(&http("closed", &format!("http://{}/", closed_port()), ""));
    assert!(
        !closed.success && closed.message.contains("cannot connect"),
        "{}",
        closed.message
    );

    let expected = once(&http(
        "err",
        &format!("http://{addr}/fail"),
        "expect_status = [500]",
    ));
    assert!(expected.success, "{}", expected.message);
}

#[test]
fn host_resolve_and_redirects_are_followed_as_configured() {
    let (addr, origin) = peakguard_sim::start();
    // Before the DNS switch: a name that resolves nowhere, sent to the new server.
    let r = once(&http(
        "switch",
        &format!("http://shop.invalid:{}/echo", addr.port()),
        &format!("resolve = \"{addr}\"\nhost = \"shop.example\"\nkeyword = \"host: shop.example\""),
    ));
    assert!(r.success, "{}", r.message);

    let stay = once(&http(
        "moved",
        &format!("http://{addr}/redirect?to=/page/next"),
        "",
    ));
    assert!(stay.success, "a 3xx is an answer: {}", stay.message);
    assert_eq!(
        stay.http.as_ref().map(|h| (h.status, h.redirects)),
        Some((302, 0))
    );
    let follow = once(&http(
        "moved",
        &format!("http://{addr}/redirect?to=/page/next"),
        "follow_redirects = true\nexpect_status = [200]",
    ));
    assert!(follow.success, "{}", follow.message);
    assert_eq!(
        follow.http.as_ref().map(|h| (h.status, h.redirects)),
        Some((200, 1))
    );
    assert_eq!(origin.count("/page/next"), 1);
}

#[test]
fn a_tcp_probe_connects_or_says_why_not() {
    let (addr, _origin) = peakguard_sim::start();
    let open = once(&format!(
        "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"{addr}\"\n"
    ));
    assert!(open.success, "{}", open.message);
    let closed = once(&format!(
        "[[probe]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"{}\"\n",
        closed_port()
    ));
    assert!(
        !closed.success && closed.message.contains("cannot connect"),
        "{}",
        closed.message
    );
}

#[test]
fn a_disk_probe_reads_the_filesystem_and_its_thresholds() {
    let dir = tempfile::tempdir().expect("dir");
    let disk = |extra: &str| {
        once(&format!(
            "[[probe]]\nname = \"data\"\nkind = \"disk\"\npath = \"{}\"\n{extra}\n",
            dir.path().display()
        ))
    };
    let fine = disk("min_free_percent = 0\nmin_free_bytes = \"1KiB\"");
    assert!(fine.success, "{}", fine.message);
    let d = fine.disk.as_ref().expect("disk detail");
    assert!(d.total_bytes > 0 && d.free_bytes <= d.total_bytes);
    let full = disk("min_free_bytes = \"1000000TiB\"");
    assert!(
        !full.success && full.message.contains("below"),
        "{}",
        full.message
    );
    let gone = once("[[probe]]\nname = \"x\"\nkind = \"disk\"\npath = \"/no/such/dir\"\n");
    assert!(
        !gone.success && gone.message.contains("cannot read"),
        "{}",
        gone.message
    );
}

#[test]
fn results_come_out_with_blackbox_exporter_names() {
    let (addr, _origin) = peakguard_sim::start();
    let all = probes(&format!(
        "{}{}",
        http("home \"main\"", &format!("http://{addr}/page/a"), ""),
        http("broken", &format!("http://{addr}/fail"), "")
    ));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let results = rt.block_on(run_all(&all));
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0].name, "home \"main\"",
        "in the configuration's order"
    );
    let text = peakguard_monitor::metrics::render(&results);
    assert!(
        text.contains("probe_success{probe=\"home \\\"main\\\"\",kind=\"http\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("probe_success{probe=\"broken\",kind=\"http\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("probe_http_status_code{probe=\"broken\",kind=\"http\"} 500"),
        "{text}"
    );
    assert!(
        text.contains(
            "probe_http_duration_seconds{probe=\"broken\",kind=\"http\",phase=\"connect\"}"
        ),
        "{text}"
    );
    assert_eq!(text.matches("# TYPE probe_success gauge").count(), 1);
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    if let Some(stdin) = child.stdin.as_mut() {
        std::io::Write::write_all(stdin, text.as_bytes()).expect("to promtool");
    }
    let out = child.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl s_server -www` with a fresh self-signed certificate for `shop.test`.
struct TlsServer {
    child: std::process::Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server() -> TlsServer {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "5",
        ])
        .args([
            "-subj",
            "/CN=shop.test",
            "-addext",
            "subjectAltName=DNS:shop.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl) is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let addr = closed_port();
    let child = std::process::Command::new("openssl")
        .args(["s_server", "-www", "-quiet", "-accept"])
        .arg(addr.to_string())
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let server = TlsServer {
        child,
        addr,
        _dir: dir,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "s_server never listened on {addr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server
}

#[test]
fn an_https_probe_verifies_the_certificate_unless_told_not_to() {
    let server = tls_server();
    let url = format!("https://shop.test:{}/", server.addr.port());
    let resolve = format!("resolve = \"{}\"", server.addr);
    let trusted = once(&http("tls", &url, &resolve));
    assert!(!trusted.success, "a self-signed certificate is not trusted");
    assert!(trusted.message.contains("TLS"), "{}", trusted.message);
    let unchecked = once(&http(
        "tls",
        &url,
        &format!("{resolve}\ntls_verify = false"),
    ));
    assert!(unchecked.success, "{}", unchecked.message);
    let detail = unchecked.http.as_ref().expect("http detail");
    assert_eq!(detail.status, 200);
    let tls_phase = detail
        .phases
        .iter()
        .find(|(p, _)| p.as_str() == "tls")
        .map(|(_, s)| *s);
    assert!(tls_phase.is_some_and(|s| s > 0.0), "{:?}", detail.phases);
}

#[test]
fn a_tls_probe_counts_the_days_left_and_checks_the_chain() {
    let server = tls_server(); // a self-signed certificate valid for 5 days
    let tls = |extra: &str| {
        once(&format!(
            "[[probe]]\nname = \"cert\"\nkind = \"tls\"\naddress = \"{}\"\nhost = \"shop.test\"\n{extra}\n",
            server.addr
        ))
    };
    let soon = tls("tls_verify = false");
    assert!(!soon.success, "5 days left is under the default 14");
    assert!(
        soon.message.contains("expires in 4.") || soon.message.contains("expires in 5.0"),
        "{}",
        soon.message
    );
    let detail = soon.tls.as_ref().expect("tls detail");
    assert!(
        (4.9..=5.01).contains(&detail.days_left),
        "{}",
        detail.days_left
    );
    assert_eq!(detail.chain_valid, None);

    let enough = tls("tls_verify = false\nmin_days = 3");
    assert!(enough.success, "{}", enough.message);

    let untrusted = tls("min_days = 3");
    assert!(!untrusted.success, "a self-signed chain is not trusted");
    assert_eq!(
        untrusted.tls.as_ref().and_then(|t| t.chain_valid),
        Some(false)
    );
    let text = peakguard_monitor::metrics::render(&[untrusted]);
    assert!(
        text.contains("probe_ssl_earliest_cert_expiry{probe=\"cert\",kind=\"tls\"} "),
        "{text}"
    );
    assert!(
        text.contains("peakguard_probe_tls_chain_valid{probe=\"cert\",kind=\"tls\"} 0"),
        "{text}"
    );

    let closed = once(&format!(
        "[[probe]]\nname = \"cert\"\nkind = \"tls\"\naddress = \"{}\"\n",
        closed_port()
    ));
    assert!(
        !closed.success && closed.message.contains("cannot connect"),
        "{}",
        closed.message
    );
}

#[test]
fn an_icmp_probe_pings_loopback_and_reports_the_round_trip() {
    // The suite runs as root, who may open an ICMP socket (the refusal is shown through the
    // binary, without the capability: crates/peakguard/tests/probe.rs).
    let r = once(
        "[[probe]]\nname = 'lo'\nkind = \"icmp\"\naddress = \"127.0.0.1\"\ntimeout = \"5s\"\n",
    );
    assert!(r.success, "{}", r.message);
    let rtt = r.value("rtt").expect("rtt");
    assert!(rtt > 0.0 && rtt < 5.0, "{rtt}");
    assert!(r.message.contains("127.0.0.1 answered"), "{}", r.message);
    let e = peakguard_config::parse_with(
        "[[probe]]\nname = 'lo'\nkind = \"icmp\"\naddress = \"127.0.0.1:80\"\n",
        "t",
        &peakguard_monitor::extensions(),
    )
    .expect_err("a port");
    assert!(e.to_string().contains("ICMP has no port"), "{e}");
}

#[test]
fn edge_and_backup_probes_outside_serve_say_where_they_run() {
    let edge = once("[[probe]]\nname = 'edge'\nkind = \"edge\"\n");
    assert!(
        !edge.success && edge.message.contains("inside `peakguard serve`"),
        "{}",
        edge.message
    );
    let backup = once("[[probe]]\nname = 'b'\nkind = \"backup\"\nsite = \"shop\"\n");
    assert!(
        !backup.success && backup.message.contains("inside `peakguard serve`"),
        "{}",
        backup.message
    );
}
