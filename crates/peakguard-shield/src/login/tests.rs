use super::*;
use crate::store::MemoryStore;
use crate::testing::Req;
use http::HeaderValue;
use peakguard_config::Seconds;

fn guard(store: Arc<dyn Store>, username_failures: u64) -> LoginGuard {
    let config = LoginConfig {
        max_failures: 3,
        lockout: Seconds::secs(60),
        max_lockout: Seconds::secs(300),
        username_failures,
        ..LoginConfig::default()
    };
    LoginGuard::from_config("shop", &config, store, None).expect("on")
}

async fn answer(v: Verdict) -> Verdict {
    match v {
        Verdict::Ask(a) => a.await,
        other => other,
    }
}

fn login(ip: &str, user: &str) -> Req {
    Req::post(
        "/wp-login.php",
        &format!("log={user}&pwd=x&wp-submit=Log+In"),
    )
    .sent_by(ip)
}

fn failed() -> http::HeaderMap {
    http::HeaderMap::new()
}

fn succeeded() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.append(
        http::header::SET_COOKIE,
        HeaderValue::from_static("wordpress_logged_in_abc=admin%7C123; path=/; HttpOnly"),
    );
    h
}

/// The whole way of one login attempt: request phase, origin phase, the response.
async fn attempt(g: &LoginGuard, req: &Req, ok: bool) -> Verdict {
    for v in [g.on_request(&req.facts()), g.before_origin(&req.facts())] {
        let v = answer(v).await;
        if !matches!(v, Verdict::Pass) {
            return v;
        }
    }
    let headers = if ok { succeeded() } else { failed() };
    let resp = ResponseFacts {
        status: if ok { 302 } else { 200 },
        headers: &headers,
    };
    answer(g.on_response(&req.facts(), &resp)).await
}

fn status(v: &Verdict) -> Option<u16> {
    match v {
        Verdict::Respond { response, .. } => Some(response.status),
        _ => None,
    }
}

fn note(v: &Verdict) -> String {
    match v {
        Verdict::Note { reason, .. } => reason.to_string(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn failures_lock_an_address_out_for_growing_times_and_a_success_resets_the_count() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1000));
    let g = guard(store.clone(), 100);
    let a = login("203.0.113.50", "Admin");
    assert_eq!(note(&attempt(&g, &a, false).await), "failed login 1 of 3");
    assert_eq!(note(&attempt(&g, &a, false).await), "failed login 2 of 3");
    assert_eq!(
        note(&attempt(&g, &a, false).await),
        "failed login 3 of 3: locked out for 60s"
    );
    // Locked: even the right password is refused, before it reaches the origin.
    let v = attempt(&g, &a, true).await;
    assert_eq!(status(&v), Some(429));
    // Another address logs in.
    let b = login("203.0.113.60", "admin");
    assert!(matches!(attempt(&g, &b, true).await, Verdict::Pass));
    // The next lockout of the same address lasts twice as long.
    store
        .remove("login-locked:shop:203.0.113.50")
        .await
        .expect("end the lockout");
    for _ in 0..2 {
        attempt(&g, &a, false).await;
    }
    assert_eq!(
        note(&attempt(&g, &a, false).await),
        "failed login 3 of 3: locked out for 120s"
    );
    // A success clears the failures counted so far.
    let c = login("203.0.113.70", "editor");
    attempt(&g, &c, false).await;
    attempt(&g, &c, false).await;
    assert!(matches!(attempt(&g, &c, true).await, Verdict::Pass));
    assert_eq!(note(&attempt(&g, &c, false).await), "failed login 1 of 3");
}

#[tokio::test]
async fn a_username_under_attack_still_opens_for_an_address_that_never_failed() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1000));
    let g = guard(store, 4);
    // Four failures for "admin" from two addresses (under the per-address limit).
    for ip in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            attempt(&g, &login(ip, "admin"), false).await;
        }
    }
    let from_attacker = attempt(&g, &login("198.51.100.1", "admin"), true).await;
    assert_eq!(status(&from_attacker), Some(429), "an address that failed");
    let Verdict::Respond { reason, .. } = from_attacker else {
        unreachable!()
    };
    assert!(reason.contains("under attack"), "{reason}");
    // The real user, from an address that never failed, gets in.
    assert!(matches!(
        attempt(&g, &login("192.0.2.10", "ADMIN"), true).await,
        Verdict::Pass
    ));
    // Other usernames are not affected.
    assert!(matches!(
        attempt(&g, &login("198.51.100.1", "editor"), true).await,
        Verdict::Pass
    ));
}

#[tokio::test]
async fn enumeration_and_multicall_are_refused() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1000));
    let g = guard(store, 4);
    for path in [
        "/?author=1",
        "/index.php?author=12&x=1",
        "/wp-json/wp/v2/users",
        "/wp-json/wp/v2/users/1",
        "/?rest_route=/wp/v2/users",
        "/?rest_route=%2Fwp%2Fv2%2Fusers%2F",
    ] {
        assert_eq!(
            status(&g.on_request(&Req::get(path).facts())),
            Some(403),
            "{path}"
        );
    }
    for path in [
        "/?author=",
        "/author/admin/",
        "/wp-json/wp/v2/posts",
        "/?s=author=1",
    ] {
        assert!(
            matches!(g.on_request(&Req::get(path).facts()), Verdict::Pass),
            "{path}"
        );
    }
    let logged_in = Req::get("/wp-json/wp/v2/users").header("cookie", "wordpress_logged_in_x=y");
    assert!(matches!(g.on_request(&logged_in.facts()), Verdict::Pass));

    let multicall = Req::post(
        "/xmlrpc.php",
        "<?xml version=\"1.0\"?><methodCall><methodName>system.multicall</methodName></methodCall>",
    );
    assert!(g.wants_body(&multicall.facts()));
    assert_eq!(status(&g.before_origin(&multicall.facts())), Some(403));
    let hello = Req::post(
        "/xmlrpc.php",
        "<?xml version=\"1.0\"?><methodCall><methodName>demo.sayHello</methodName></methodCall>",
    );
    assert!(matches!(
        answer(g.before_origin(&hello.facts())).await,
        Verdict::Pass
    ));
    assert!(!g.wants_body(&Req::get("/wp-login.php").facts()));
}

#[tokio::test]
async fn failed_xmlrpc_logins_count_like_form_logins() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1000));
    let g = guard(store, 100);
    let call = Req::post(
        "/xmlrpc.php",
        "<?xml version=\"1.0\"?><methodCall><methodName>wp.getPosts</methodName><params>\
         <param><value><string>1</string></value></param>\
         <param><value><string>Admin</string></value></param>\
         <param><value><string>guess</string></value></param></params></methodCall>",
    )
    .sent_by("198.51.100.9");
    assert_eq!(
        xmlrpc_username(call.body.as_deref().unwrap()).as_deref(),
        Some("admin")
    );
    let headers = http::HeaderMap::new();
    let ok_200 = ResponseFacts {
        status: 200,
        headers: &headers,
    };
    assert!(g.wants_response_body(&call.facts(), &ok_200));
    assert!(!g.wants_response_body(&Req::get("/xmlrpc.php").facts(), &ok_200));
    let fault = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n  <fault>\n    <value>\n      <struct>\n        <member>\n          <name>faultCode</name>\n          <value><int>403</int></value>\n        </member>\n        <member>\n          <name>faultString</name>\n          <value><string>Incorrect username or password.</string></value>\n        </member>\n      </struct>\n    </value>\n  </fault>\n</methodResponse>\n";
    let ok = b"<methodResponse><params><param><value><array><data></data></array></value></param></params></methodResponse>";
    assert!(matches!(
        g.on_response_body(&call.facts(), &ok_200, ok),
        Verdict::Pass
    ));
    for n in 1..=3 {
        let v = answer(g.on_response_body(&call.facts(), &ok_200, fault)).await;
        let want = if n < 3 {
            format!("failed login {n} of 3")
        } else {
            "failed login 3 of 3: locked out for 60s".to_string()
        };
        assert_eq!(note(&v), want);
    }
    // Locked out: the next XML-RPC login from that address is refused before WordPress.
    assert_eq!(
        status(&answer(g.on_request(&call.facts())).await),
        Some(429)
    );
}
