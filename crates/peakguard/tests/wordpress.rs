//! End-to-end tests against a real WordPress (Debian's wordpress + nginx + PHP-FPM +
//! MariaDB), started by `scripts/wp-env.sh up`. Run by `scripts/test.sh` (and so by CI):
//! `cargo test -p peakguard --test wordpress -- --include-ignored --test-threads=1`.
//! Ignored in a plain `cargo test` because they need that environment.

mod common;

use common::wp::*;
use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn second_visit_is_a_hit() {
    let wp = wp();
    let edge = Edge::start("hit", &site(&wp, ""));
    let path = fresh("/e2e-post-1/");
    let first = get(edge.addr, &wp.host, &path);
    assert_eq!(first.status, 200);
    assert!(
        first.cache_status().contains("fwd=uri-miss"),
        "{:?}",
        first.cache_status()
    );
    let second = get(edge.addr, &wp.host, &path);
    assert_eq!(second.status, 200);
    assert!(
        second.cache_status().contains("hit"),
        "{:?}",
        second.cache_status()
    );
    assert!(second.header("age").is_some(), "a hit carries Age");
    assert_eq!(second.body, first.body);
    assert!(second.text().contains("E2E post 1"));
    assert_eq!(
        origin_hits(&wp, &path),
        1,
        "the second visit must not reach nginx"
    );
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn tracking_parameters_share_one_entry() {
    let wp = wp();
    let edge = Edge::start("utm", &site(&wp, ""));
    let base = fresh("/e2e-post-2/");
    let a = get(edge.addr, &wp.host, &format!("{base}&utm_source=x&gclid=y"));
    assert_eq!(a.status, 200);
    let b = get(
        edge.addr,
        &wp.host,
        &format!("{base}&utm_source=newsletter&utm_campaign=spring&fbclid=z"),
    );
    assert!(b.cache_status().contains("hit"), "{:?}", b.cache_status());
    let c = get(edge.addr, &wp.host, &base);
    assert!(c.cache_status().contains("hit"), "{:?}", c.cache_status());
    assert_eq!(origin_hits(&wp, &base), 1);
    // By default the parameters still reach the origin on the miss (analytics keep working).
    let log = std::fs::read_to_string(&wp.access_log).unwrap();
    assert!(
        log.contains(&format!("{base}&utm_source=x&gclid=y")),
        "origin saw the tracking parameters"
    );
}

fn login(addr: SocketAddr, host: &str) -> Vec<String> {
    login_as(addr, host, "admin", "e2e-admin-pass")
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn logged_in_visits_never_use_the_anonymous_cache() {
    let wp = wp();
    let edge = Edge::start("login", &site(&wp, ""));
    let cookies = login(edge.addr, &wp.host).join("; ");
    let path = fresh("/e2e-post-3/");
    // Logged in first, on a cold page: bypassed, personalised (admin bar), not stored.
    let admin_view = request(
        edge.addr,
        "GET",
        &wp.host,
        &path,
        &[("Cookie", &cookies)],
        b"",
    );
    assert_eq!(admin_view.status, 200);
    assert!(
        admin_view.cache_status().contains("fwd=bypass"),
        "{:?}",
        admin_view.cache_status()
    );
    assert!(
        admin_view.text().contains("wpadminbar"),
        "a logged-in page shows the admin bar"
    );
    let anon = get(edge.addr, &wp.host, &path);
    assert!(
        anon.cache_status().contains("fwd=uri-miss"),
        "anonymous must not get the logged-in copy: {:?}",
        anon.cache_status()
    );
    assert!(!anon.text().contains("wpadminbar"));
    // Now the page is cached for anonymous visitors; the logged-in user still bypasses it.
    let admin_again = request(
        edge.addr,
        "GET",
        &wp.host,
        &path,
        &[("Cookie", &cookies)],
        b"",
    );
    assert!(admin_again.cache_status().contains("fwd=bypass"));
    assert!(admin_again.text().contains("wpadminbar"));
    assert_eq!(origin_hits(&wp, &path), 3);
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn five_hundred_concurrent_cold_requests_make_one_origin_request() {
    let wp = wp();
    let edge = Edge::start("coalesce", &site(&wp, ""));
    let path = fresh("/e2e-post-4/");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(500));
    let handles: Vec<_> = (0..500)
        .map(|_| {
            let (addr, host, path, barrier) =
                (edge.addr, wp.host.clone(), path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                get(addr, &host, &path)
            })
        })
        .collect();
    let responses: Vec<Response> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    assert!(
        responses.iter().all(|r| r.status == 200),
        "every request gets the page"
    );
    let bodies: std::collections::HashSet<_> = responses.iter().map(|r| r.body.len()).collect();
    assert_eq!(bodies.len(), 1, "every request gets the same body");
    assert_eq!(
        origin_hits(&wp, &path),
        1,
        "exactly one request reached nginx"
    );
    let metrics = edge.admin_get("/metrics").text();
    let waiters: u64 = metrics
        .lines()
        .find(|l| l.starts_with("peakguard_coalesced_waiters_total "))
        .and_then(|l| l.split(' ').nth(1)?.parse().ok())
        .unwrap_or(0);
    assert!(waiters > 0, "coalesced waiters are counted");
}

struct DbRestart;
impl Drop for DbRestart {
    fn drop(&mut self) {
        script(&["db-start"]);
    }
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn database_down_serves_stale_pages_and_a_branded_503_for_unseen_ones() {
    let wp = wp();
    let edge = Edge::start("stale", &site(&wp, "default_ttl = \"1s\""));
    let seen = fresh("/e2e-post-5/");
    let unseen = fresh("/e2e-post-6/");
    assert_eq!(get(edge.addr, &wp.host, &seen).status, 200);
    std::thread::sleep(Duration::from_millis(1500)); // the copy is now stale
    let _restart = DbRestart;
    script(&["db-stop"]);
    let direct = get(wp.origin_addr, &wp.host, &fresh("/e2e-post-5/"));
    assert!(
        direct.status >= 500,
        "WordPress itself fails without its database (got {})",
        direct.status
    );
    let stale = get(edge.addr, &wp.host, &seen);
    assert_eq!(stale.status, 200, "a seen page is served stale");
    assert!(
        stale.cache_status().contains("fwd=stale"),
        "{:?}",
        stale.cache_status()
    );
    assert!(stale.text().contains("E2E post 5"));
    let down = get(edge.addr, &wp.host, &unseen);
    assert_eq!(down.status, 503);
    assert!(
        down.header("retry-after").is_some(),
        "the 503 says when to come back"
    );
    assert!(
        down.text().contains("be right back"),
        "branded page, not a raw error: {}",
        down.text()
    );
    assert!(
        !down.text().contains("Error establishing"),
        "the origin's error page is not shown"
    );
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn publishing_then_purging_by_tag_or_url_shows_new_content() {
    let wp = wp();
    let edge = Edge::start("purge", &site(&wp, ""));
    let path = "/e2e-post-7/";
    let before = get(edge.addr, &wp.host, path);
    assert_eq!(before.status, 200);
    let tag = before
        .header("x-cache-tags")
        .expect("the mu-plugin tags posts")
        .to_string();
    let marker = format!("PUBLISHED-{}", std::process::id());
    script(&["update-post", "e2e-post-7", &format!("{marker} by tag")]);
    let cached = get(edge.addr, &wp.host, path);
    assert!(
        cached.cache_status().contains("hit") && !cached.text().contains(&marker),
        "still the cached copy before the purge"
    );
    let out = edge.cli(&["purge", "--tag", &tag]);
    assert!(
        out.status.success(),
        "purge --tag: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("purged 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let after = get(edge.addr, &wp.host, path);
    assert!(
        after.text().contains(&format!("{marker} by tag")),
        "new content after the tag purge"
    );

    script(&["update-post", "e2e-post-7", &format!("{marker} by url")]);
    let out = edge.cli(&["purge", "--url", &format!("{}{path}", wp.host)]);
    assert!(
        out.status.success(),
        "purge --url: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = get(edge.addr, &wp.host, path);
    assert!(
        after.text().contains(&format!("{marker} by url")),
        "new content after the URL purge"
    );
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn a_restart_keeps_disk_cached_pages() {
    let wp = wp();
    let [p, a, ..] = ports();
    let dir = fresh_dir("restart");
    let path = fresh("/e2e-post-8/");
    let mut first = Edge::start_in(dir.to_path_buf(), p, a, &site(&wp, ""), false);
    assert_eq!(get(first.addr, &wp.host, &path).status, 200);
    first.stop();
    let second = Edge::start_in(dir.to_path_buf(), p, a, &site(&wp, ""), false);
    let again = get(second.addr, &wp.host, &path);
    assert_eq!(again.status, 200);
    assert!(
        again.cache_status().contains("hit"),
        "served from the disk tier after restart: {:?}",
        again.cache_status()
    );
    assert_eq!(
        origin_hits(&wp, &path),
        1,
        "no origin request after the restart"
    );
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn maintenance_mode_blocks_visitors_and_lets_admins_through() {
    let wp = wp();
    let [p, a, ..] = ports();
    let dir = fresh_dir("maint");
    let extra = format!(
        "trusted_proxies = [\"127.0.0.1/32\"]\n#END-SERVER\n[maintenance]\nstate_file = \"{}/maintenance.json\"\nallow = [\"198.51.100.10/32\"]\nbypass_cookie = \"pg_admin=letmein\"\n{}",
        dir.display(),
        site(&wp, "")
    );
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &extra, false);
    let visitor = [("X-Forwarded-For", "203.0.113.5")];
    let admin = [("X-Forwarded-For", "198.51.100.10")];
    let before = wp_hits_total(&wp);
    let out = edge.cli(&[
        "maintenance",
        "on",
        "--message",
        "Upgrading the shop",
        "--retry-after",
        "15m",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = request(edge.addr, "GET", &wp.host, "/", &visitor, b"");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("900"));
    assert!(r.text().contains("Upgrading the shop"));
    assert_eq!(
        wp_hits_total(&wp),
        before,
        "maintenance answers without touching the origin"
    );
    let r = request(edge.addr, "GET", &wp.host, "/", &admin, b"");
    assert_eq!(r.status, 200, "the allow-listed client sees the site");
    let r = request(
        edge.addr,
        "GET",
        &wp.host,
        "/",
        &[
            ("X-Forwarded-For", "203.0.113.5"),
            ("Cookie", "pg_admin=letmein"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "the bypass cookie lets an admin through");
    // The flag survives a restart.
    edge.stop();
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &extra, false);
    assert_eq!(
        request(edge.addr, "GET", &wp.host, "/", &visitor, b"").status,
        503,
        "still in maintenance after a restart"
    );
    let out = edge.cli(&["maintenance", "off"]);
    assert!(out.status.success());
    assert_eq!(
        request(edge.addr, "GET", &wp.host, "/", &visitor, b"").status,
        200
    );
    edge.stop();
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn a_binary_upgrade_under_load_loses_no_request() {
    let wp = wp();
    let [p, a, ..] = ports();
    let dir = fresh_dir("upgrade");
    let mut old = Edge::start_in(dir.to_path_buf(), p, a, &site(&wp, ""), false);
    let addr = old.addr;
    let host = wp.host.clone();
    // Bounded loopback load: 8 clients, a new connection per request, for 6 seconds.
    let stop_at = Instant::now() + Duration::from_secs(6);
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let host = host.clone();
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u32, Vec::new());
                let mut n = 0;
                while Instant::now() < stop_at {
                    n += 1;
                    let path = format!("/e2e-post-{}/", (i * 13 + n) % 50 + 100);
                    let raw =
                        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
                    match exchange(addr, raw.as_bytes(), Duration::from_secs(10)) {
                        Ok(r) if r.first().is_some_and(|r| r.status == 200) => ok += 1,
                        Ok(r) => failed.push(format!("{path}: {:?}", r.first().map(|r| r.status))),
                        Err(e) => failed.push(format!("{path}: {e}")),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    // The new binary waits for the sockets; SIGQUIT makes the old one hand them over.
    let new = Edge::start_in(dir.to_path_buf(), p, a, "", true);
    std::thread::sleep(Duration::from_millis(500));
    old.signal("QUIT");
    assert!(
        old.wait_exit(Duration::from_secs(20)),
        "the old process exits after handing over"
    );
    new.wait_ready();
    let (mut ok, mut failed) = (0, Vec::new());
    for c in clients {
        let (o, f) = c.join().unwrap();
        ok += o;
        failed.extend(f);
    }
    eprintln!("upgrade under load: {ok} ok, {} failed", failed.len());
    assert!(ok > 100, "the load ran ({ok} requests)");
    assert!(
        failed.is_empty(),
        "requests lost during the upgrade: {failed:?}"
    );
    assert!(new.pid() != 0);
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn browsers_get_a_stored_compressed_page_that_survives_a_restart_and_a_purge() {
    let wp = wp();
    let [p, a, ..] = ports();
    let dir = fresh_dir("codings");
    let path = fresh("/e2e-post-3/");
    let ask = |edge: &Edge, ae: &str| {
        request(
            edge.addr,
            "GET",
            &wp.host,
            &path,
            &[("Accept-Encoding", ae)],
            b"",
        )
    };
    let mut edge = Edge::start_in(dir.to_path_buf(), p, a, &site(&wp, ""), false);
    let first = ask(&edge, "gzip, deflate, br");
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("content-encoding"),
        Some("br"),
        "the miss is compressed on its way"
    );
    let page = decoded(&first);
    assert!(String::from_utf8_lossy(&page).contains("E2E post 3"));

    // The stored brotli copy appears once the background encoder has made it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = ask(&edge, "gzip, deflate, br");
        if r.header("content-encoding") == Some("br") && r.header("content-length").is_some() {
            assert!(r.cache_status().contains("hit"));
            assert_eq!(decoded(&r), page);
            assert!(
                r.body.len() * 4 < page.len(),
                "{} of {} bytes",
                r.body.len(),
                page.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no stored brotli copy: {:?}",
            r.headers
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let gz = ask(&edge, "gzip");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(decoded(&gz), page);
    let plain = ask(&edge, "");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body, page);

    edge.stop();
    let edge = Edge::start_in(dir.to_path_buf(), p, a, &site(&wp, ""), false);
    for (ae, coding) in [("br", Some("br")), ("gzip", Some("gzip")), ("", None)] {
        let r = ask(&edge, ae);
        assert!(
            r.cache_status().contains("hit"),
            "after the restart: {:?}",
            r.cache_status()
        );
        assert_eq!(
            r.header("content-encoding"),
            coding,
            "{ae:?} after the restart"
        );
        assert_eq!(decoded(&r), page);
    }
    assert_eq!(
        origin_hits(&wp, &path),
        1,
        "one origin request for every coding, restart included"
    );

    let out = edge.cli(&["purge", "--url", &format!("{}{path}", wp.host)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The brotli copy went with the purge: the next browser visit is a miss.
    let r = ask(&edge, "br");
    assert!(
        r.cache_status().contains("uri-miss"),
        "after the purge: {:?}",
        r.cache_status()
    );
    assert_eq!(origin_hits(&wp, &path), 2);
}
