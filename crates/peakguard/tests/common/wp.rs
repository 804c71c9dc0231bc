//! The real WordPress of `scripts/wp-env.sh` as the end-to-end tests see it: its address,
//! its nginx access log (what reached the origin), a site section for the edge, fresh URLs.

use super::{Response, request};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Wp {
    pub origin: String,
    pub origin_addr: SocketAddr,
    pub host: String,
    pub access_log: String,
}

pub fn wp() -> Wp {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run `scripts/wp-env.sh up` and export `scripts/wp-env.sh env` (scripts/test.sh does both)"))
    };
    let origin = var("PG_E2E_ORIGIN");
    let origin_addr = origin
        .trim_start_matches("http://")
        .parse()
        .expect("origin address");
    Wp {
        origin,
        origin_addr,
        host: var("PG_E2E_HOST"),
        access_log: var("PG_E2E_ACCESS_LOG"),
    }
}

pub fn script(args: &[&str]) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/wp-env.sh");
    let out = Command::new("bash")
        .arg(root)
        .args(args)
        .output()
        .expect("run wp-env.sh");
    assert!(
        out.status.success(),
        "wp-env.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Requests nginx logged for `path_prefix`. nginx writes its log line after the response
/// went out, so a client can read the log before the line is there: the count is taken
/// once it has stayed the same for half a second (3 s at most).
pub fn origin_hits(wp: &Wp, path_prefix: &str) -> usize {
    origin_requests(wp, "GET", path_prefix)
}

/// Requests with `method` nginx logged for `path_prefix`, counted as [`origin_hits`] does.
pub fn origin_requests(wp: &Wp, method: &str, path_prefix: &str) -> usize {
    let count = || {
        std::fs::read_to_string(&wp.access_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("\"{method} {path_prefix}")))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = count();
    let mut stable_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = count();
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(500) || Instant::now() > deadline
        {
            return now;
        }
    }
}

pub fn site(wp: &Wp, extra: &str) -> String {
    format!(
        "[[site]]\nname = \"wp\"\nhosts = [\"{}\"]\norigin = \"{}\"\n{extra}\n",
        wp.host, wp.origin
    )
}

/// A value no earlier run used, to mark this run's requests in the origin's log.
pub fn run_id() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string()
}

/// A path nobody has asked for yet in this WordPress (unique per call), for origin counts.
pub fn fresh(path: &str) -> String {
    format!("{path}?pgtest={}", run_id())
}

pub fn wp_hits_total(wp: &Wp) -> usize {
    std::fs::read_to_string(&wp.access_log)
        .map(|l| l.lines().count())
        .unwrap_or(0)
}

/// Logs `user` in at `addr` (the edge, or the origin directly): WordPress's session cookies
/// (`name=value`), the logged-in one among them.
pub fn login_as(addr: SocketAddr, host: &str, user: &str, pass: &str) -> Vec<String> {
    let body =
        format!("log={user}&pwd={pass}&wp-submit=Log+In&redirect_to=%2Fwp-admin%2F&testcookie=1");
    let r = request(
        addr,
        "POST",
        host,
        "/wp-login.php",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", "wordpress_test_cookie=WP%20Cookie%20check"),
        ],
        body.as_bytes(),
    );
    assert_eq!(
        r.status,
        302,
        "login of {user} should redirect; body: {}",
        r.text().chars().take(300).collect::<String>()
    );
    let cookies = r.set_cookies();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("wordpress_logged_in_")),
        "no logged-in cookie: {cookies:?}"
    );
    cookies
}

/// `GET path` with a session's cookies.
pub fn get_as(addr: SocketAddr, host: &str, cookies: &str, path: &str) -> Response {
    request(addr, "GET", host, path, &[("Cookie", cookies)], b"")
}
