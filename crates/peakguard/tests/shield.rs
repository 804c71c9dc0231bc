//! The shield against a real WordPress (`scripts/wp-env.sh`, PHP-FPM with 4 workers): origin
//! admission keeps the origin within its limit, serves buyers first, never makes a hit wait,
//! and answers a request that waited too long with the stale copy or the busy page. Run by
//! `scripts/test.sh`: `cargo test -p peakguard --test shield -- --include-ignored
//! --test-threads=1`.

mod common;

use common::wp::*;
use common::*;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// The edge's `/shield` status for the one site's admission.
fn admission(edge: &Edge) -> serde_json::Value {
    let r = edge.admin_get("/shield");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["admission"][0].clone()
}

fn wait_for(edge: &Edge, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let a = admission(edge);
        if ok(&a) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: admission is {a}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// When the origin worked on each request whose line contains `marker`: (start, end) in
/// seconds, from nginx's end time and request time.
fn origin_intervals(wp: &Wp, marker: &str) -> Vec<(f64, f64)> {
    let field = |line: &str, key: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
    };
    std::fs::read_to_string(&wp.access_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| {
            let end = field(l, "end=")?;
            let took = field(l, "rt=")?;
            Some((end - took, end))
        })
        .collect()
}

/// The most intervals that overlap at one instant. nginx logs with millisecond precision, so
/// each interval is shrunk by 2 ms at both ends: one request ending as the next starts is
/// not an overlap.
fn most_at_once(intervals: &[(f64, f64)]) -> usize {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for (s, e) in intervals {
        if e - s > 0.004 {
            events.push((s + 0.002, 1));
            events.push((e - 0.002, -1));
        }
    }
    events.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// Adds a product to a new cart through the edge; the shop answers with its session
/// cookies, which the edge remembers as issued. Returns them as a `Cookie` value.
fn open_cart(edge: &Edge, wp: &Wp, run: &str) -> String {
    let r = get(
        edge.addr,
        &wp.host,
        &format!("/?add-to-cart=5&pgcart={run}"),
    );
    assert_eq!(r.status, 200);
    let cookies = r.set_cookies();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("wp_woocommerce_session_")),
        "{cookies:?}"
    );
    cookies.join("; ")
}

/// An edge's directory, ports and configuration, so that a test can restart it in place.
struct Restartable {
    dir: TestDir,
    port: u16,
    admin: u16,
    config: String,
}

impl Restartable {
    fn new(name: &str, config: String) -> Self {
        let [port, admin, ..] = ports();
        Restartable {
            dir: fresh_dir(name),
            port,
            admin,
            config,
        }
    }

    fn start(&self) -> Edge {
        Edge::start_in(
            self.dir.to_path_buf(),
            self.port,
            self.admin,
            &self.config,
            false,
        )
    }
}

fn spawn_get(
    edge: &Edge,
    host: &str,
    path: String,
    headers: Vec<(&'static str, String)>,
) -> std::thread::JoinHandle<(Response, Instant)> {
    let (addr, host) = (edge.addr, host.to_string());
    std::thread::spawn(move || {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = request(addr, "GET", &host, &path, &h, b"");
        (r, Instant::now())
    })
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn admission_keeps_the_origin_within_its_limit_serves_checkout_first_and_never_holds_a_hit() {
    let wp = wp();
    let edge = Edge::start(
        "admission",
        &site(
            &wp,
            "[site.shield.admission]\nlimit = 2\nadaptive = false\nqueue_timeout = \"60s\"",
        ),
    );
    let run = run_id();
    // A page stored before the rush: it must stay a hit while the origin is full.
    let warm = format!("/e2e-post-7/?pgwarm={run}");
    assert_eq!(get(edge.addr, &wp.host, &warm).status, 200);
    assert_eq!(
        get(edge.addr, &wp.host, &warm).cache_status(),
        "peakguard; hit"
    );
    let cart = open_cart(&edge, &wp, &run);

    // Eight anonymous visitors on pages not in the cache, each taking the origin 600 ms.
    let anonymous: Vec<_> = (0..8)
        .map(|i| {
            spawn_get(
                &edge,
                &wp.host,
                format!("/?pg_sleep=600&pgrun={run}&anon={i}"),
                vec![],
            )
        })
        .collect();
    wait_for(&edge, "2 at the origin, 6 waiting", |a| {
        a["in_flight"] == 2 && a["waiting"]["anonymous"] == 6
    });
    // A buyer (whose cart the shop opened through the edge) arrives last and goes in next.
    let checkout = spawn_get(
        &edge,
        &wp.host,
        format!("/checkout/?pg_sleep=50&pgrun={run}"),
        vec![("Cookie", cart)],
    );
    wait_for(&edge, "the buyer waits in the checkout lane", |a| {
        a["waiting"]["checkout"] == 1
    });
    // A hit is served while the queue is full.
    let hit = get(edge.addr, &wp.host, &warm);
    assert_eq!(hit.status, 200);
    assert_eq!(hit.cache_status(), "peakguard; hit", "hits never wait");
    let a = admission(&edge);
    assert!(
        a["waiting"]["anonymous"].as_u64().unwrap_or(0) >= 5,
        "the hit came back while the origin was still full: {a}"
    );

    let (r, checkout_done) = checkout.join().expect("checkout");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("/checkout/ with"),
        "the real checkout page"
    );
    let mut anon_done = Vec::new();
    for t in anonymous {
        let (r, done) = t.join().expect("anonymous");
        assert_eq!(r.status, 200);
        anon_done.push(done);
    }
    let before_buyer = anon_done.iter().filter(|d| **d < checkout_done).count();
    assert!(
        before_buyer <= 3,
        "the buyer went in at the first free slot, ahead of 6 earlier visitors ({before_buyer} of them finished first)"
    );

    let intervals = origin_intervals(&wp, &format!("pgrun={run}"));
    assert_eq!(intervals.len(), 9, "every request reached the origin once");
    assert_eq!(
        most_at_once(&intervals),
        2,
        "the origin worked on at most 2 requests at once"
    );
    let a = admission(&edge);
    assert_eq!(a["peak_in_flight"], 2);
    assert_eq!(a["in_flight"], 0, "every slot was given back");
    let metrics = edge.admin_get("/metrics").text();
    assert!(
        metrics.contains(
            "peakguard_admission_total{site=\"wp\",lane=\"checkout\",result=\"after_wait\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("peakguard_guard_verdicts_total{guard=\"admission\",verdict=\"wait\"}")
    );
    let log = std::fs::read_to_string(edge.dir.join("access.log")).expect("access log");
    assert!(
        log.lines().any(|l| l.contains("/checkout/")
            && l.contains("admission: queued in lane checkout; admission: admitted after")),
        "the access log says the buyer waited and why: {log}"
    );
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn a_request_that_waits_too_long_gets_the_stale_copy_else_the_busy_page() {
    let wp = wp();
    let edge = Edge::start(
        "admission-timeout",
        &site(
            &wp,
            "default_ttl = \"1s\"\nstale_while_revalidate = \"0s\"\n[site.shield.admission]\nlimit = 1\nadaptive = false\nqueue_timeout = \"1s\"\nretry_after = \"7s\"",
        ),
    );
    let run = run_id();
    let page = format!("/e2e-post-9/?pgstale={run}");
    assert_eq!(get(edge.addr, &wp.host, &page).status, 200);
    // Let the stored copy go stale (its TTL is one second).
    std::thread::sleep(Duration::from_millis(1500));
    let origin_errors_before = metric(&edge, "peakguard_origin_errors_total");

    // A shopper holds the only origin slot for 4 s.
    let slow = spawn_get(
        &edge,
        &wp.host,
        format!("/cart/?pg_sleep=4000&pgrun={run}"),
        vec![],
    );
    wait_for(&edge, "the slot is taken", |a| a["in_flight"] == 1);

    let r = get(edge.addr, &wp.host, &page);
    assert_eq!(r.status, 200, "the stale copy, not an error");
    assert_eq!(
        r.cache_status(),
        "peakguard; hit; fwd=stale; detail=\"origin-busy\""
    );
    assert!(r.text().contains("E2E post 9"));

    let unseen = format!("/e2e-post-11/?pgunseen={run}");
    let r = get(edge.addr, &wp.host, &unseen);
    assert_eq!(r.status, 503, "no stale copy: the busy page");
    assert_eq!(r.header("retry-after"), Some("7"));
    assert!(r.text().contains("One moment, please"));
    assert!(r.text().contains(r#"http-equiv="refresh" content="7""#));
    assert_eq!(r.cache_status(), "peakguard; detail=\"origin-busy\"");

    let (r, _) = slow.join().expect("slow");
    assert_eq!(r.status, 200, "the shopper who held the slot was served");
    assert_eq!(
        origin_hits(&wp, &unseen),
        0,
        "a refused request never reaches the origin"
    );
    let a = admission(&edge);
    assert_eq!(a["timed_out"], 2);
    assert_eq!(a["in_flight"], 0);
    assert_eq!(
        metric(&edge, "peakguard_origin_errors_total"),
        origin_errors_before,
        "a refusal is not an origin error"
    );
    let log = std::fs::read_to_string(edge.dir.join("access.log")).expect("access log");
    assert!(
        log.lines()
            .any(|l| l.contains("pgunseen") && l.contains("admission: timed-out")),
        "{log}"
    );
}

fn metric(edge: &Edge, name: &str) -> u64 {
    edge.admin_get("/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const TEST_COOKIE: (&str, &str) = ("Cookie", "wordpress_test_cookie=WP%20Cookie%20check");

/// A login through the edge from `ip` (sent as a trusted proxy's `X-Forwarded-For`).
fn login_from(edge: &Edge, wp: &Wp, ip: &str, password: &str) -> Response {
    let body = format!(
        "log=admin&pwd={password}&wp-submit=Log+In&redirect_to=%2Fwp-admin%2F&testcookie=1"
    );
    request(
        edge.addr,
        "POST",
        &wp.host,
        "/wp-login.php",
        &[FORM, TEST_COOKIE, ("X-Forwarded-For", ip)],
        body.as_bytes(),
    )
}

fn logged_in(r: &Response) -> bool {
    r.status == 302
        && r.header_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("wordpress_logged_in_"))
}

/// POSTs of `path` the origin's nginx logged.
/// POSTs nginx logged for `path` (nginx logs after answering: counted once the count is
/// stable, as `origin_hits`).
fn origin_posts(wp: &Wp, path: &str) -> usize {
    origin_requests(wp, "POST", path)
}

/// An edge that trusts loopback's `X-Forwarded-For`, so a test can speak for many clients.
fn edge_behind_proxy(name: &str, wp: &Wp, site_extra: &str) -> Edge {
    Edge::start(
        name,
        &format!(
            "trusted_proxies = [\"127.0.0.1/32\"]\n#END-SERVER\n{}",
            site(wp, site_extra)
        ),
    )
}

fn retry_after(r: &Response) -> u64 {
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn failed_logins_lock_an_address_out_while_the_right_password_from_elsewhere_works() {
    let wp = wp();
    let edge = edge_behind_proxy(
        "login",
        &wp,
        "[site.shield.login]\nmax_failures = 3\nlockout = \"1m\"\nusername_failures = 4",
    );
    let posts_before = origin_posts(&wp, "/wp-login.php");
    for i in 1..=3 {
        let r = login_from(&edge, &wp, "203.0.113.50", "wrong-password");
        assert_eq!(
            r.status, 200,
            "WordPress answers a failed login with its form"
        );
        assert!(
            r.text().contains("login_error"),
            "attempt {i}: {}",
            r.text()
        );
    }
    let r = login_from(&edge, &wp, "203.0.113.50", "wrong-password");
    assert_eq!(r.status, 429, "locked out after 3 failures");
    assert!((1..=60).contains(&retry_after(&r)));
    assert!(r.text().contains("Too many failed logins"));
    let r = login_from(&edge, &wp, "203.0.113.50", "e2e-admin-pass");
    assert_eq!(r.status, 429, "a locked-out address cannot log in at all");
    assert_eq!(
        origin_posts(&wp, "/wp-login.php") - posts_before,
        3,
        "the locked-out attempts never reached WordPress"
    );
    let r = login_from(&edge, &wp, "203.0.113.60", "e2e-admin-pass");
    assert!(
        logged_in(&r),
        "the right password from another address works: {}",
        r.status
    );

    // One more failure from a third address: "admin" has now failed 4 times (the
    // username's limit). An address that failed may no longer try it; a clean one may.
    let r = login_from(&edge, &wp, "203.0.113.70", "wrong-password");
    assert_eq!(r.status, 200);
    let r = login_from(&edge, &wp, "203.0.113.70", "e2e-admin-pass");
    assert_eq!(
        r.status, 429,
        "an address that failed cannot try an attacked username"
    );
    let r = login_from(&edge, &wp, "203.0.113.80", "e2e-admin-pass");
    assert!(
        logged_in(&r),
        "the real user from a clean address still gets in"
    );

    let log = std::fs::read_to_string(edge.dir.join("access.log")).expect("access log");
    assert!(
        log.contains("login: failed login 3 of 3: locked out for 60s"),
        "{log}"
    );
    let metrics = edge.admin_get("/metrics").text();
    assert!(
        metrics.contains("peakguard_guard_verdicts_total{guard=\"login\",verdict=\"respond\"} 3"),
        "{metrics}"
    );
    // The lockout is journaled, as the shield's own doing.
    let journal = edge.dir.join("journal.jsonl");
    let mut lockouts = Vec::new();
    wait_until(
        "the lockout in the journal",
        Duration::from_secs(10),
        || {
            lockouts = peakguard_journal::read(&journal)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.who == "shield" && e.what == "login lockout")
                .collect();
            !lockouts.is_empty()
        },
    );
    assert!(lockouts[0].detail.contains("203.0.113.50"), "{lockouts:?}");
    assert_eq!(lockouts[0].result, "locked 60s");

    // XML-RPC: WordPress answers a wrong password with fault 403 in a 200; it counts too.
    let call = |ip: &str| {
        let body = "<?xml version=\"1.0\"?><methodCall><methodName>wp.getUsersBlogs</methodName><params><param><value><string>editor</string></value></param><param><value><string>wrong</string></value></param></params></methodCall>";
        request(
            edge.addr,
            "POST",
            &wp.host,
            "/xmlrpc.php",
            &[("Content-Type", "text/xml"), ("X-Forwarded-For", ip)],
            body.as_bytes(),
        )
    };
    for _ in 0..3 {
        let r = call("203.0.113.77");
        assert_eq!(r.status, 200);
        assert!(r.text().contains("<int>403</int>"), "{}", r.text());
    }
    let deadline = Instant::now() + DEADLINE;
    loop {
        // The count is made after the response went out: wait until it has landed.
        let r = call("203.0.113.77");
        if r.status == 429 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "XML-RPC failures never locked the address out"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn author_enumeration_and_xmlrpc_multicall_are_refused_before_wordpress() {
    let wp = wp();
    let edge = Edge::start("enumeration", &site(&wp, ""));
    let run = run_id();
    for path in [
        format!("/?author=1&pgrun={run}"),
        format!("/wp-json/wp/v2/users?pgrun={run}"),
        format!("/?rest_route=/wp/v2/users&pgrun={run}"),
    ] {
        let r = get(edge.addr, &wp.host, &path);
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(origin_hits(&wp, &path), 0, "{path} never reached WordPress");
    }
    // A logged-in user may list users (the editor's author picker does).
    let r = login_from(&edge, &wp, "203.0.113.99", "e2e-admin-pass");
    assert!(logged_in(&r));
    let cookies = r.set_cookies();
    let r = request(
        edge.addr,
        "GET",
        &wp.host,
        &fresh("/wp-json/wp/v2/users"),
        &[("Cookie", &cookies.join("; "))],
        b"",
    );
    assert_ne!(r.status, 403);

    let call = |method: &str| {
        format!(
            "<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params></params></methodCall>"
        )
    };
    let posts_before = origin_posts(&wp, "/xmlrpc.php");
    let r = request(
        edge.addr,
        "POST",
        &wp.host,
        "/xmlrpc.php",
        &[("Content-Type", "text/xml")],
        call("system.multicall").as_bytes(),
    );
    assert_eq!(r.status, 403, "system.multicall is refused");
    let r = request(
        edge.addr,
        "POST",
        &wp.host,
        "/xmlrpc.php",
        &[("Content-Type", "text/xml")],
        call("demo.sayHello").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("Hello!"),
        "WordPress got the whole body: {}",
        r.text()
    );
    assert_eq!(origin_posts(&wp, "/xmlrpc.php") - posts_before, 1);
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn a_client_over_its_search_budget_gets_429_and_others_do_not() {
    let wp = wp();
    let edge = edge_behind_proxy(
        "limits",
        &wp,
        "[site.shield.limits]\nenabled = true\nsearch = \"3/1m\"\n[site.shield.deny]\nagents = [\"sqlmap\"]",
    );
    let run = run_id();
    let search = |ip: &str, n: usize| {
        request(
            edge.addr,
            "GET",
            &wp.host,
            &format!("/?s=shoes{n}&pgrun={run}"),
            &[("X-Forwarded-For", ip)],
            b"",
        )
    };
    for n in 0..3 {
        assert_eq!(search("203.0.113.90", n).status, 200);
    }
    let r = search("203.0.113.90", 3);
    assert_eq!(r.status, 429);
    assert!((1..=60).contains(&retry_after(&r)));
    assert!(r.text().contains("Too many requests"));
    assert_eq!(
        search("203.0.113.91", 4).status,
        200,
        "another client has its own budget"
    );
    assert_eq!(
        origin_hits(&wp, &format!("/?s=shoes3&pgrun={run}")),
        0,
        "the refused search never reached WordPress"
    );
    // Pages are another budget.
    let r = request(
        edge.addr,
        "GET",
        &wp.host,
        "/",
        &[("X-Forwarded-For", "203.0.113.90")],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = request(
        edge.addr,
        "GET",
        &wp.host,
        "/",
        &[("User-Agent", "sqlmap/1.7.2#stable")],
        b"",
    );
    assert_eq!(r.status, 403, "the deny list refuses the tool");
    // A refused request's unread body is never read as a next request: the edge closes.
    let hidden = format!(
        "GET /?s=smuggled&pgrun={run} HTTP/1.1\r\nHost: {}\r\n\r\n",
        wp.host
    );
    let raw = format!(
        "POST /?pgrun={run} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sqlmap/1.7\r\nContent-Length: {}\r\n\r\n{hidden}",
        wp.host,
        hidden.len()
    );
    let answers = exchange(edge.addr, raw.as_bytes(), Duration::from_secs(5)).expect("answer");
    assert_eq!(
        answers.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![403],
        "one answer, and the body was not a request"
    );
    assert_eq!(origin_hits(&wp, &format!("/?s=smuggled&pgrun={run}")), 0);
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn forged_session_cookies_wait_behind_everyone_while_a_real_session_goes_first_even_after_a_restart()
 {
    let wp = wp();
    let home = Restartable::new(
        "forged",
        site(
            &wp,
            "[site.shield.admission]\nlimit = 2\nadaptive = false\nqueue_timeout = \"60s\"",
        ),
    );
    let mut edge = home.start();
    let run = run_id();
    // A real login through the edge: WordPress issues its logged-in cookie.
    let r = login_from(&edge, &wp, "203.0.113.99", "e2e-admin-pass");
    assert!(logged_in(&r));
    let real = r.set_cookies().join("; ");
    let forged = "wordpress_logged_in_0123456789abcdef=admin%7C1999999999%7Cforgedforgedforged%7Cx";

    // Eight forged "logged-in" visitors on slow pages (a logged-in cookie bypasses the cache).
    let flood: Vec<_> = (0..8)
        .map(|i| {
            spawn_get(
                &edge,
                &wp.host,
                format!("/?pg_sleep=500&pgrun={run}&forged={i}"),
                vec![("Cookie", forged.to_string())],
            )
        })
        .collect();
    wait_for(&edge, "2 at the origin, 6 forged in the last lane", |a| {
        a["in_flight"] == 2 && a["waiting"]["bot"] == 6
    });
    // An anonymous visitor and the real session arrive after them and go first.
    let anonymous = spawn_get(
        &edge,
        &wp.host,
        format!("/?pg_sleep=50&pgrun={run}&anon=1"),
        vec![],
    );
    let real_user = spawn_get(
        &edge,
        &wp.host,
        format!("/?pg_sleep=50&pgrun={run}&real=1"),
        vec![("Cookie", real.clone())],
    );
    let (r, real_done) = real_user.join().expect("real");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("wpadminbar"),
        "the real session is logged in"
    );
    let (r, anon_done) = anonymous.join().expect("anonymous");
    assert_eq!(r.status, 200);
    let forged_done: Vec<Instant> = flood
        .into_iter()
        .map(|t| {
            let (r, done) = t.join().expect("forged");
            assert_eq!(
                r.status, 200,
                "a forged cookie still reaches the origin, last"
            );
            done
        })
        .collect();
    for (who, done) in [
        ("the real session", real_done),
        ("the anonymous visitor", anon_done),
    ] {
        let before = forged_done.iter().filter(|d| **d < done).count();
        assert!(
            before <= 3,
            "{who} went ahead of the queued forged requests ({before} finished first)"
        );
    }
    assert_eq!(
        most_at_once(&origin_intervals(&wp, &format!("pgrun={run}"))),
        2,
        "forged cookies never took the origin past its limit"
    );
    let log = std::fs::read_to_string(home.dir.join("access.log")).expect("access log");
    assert!(
        log.contains("queued in lane bot (a session cookie the origin did not issue)"),
        "{log}"
    );

    // After a restart the edge still knows the session it saw issued.
    edge.stop();
    let edge = home.start();
    let holders: Vec<_> = (0..2)
        .map(|i| {
            spawn_get(
                &edge,
                &wp.host,
                format!("/?pg_sleep=1500&pgrun={run}&hold={i}"),
                vec![],
            )
        })
        .collect();
    wait_for(&edge, "both slots taken", |a| a["in_flight"] == 2);
    let r = request(
        edge.addr,
        "GET",
        &wp.host,
        &format!("/?pgrun={run}&after-restart=1"),
        &[("Cookie", &real)],
        b"",
    );
    assert_eq!(r.status, 200);
    for h in holders {
        assert_eq!(h.join().expect("holder").0.status, 200);
    }
    // The access log line is written after the response went out.
    let log_path = home.dir.join("access.log");
    wait_until(
        "the access log line of the request after the restart",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log_path)
                .is_ok_and(|log| log.lines().any(|l| l.contains("after-restart")))
        },
    );
    let log = std::fs::read_to_string(&log_path).expect("access log");
    assert!(
        log.lines().any(
            |l| l.contains("after-restart") && l.contains("admission: queued in lane session;")
        ),
        "the restored session waited in the session lane: {log}"
    );
}

fn position(r: &Response) -> Option<u64> {
    r.text()
        .split("id=\"position\">")
        .nth(1)?
        .split('<')
        .next()?
        .parse()
        .ok()
}

fn cookie_named(r: &Response, name: &str) -> Option<String> {
    r.set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")) && c.len() > name.len() + 1)
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn the_waiting_room_keeps_places_in_order_lets_buyers_and_hits_through_and_survives_a_restart() {
    let wp = wp();
    let home = Restartable::new(
        "room",
        site(
            &wp,
            "[site.shield.waiting_room]\nenabled = true\nactive_users = 2\nrefresh = \"2s\"\nno_show = \"5s\"",
        ),
    );
    let mut edge = home.start();
    let run = run_id();
    let page = |n: &str| format!("/e2e-post-3/?pgroom={run}&who={n}");
    // The first visitor opens a cart (a miss: the room lets them in, the shop issues the
    // cart); the second stores a page in the cache. The room (2 active visitors) is full.
    let cart = open_cart(&edge, &wp, &run);
    let warm = format!("/e2e-post-4/?pgroom={run}");
    let r = get(edge.addr, &wp.host, &warm);
    assert_eq!(r.status, 200);
    assert!(cookie_named(&r, "pg_pass").is_some(), "let in with a pass");

    // Newcomers line up, in order, and a refresh keeps the place.
    let b = get(edge.addr, &wp.host, &page("b"));
    assert_eq!(b.status, 503, "{}", b.text());
    assert!(b.text().contains("You are in line"));
    assert_eq!(position(&b), Some(1));
    assert_eq!(b.header("retry-after"), Some("2"));
    let b_ticket = cookie_named(&b, "pg_ticket").expect("a place in line");
    let c = get(edge.addr, &wp.host, &page("c"));
    assert_eq!(position(&c), Some(2));
    let c_ticket = cookie_named(&c, "pg_ticket").expect("c's place");
    for _ in 0..2 {
        let again = request(
            edge.addr,
            "GET",
            &wp.host,
            &page("b"),
            &[("Cookie", &b_ticket)],
            b"",
        );
        assert_eq!(position(&again), Some(1), "a refresh keeps the place");
        let again = request(
            edge.addr,
            "GET",
            &wp.host,
            &page("c"),
            &[("Cookie", &c_ticket)],
            b"",
        );
        assert_eq!(position(&again), Some(2));
    }
    // Apps get JSON.
    let j = request(
        edge.addr,
        "GET",
        &wp.host,
        &page("j"),
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(j.status, 503);
    let v: serde_json::Value = serde_json::from_slice(&j.body).expect("json");
    assert_eq!(
        (v["in_queue"].clone(), v["position"].clone()),
        (true.into(), 3.into())
    );
    // A tampered place buys nothing: it is a newcomer at the end of the line.
    let tampered = b_ticket.replacen("q.1.", "q.0.", 1);
    let t = request(
        edge.addr,
        "GET",
        &wp.host,
        &page("t"),
        &[("Cookie", &tampered)],
        b"",
    );
    assert_eq!(position(&t), Some(4));
    // The stored page is served to anyone while the room is full; the buyer goes on.
    let hit = get(edge.addr, &wp.host, &warm);
    assert_eq!((hit.status, hit.cache_status()), (200, "peakguard; hit"));
    assert!(
        hit.set_cookies().is_empty(),
        "the stored page carries nobody's pass"
    );
    let buyer = request(
        edge.addr,
        "GET",
        &wp.host,
        &page("shopper"),
        &[("Cookie", &cart)],
        b"",
    );
    assert_eq!(buyer.status, 200, "a buyer never waits");
    assert_eq!(
        origin_hits(&wp, &page("b")),
        0,
        "nobody in line reached WordPress"
    );

    // A restart keeps the line (the store and the key survive).
    edge.stop();
    let edge = home.start();
    let again = request(
        edge.addr,
        "GET",
        &wp.host,
        &page("b"),
        &[("Cookie", &b_ticket)],
        b"",
    );
    assert_eq!(position(&again), Some(1), "still first after a restart");

    // The switches.
    let out = edge.cli(&["waiting-room", "status"]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains("waiting room wp: normal;") && status.contains("4 in line"),
        "{status}"
    );
    let out = edge.cli(&["waiting-room", "open-at", "2099-01-01T00:00:00Z"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pre = get(edge.addr, &wp.host, &page("early"));
    assert!(
        pre.text().contains("random draw"),
        "a pre-queue before the opening"
    );
    assert!(
        edge.cli(&["waiting-room", "cancel-opening"])
            .status
            .success()
    );
    assert!(edge.cli(&["waiting-room", "suspend"]).status.success());
    let r = request(
        edge.addr,
        "GET",
        &wp.host,
        &page("b"),
        &[("Cookie", &b_ticket)],
        b"",
    );
    assert_eq!(r.status, 200, "suspended: everyone goes through");
    assert!(edge.cli(&["waiting-room", "rotate-key"]).status.success());
    assert!(edge.cli(&["waiting-room", "normal"]).status.success());
    let again = request(
        edge.addr,
        "GET",
        &wp.host,
        &page("c"),
        &[("Cookie", &c_ticket)],
        b"",
    );
    assert!(
        position(&again).is_some() && cookie_named(&again, "pg_ticket").is_none(),
        "a place signed before the key rotation still counts (no new ticket): {}",
        again.text()
    );
    let metrics = edge.admin_get("/metrics").text();
    assert!(
        metrics.contains("peakguard_waiting_room_waiting{site=\"wp\"}"),
        "{metrics}"
    );
    let out = edge.cli(&["shield", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("waiting-room → admission"), "{text}");
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn oversized_and_slow_clients_are_refused_before_wordpress_waits_on_them() {
    let wp = wp();
    let edge = Edge::start(
        "clients",
        &format!(
            "client_timeout = \"1s\"\nmax_request_headers = 50\n#END-SERVER\n{}",
            site(&wp, "[site.shield.body]\nmax_size = \"4KiB\"")
        ),
    );
    let run = run_id();
    // Too many header fields, or one too large: 431.
    let many: Vec<(String, String)> = (0..60)
        .map(|i| (format!("X-Pad-{i}"), "x".into()))
        .collect();
    let h: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        request(edge.addr, "GET", &wp.host, "/", &h, b"").status,
        431
    );
    let big = "a".repeat(70 * 1024);
    let r = request(edge.addr, "GET", &wp.host, "/", &[("Cookie", &big)], b"");
    assert_eq!(r.status, 431);

    // A body declared over the limit: 413 at once, before WordPress sees it.
    let path = format!("/wp-comments-post.php?pgrun={run}");
    let posts_before = origin_posts(&wp, "/wp-comments-post.php");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 20000000\r\n\r\ncomment=x",
        wp.host
    );
    let r = exchange(edge.addr, head.as_bytes(), Duration::from_secs(10)).expect("answer");
    assert_eq!(r.first().map(|r| r.status), Some(413));
    assert_eq!(
        origin_posts(&wp, "/wp-comments-post.php") - posts_before,
        0,
        "WordPress never saw it"
    );
    // One that streams past it without a length: 413 too; WordPress got its start, cut
    // off (nginx answers it 400 and PHP never runs).
    let mut chunked = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        wp.host
    );
    for _ in 0..8 {
        chunked.push_str(&format!("400\r\n{}\r\n", "c".repeat(1024)));
    }
    chunked.push_str("0\r\n\r\n");
    let r = exchange(edge.addr, chunked.as_bytes(), Duration::from_secs(10)).expect("answer");
    assert_eq!(r.first().map(|r| r.status), Some(413));
    let log = std::fs::read_to_string(&wp.access_log).unwrap_or_default();
    assert!(
        log.lines()
            .filter(|l| l.contains(&format!("\"POST {path} ")))
            .all(|l| !l.contains("\" 200 ") && !l.contains("\" 302 ")),
        "the cut-off body never made a comment"
    );

    // A client that stops sending its body is let go after client_timeout, not held.
    let started = Instant::now();
    let slow = format!(
        "POST /wp-comments-post.php HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\nonly-a-little",
        wp.host
    );
    let _ = exchange(edge.addr, slow.as_bytes(), Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the slow body was dropped after about 1 s, not held: {:?}",
        started.elapsed()
    );
}

/// One request on a kept-alive connection; the status of its answer.
fn get_on(s: &mut std::net::TcpStream, wp: &Wp, path: &str, client: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let raw = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nX-Forwarded-For: {client}\r\n\r\n",
        wp.host
    );
    s.write_all(raw.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if let Some((r, _)) = parse_response(&buf, false) {
            return Some(r.status);
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    parse_response(&buf, false).map(|(r, _)| r.status)
}

fn connect(edge: &Edge) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(edge.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Whether the edge closes `s` without answering.
fn closed_without_answer(s: &mut std::net::TcpStream, wp: &Wp, path: &str) -> bool {
    get_on(s, wp, path, "-").is_none()
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn a_client_may_hold_only_so_many_open_connections_even_silent_ones() {
    let wp = wp();
    let edge = Edge::start(
        "connections",
        // Loopback is allow-listed by default: the test client is on it.
        &site(
            &wp,
            "[site.shield.limits]\nenabled = true\nconnections = 2\nallow = []",
        ),
    );
    let page = format!("/e2e-post-5/?pgconn={}", run_id());
    // The kernel's count of open connections comes in about once a second; until the next,
    // connections accepted since the last (the harness's readiness check too) count as open.
    let counts = || {
        let v: serde_json::Value =
            serde_json::from_slice(&edge.admin_get("/shield").body).expect("json");
        v["connections"]["kernel_counts"].as_u64().unwrap_or(0)
    };
    let next_count = || {
        let since = counts();
        let deadline = Instant::now() + DEADLINE;
        while counts() < since + 2 {
            assert!(Instant::now() < deadline, "the kernel is never counted");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    next_count();
    // Two connections that never send a byte (a slow-loris client) fill the client's share,
    // and the kernel's count sees them.
    let (mut first, mut second) = (connect(&edge), connect(&edge));
    next_count();
    let mut third = connect(&edge);
    assert!(
        closed_without_answer(&mut third, &wp, &page),
        "a third connection is closed unanswered: {}",
        edge.admin_get("/shield").text()
    );
    assert_eq!(
        get_on(&mut first, &wp, &page, "-"),
        Some(200),
        "the connections it holds go on"
    );
    assert_eq!(get_on(&mut second, &wp, &page, "-"), Some(200));
    let metrics = edge.admin_get("/metrics").text();
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("peakguard_connections_refused_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(refused >= 1, "counted in /metrics: {refused}");
    // Once they close, the kernel's next count frees their slots.
    drop(first);
    drop(second);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut again = connect(&edge);
        if get_on(&mut again, &wp, &page, "-") == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "closed connections never freed their slots"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs a real WordPress: scripts/test.sh"]
fn scanner_probes_are_refused_before_wordpress_and_real_pages_are_not() {
    let wp = wp();
    let edge = Edge::start("scanners", &site(&wp, ""));
    let run = run_id();
    let probes = [
        "/.env",
        "/.git/config",
        "/wp-config.php.bak",
        "/wp-config.php~",
        "/phpinfo.php",
        "/wp-content/plugins/x/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
        "/backup.sql",
        "/wp-content/debug.log",
        "/www.tar.gz",
        "/wp-content/ai1wm-backups/site.wpress",
    ];
    for probe in probes {
        let path = format!("{probe}?pgrun={run}");
        let r = get(edge.addr, &wp.host, &path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.text(), "Not found\n", "{path}");
        assert_eq!(origin_hits(&wp, &path), 0, "{path} never reached WordPress");
    }
    assert_eq!(
        metric(
            &edge,
            "peakguard_guard_verdicts_total{guard=\"scanners\",verdict=\"respond\"}"
        ),
        probes.len() as u64
    );
    let log_path = edge.dir.join("access.log");
    wait_until(
        "the access log names the guard",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log_path)
                .is_ok_and(|l| l.contains("scanners: scanner probe (hidden file)"))
        },
    );
    // Real pages, files and WordPress's own endpoints go on to WordPress.
    for page in [
        "/",
        "/wp-login.php",
        "/wp-includes/js/jquery/jquery.min.js",
        "/.well-known/security.txt",
    ] {
        let path = format!("{page}?pgrun={run}");
        let r = get(edge.addr, &wp.host, &path);
        assert_ne!(r.text(), "Not found\n", "{path}");
        assert_eq!(origin_hits(&wp, &path), 1, "{path} reached WordPress");
    }
    // Turned off for the site, the same probe reaches WordPress.
    let off = Edge::start(
        "scanners-off",
        &site(&wp, "[site.shield.scanners]\nenabled = false\n"),
    );
    let path = format!("/.env?pgrun={run}-off");
    get(off.addr, &wp.host, &path);
    assert_eq!(origin_hits(&wp, &path), 1, "{path} reached WordPress");
    // A mistyped key is named with its own line when the file is checked.
    let dir = fresh_dir("scanners-config");
    let file = dir.join("peakguard.toml");
    std::fs::write(
        &file,
        "[[site]]\norigin = \"http://127.0.0.1:1\"\n[site.shield.scanners]\nalow = [\"/x\"]\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peakguard"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("run peakguard");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("line 4") && err.contains("site[0].shield.scanners.alow"),
        "{err}"
    );
}
