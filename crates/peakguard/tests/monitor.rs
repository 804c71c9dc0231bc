//! The monitor through the real binary: inside `serve` (the edge's admin API, maintenance
//! silencing, stopping with the edge), alone (`peakguard monitor`) scraped by Debian's real
//! Prometheus with queries written for blackbox_exporter, and `peakguard alerts`.

mod common;

use common::{Edge, Proc, TOKEN, fresh_dir, ports, request, wait_until};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Prometheus' own checker accepts the exposition.
fn promtool_passes(metrics: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    if let Some(stdin) = promtool.stdin.as_mut() {
        std::io::Write::write_all(stdin, metrics.as_bytes()).expect("to promtool");
    }
    let checked = promtool.wait_with_output().expect("promtool ran");
    assert!(
        checked.status.success(),
        "promtool: {}\n{metrics}",
        text(&checked)
    );
}

fn admin_json(admin: SocketAddr, path: &str) -> serde_json::Value {
    let r = request(
        admin,
        "GET",
        "admin",
        path,
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

#[test]
fn serve_runs_the_probes_in_its_admin_api_silences_them_in_maintenance_and_stops_with_the_edge() {
    let (origin, _sim) = peakguard_sim::start();
    let (hook, hooked) = peakguard_sim::start_receiver(0).expect("receiver");
    let [p, a, ..] = ports();
    let dir = fresh_dir("monitor-serve");
    let mut edge = Edge::start_in(
        dir.to_path_buf(),
        p,
        a,
        &format!(
            "[[site]]\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n[maintenance]\nstate_file = \"{d}/maintenance.json\"\n# The probe comes from loopback, which maintenance lets through by default.\nallow = []\n[monitor]\nstate_file = \"{d}/monitor.json\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://shop.test/page/home\"\nresolve = \"127.0.0.1:{p}\"\nkeyword = \"Product\"\ninterval = \"300ms\"\n[[alert]]\nname = \"SiteDown\"\nprobe = \"home\"\nwhen = \"down\"\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook}/\"\n",
            d = dir.display()
        ),
        false,
    );
    edge.own_dir(dir);
    wait_until("a first probe run", WAIT, || {
        admin_json(edge.admin, "/probes")["probes"][0]["runs"]
            .as_u64()
            .is_some_and(|r| r >= 1)
    });
    let probes = admin_json(edge.admin, "/probes");
    let home = &probes["probes"][0];
    assert_eq!(home["name"], "home");
    assert_eq!(home["down"], false, "{home}");
    assert_eq!(home["history"][0]["http"]["status"], 200, "{home}");
    let metrics = edge.admin_get("/metrics").text();
    assert!(
        metrics.contains("probe_success{probe=\"home\",kind=\"http\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "probe_http_duration_seconds{probe=\"home\",kind=\"http\",phase=\"connect\"}"
        )
    );
    assert!(metrics.contains("peakguard_probe_up{probe=\"home\",kind=\"http\"} 1"));
    // The edge's metrics and the monitor's, together, are one valid exposition.
    promtool_passes(&metrics);
    let status = admin_json(edge.admin, "/status");
    assert_eq!(status["monitor"]["probes"], 1, "{status}");

    // Maintenance: the site answers 503, the probe fails, the alert fires silenced.
    let out = edge.cli(&["maintenance", "on", "--message", "upgrading"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the alert to fire, silenced by maintenance", WAIT, || {
        admin_json(edge.admin, "/alerts")["alerts"]
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|a| a["state"] == "firing" && a["silenced_by"] == "maintenance")
            })
    });
    let out = edge.cli(&["alerts", "list"]);
    let listed = text(&out);
    assert!(out.status.success(), "{listed}");
    assert!(
        listed.lines().any(|l| l.starts_with("firing")
            && l.contains("SiteDown")
            && l.contains("home")
            && l.contains("(silenced: maintenance)")),
        "{listed}"
    );
    assert!(listed.contains("maintenance is ON"), "{listed}");
    assert!(
        hooked.received().is_empty(),
        "maintenance explains it: nobody told"
    );

    // A silence by hand, listed, then ended.
    let out = edge.cli(&[
        "alerts",
        "silence",
        "--match",
        "probe=home",
        "--for",
        "1h",
        "--comment",
        "db move",
    ]);
    let said = text(&out);
    assert!(
        out.status.success() && said.starts_with("silence "),
        "{said}"
    );
    let id = said.split_whitespace().nth(1).expect("id").to_string();
    let listed = text(&edge.cli(&["alerts", "list"]));
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&id) && l.contains("probe=home") && l.contains("db move")),
        "{listed}"
    );
    let out = edge.cli(&["alerts", "unsilence", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let out = edge.cli(&["alerts", "unsilence", &id]);
    assert!(
        !out.status.success() && text(&out).contains("no silence"),
        "{}",
        text(&out)
    );
    let out = edge.cli(&["alerts", "silence", "--match", "probe", "--for", "1h"]);
    assert!(
        !out.status.success() && text(&out).contains("label=value"),
        "{}",
        text(&out)
    );

    // Maintenance ends while the site is up again: resolved quietly, never told.
    let out = edge.cli(&["maintenance", "off"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the alert to resolve", WAIT, || {
        admin_json(edge.admin, "/alerts")["alerts"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });
    assert!(hooked.received().is_empty());

    // The monitor stops with the edge.
    edge.signal("TERM");
    assert!(
        edge.wait_exit(Duration::from_secs(20)),
        "the edge and its monitor stop"
    );
}

fn prometheus(target: SocketAddr, dir: &std::path::Path, port: u16) -> Proc {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: peakguard\n    authorization:\n      credentials: {TOKEN}\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("prometheus.yml");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).expect("log"))
        .spawn()
        .expect("prometheus (Debian package, scripts/wp-env.sh install)");
    Proc(child)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An instant query; the result vector.
fn query(prom: SocketAddr, q: &str) -> Vec<serde_json::Value> {
    if std::net::TcpStream::connect(prom).is_err() {
        return Vec::new(); // not listening yet
    }
    let r = request(
        prom,
        "GET",
        "prometheus",
        &format!("/api/v1/query?query={}", enc(q)),
        &[],
        b"",
    );
    if r.status != 200 {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// `openssl s_server` with a self-signed certificate valid 20 days.
fn tls_server(dir: &std::path::Path, port: u16) -> Proc {
    let (cert, key) = (dir.join("tls-cert.pem"), dir.join("tls-key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "20",
            "-subj",
            "/CN=shop.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(made.success());
    let child = Command::new("openssl")
        .args(["s_server", "-www", "-quiet", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    Proc(child)
}

#[test]
fn monitor_alone_is_scraped_by_prometheus_and_blackbox_dashboard_queries_find_its_series() {
    let (origin, _sim) = peakguard_sim::start();
    let [admin, prom_port, tls_port, _] = ports();
    let dir = fresh_dir("monitor-alone");
    let _tls = tls_server(&dir, tls_port);
    let config = dir.join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{TOKEN}\"\n[maintenance]\nstate_file = \"{d}/maintenance.json\"\n[monitor]\nstate_file = \"{d}/monitor.json\"\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://{origin}/page/home\"\ninterval = \"1s\"\n[[probe]]\nname = \"cert\"\nkind = \"tls\"\naddress = \"127.0.0.1:{tls_port}\"\ntls_verify = false\ninterval = \"1s\"\n[[alert]]\nname = \"CertificateExpiresSoon\"\nprobe = \"cert\"\nwhen = \"days_left < 30\"\n",
            d = dir.display()
        ),
    )
    .expect("config");
    let mut monitor = Proc(
        Command::new(env!("CARGO_BIN_EXE_peakguard"))
            .arg("monitor")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("monitor.log")).expect("log"))
            .spawn()
            .expect("peakguard monitor"),
    );
    let admin_addr: SocketAddr = ([127, 0, 0, 1], admin).into();
    wait_until("the monitor's API", WAIT, || {
        std::net::TcpStream::connect(admin_addr).is_ok()
    });
    let unauthorized = request(admin_addr, "GET", "admin", "/metrics", &[], b"");
    assert_eq!(unauthorized.status, 401);
    wait_until("both probes' first runs", WAIT, || {
        let m = request(
            admin_addr,
            "GET",
            "admin",
            "/metrics",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            b"",
        )
        .text();
        m.contains("probe_success{probe=\"home\",kind=\"http\"} 1")
            && m.contains("probe_ssl_earliest_cert_expiry{probe=\"cert\"")
    });
    // The exposition is valid for Prometheus' own checker.
    let metrics = request(
        admin_addr,
        "GET",
        "admin",
        "/metrics",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    )
    .text();
    promtool_passes(&metrics);

    let _prometheus = prometheus(admin_addr, &dir, prom_port);
    let prom: SocketAddr = ([127, 0, 0, 1], prom_port).into();
    // Queries as the blackbox_exporter dashboards write them.
    wait_until("Prometheus to scrape the monitor", WAIT, || {
        !query(prom, "probe_success{job=\"peakguard\"}").is_empty()
            && !query(prom, "avg_over_time(probe_success[1m])").is_empty()
    });
    let success = query(prom, "probe_success");
    let probes: Vec<&str> = success
        .iter()
        .filter_map(|s| s["metric"]["probe"].as_str())
        .collect();
    assert!(
        probes.contains(&"home") && probes.contains(&"cert"),
        "{success:?}"
    );
    let phases = query(prom, "sum by (phase) (probe_http_duration_seconds)");
    let mut names: Vec<&str> = phases
        .iter()
        .filter_map(|s| s["metric"]["phase"].as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["connect", "processing", "resolve", "tls", "transfer"]
    );
    let days = query(prom, "(probe_ssl_earliest_cert_expiry - time()) / 86400");
    let left: f64 = days
        .first()
        .and_then(|s| s["value"][1].as_str())
        .and_then(|v| v.parse().ok())
        .expect("days left");
    assert!((19.0..=20.1).contains(&left), "{left}");
    let status = query(prom, "probe_http_status_code{probe=\"home\"}");
    assert_eq!(
        status.first().and_then(|s| s["value"][1].as_str()),
        Some("200")
    );
    assert!(!query(prom, "probe_duration_seconds").is_empty());
    let alerts = query(
        prom,
        "ALERTS{alertname=\"CertificateExpiresSoon\",alertstate=\"firing\"}",
    );
    assert_eq!(alerts.len(), 1, "{alerts:?}");

    // `peakguard alerts` talks to the lone monitor too.
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["alerts", "list", "--config"])
        .arg(&config)
        .output()
        .expect("alerts list");
    let listed = text(&out);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("firing") && l.contains("CertificateExpiresSoon")),
        "{listed}"
    );

    // SIGTERM stops it cleanly.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(monitor.0.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Ok(Some(status)) = monitor.0.try_wait() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "peakguard monitor did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn monitor_refuses_a_configuration_without_probes_and_says_what_to_add() {
    let dir = fresh_dir("monitor-empty");
    let config = dir.join("empty.toml");
    std::fs::write(&config, "").expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["monitor", "--config"])
        .arg(&config)
        .output()
        .expect("peakguard monitor");
    assert!(!out.status.success());
    assert!(text(&out).contains("no [[probe]]"), "{}", text(&out));
}

fn last_result(admin: SocketAddr, probe: &str) -> serde_json::Value {
    admin_json(admin, "/probes")["probes"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == probe).cloned())
        .and_then(|p| p["history"].as_array().and_then(|h| h.last().cloned()))
        .unwrap_or_default()
}

#[test]
fn an_edge_probe_reads_the_edges_own_counters_and_fails_when_the_origin_does() {
    let (origin, sim) = peakguard_sim::start();
    let [p, a, ..] = ports();
    let dir = fresh_dir("monitor-edge");
    let mut edge = Edge::start_in(
        dir.to_path_buf(),
        p,
        a,
        &format!(
            "[[site]]\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n[monitor]\nstate_file = \"{d}/monitor.json\"\n[[probe]]\nname = \"edge\"\nkind = \"edge\"\ninterval = \"500ms\"\nmax_origin_error_rate = 0.5\nmin_requests = 5\nmax_p99 = \"5s\"\n",
            d = dir.display()
        ),
        false,
    );
    edge.own_dir(dir);
    // A cached page asked for again and again: hits.
    wait_until("a window with hits", WAIT, || {
        for _ in 0..10 {
            common::get(edge.addr, "shop.test", "/page/popular");
        }
        let r = last_result(edge.admin, "edge");
        r["success"] == true && r["values"]["hit_ratio"].as_f64().is_some_and(|h| h > 0.5)
    });
    let r = last_result(edge.admin, "edge");
    assert!(r["values"]["p99"].as_f64().is_some(), "{r}");
    assert_eq!(r["values"]["room_queue"], 0.0, "{r}");
    // The database fails: every page the cache does not hold is a 500 from the origin.
    sim.set_db_down(true);
    let mut n = 0;
    wait_until("the edge probe to see the origin failing", WAIT, || {
        for _ in 0..10 {
            n += 1;
            common::get(edge.addr, "shop.test", &format!("/page/new-{n}"));
        }
        last_result(edge.admin, "edge")["success"] == false
    });
    let r = last_result(edge.admin, "edge");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("origin requests failed")),
        "{r}"
    );
    assert!(
        r["values"]["origin_error_rate"]
            .as_f64()
            .is_some_and(|e| e > 0.5),
        "{r}"
    );
    sim.set_db_down(false);
}
