use super::*;
use crate::store::MemoryStore;
use crate::testing::Req;

fn bucket(path: &str) -> Option<Bucket> {
    bucket_of(&Req::get(path).facts())
}

#[test]
fn requests_fall_in_their_bucket_and_static_files_in_none() {
    assert_eq!(bucket("/"), Some(Bucket::Pages));
    assert_eq!(bucket("/shop/shoes/"), Some(Bucket::Pages));
    assert_eq!(bucket("/wp-login.php"), Some(Bucket::Login));
    assert_eq!(
        bucket("/wp-login.php?action=lostpassword"),
        Some(Bucket::Login)
    );
    assert_eq!(bucket("/xmlrpc.php"), Some(Bucket::Xmlrpc));
    assert_eq!(bucket("/wp-admin/admin-ajax.php"), Some(Bucket::Ajax));
    assert_eq!(bucket("/wp-json/wp/v2/posts"), Some(Bucket::Rest));
    assert_eq!(bucket("/?rest_route=/wp/v2/posts"), Some(Bucket::Rest));
    assert_eq!(bucket("/?s=shoes"), Some(Bucket::Search));
    assert_eq!(
        bucket("/?s="),
        Some(Bucket::Pages),
        "an empty search is a page"
    );
    assert_eq!(bucket("/wp-content/themes/x/style.css?ver=6.1"), None);
    assert_eq!(bucket("/wp-content/uploads/2026/11/photo.JPG"), None);
}

#[test]
fn an_ipv6_client_is_its_64() {
    assert_eq!(client_key("203.0.113.5".parse().unwrap()), "203.0.113.5");
    assert_eq!(
        client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
        client_key("2001:db8:1:2:bbbb::9".parse().unwrap())
    );
    assert_eq!(
        client_key("::ffff:198.51.100.4".parse().unwrap()),
        "198.51.100.4"
    );
}

fn guard(config: &str, store: Arc<dyn Store>) -> LimitsGuard {
    let c: LimitsConfig = toml::from_str(config).expect("limits config");
    LimitsGuard::from_config("shop", &c, store).expect("limits on")
}

async fn ask(g: &LimitsGuard, req: &Req) -> Verdict {
    match g.on_request(&req.facts()) {
        Verdict::Ask(answer) => answer.await,
        other => other,
    }
}

fn status(v: &Verdict) -> Option<u16> {
    match v {
        Verdict::Respond { response, .. } => Some(response.status),
        _ => None,
    }
}

#[tokio::test]
async fn over_budget_is_429_with_retry_after_and_stays_limited_per_client() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1000));
    let g = guard("enabled = true\nlogin = \"3/1m\"", store.clone());
    let login = Req::get("/wp-login.php");
    for i in 0..3 {
        assert!(
            matches!(ask(&g, &login).await, Verdict::Pass),
            "request {i}"
        );
    }
    let v = ask(&g, &login).await;
    assert_eq!(status(&v), Some(429));
    let Verdict::Respond { reason, response } = v else {
        unreachable!()
    };
    assert_eq!(reason, "over the login budget (3/60s)");
    let retry: u64 = response
        .headers
        .iter()
        .find(|(k, _)| *k == "retry-after")
        .and_then(|(_, v)| v.parse().ok())
        .expect("retry-after");
    assert!((1..=60).contains(&retry), "{retry}");
    // Still limited, whatever it sends next in that bucket.
    assert_eq!(status(&ask(&g, &login).await), Some(429));
    // Its pages have their own budget; another client has its own.
    assert!(matches!(ask(&g, &Req::get("/")).await, Verdict::Pass));
    let other = Req::get("/wp-login.php").sent_by("198.51.100.7");
    assert!(matches!(ask(&g, &other).await, Verdict::Pass));
    // Loopback is allowed by default, and static files count against nothing.
    let local = Req::get("/wp-login.php").sent_by("127.0.0.1");
    for _ in 0..10 {
        assert!(matches!(g.on_request(&local.facts()), Verdict::Pass));
    }
    assert!(matches!(
        g.on_request(&Req::get("/logo.png").facts()),
        Verdict::Pass
    ));
}

#[tokio::test]
async fn dry_run_counts_and_limits_nobody() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1000));
    let g = guard("enabled = true\ndry_run = true\nsearch = \"1/1m\"", store);
    let search = Req::get("/?s=shoes");
    assert!(matches!(ask(&g, &search).await, Verdict::Pass));
    match ask(&g, &search).await {
        Verdict::DryRun { reason } => {
            assert_eq!(reason, "answer 429, over the search budget (1/60s)")
        }
        _ => panic!("dry run"),
    }
}

#[tokio::test]
async fn a_full_store_lets_requests_through() {
    let store = Arc::new(MemoryStore::new(1));
    store
        .hold("someone-else", 1, Duration::from_secs(60))
        .await
        .expect("hold");
    let g = guard("enabled = true\npages = \"1/1m\"", store);
    for _ in 0..3 {
        assert!(matches!(ask(&g, &Req::get("/")).await, Verdict::Pass));
    }
}

#[test]
fn limits_are_off_unless_enabled() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(10));
    assert!(LimitsGuard::from_config("s", &LimitsConfig::default(), store).is_none());
}

/// nginx merges slashes and decodes escapes before PHP runs the script: a login sent to
/// `//wp-login.php` or `/wp-login%2ephp` is still a login, for the budgets and the login
/// guard alike.
#[test]
fn a_path_spelled_otherwise_falls_in_the_same_bucket() {
    for path in [
        "//wp-login.php",
        "/wp-login%2ephp",
        "/./wp-login.php",
        "/x/../wp-login.php",
        "/WP-LOGIN.PHP",
    ] {
        assert_eq!(bucket(path), Some(Bucket::Login), "{path}");
    }
    assert_eq!(bucket("//xmlrpc.php"), Some(Bucket::Xmlrpc));
    let login = Req::post("//wp-login.php", "log=admin&pwd=x");
    assert!(crate::login::is_password_attempt(&login.facts()));
}
