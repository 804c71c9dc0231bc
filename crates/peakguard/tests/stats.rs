//! The statistics through the real binary: requests through the edge show on `GET /stats`
//! (how they were served, status classes, top pages, referring sites), survive a graceful
//! restart and a `kill -9` (at most the last `save_every` lost), keep no client address on
//! disk, and a `read` token may read them.

mod common;

use common::{Edge, fresh_dir, ports, request, wait_until};
use peakguard_stats::{Resolution, Retention, Store};
use std::time::Duration;

fn stats(edge: &Edge) -> serde_json::Value {
    let r = edge.admin_get("/stats?last=2h&site=shop&resolution=hour");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_str(&r.text()).expect("json")
}

fn total(edge: &Edge) -> u64 {
    stats(edge)["total"]["requests"].as_u64().unwrap_or(0)
}

/// What the edge has saved: finished minutes on disk plus the minute being counted.
fn saved(dir: &std::path::Path) -> u64 {
    let keep = Duration::from_secs(86_400);
    let store = Store::open(
        &dir.join("stats"),
        Retention {
            minutes: keep,
            hours: keep,
        },
    )
    .expect("store");
    let now = peakguard_stats::now_unix();
    let on_disk: u64 = store
        .read(Resolution::Minute, now - 7200, now + 60, Some("shop"))
        .expect("read")
        .iter()
        .map(|r| r.bucket.total())
        .sum();
    let current: u64 = store
        .load_current()
        .expect("current")
        .map(|c| {
            c.minutes
                .iter()
                .filter(|(s, _)| s == "shop")
                .map(|(_, b)| b.total())
                .sum()
        })
        .unwrap_or(0);
    on_disk + current
}

fn visit(edge: &Edge, path: &str, referrer: Option<&str>) -> u16 {
    let mut headers = vec![(
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    )];
    if let Some(r) = referrer {
        headers.push(("Referer", r));
    }
    request(edge.addr, "GET", "shop.test", path, &headers, b"").status
}

#[test]
fn requests_show_in_stats_and_survive_a_restart_and_a_kill() {
    let (origin, _sim) = peakguard_sim::start();
    let [p, a, ..] = ports();
    let dir = fresh_dir("stats");
    let sites = format!(
        "[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\nprofile = \"http\"\n\
         [[admin.tokens]]\nname = \"marketing\"\ntoken = \"marketing-read-only-0123\"\npermissions = [\"read\"]\n"
    );
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &sites, false);
    for _ in 0..4 {
        assert_eq!(
            visit(
                &edge,
                "/page/launch",
                Some("https://www.google.com/search?q=x")
            ),
            200
        );
    }
    assert_eq!(
        visit(&edge, "/page/about", Some("https://shop.test/page/launch")),
        200
    );
    assert_eq!(visit(&edge, "/photo.jpg", None), 200);
    assert!(visit(&edge, "/fail", None) >= 500);
    let sent = 7;
    wait_until("the requests counted", Duration::from_secs(10), || {
        total(&edge) == sent
    });
    let s = stats(&edge);
    let t = &s["total"];
    assert_eq!(t["served"]["hit"], 3, "{s}");
    assert_eq!(t["status"]["5xx"], 1, "{s}");
    assert_eq!(t["status"]["2xx"], 6, "{s}");
    assert_eq!(
        t["top_pages"],
        serde_json::json!([["/page/launch", 4], ["/page/about", 1]]),
        "assets and errors are not page views: {s}"
    );
    assert_eq!(
        t["referrers"],
        serde_json::json!([["google.com", 4]]),
        "the site's own pages are not referrers: {s}"
    );
    assert!(t["client_p99_ms"].as_u64().is_some(), "{s}");

    // A `read` token reads them.
    let r = request(
        edge.admin,
        "GET",
        "admin",
        "/stats?last=10m",
        &[("Authorization", "Bearer marketing-read-only-0123")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = edge.admin_get("/stats?last=soon");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("last=60m"), "{}", r.text());

    // A graceful restart saves what is being counted.
    edge.stop();
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &sites, false);
    assert_eq!(total(&edge), sent, "after a restart");

    // kill -9 once the edge has saved (every second here): nothing saved is lost.
    assert_eq!(visit(&edge, "/page/launch", None), 200);
    wait_until(
        "the save after the new request",
        Duration::from_secs(10),
        || saved(&dir) == sent + 1,
    );
    edge.signal("KILL");
    assert!(edge.wait_exit(Duration::from_secs(10)), "killed");
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &sites, false);
    assert_eq!(total(&edge), sent + 1, "after kill -9");

    // A zero-downtime upgrade: the new process counts while the old one finishes, then
    // takes over what the old one saved — nothing counted twice, nothing lost.
    assert_eq!(visit(&edge, "/page/launch", None), 200);
    let new = Edge::start_in(dir.to_path_buf(), p, a, "", true);
    edge.signal("QUIT");
    assert!(
        edge.wait_exit(Duration::from_secs(20)),
        "the old process hands over"
    );
    new.wait_ready();
    assert_eq!(visit(&new, "/page/launch", None), 200);
    wait_until("both processes' requests", Duration::from_secs(10), || {
        total(&new) == sent + 3
    });
    drop(edge);
    let edge = new;

    // No client address is kept.
    let found = std::process::Command::new("grep")
        .args(["-r", "-a", "-l", "127.0.0.1"])
        .arg(dir.join("stats"))
        .output()
        .expect("grep");
    assert!(
        found.stdout.is_empty(),
        "an address on disk: {}",
        String::from_utf8_lossy(&found.stdout)
    );
    drop(edge);
}

fn rfc3339(unix: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(unix as u64))
        .to_string()
}

#[test]
fn a_campaign_s_visitors_conversions_and_revenue_come_from_its_requests() {
    let (origin, _sim) = peakguard_sim::start();
    let now = peakguard_stats::now_unix();
    let sites = format!(
        "[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://{origin}\"\nprofile = \"http\"\n\
         [[campaign]]\nname = \"Black Friday\"\nstart = \"{}\"\nend = \"{}\"\nutm_campaign = \"bf\"\ncost = 100\ncurrency = \"EUR\"\n",
        rfc3339(now - 3600),
        rfc3339(now + 3600),
    );
    let edge = Edge::start("stats-campaign", &sites);
    let from = |ua: &str, path: &str| {
        request(
            edge.addr,
            "GET",
            "shop.test",
            path,
            &[("User-Agent", ua)],
            b"",
        )
    };
    // Two visitors from the newsletter, one from a search engine, one typing the address.
    let landing = "/blog/launch?utm_source=news&utm_medium=email&utm_campaign=BF";
    assert_eq!(from("Visitor A", landing).status, 200);
    assert_eq!(from("Visitor B", landing).status, 200);
    let r = request(
        edge.addr,
        "GET",
        "shop.test",
        "/page/about",
        &[
            ("User-Agent", "Visitor C"),
            ("Referer", "https://www.google.de/"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(from("Visitor D", "/").status, 200);
    // A buys, and reloads the confirmation; D reaches it too (another order).
    for _ in 0..2 {
        let r = from("Visitor A", "/checkout/order-received/1001/?total=59.90");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("x-peakguard-order"),
            None,
            "the order field stays at the edge"
        );
    }
    assert_eq!(
        from("Visitor D", "/checkout/order-received/1002/?total=10").status,
        200
    );

    let mut seen = serde_json::Value::Null;
    wait_until("the campaign's figures", Duration::from_secs(10), || {
        let r = edge.admin_get("/stats?campaign=Black%20Friday");
        seen = serde_json::from_str(&r.text()).unwrap_or_default();
        seen["total"]["requests"] == 7
    });
    let c = &seen["campaign"];
    assert_eq!(c["visits"], 2, "{seen}");
    assert_eq!(c["conversions"], 1, "{seen}");
    assert_eq!(c["revenue_cents"]["EUR"], 5990, "{seen}");
    assert_eq!(c["cost_cents"], 10000, "{seen}");
    assert_eq!(c["cost_per_acquisition_cents"], 10000, "{seen}");
    let t = &seen["total"];
    assert_eq!(t["visitors"], 4, "{seen}");
    assert_eq!(t["conversions"], 2, "{seen}");
    assert_eq!(
        t["sources"],
        serde_json::json!([["news / email / bf", 2], ["google.de / organic / ", 1]]),
        "{seen}"
    );
    assert_eq!(
        t["revenue_cents"],
        serde_json::json!([["news / email / bf · EUR", 5990], ["(direct) · EUR", 1000]]),
        "{seen}"
    );
    let r = edge.admin_get("/stats?campaign=Nope");
    assert_eq!(r.status, 404);

    // The morning-after report, read from the disk (saved every second here), agrees.
    let config = edge.config.to_str().expect("utf8").to_owned();
    let mut report = serde_json::Value::Null;
    wait_until(
        "the report to see every request",
        Duration::from_secs(10),
        || {
            let out = edge.cli_plain(&[
                "report",
                "--config",
                &config,
                "--campaign",
                "Black Friday",
                "--json",
            ]);
            report = serde_json::from_slice(&out.stdout).unwrap_or_default();
            report["total"]["requests"] == 7
        },
    );
    assert_eq!(report["campaign"], seen["campaign"], "{report}");
    assert_eq!(report["total"]["visitors"], 4);
    let page = edge.dir.join("bf.html");
    let out = edge.cli_plain(&[
        "report",
        "--config",
        &config,
        "--campaign",
        "Black Friday",
        "--html",
        page.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(
        html.contains("Campaign: Black Friday") && html.contains("59.90 EUR"),
        "{html}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&page).expect("page").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Rendered by a browser, offline: a screenshot, and the charts in its DOM.
    let png = edge.dir.join("bf.png");
    let shot = common::chromium(
        &edge.dir,
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1000,1600",
            "--hide-scrollbars",
        ],
    );
    let log = String::from_utf8_lossy(&shot.stderr);
    assert!(shot.status.success(), "chromium failed: {log}");
    assert!(
        !log.contains("Uncaught") && !log.contains("CONSOLE"),
        "{log}"
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "a real screenshot ({size} bytes)");
    let dom = common::chromium(&edge.dir, &page, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<svg").count(), 4, "four charts");
    assert!(dom.matches("<rect").count() >= 4, "bars are drawn");
    assert!(dom.contains("Campaign: Black Friday"));
    let out = edge.cli_plain(&["report", "--config", &config, "--campaign", "Nope"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Black Friday"),
        "the error names the campaigns there are"
    );
}
