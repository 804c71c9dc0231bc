//! The running monitor against real servers on loopback: a TLS server whose certificate
//! (rcgen) expires in 5 days, the simulated origin failing and recovering, a recording
//! webhook receiver, a real Alertmanager (Debian's prometheus-alertmanager), a real SMTP
//! server with STARTTLS and authentication (aiosmtpd), a tmpfs the test fills.
//!
//! Every wait is a condition polled until a deadline; the probes run every 300 ms.

use peakguard_monitor::Monitor;
use peakguard_sim::receiver::Received;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// Starts the monitor; its journal goes beside its state file (the test's directory).
fn start(toml: &str) -> Arc<Monitor> {
    let mut config = peakguard_config::parse_with(toml, "test", &peakguard_monitor::extensions())
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(dir) = config.monitor.state_file.parent() {
        config.journal.file = dir.join("journal.jsonl");
    }
    Monitor::start(&config, "http://127.0.0.1:9".into())
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("probes configured")
}

/// Stops the monitor when the test ends, passed or not.
struct Running(Arc<Monitor>);
impl Drop for Running {
    fn drop(&mut self) {
        assert!(self.0.stop(Duration::from_secs(10)), "the monitor stops");
    }
}

/// A child process killed when the test ends.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json_bodies(got: &[Received]) -> Vec<Value> {
    got.iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect()
}

fn has_status(got: &[Received], status: &str) -> bool {
    json_bodies(got).iter().any(|b| b["status"] == status)
}

/// A self-signed certificate for 127.0.0.1 that expires in `days` days: (cert PEM, key PEM,
/// cert DER, key DER).
fn certificate(days: i64) -> (String, String, Vec<u8>, Vec<u8>) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    (
        cert.pem(),
        key.serialize_pem(),
        cert.der().to_vec(),
        key.serialize_der(),
    )
}

/// A TLS server (rustls) on loopback presenting a certificate that expires in `days` days.
fn tls_server(days: i64) -> SocketAddr {
    use tokio_rustls::rustls;
    let (_, _, cert, key) = certificate(days);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(cert)],
        rustls::pki_types::PrivateKeyDer::try_from(key).expect("key"),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        use tokio::io::AsyncReadExt;
                        let mut buf = [0u8; 1024];
                        while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                });
            }
        });
    });
    addr
}

const FAST: &str =
    "[monitor]\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\nrepeat_interval = \"1h\"\n";

#[test]
fn a_certificate_expiring_in_5_days_fires_its_alert_to_a_webhook_in_alertmanagers_format() {
    let tls = tls_server(5);
    let (hook, received) = peakguard_sim::start_receiver(0).expect("receiver");
    let state = tempfile::tempdir().expect("temp dir");
    let monitor = Running(start(&format!(
        "{FAST}state_file = \"{}/monitor.json\"\n[[probe]]\nname = \"cert\"\nkind = \"tls\"\naddress = \"{tls}\"\ntls_verify = false\ninterval = \"300ms\"\nmin_days = 3\n[[alert]]\nname = \"CertificateExpiresSoon\"\nprobe = \"cert\"\nwhen = \"days_left < 14\"\nseverity = \"critical\"\nsummary = \"the certificate of {{probe}} expires in {{value}} days\"\nlabels = {{ team = \"web\" }}\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook}/alerts\"\nbearer_token = \"hook-secret\"\n",
        state.path().display()
    )));
    let got = received
        .wait_for(WAIT, |got| has_status(got, "firing"))
        .expect("a firing notification");
    let first = &got[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/alerts");
    assert_eq!(first.authorization.as_deref(), Some("Bearer hook-secret"));
    let body: Value = serde_json::from_str(&first.body).expect("JSON");
    assert_eq!(body["version"], "4");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(
        body["groupKey"],
        "{}:{alertname=\"CertificateExpiresSoon\"}"
    );
    assert_eq!(body["groupLabels"]["alertname"], "CertificateExpiresSoon");
    assert_eq!(body["commonLabels"]["team"], "web");
    let alert = &body["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["probe"], "cert");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    let summary = alert["annotations"]["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("the certificate of cert expires in 4.9")
            || summary.starts_with("the certificate of cert expires in 5"),
        "{summary}"
    );
    // The probe itself passed (min_days = 3): the alert is the rule's, not a failure.
    let probes = monitor
        .0
        .handle("GET", "/probes", &Default::default())
        .expect("route")
        .1;
    assert_eq!(probes["probes"][0]["down"], false);
    let metrics = monitor.0.metrics();
    assert!(
        metrics.contains("ALERTS{alertname=\"CertificateExpiresSoon\",kind=\"tls\",probe=\"cert\",severity=\"critical\",team=\"web\",alertstate=\"firing\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("probe_ssl_earliest_cert_expiry{probe=\"cert\",kind=\"tls\"}"));
}

#[test]
fn a_failing_site_is_told_firing_then_resolved_and_a_failing_notifier_never_holds_up_the_rest() {
    let (addr, origin) = peakguard_sim::start();
    // The webhook answers 500 twice: the notifier retries (1 s, 2 s) and gets through.
    let (hook, hooked) = peakguard_sim::start_receiver(2).expect("receiver");
    let (slack, slacked) = peakguard_sim::start_receiver(0).expect("receiver");
    let dead = free_port();
    let state = tempfile::tempdir().expect("temp dir");
    let monitor = Running(start(&format!(
        "{FAST}state_file = \"{}/monitor.json\"\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://{addr}/\"\ninterval = \"300ms\"\ntimeout = \"2s\"\nfailures_before_down = 2\nsuccesses_before_up = 2\n[[alert]]\nname = \"SiteDown\"\nprobe = \"home\"\nwhen = \"down\"\nfor = \"500ms\"\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook}/\"\n[[notifier]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"http://{slack}/services/T0/B0/x\"\n[[notifier]]\nname = \"nowhere\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{dead}/\"\nretries = 1\ntimeout = \"1s\"\n",
        state.path().display()
    )));
    wait_until("the first good runs", || {
        monitor
            .0
            .metrics()
            .contains("peakguard_probe_runs_total{probe=\"home\",kind=\"http\"} 2")
    });
    assert!(
        hooked.received().is_empty(),
        "nothing to tell while the site is up"
    );
    origin.set_db_down(true);
    let slack_got = slacked
        .wait_for(WAIT, |got| !got.is_empty())
        .expect("the chat hears it");
    let text = json_bodies(&slack_got)[0]["text"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(text.starts_with("[FIRING:1] SiteDown"), "{text}");
    assert!(text.contains("home is down: status 500"), "{text}");
    // Recorded three times: refused twice, then delivered.
    hooked
        .wait_for(WAIT, |got| got.len() >= 3 && has_status(got, "firing"))
        .expect("the webhook gets it after its retries");

    origin.set_db_down(false);
    let got = hooked
        .wait_for(WAIT, |got| has_status(got, "resolved"))
        .expect("resolved");
    let resolved = json_bodies(&got)
        .into_iter()
        .find(|b| b["status"] == "resolved")
        .expect("resolved body");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    slacked
        .wait_for(WAIT, |got| {
            json_bodies(got).iter().any(|b| {
                b["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("[RESOLVED] SiteDown"))
            })
        })
        .expect("the chat hears the end");

    // The dead notifier is reported, and it held up nobody.
    wait_until("the dead notifier to give up", || {
        monitor
            .0
            .notifier_statuses()
            .iter()
            .any(|n| n.name == "nowhere" && n.failed >= 1)
    });
    let statuses = monitor.0.notifier_statuses();
    let nowhere = statuses
        .iter()
        .find(|n| n.name == "nowhere")
        .expect("status");
    assert!(nowhere.failing && nowhere.sent == 0);
    assert!(
        nowhere
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("POST http://127.0.0.1")),
        "{nowhere:?}"
    );
    let hook_status = statuses.iter().find(|n| n.name == "hook").expect("status");
    assert!(!hook_status.failing && hook_status.sent >= 2 && hook_status.attempts_failed == 2);
    let metrics = monitor.0.metrics();
    assert!(
        metrics.contains("peakguard_notifier_failing{notifier=\"nowhere\",kind=\"webhook\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "peakguard_notifications_total{notifier=\"nowhere\",kind=\"webhook\",result=\"failed\"}"
    ));
    let alerts = monitor
        .0
        .handle("GET", "/alerts", &Default::default())
        .expect("route")
        .1;
    let states: Vec<&str> = alerts["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["state"].as_str())
        .collect();
    assert_eq!(states, ["firing", "resolved"]);
    // Both are in the journal, as the monitor's doing.
    let journal = state.path().join("journal.jsonl");
    let mut seen = Vec::new();
    wait_until("the alert in the journal", || {
        seen = peakguard_journal::read(&journal)
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.who, e.what, e.detail))
            .collect();
        seen.len() >= 2
    });
    assert_eq!(seen[0].0, "monitor");
    assert_eq!(seen[0].1, "alert firing");
    assert!(seen[0].2.starts_with("SiteDown on probe home"), "{seen:?}");
    assert_eq!(seen[1].1, "alert resolved");
    assert_eq!(peakguard_journal::verify(&journal).ok(), Some(2));
}

#[test]
fn silences_hide_an_alert_until_they_end_and_survive_a_restart() {
    let (addr, origin) = peakguard_sim::start();
    origin.set_db_down(true);
    let (hook, hooked) = peakguard_sim::start_receiver(0).expect("receiver");
    let state = tempfile::tempdir().expect("temp dir");
    let toml = format!(
        "{FAST}state_file = \"{}/monitor.json\"\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://{addr}/\"\ninterval = \"300ms\"\n[[alert]]\nname = \"SiteDown\"\nprobe = \"home\"\nwhen = \"down\"\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook}/\"\n",
        state.path().display()
    );
    let monitor = Running(start(&toml));
    let query = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (code, silence) = monitor
        .0
        .handle(
            "POST",
            "/alerts/silence",
            &query(&[
                ("match", "alertname=SiteDown,probe=home"),
                ("for", "1h"),
                ("comment", "db move"),
            ]),
        )
        .expect("route");
    assert_eq!(code, 200, "{silence}");
    let id = silence["id"].as_str().expect("id").to_string();
    let (code, err) = monitor
        .0
        .handle("POST", "/alerts/silence", &query(&[("for", "1h")]))
        .expect("route");
    assert_eq!(code, 400);
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|e| e.contains("at least one matcher"))
    );
    wait_until("the alert to fire, silenced", || {
        let alerts = monitor
            .0
            .handle("GET", "/alerts", &Default::default())
            .expect("route")
            .1;
        alerts["alerts"].as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["state"] == "firing" && a["silenced_by"] == id.as_str())
        })
    });
    // A restart keeps the silence.
    drop(monitor);
    let monitor = Running(start(&toml));
    wait_until("the alert to fire again, still silenced", || {
        let alerts = monitor
            .0
            .handle("GET", "/alerts", &Default::default())
            .expect("route")
            .1;
        alerts["alerts"].as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["state"] == "firing" && a["silenced_by"] == id.as_str())
        })
    });
    assert!(hooked.received().is_empty(), "silenced: nobody told");
    let (code, _) = monitor
        .0
        .handle("POST", "/alerts/unsilence", &query(&[("id", &id)]))
        .expect("route");
    assert_eq!(code, 200);
    hooked
        .wait_for(WAIT, |got| has_status(got, "firing"))
        .expect("told once the silence ends");
    origin.set_db_down(false);
}

#[test]
fn maintenance_silences_the_failing_site_but_not_a_full_disk() {
    let (addr, origin) = peakguard_sim::start();
    origin.set_db_down(true);
    let (hook, hooked) = peakguard_sim::start_receiver(0).expect("receiver");
    let state = tempfile::tempdir().expect("temp dir");
    let maintenance = state.path().join("maintenance.json");
    std::fs::write(
        &maintenance,
        r#"{"on":true,"message":"","retry_after_secs":0}"#,
    )
    .expect("maintenance on");
    let monitor = Running(start(&format!(
        "{FAST}state_file = \"{dir}/monitor.json\"\n[maintenance]\nstate_file = \"{m}\"\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://{addr}/\"\ninterval = \"300ms\"\n[[probe]]\nname = \"disk\"\nkind = \"disk\"\npath = \"{dir}\"\nmin_free_percent = 100\ninterval = \"300ms\"\n[[alert]]\nname = \"Down\"\nwhen = \"down\"\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook}/\"\n",
        dir = state.path().display(),
        m = maintenance.display()
    )));
    let got = hooked
        .wait_for(WAIT, |got| has_status(got, "firing"))
        .expect("the disk alert");
    let probes: Vec<String> = json_bodies(&got)
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["labels"]["probe"].as_str().map(str::to_string))
        .collect();
    assert!(probes.iter().all(|p| p == "disk"), "{probes:?}");
    let alerts = monitor
        .0
        .handle("GET", "/alerts", &Default::default())
        .expect("route")
        .1;
    assert_eq!(alerts["maintenance"], true);
    // Maintenance ends, the site still fails: now it is told.
    std::fs::write(
        &maintenance,
        r#"{"on":false,"message":"","retry_after_secs":0}"#,
    )
    .expect("maintenance off");
    hooked
        .wait_for(WAIT, |got| {
            json_bodies(got).iter().any(|b| {
                b["alerts"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|a| a["labels"]["probe"] == "home"))
            })
        })
        .expect("the site's alert after maintenance");
    drop(monitor);
    origin.set_db_down(false);
}

/// A tmpfs of 8 MiB mounted for the test and unmounted after it.
struct Tmpfs(tempfile::TempDir);
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_disk_probe_on_a_small_filesystem_the_test_fills() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m,nr_inodes=64", "tmpfs"])
        .arg(dir.path())
        .status()
        .expect("mount runs");
    assert!(
        mounted.success(),
        "mounting a tmpfs needs root (the suite runs as root)"
    );
    let fs = Tmpfs(dir);
    let (hook, hooked) = peakguard_sim::start_receiver(0).expect("receiver");
    let state = tempfile::tempdir().expect("temp dir");
    let monitor = Running(start(&format!(
        "{FAST}state_file = \"{}/monitor.json\"\n[[probe]]\nname = \"uploads\"\nkind = \"disk\"\npath = \"{}\"\nmin_free_percent = 25\nmin_free_inodes = 10\ninterval = \"300ms\"\n[[alert]]\nname = \"DiskFilling\"\nprobe = \"uploads\"\nwhen = \"free_percent < 50\"\n[[alert]]\nname = \"DiskFull\"\nprobe = \"uploads\"\nwhen = \"down\"\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{hook}/\"\n",
        state.path().display(),
        fs.0.path().display()
    )));
    wait_until("a first run on the empty filesystem", || {
        monitor
            .0
            .metrics()
            .contains("peakguard_probe_up{probe=\"uploads\",kind=\"disk\"} 1")
    });
    // 6 MiB of 8: 25 % free, under the 50 % warning, at the 25 % limit.
    std::fs::write(fs.0.path().join("fill"), vec![1u8; 6 << 20]).expect("fill");
    let got = hooked
        .wait_for(WAIT, |got| {
            json_bodies(got)
                .iter()
                .any(|b| b["groupLabels"]["alertname"] == "DiskFilling")
        })
        .expect("the filling alert");
    let body = json_bodies(&got)
        .into_iter()
        .find(|b| b["groupLabels"]["alertname"] == "DiskFilling")
        .expect("body");
    let summary = body["alerts"][0]["annotations"]["summary"]
        .as_str()
        .unwrap_or("");
    assert!(summary.contains("free_percent is 2"), "{summary}");
    // 7 MiB of 8: past the 25 % limit, the probe fails and the probe is down.
    std::fs::write(fs.0.path().join("more"), vec![1u8; 1 << 20]).expect("fill more");
    hooked
        .wait_for(WAIT, |got| {
            json_bodies(got)
                .iter()
                .any(|b| b["groupLabels"]["alertname"] == "DiskFull")
        })
        .expect("the full alert");
    let probes = monitor
        .0
        .handle("GET", "/probes", &Default::default())
        .expect("route")
        .1;
    let last = probes["probes"][0]["history"]
        .as_array()
        .and_then(|h| h.last().cloned())
        .expect("a result");
    assert!(
        last["message"].as_str().is_some_and(|m| m.contains("free")),
        "{last}"
    );
    drop(monitor);
}

fn alertmanager(receiver: SocketAddr, dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let cluster = free_port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://{receiver}/from-alertmanager\n        send_resolved: true\n"
        ),
    )
    .expect("config");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--cluster.listen-address=127.0.0.1:{cluster}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("alertmanager.log")).expect("log"))
        .spawn()
        .expect("prometheus-alertmanager (scripts/wp-env.sh install puts it there)");
    let proc = Proc(child);
    wait_until("Alertmanager to answer", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (proc, port)
}

#[test]
fn a_real_alertmanager_routes_our_alerts_firing_then_resolved_in_the_same_format_as_ours() {
    let (addr, origin) = peakguard_sim::start();
    let (receiver, received) = peakguard_sim::start_receiver(0).expect("receiver");
    let dir = tempfile::tempdir().expect("temp dir");
    let (_am, am_port) = alertmanager(receiver, dir.path());
    let monitor = Running(start(&format!(
        "{FAST}state_file = \"{}/monitor.json\"\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://{addr}/\"\ninterval = \"300ms\"\n[[alert]]\nname = \"SiteDown\"\nprobe = \"home\"\nwhen = \"down\"\nseverity = \"critical\"\nsummary = \"{{probe}} answers {{message}}\"\n[[notifier]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{am_port}\"\n[[notifier]]\nname = \"ours\"\nkind = \"webhook\"\nurl = \"http://{receiver}/from-peakguard\"\n",
        dir.path().display()
    )));
    origin.set_db_down(true);
    let from = |got: &[Received], path: &str, status: &str| -> Option<Value> {
        got.iter()
            .filter(|r| r.path == path)
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .find(|b| b["status"] == status)
    };
    let got = received
        .wait_for(WAIT, |got| {
            from(got, "/from-alertmanager", "firing").is_some()
                && from(got, "/from-peakguard", "firing").is_some()
        })
        .expect("Alertmanager passes the alert on");
    let am = from(&got, "/from-alertmanager", "firing").expect("AM's");
    let ours = from(&got, "/from-peakguard", "firing").expect("ours");
    assert_eq!(am["alerts"][0]["labels"]["alertname"], "SiteDown");
    assert_eq!(am["alerts"][0]["labels"]["probe"], "home");
    assert_eq!(am["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(
        am["alerts"][0]["annotations"]["summary"],
        "home answers status 500 (expected 2xx or 3xx)"
    );
    assert_eq!(
        am["alerts"][0]["fingerprint"].as_str().map(str::len),
        Some(16)
    );
    // Our webhook body has exactly Alertmanager's fields, at the top and in each alert.
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    assert_eq!(keys(&ours), keys(&am));
    assert_eq!(keys(&ours["alerts"][0]), keys(&am["alerts"][0]));
    assert_eq!(
        ours["groupKey"]
            .as_str()
            .map(|k| k.ends_with("{alertname=\"SiteDown\"}")),
        Some(true)
    );

    origin.set_db_down(false);
    let got = received
        .wait_for(WAIT, |got| {
            from(got, "/from-alertmanager", "resolved").is_some()
        })
        .expect("Alertmanager hears the end and passes it on");
    let resolved = from(&got, "/from-alertmanager", "resolved").expect("resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    let am_status = monitor
        .0
        .notifier_statuses()
        .into_iter()
        .find(|n| n.name == "am")
        .expect("status");
    assert!(am_status.sent >= 2 && !am_status.failing, "{am_status:?}");
}

#[test]
fn alerts_arrive_by_email_over_starttls_with_authentication() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, _, _) = certificate(30);
    std::fs::write(dir.path().join("cert.pem"), cert).expect("cert");
    std::fs::write(dir.path().join("key.pem"), key).expect("key");
    let mail = dir.path().join("mail");
    std::fs::create_dir(&mail).expect("mail dir");
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
    let smtp = Proc(
        Command::new("/usr/bin/python3")
            .arg(script)
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .arg(port.to_string())
            .arg(&mail)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("smtp.log")).expect("log"))
            .spawn()
            .expect("python3 with aiosmtpd (scripts/wp-env.sh install puts it there)"),
    );
    wait_until("the SMTP server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let password = dir.path().join("smtp-password");
    peakguard_config::private_fs::write_private(&password, b"s3cret\n").expect("password");
    let (addr, origin) = peakguard_sim::start();
    origin.set_db_down(true);
    let monitor = Running(start(&format!(
        "{FAST}state_file = \"{}/monitor.json\"\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://{addr}/\"\ninterval = \"300ms\"\n[[alert]]\nname = \"SiteDown\"\nprobe = \"home\"\nwhen = \"down\"\ndescription = \"Check PHP-FPM and MariaDB on the origin.\"\n[[notifier]]\nname = \"ops-mail\"\nkind = \"email\"\nsmtp = \"127.0.0.1:{port}\"\ntls_verify = false\nusername = \"alerts\"\npassword_file = \"{}\"\nfrom = \"peakguard@shop.test\"\nto = [\"ops@shop.test\", \"owner@shop.test\"]\n",
        dir.path().display(),
        password.display()
    )));
    let read_mail = || -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(&mail)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    };
    wait_until("the firing e-mail", || !read_mail().is_empty());
    let first = &read_mail()[0];
    assert_eq!(first["tls"], true, "STARTTLS before the message");
    assert_eq!(first["authenticated"], true);
    assert_eq!(first["from"], "peakguard@shop.test");
    assert_eq!(
        first["to"],
        serde_json::json!(["ops@shop.test", "owner@shop.test"])
    );
    let data = first["data"].as_str().expect("data");
    assert!(data.contains("Subject: [FIRING:1] SiteDown"), "{data}");
    assert!(data.contains("Check PHP-FPM and MariaDB"), "{data}");
    origin.set_db_down(false);
    wait_until("the resolved e-mail", || {
        read_mail().iter().any(|m| {
            m["data"]
                .as_str()
                .is_some_and(|d| d.contains("Subject: [RESOLVED] SiteDown"))
        })
    });
    drop(monitor);
    drop(smtp);
}
