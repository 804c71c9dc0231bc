//! Getting and updating the Core Rule Set through the real binary: `peakguard waf crs
//! install` from a release tarball made of the shared CRS 4.28 tree (hash right and wrong, a
//! tree that does not load refused), the WordPress plugin installed beside it, a running
//! edge switched to a new release by SIGHUP under load without a failed request, a broken
//! release left unloaded while the running rules keep serving, `rollback`, the fallback to
//! Debian's CRS 3.3 with its warning, and origin responses inspected (never hits).

mod common;

use common::{Edge, fresh_dir, ports, request, shared_crs4, shared_wordpress_plugin, wait_until};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A CRS release directory (`coreruleset-VERSION/`) copied from the shared tree, with its
/// release number changed; `broken` adds a directive libmodsecurity refuses.
fn release_dir(at: &Path, version: &str, broken: bool) -> PathBuf {
    let top = at.join(format!("coreruleset-{version}"));
    std::fs::create_dir_all(&top).expect("mkdir");
    let src = shared_crs4();
    for part in ["rules", "plugins", "crs-setup.conf.example", "LICENSE"] {
        let ok = std::process::Command::new("cp")
            .arg("-r")
            .arg(src.join(part))
            .arg(top.join(part))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cp {part}");
    }
    let init = top.join("rules/REQUEST-901-INITIALIZATION.conf");
    let text = std::fs::read_to_string(&init).expect("read");
    std::fs::write(
        &init,
        text.replace("OWASP_CRS/4.28.0", &format!("OWASP_CRS/{version}")),
    )
    .expect("write");
    if broken {
        let f = top.join("rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf");
        let mut text = std::fs::read_to_string(&f).expect("read");
        text.push_str("\nSecRuleNoSuchDirective ARGS\n");
        std::fs::write(&f, text).expect("write");
    }
    top
}

/// The same as the CRS project publishes it: `coreruleset-VERSION-minimal.tar.gz`.
fn tarball(at: &Path, version: &str, broken: bool) -> (PathBuf, String) {
    let top = release_dir(at, version, broken);
    let file = at.join(format!("coreruleset-{version}-minimal.tar.gz"));
    let ok = std::process::Command::new("tar")
        .arg("czf")
        .arg(&file)
        .arg("-C")
        .arg(at)
        .arg(top.file_name().expect("name"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "tar");
    std::fs::remove_dir_all(&top).expect("clean");
    let out = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .expect("sha256sum");
    let hash = String::from_utf8_lossy(&out.stdout)[..64].to_string();
    (file, hash)
}

fn run(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(args)
        .output()
        .expect("peakguard");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn running_crs(edge: &Edge) -> String {
    let status: serde_json::Value =
        serde_json::from_str(&edge.admin_get("/status").text()).expect("status JSON");
    status["waf"][0]["crs"].as_str().unwrap_or("").to_string()
}

fn browse(addr: std::net::SocketAddr, path: &str) -> u16 {
    request(
        addr,
        "GET",
        "shop.test",
        path,
        &[
            (
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
            ),
            ("Accept", "text/html,application/xhtml+xml"),
        ],
        b"",
    )
    .status
}

fn log_of(edge: &Edge) -> String {
    std::fs::read_to_string(edge.dir.join("edge.log")).unwrap_or_default()
}

#[test]
fn releases_install_switch_on_sighup_under_load_refuse_what_does_not_load_and_roll_back() {
    let (origin, _sim) = peakguard_sim::start();
    let [p, a, ..] = ports();
    let dir = fresh_dir("waf-crs-install");
    let d = dir.display();
    let extra = format!(
        "[waf]\nlog = \"{d}/waf.jsonl\"\ncrs_home = \"{d}/crs\"\nworkers = 2\n[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n[site.shield.admission]\nenabled = false\n[site.shield.limits]\nenabled = false\n[site.waf]\nparanoia = 1\n"
    );
    let config = dir.join("peakguard.toml");
    std::fs::write(&config, Edge::config_text(&dir, p, a, &extra)).expect("config");
    let c = config.display().to_string();
    let (v0, hash0) = tarball(&dir, "4.28.0", false);
    let v0 = v0.display().to_string();

    // A wrong hash is refused and nothing is installed; the right one installs.
    let (ok, out) = run(&[
        "waf",
        "crs",
        "install",
        &v0,
        "--sha256",
        &"ab".repeat(32),
        "-c",
        &c,
    ]);
    assert!(!ok && out.contains("not installed"), "{out}");
    assert!(!dir.join("crs/current").exists());
    let (ok, out) = run(&["waf", "crs", "install", &v0, "--sha256", &hash0, "-c", &c]);
    assert!(ok, "{out}");
    assert!(out.contains("CRS 4.28.0 installed"), "{out}");
    assert!(
        out.contains("wordpress-rule-exclusions plugin"),
        "tells what WordPress needs: {out}"
    );
    let plugin = shared_wordpress_plugin().display().to_string();
    let (ok, out) = run(&["waf", "plugin", "install", &plugin, "-c", &c]);
    assert!(ok && out.contains("loads with CRS 4.28.0"), "{out}");

    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &extra, false);
    assert_eq!(running_crs(&edge), "4.28.0");
    let status: serde_json::Value =
        serde_json::from_str(&edge.admin_get("/status").text()).expect("JSON");
    assert_eq!(status["waf"][0]["found"], "peakguard's installed copy");
    assert_eq!(status["waf"][0]["plugins"][0], "wordpress-rule-exclusions");
    assert!(
        log_of(&edge).contains("WAF on CRS 4.28.0 (peakguard's installed copy"),
        "{}",
        log_of(&edge)
    );

    // Load through everything that follows: misses (inspected), hits, and attacks.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            let addr = edge.addr;
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let (path, want) = match n % 3 {
                        0 => (format!("/page/miss-{w}-{n}?q=blue+shirt"), 200),
                        1 => ("/page/home".to_string(), 200),
                        _ => (format!("/page/p{w}?id=1%27%20OR%201%3D1--%20&n={n}"), 403),
                    };
                    let got = browse(addr, &path);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if got != want {
                        failed
                            .lock()
                            .expect("lock")
                            .push(format!("{path}: {got}, not {want}"));
                    }
                }
            })
        })
        .collect();
    wait_until("load under way", Duration::from_secs(20), || {
        sent.load(Ordering::Relaxed) > 50
    });

    // A new release, then SIGHUP: the edge switches without dropping a request.
    let (v1, hash1) = tarball(&dir, "4.28.1", false);
    let (ok, out) = run(&[
        "waf",
        "crs",
        "install",
        &v1.display().to_string(),
        "--sha256",
        &hash1,
        "-c",
        &c,
    ]);
    assert!(ok && out.contains("4.28.0 kept as previous"), "{out}");
    edge.signal("HUP");
    wait_until("the edge runs 4.28.1", Duration::from_secs(30), || {
        running_crs(&edge) == "4.28.1"
    });

    // A release that does not load is refused by install; the current one stays.
    let (broken, hash) = tarball(&dir, "4.28.2", true);
    let (ok, out) = run(&[
        "waf",
        "crs",
        "install",
        &broken.display().to_string(),
        "--sha256",
        &hash,
        "-c",
        &c,
    ]);
    assert!(!ok && out.contains("does not load"), "{out}");
    assert!(!dir.join("crs/4.28.2").exists());

    // Back to the previous release.
    let (ok, out) = run(&["waf", "crs", "rollback", "-c", &c]);
    assert!(ok && out.contains("CRS 4.28.0 is current again"), "{out}");
    edge.signal("HUP");
    wait_until(
        "the edge runs 4.28.0 again",
        Duration::from_secs(30),
        || running_crs(&edge) == "4.28.0",
    );

    // A broken tree put in place by hand: SIGHUP leaves the running rules and says why.
    let by_hand = release_dir(&dir.join("crs"), "4.28.3", true);
    std::fs::rename(&by_hand, dir.join("crs/4.28.3")).expect("move");
    std::fs::remove_file(dir.join("crs/current")).expect("unlink");
    std::os::unix::fs::symlink("4.28.3", dir.join("crs/current")).expect("link");
    edge.signal("HUP");
    wait_until("the reload refused", Duration::from_secs(30), || {
        log_of(&edge).contains("SIGHUP: keeping the running configuration")
    });
    assert!(
        log_of(&edge).contains("REQUEST-942-APPLICATION-ATTACK-SQLI.conf")
            && log_of(&edge).contains("syntax error"),
        "{}",
        log_of(&edge)
    );
    assert_eq!(running_crs(&edge), "4.28.0");
    let before = sent.load(Ordering::Relaxed);
    wait_until(
        "more load after the refused reload",
        Duration::from_secs(20),
        || sent.load(Ordering::Relaxed) > before + 30,
    );

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let failed = failed.lock().expect("lock");
    let total = sent.load(Ordering::Relaxed);
    eprintln!(
        "requests during installs, reloads and rollback: {total}, failed: {}",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {total} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(10)]
    );
    edge.stop();
    edge.own_dir(dir);
}

#[test]
fn debian_crs_3_is_the_fallback_and_warns_that_the_figures_are_for_crs_4() {
    let (origin, _sim) = peakguard_sim::start();
    let [p, a, ..] = ports();
    let dir = fresh_dir("waf-crs-fallback");
    let extra = format!(
        "[waf]\nlog = \"{d}/waf.jsonl\"\ncrs_home = \"{d}/crs\"\n[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n[site.waf]\n",
        d = dir.display()
    );
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &extra, false);
    let log = log_of(&edge);
    assert!(log.contains("WAF on CRS 3.3"), "{log}");
    assert!(
        log.contains("figures in BENCHMARKS.md are for CRS 4")
            && log.contains("peakguard waf crs install"),
        "{log}"
    );
    assert_eq!(
        log.matches("BENCHMARKS.md are for CRS 4").count(),
        1,
        "once: {log}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&edge.admin_get("/status").text()).expect("JSON");
    assert_eq!(status["waf"][0]["found"], "Debian's modsecurity-crs");
    assert!(
        status["waf"][0]["crs"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.3"))
    );
    assert_eq!(browse(edge.addr, "/page/a?id=1%27%20OR%201%3D1--%20"), 403);
    // A reload that rebuilds the rules (another threshold) warns no more.
    std::fs::write(
        &edge.config,
        Edge::config_text(&dir, p, a, &format!("{extra}threshold = 6\n")),
    )
    .expect("config");
    edge.signal("HUP");
    wait_until("the rebuild", Duration::from_secs(30), || {
        log_of(&edge).matches("WAF on CRS 3.3").count() == 2
    });
    assert_eq!(
        log_of(&edge).matches("BENCHMARKS.md are for CRS 4").count(),
        1
    );
    let (ok, out) = run(&[
        "waf",
        "status",
        "-c",
        &edge.config.display().to_string(),
        "--token",
        common::TOKEN,
        "--admin",
        &edge.admin.to_string(),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Debian's modsecurity-crs") && out.contains("warning: CRS 3.3"),
        "{out}"
    );
    assert!(out.contains("running: site \"shop\": CRS 3.3"), "{out}");
    edge.stop();
    edge.own_dir(dir);
}

#[test]
fn origin_responses_are_inspected_when_asked_and_cache_hits_never() {
    let (origin, _sim) = peakguard_sim::start();
    let [p, a, ..] = ports();
    let dir = fresh_dir("waf-responses");
    let extra = format!(
        "[waf]\nlog = \"{d}/waf.jsonl\"\ncrs_home = \"{d}/crs\"\n[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n[site.waf]\n{crs}inspect_responses = true\n",
        d = dir.display(),
        crs = common::crs4_site_waf()
    );
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &extra, false);
    let responses = |e: &Edge, result: &str| -> f64 {
        let want = format!("peakguard_waf_responses_total{{site=\"shop\",result=\"{result}\"}} ");
        e.admin_get("/metrics")
            .text()
            .lines()
            .find_map(|l| l.strip_prefix(&want).and_then(|v| v.parse().ok()))
            .unwrap_or(-1.0)
    };
    assert_eq!(
        browse(edge.addr, "/leak"),
        200,
        "already on its way: logged, not refused"
    );
    wait_until("the response finding", Duration::from_secs(20), || {
        responses(&edge, "detect") == 1.0
    });
    let log = std::fs::read_to_string(dir.join("waf.jsonl")).expect("WAF log");
    let line: serde_json::Value = serde_json::from_str(
        log.lines()
            .find(|l| l.contains("\"response\""))
            .expect("a response incident"),
    )
    .expect("JSON");
    assert_eq!(line["action"], "detected");
    assert!(
        line["rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["family"] == "php-leakage")),
        "{line}"
    );
    assert_eq!(browse(edge.addr, "/page/clean"), 200);
    wait_until("the clean page inspected", Duration::from_secs(20), || {
        responses(&edge, "pass") == 1.0
    });
    // Hits: served from the cache, never inspected again.
    for _ in 0..5 {
        assert_eq!(browse(edge.addr, "/leak"), 200);
        assert_eq!(browse(edge.addr, "/page/clean"), 200);
    }
    assert_eq!(responses(&edge, "detect"), 1.0);
    assert_eq!(responses(&edge, "pass"), 1.0);
    edge.stop();
    edge.own_dir(dir);
}

#[test]
fn http2_requests_are_inspected_with_their_authority_as_the_host() {
    let (origin, _sim) = peakguard_sim::start();
    let [p, a, tls, _] = ports();
    let dir = fresh_dir("waf-h2");
    let (cert, key) = common::self_signed(&dir, "shop.test");
    let extra = format!(
        "tls_listen = [\"127.0.0.1:{tls}\"]\n#END-SERVER\n[waf]\nlog = \"{d}/waf.jsonl\"\ncrs_home = \"{d}/crs\"\n[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n[site.waf]\n{}",
        cert.display(),
        key.display(),
        common::crs4_site_waf(),
        d = dir.display()
    );
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &extra, false);
    let curl = |path: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sk",
                "--http2",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
            ])
            .args([
                "-H",
                "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
            ])
            .args(["-H", "Accept: text/html"])
            .arg("--resolve")
            .arg(format!("shop.test:{tls}:127.0.0.1"))
            .arg(format!("https://shop.test:{tls}{path}"))
            .output()
            .expect("curl is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A miss over HTTP/2 carries no Host field: the WAF must not call it "missing".
    assert_eq!(curl("/page/h2-miss?q=blue+shirt"), "2 200");
    assert_eq!(curl("/page/h2?id=1%27%20OR%201%3D1--%20"), "2 403");
    edge.stop();
    edge.own_dir(dir);
}
