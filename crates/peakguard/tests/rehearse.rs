//! `peakguard rehearse` against real servers on loopback: the in-test hyper origin, the
//! project's own edge, and (ignored unless scripts/test.sh set it up) a real WordPress.

mod common;
use peakguard_sim as origin;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn rehearse(args: &[&str]) -> serde_json::Value {
    let dir = fresh_dir(&format!("rehearse-{}", args.join("").len()));
    let json = dir.join(format!(
        "r{}.json",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .arg("rehearse")
        .args(args)
        .args(["--quiet", "--json"])
        .arg(&json)
        .output()
        .expect("run peakguard rehearse");
    assert!(
        out.status.success(),
        "rehearse failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

#[test]
fn the_arrival_rate_is_held() {
    let (addr, _origin) = origin::start();
    let r = rehearse(&[
        "--target",
        &format!("http://{addr}"),
        "--rate",
        "200",
        "--duration",
        "5s",
    ]);
    let sent = r["sent"].as_u64().unwrap();
    assert!(
        (990..=1010).contains(&sent),
        "200/s for 5 s is 1,000 requests, sent {sent}"
    );
    // The schedule is the generator's own: every full second holds exactly the rate. What
    // the machine achieves depends on its load (a loaded 2-core CI), so that is checked
    // broadly: every request sent completed, and the rate is not far off.
    let series = r["series"].as_array().unwrap();
    for s in &series[..5] {
        assert_eq!(s["scheduled"].as_u64(), Some(200), "{s}");
    }
    let completed: u64 = series.iter().filter_map(|s| s["completed"].as_u64()).sum();
    assert_eq!(completed, sent, "every request sent completed");
    let rps = r["achieved_rps"].as_f64().unwrap();
    assert!(rps > 160.0 && rps < 240.0, "achieved {rps} req/s");
    assert_eq!(r["total"]["errors"].as_u64(), Some(0));
}

#[test]
fn a_one_second_stall_shows_in_the_p99() {
    // Every response due in the second that begins 2 s after the first request waits until
    // that second is over.
    let addr = origin::try_start(origin::SimOrigin::stalling_once(Duration::from_secs(2)))
        .expect("the simulated origin");
    let r = rehearse(&[
        "--target",
        &format!("http://{addr}"),
        "--rate",
        "100",
        "--duration",
        "5s",
        "--concurrency",
        "8",
    ]);
    let p99 = r["total"]["p99_ms"].as_f64().unwrap();
    let p50 = r["total"]["p50_ms"].as_f64().unwrap();
    // ~20 % of the requests were due during the stall: open-model latency shows it although
    // only 8 connections were open (a closed-loop tool would have stopped sending instead).
    assert!(p99 >= 800.0, "p99 {p99} ms must show the 1 s stall");
    assert!(
        p50 < 100.0,
        "p50 {p50} ms: most requests were not in the stall"
    );
    // The schedule kept going during the stall: every scheduled request was sent or, past
    // the bounded backlog behind the 8 connections, counted as not sent.
    assert_eq!(r["scheduled"].as_u64(), Some(500));
    assert_eq!(
        r["sent"].as_u64().unwrap() + r["not_sent"].as_u64().unwrap(),
        500
    );
}

#[test]
fn shoppers_keep_their_cart_session_through_the_edge() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(
        "shop",
        &format!("[[site]]\nname = \"shop\"\norigin = \"http://{addr}\"\n"),
    );
    let dir = fresh_dir("shop-scenario");
    let scenario = dir.join("launch.toml");
    std::fs::write(
        &scenario,
        format!(
            "target = \"http://{}\"\nrate = 40\nduration = \"4s\"\n[[class]]\nkind = \"shopper\"\nweight = 1\nadd_to_cart = [\"/?add-to-cart=12\", \"/?add-to-cart=15\"]\ncart = \"/cart/\"\ncheckout = \"/checkout/\"\n",
            edge.addr
        ),
    )
    .unwrap();
    let r = rehearse(&["--scenario", scenario.to_str().unwrap()]);
    assert_eq!(
        r["total"]["errors"].as_u64(),
        Some(0),
        "every cart and checkout request carried the session: {}",
        r["total"]
    );
    for group in ["add-to-cart", "cart", "checkout"] {
        assert!(
            r["groups"][group]["requests"].as_u64().unwrap_or(0) >= 20,
            "{group}: {}",
            r["groups"]
        );
    }
    assert!(r["classes"]["shopper"]["requests"].as_u64().unwrap() >= 150);
    // The edge never served a cart from the anonymous cache: every cart request reached the origin.
    assert_eq!(
        origin.count("/cart/") as u64,
        r["groups"]["cart"]["requests"].as_u64().unwrap()
    );
}

#[test]
fn visitors_in_a_waiting_room_refresh_with_their_place_and_are_not_counted_as_errors() {
    let (addr, origin) = origin::start();
    // Sixty new visitors a minute: the first sixty get in at once, the rest line up and are
    // let in one a second.
    let edge = Edge::start(
        "room",
        &format!(
            "[[site]]\nname = \"shop\"\norigin = \"http://{addr}\"\n[site.shield.waiting_room]\nenabled = true\nnew_users_per_minute = 60\nrefresh = \"1s\"\n"
        ),
    );
    let dir = fresh_dir("room-urls");
    let urls = dir.join("urls.txt");
    std::fs::write(&urls, "/echo/room group=echo\n").unwrap();
    // The room counts new visitors per calendar minute: start with at least 10 s of the
    // minute left, so that the 90 arrivals of the next 3 s fall in one minute (a run that
    // straddled two minutes would let everyone in at once).
    let left_in_minute = || {
        60 - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 60
    };
    let deadline = Instant::now() + Duration::from_secs(70);
    while left_in_minute() < 10 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = rehearse(&[
        "--target",
        &format!("http://{}", edge.addr),
        "--urls",
        urls.to_str().unwrap(),
        "--rate",
        "30",
        "--duration",
        "3s",
        "--timeout",
        "4s",
    ]);
    let class = &r["classes"]["anonymous"];
    let room = &class["waiting_room"];
    let (visitors, let_in, unfinished) = (
        room["visitors"].as_u64().unwrap(),
        room["let_in"].as_u64().unwrap(),
        room["unfinished"].as_u64().unwrap(),
    );
    assert!(visitors >= 20, "90 newcomers, 60 a minute: {room}");
    assert!(let_in >= 1, "the line moved: {room}");
    assert!(
        unfinished >= 1,
        "one a second cannot empty it in time: {room}"
    );
    assert_eq!(
        visitors,
        let_in + unfinished,
        "each visitor in line ends one way: {room}"
    );
    assert!(
        room["pages"].as_u64().unwrap() > visitors,
        "visitors refreshed: {room}"
    );
    assert!(room["wait_p50_ms"].as_f64().unwrap() >= 1000.0, "{room}");
    // Waiting pages are neither requests nor errors; every scheduled visit is accounted for.
    assert_eq!(class["errors"].as_u64(), Some(0), "{class}");
    assert_eq!(
        r["sent"].as_u64().unwrap() + r["not_sent"].as_u64().unwrap() + unfinished,
        r["scheduled"].as_u64().unwrap()
    );
    assert_eq!(
        origin.count("/echo/room") as u64,
        r["sent"].as_u64().unwrap(),
        "only visitors let in reached the origin"
    );
}

#[test]
fn campaign_clicks_are_unique_and_the_edge_caches_them_as_one_page() {
    let (addr, origin) = origin::start();
    let edge = Edge::start(
        "campaign",
        &format!("[[site]]\nname = \"c\"\norigin = \"http://{addr}\"\n"),
    );
    let dir = fresh_dir("campaign-urls");
    std::fs::write(dir.join("urls.txt"), "/cacheable-landing/ group=landing\n").unwrap();
    let r = rehearse(&[
        "--target",
        &format!("http://{}", edge.addr),
        "--rate",
        "50",
        "--duration",
        "2s",
        "--mix",
        "campaign=1",
        "--urls",
        dir.join("urls.txt").to_str().unwrap(),
    ]);
    assert_eq!(r["classes"]["campaign"]["requests"].as_u64(), Some(100));
    let seen = origin.recorded();
    let landing: Vec<_> = seen
        .iter()
        .filter(|s| s.path.starts_with("/cacheable-landing/"))
        .collect();
    assert_eq!(landing.len(), 1, "100 unique ad clicks, one origin fetch");
    assert!(
        landing[0].path.contains("gclid="),
        "the click carried its parameters: {}",
        landing[0].path
    );
}

#[test]
fn compare_prints_the_change_per_group() {
    let (addr, origin) = origin::start();
    let target = format!("http://{addr}");
    let dir = fresh_dir("compare");
    std::fs::write(
        dir.join("urls.txt"),
        "/cacheable-fast/ group=fast\n/slow?ms=50 group=slow\n",
    )
    .unwrap();
    let run = |name: &str| {
        let path = dir.join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
            .args([
                "rehearse",
                "--target",
                &target,
                "--rate",
                "40",
                "--duration",
                "2s",
                "--quiet",
                "--urls",
            ])
            .arg(dir.join("urls.txt"))
            .arg("--json")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        path
    };
    let before = run("before.json");
    *origin.stall_until.lock().unwrap() = None;
    let after = run("after.json");
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["rehearse", "compare"])
        .arg(&before)
        .arg(&after)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    for needle in ["fast", "slow", "(all)", "p99 ms before→after", "%"] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["rehearse", "compare"])
        .arg(dir.join("urls.txt"))
        .arg(&after)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("is not a `peakguard rehearse --json` report")
    );
}

#[test]
fn the_html_report_renders_its_charts_in_headless_chromium() {
    let (addr, _origin) = origin::start();
    let dir = fresh_dir("html");
    let html = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args([
            "rehearse",
            "--target",
            &format!("http://{addr}"),
            "--profile",
            "ramp 10-80 3s, hold 2s",
            "--quiet",
            "--html",
        ])
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = dir.join("report.png");
    let chromium = |extra: &[&str]| common::chromium(&dir, &html, extra);
    let shot = chromium(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1000,1400",
        "--hide-scrollbars",
    ]);
    let log = String::from_utf8_lossy(&shot.stderr);
    assert!(shot.status.success(), "chromium failed: {log}");
    assert!(
        !log.contains("Uncaught") && !log.contains("CONSOLE"),
        "the page logged errors: {log}"
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "a real screenshot ({size} bytes)");
    eprintln!("screenshot of the HTML report: {}", png.display());
    let dom = chromium(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<svg").count(), 3, "three charts");
    assert!(
        dom.matches("<polyline").count() >= 5,
        "throughput and latency lines are drawn"
    );
    assert!(dom.contains("Traffic classes") && dom.contains("URL groups"));
}

fn wp_env() -> (String, String) {
    let origin = std::env::var("PG_E2E_ORIGIN").expect("PG_E2E_ORIGIN: run scripts/test.sh");
    let host = std::env::var("PG_E2E_HOST").expect("PG_E2E_HOST");
    let port = origin.rsplit(':').next().unwrap().to_string();
    (
        format!("http://{host}"),
        format!("{host}:80:127.0.0.1:{port}"),
    )
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn sitemap_discovery_finds_the_wordpress_posts() {
    let (target, resolve) = wp_env();
    let r = rehearse(&[
        "--target",
        &target,
        "--resolve",
        &resolve,
        "--rate",
        "20",
        "--duration",
        "3s",
        "--sitemap",
        "--max-urls",
        "150",
    ]);
    assert_eq!(r["total"]["errors"].as_u64(), Some(0), "{}", r["total"]);
    let posts = r["groups"]["post"]["requests"].as_u64().unwrap_or(0);
    assert!(
        posts >= 50,
        "discovered posts were requested ({posts}); groups: {}",
        r["groups"]
    );
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn logged_in_users_log_in_once_and_browse_with_their_session() {
    let (target, resolve) = wp_env();
    let dir = fresh_dir("wp-login-scenario");
    let scenario = dir.join("s.toml");
    std::fs::write(
        &scenario,
        format!("target = \"{target}\"\nresolve = [\"{resolve}\"]\nrate = 10\nduration = \"2s\"\n[[class]]\nkind = \"logged_in\"\nusername = \"admin\"\npassword = \"e2e-admin-pass\"\nsessions = 2\n"),
    )
    .unwrap();
    let r = rehearse(&["--scenario", scenario.to_str().unwrap()]);
    assert_eq!(r["classes"]["logged_in"]["requests"].as_u64(), Some(20));
    assert_eq!(r["total"]["errors"].as_u64(), Some(0));
    std::fs::write(
        &scenario,
        std::fs::read_to_string(&scenario)
            .unwrap()
            .replace("e2e-admin-pass", "wrong"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["rehearse", "--quiet", "--scenario"])
        .arg(&scenario)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("log in as \"admin\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rehearses_over_tls_with_http2_and_over_http1() {
    let (addr, origin) = origin::start();
    let [_, _, tls_port, _] = ports();
    let dir = fresh_dir("rehearse-tls-files");
    let (cert, key) = self_signed(&dir, "shop.test");
    let extra = format!(
        "tls_listen = [\"127.0.0.1:{tls_port}\"]\n#END-SERVER\n[[site]]\nname = \"s\"\nhosts = [\"shop.test\"]\norigin = \"http://{addr}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let _edge = Edge::start("rehearse-tls", &extra);
    let urls = dir.join("urls.txt");
    std::fs::write(&urls, "/cacheable-tls/\n").unwrap();
    let target = format!("https://shop.test:{tls_port}");
    let resolve = format!("shop.test:{tls_port}:127.0.0.1");
    let common = [
        "--target",
        &target,
        "--resolve",
        &resolve,
        "--insecure",
        "--rate",
        "100",
        "--duration",
        "2s",
        "--concurrency",
        "20",
    ];
    let h2 = rehearse(&[&common[..], &["--http2", "--urls", urls.to_str().unwrap()]].concat());
    assert_eq!(h2["total"]["errors"].as_u64(), Some(0), "{}", h2["total"]);
    assert_eq!(h2["sent"].as_u64(), Some(200));
    assert_eq!(
        h2["connections_opened"].as_u64(),
        Some(1),
        "HTTP/2: one multiplexed connection"
    );
    let h1 = rehearse(&[&common[..], &["--urls", urls.to_str().unwrap()]].concat());
    assert_eq!(h1["total"]["errors"].as_u64(), Some(0));
    assert!(h1["connections_opened"].as_u64().unwrap() >= 1);
    // SNI and Host named shop.test reached the right site through --resolve.
    assert_eq!(
        origin.count("/cacheable-tls/"),
        1,
        "cached by the edge after the first request"
    );
    // Without --insecure the self-signed certificate is refused: every request fails to connect.
    let out = Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args([
            "rehearse",
            "--quiet",
            "--target",
            &target,
            "--resolve",
            &resolve,
            "--rate",
            "10",
            "--duration",
            "1s",
            "--json",
        ])
        .arg(dir.join("strict.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let strict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("strict.json")).unwrap()).unwrap();
    assert_eq!(
        strict["total"]["connect_errors"].as_u64(),
        Some(10),
        "{}",
        strict["total"]
    );
}

#[test]
fn the_run_ends_on_time_even_when_the_server_hangs() {
    let (addr, origin) = origin::start();
    *origin.stall_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(120));
    let started = Instant::now();
    let r = rehearse(&[
        "--target",
        &format!("http://{addr}"),
        "--rate",
        "50",
        "--duration",
        "2s",
        "--timeout",
        "2s",
        "--concurrency",
        "4",
    ]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "2 s of load + 2 s timeout, then stop (took {took:?})"
    );
    assert_eq!(r["scheduled"].as_u64(), Some(100));
    let timeouts = r["total"]["timeouts"].as_u64().unwrap();
    assert!(
        timeouts >= 4,
        "the requests that were sent timed out ({timeouts})"
    );
    assert_eq!(
        r["sent"].as_u64().unwrap() + r["not_sent"].as_u64().unwrap(),
        100,
        "every scheduled request is accounted for"
    );
}

#[test]
#[ignore = "needs the nginx of scripts/test.sh"]
fn the_arrival_rate_is_held_against_debian_nginx() {
    let origin = std::env::var("PG_E2E_ORIGIN").expect("PG_E2E_ORIGIN: run scripts/test.sh");
    let dir = fresh_dir("nginx-rate");
    std::fs::write(dir.join("urls.txt"), "/static/20k.html\n").unwrap();
    let r = rehearse(&[
        "--target",
        &origin,
        "--rate",
        "500",
        "--duration",
        "4s",
        "--urls",
        dir.join("urls.txt").to_str().unwrap(),
    ]);
    let sent = r["sent"].as_u64().unwrap();
    assert!(
        (1980..=2020).contains(&sent),
        "500/s for 4 s is 2,000 requests, sent {sent}"
    );
    // Broadly: the schedule above is exact, what a loaded machine achieves is not.
    let rps = r["achieved_rps"].as_f64().unwrap();
    assert!(rps > 400.0 && rps < 600.0, "achieved {rps} req/s");
    assert_eq!(r["total"]["errors"].as_u64(), Some(0));
}

#[test]
fn yoast_sitemaps_are_discovered_when_core_sitemaps_are_off() {
    let (addr, origin) = origin::start();
    let r = rehearse(&[
        "--target",
        &format!("http://{addr}"),
        "--rate",
        "50",
        "--duration",
        "2s",
        "--sitemap",
    ]);
    assert_eq!(r["total"]["errors"].as_u64(), Some(0));
    let groups = r["groups"].as_object().unwrap();
    for g in ["home", "post", "product"] {
        assert!(
            groups.contains_key(g),
            "group {g} missing: {:?}",
            groups.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        origin.count("/post-") + origin.count("/product-") > 0,
        "the discovered pages were requested on the target"
    );
}

#[test]
fn rehearse_sends_browser_headers_unless_raw_and_counts_bytes_as_sent() {
    let (addr, origin) = origin::start();
    let dir = fresh_dir("rehearse-browser-urls");
    let urls = dir.join("urls.txt");
    std::fs::write(&urls, "/page/launch/\n").unwrap();
    let urls = urls.display().to_string();
    let run = |target: &str, raw: bool| {
        let mut args = vec![
            "--target",
            target,
            "--urls",
            &urls,
            "--rate",
            "20",
            "--duration",
            "2s",
        ];
        if raw {
            args.push("--raw");
        }
        rehearse(&args)
    };

    // Straight at the origin: what a request carries.
    run(&format!("http://{addr}"), false);
    let seen = origin.last("/page/launch/").unwrap();
    assert_eq!(seen.header("accept-encoding"), Some("gzip, deflate, br"));
    assert!(
        seen.header("user-agent")
            .unwrap_or("")
            .starts_with("Mozilla/5.0")
    );
    assert!(seen.header("accept-language").is_some());
    assert!(seen.header("accept").unwrap_or("").starts_with("text/html"));
    run(&format!("http://{addr}"), true);
    let seen = origin.last("/page/launch/").unwrap();
    assert_eq!(seen.header("accept-encoding"), None);
    assert_eq!(seen.header("user-agent"), None);

    // Through the edge: a browser-like rehearsal receives the compressed page.
    let edge = Edge::start(
        "rehearse-browser",
        &format!("[[site]]\nname = \"t\"\norigin = \"http://{addr}\"\n"),
    );
    let target = format!("http://{}", edge.addr);
    let page = origin::html_page("/page/launch/").len() as f64;
    let raw = run(&target, true);
    let per_raw =
        raw["total"]["bytes"].as_f64().unwrap() / raw["total"]["requests"].as_f64().unwrap();
    assert!(
        (per_raw - page).abs() < 1.0,
        "identity: {per_raw} bytes per response, page {page}"
    );
    let browser = run(&target, false);
    let per_browser = browser["total"]["bytes"].as_f64().unwrap()
        / browser["total"]["requests"].as_f64().unwrap();
    assert!(
        per_browser < page / 4.0,
        "a browser-like rehearsal counts the compressed bytes: {per_browser} per response"
    );
}
