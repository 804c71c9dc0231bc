//! The WAF through the real binary: CRS 4.28 with the WordPress exclusions plugin (from the
//! shared folder) in Debian's libmodsecurity, in front of the simulated origin. Attacks on
//! misses are blocked with an incident id, cache hits are not inspected, editors'
//! exclusions need a session the origin issued, detect mode and exceptions, `peakguard waf
//! explain`.

mod common;

use common::{Edge, crs4_site_waf, fresh_dir, ports, request};
use std::time::{Duration, Instant};

fn start(name: &str, waf: &str) -> (Edge, peakguard_sim::SimOrigin) {
    let (origin, sim) = peakguard_sim::start();
    let [p, a, ..] = ports();
    let dir = fresh_dir(name);
    let mut edge = Edge::start_in(
        dir.to_path_buf(),
        p,
        a,
        &format!(
            "[waf]\nlog = \"{d}/waf.jsonl\"\nworkers = 2\ncrs_home = \"{d}/crs\"\n[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n[site.waf]\n{crs}{waf}\n",
            d = dir.display(),
            crs = crs4_site_waf()
        ),
        false,
    );
    edge.own_dir(dir);
    (edge, sim)
}

fn metric(edge: &Edge, name: &str) -> f64 {
    edge.admin_get("/metrics")
        .text()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn wait_for_line(path: &std::path::Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needle:?} in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn form(edge: &Edge, path: &str, body: &str, cookie: Option<&str>) -> common::Response {
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
        ),
        ("Accept", "text/html"),
    ];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    request(
        edge.addr,
        "POST",
        "shop.test",
        path,
        &headers,
        body.as_bytes(),
    )
}

fn browse(edge: &Edge, path: &str) -> common::Response {
    request(
        edge.addr,
        "GET",
        "shop.test",
        path,
        &[
            (
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
            ),
            ("Accept", "text/html"),
        ],
        b"",
    )
}

#[test]
fn attacks_on_misses_are_blocked_with_an_incident_and_cache_hits_are_not_inspected() {
    let (edge, _sim) = start("waf-block", "");
    let inspected = |e: &Edge| {
        metric(
            e,
            "peakguard_waf_inspections_total{site=\"shop\",result=\"pass\"}",
        )
    };
    assert_eq!(browse(&edge, "/page/home").status, 200);
    assert_eq!(inspected(&edge), 1.0, "the miss was inspected");
    for _ in 0..5 {
        let hit = browse(&edge, "/page/home");
        assert_eq!(hit.status, 200);
        assert!(hit.cache_status().contains("hit"), "{}", hit.cache_status());
    }
    assert_eq!(inspected(&edge), 1.0, "hits pay nothing");

    let attack = browse(&edge, "/page/products?id=1%27%20OR%201%3D1--%20");
    assert_eq!(attack.status, 403, "{}", attack.text());
    let incident = attack
        .header("x-peakguard-incident")
        .expect("an incident id")
        .to_string();
    assert!(attack.text().contains(&incident), "the page shows the id");
    let line = wait_for_line(&edge.dir.join("waf.jsonl"), &incident);
    let logged: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(logged["action"], "blocked");
    assert!(logged["score"].as_u64().is_some_and(|s| s >= 5), "{logged}");
    let rules = logged["rules"].as_array().expect("rules");
    assert!(
        rules
            .iter()
            .any(|r| r["family"] == "sqli" && r["target"] == "ARGS:id"),
        "{logged}"
    );
    assert_eq!(
        logged["uri"], "/page/products?id=1%27%20OR%20…",
        "values cut short in the log"
    );
    let access = wait_for_line(&edge.dir.join("access.log"), &incident);
    assert!(access.contains("waf: blocked incident"), "{access}");

    let xss = form(
        &edge,
        "/contact/",
        "message=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E&name=eve",
        None,
    );
    assert_eq!(xss.status, 403);
    assert!(
        metric(
            &edge,
            "peakguard_waf_blocks_total{site=\"shop\",family=\"sqli\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &edge,
            "peakguard_waf_blocks_total{site=\"shop\",family=\"xss\"}"
        ) >= 1.0
    );

    // Why, and what would allow it.
    let out = edge.cli_plain(&[
        "waf",
        "explain",
        &incident,
        "--config",
        &edge.config.display().to_string(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("incident {incident} on site \"shop\"")),
        "{text}"
    );
    assert!(
        text.contains("path = \"/page/products\", argument = \"id\""),
        "{text}"
    );
}

#[test]
fn editor_exclusions_need_a_session_the_origin_issued() {
    let (edge, _sim) = start("waf-editor", "");
    // Saving a post with a script in a code block: what an editor does, what an attacker
    // tries.
    let post = "post_ID=1&action=editpost&content=%3Cp%3EDemo%3A%3C%2Fp%3E%3Cpre%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E%3C%2Fpre%3E";
    let forged = form(
        &edge,
        "/wp-admin/post.php",
        post,
        Some("wordpress_logged_in_0123abcd=admin%7C1767225600%7Cforgedforgedforged"),
    );
    assert_eq!(forged.status, 403, "a made-up login cookie earns nothing");
    let login = form(&edge, "/wp-login.php", "log=editor&pwd=correct+horse", None);
    assert_eq!(login.status, 302);
    let cookie = login
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("wordpress_logged_in_"))
        .expect("the session cookie");
    let pair = cookie.split(';').next().expect("name=value").to_string();
    let saved = form(&edge, "/wp-admin/post.php", post, Some(&pair));
    assert_eq!(
        saved.status,
        303,
        "the editor's save reaches WordPress: {}",
        saved.text()
    );
    // The same session does not make an attack on the front end pass.
    let attack = request(
        edge.addr,
        "GET",
        "shop.test",
        "/?s=%27%20UNION%20SELECT%20user_pass%20FROM%20wp_users--",
        &[
            ("Cookie", &pair),
            ("Accept", "text/html"),
            ("User-Agent", "Mozilla/5.0"),
        ],
        b"",
    );
    assert_eq!(attack.status, 403);
}

#[test]
fn detect_mode_passes_and_logs_and_an_exception_allows_what_it_names() {
    let (edge, _sim) = start("waf-detect", "mode = \"detect\"");
    let r = browse(&edge, "/page/a?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(r.status, 200, "detect mode refuses nothing");
    let line = wait_for_line(&edge.dir.join("waf.jsonl"), "\"detected\"");
    let logged: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let rules: Vec<u64> = logged["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["id"].as_u64())
        .collect();
    assert!(!rules.is_empty());
    drop(edge);

    let exceptions: Vec<String> = rules
        .iter()
        .map(|id| format!("{{ rule = {id}, path = \"/page/a\", argument = \"q\" }}"))
        .collect();
    let (edge, _sim) = start(
        "waf-exception",
        &format!("exceptions = [ {} ]", exceptions.join(", ")),
    );
    let allowed = browse(&edge, "/page/a?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(allowed.status, 200, "the exception's path and argument");
    let elsewhere = browse(&edge, "/page/b?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(elsewhere.status, 403, "only there");
    let other_arg = browse(&edge, "/page/a?r=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(other_arg.status, 403, "only for that argument");
}

#[test]
fn a_missing_rule_set_stops_serve_with_what_to_install() {
    let dir = fresh_dir("waf-nocrs");
    let [p, a, ..] = ports();
    let config = dir.join("peakguard.toml");
    std::fs::write(
        &config,
        Edge::config_text(
            &dir,
            p,
            a,
            &format!(
                "[waf]\nlog = \"{d}/waf.jsonl\"\ncrs_home = \"{d}/crs\"\n[[site]]\norigin = \"http://127.0.0.1:9\"\n[site.waf]\ncrs_dir = \"/nonexistent/crs\"\n",
                d = dir.display()
            ),
        ),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("serve");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("the WAF cannot start") && text.contains("modsecurity-crs"),
        "{text}"
    );
}

#[test]
fn exceptions_reload_on_sighup_with_the_rest_of_the_configuration() {
    let (origin, _sim) = peakguard_sim::start();
    let [p, a, ..] = ports();
    let dir = fresh_dir("waf-reload");
    let config = |waf: &str| {
        format!(
            "[waf]\nlog = \"{d}/waf.jsonl\"\ncrs_home = \"{d}/crs\"\n[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n[site.waf]\n{crs}{waf}\n",
            d = dir.display(),
            crs = crs4_site_waf()
        )
    };
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &config(""), false);
    let attack = "/page/r?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let first = browse(&edge, attack);
    assert_eq!(first.status, 403);
    let line = wait_for_line(
        &edge.dir.join("waf.jsonl"),
        first.header("x-peakguard-incident").expect("id"),
    );
    let logged: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let exceptions: Vec<String> = logged["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| format!("{{ rule = {}, argument = \"q\" }}", r["id"]))
        .collect();
    std::fs::write(
        &edge.config,
        Edge::config_text(
            &dir,
            p,
            a,
            &config(&format!("exceptions = [ {} ]", exceptions.join(", "))),
        ),
    )
    .expect("new config");
    edge.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while browse(&edge, attack).status != 200 {
        assert!(
            Instant::now() < deadline,
            "the exception did not take effect after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        browse(&edge, "/page/r?z=%3Cscript%3Ealert(1)%3C%2Fscript%3E").status,
        403,
        "only for q"
    );
    edge.own_dir(dir);
}

#[test]
fn an_overloaded_engine_fails_open_by_default_and_closed_when_asked_and_counts_it() {
    for (on_error, refused_status) in [("open", None), ("closed", Some(503))] {
        let (origin, _sim) = peakguard_sim::start();
        let [p, a, ..] = ports();
        let dir = fresh_dir("waf-overload");
        let mut edge = Edge::start_in(
            dir.to_path_buf(),
            p,
            a,
            &format!(
                "[waf]\nlog = \"{d}/waf.jsonl\"\nworkers = 1\nqueue = 1\ncrs_home = \"{d}/crs\"\n[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\n[site.shield.admission]\nenabled = false\n[site.waf]\n{crs}on_error = \"{on_error}\"\n",
                d = dir.display(),
                crs = crs4_site_waf()
            ),
            false,
        );
        edge.own_dir(dir);
        // Bursts of large form posts (each inspected, a few milliseconds) at one thread with
        // one queue slot, until some find the queue full.
        let body = format!("comment={}", "lorem+ipsum+dolor+sit+amet+".repeat(2000));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut statuses = Vec::new();
        while metric(&edge, "peakguard_waf_overloaded_total{site=\"shop\"}") < 1.0 {
            assert!(Instant::now() < deadline, "no inspection was refused");
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let addr = edge.addr;
                    let body = body.clone();
                    std::thread::spawn(move || {
                        request(
                            addr,
                            "POST",
                            "shop.test",
                            "/contact/",
                            &[
                                ("Content-Type", "application/x-www-form-urlencoded"),
                                ("Accept", "text/html"),
                                ("User-Agent", "Mozilla/5.0"),
                            ],
                            body.as_bytes(),
                        )
                        .status
                    })
                })
                .collect();
            statuses.extend(handles.into_iter().filter_map(|h| h.join().ok()));
        }
        assert!(
            metric(
                &edge,
                "peakguard_waf_inspections_total{site=\"shop\",result=\"error\"}"
            ) >= 1.0
        );
        match refused_status {
            None => assert!(
                statuses.iter().all(|s| *s == 303),
                "fail open: all passed {statuses:?}"
            ),
            Some(code) => assert!(statuses.contains(&code), "fail closed: {statuses:?}"),
        }
    }
}

#[test]
fn a_body_over_the_limit_passes_uninspected_and_is_counted() {
    let (edge, _sim) = start("waf-bigbody", "body_limit = \"1KiB\"");
    let attack = format!(
        "comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E&pad={}",
        "x".repeat(2000)
    );
    let r = form(&edge, "/contact/", &attack, None);
    assert_eq!(r.status, 303, "over body_limit: not inspected");
    assert_eq!(
        metric(
            &edge,
            "peakguard_waf_uninspected_bodies_total{site=\"shop\"}"
        ),
        1.0
    );
    let small = form(
        &edge,
        "/contact/",
        "comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        None,
    );
    assert_eq!(small.status, 403, "under it: inspected");
}
