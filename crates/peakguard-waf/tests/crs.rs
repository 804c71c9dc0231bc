//! The real Core Rule Set (Debian's modsecurity-crs) in the real libmodsecurity (Debian's
//! libmodsecurity3): attacks scored and blocked, ordinary requests passed, exceptions that
//! switch a rule off everywhere, for one argument, or on one path.

use peakguard_waf::{Exception, Excluded, Found, Inspection, Request, RuleSet, Settings, Waf};

const CRS: &str = "/usr/share/modsecurity-crs";

fn waf(exceptions: Vec<Exception>) -> Waf {
    let crs = RuleSet::open(std::path::Path::new(CRS), Found::Debian).expect("Debian's CRS");
    let mut s = Settings::new(crs);
    s.exceptions = exceptions;
    Waf::build(s).unwrap_or_else(|e| panic!("{e}"))
}

fn get(waf: &Waf, uri: &str) -> Inspection {
    waf.inspect(&Request {
        client: "203.0.113.9".parse().expect("ip"),
        client_port: 40000,
        method: "GET",
        uri,
        version: "1.1",
        headers: vec![
            (b"Host", b"shop.test"),
            (
                b"User-Agent",
                b"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
            ),
            (b"Accept", b"text/html"),
        ],
        body: b"",
    })
    .expect("inspected")
}

fn post(waf: &Waf, uri: &str, body: &str) -> Inspection {
    let len = body.len().to_string();
    waf.inspect(&Request {
        client: "203.0.113.9".parse().expect("ip"),
        client_port: 40000,
        method: "POST",
        uri,
        version: "1.1",
        headers: vec![
            (b"Host", b"shop.test"),
            (
                b"User-Agent",
                b"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
            ),
            (b"Accept", b"text/html"),
            (b"Content-Type", b"application/x-www-form-urlencoded"),
            (b"Content-Length", len.as_bytes()),
        ],
        body: body.as_bytes(),
    })
    .expect("inspected")
}

#[test]
fn sql_injection_and_xss_are_blocked_and_ordinary_requests_pass() {
    let waf = waf(Vec::new());
    assert!(
        waf.version().starts_with("ModSecurity v3"),
        "{}",
        waf.version()
    );
    let ok = get(&waf, "/product/blue-shirt/?color=blue&utm_source=news");
    assert_eq!(ok.block, None, "{ok:?}");
    assert_eq!(ok.score, 0, "{ok:?}");
    let sqli = get(&waf, "/?id=1%27%20OR%201%3D1--%20");
    assert_eq!(sqli.block, Some(403), "{sqli:?}");
    assert!(sqli.score >= 5, "{sqli:?}");
    assert!(sqli.matched.iter().any(|m| m.id / 1000 == 942), "{sqli:?}");
    assert!(
        sqli.matched
            .iter()
            .any(|m| m.target.as_deref() == Some("ARGS:id")),
        "{sqli:?}"
    );
    let xss = post(
        &waf,
        "/wp-comments-post.php",
        "comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E&author=x",
    );
    assert_eq!(xss.block, Some(403), "{xss:?}");
    assert!(xss.matched.iter().any(|m| m.id / 1000 == 941), "{xss:?}");
}

#[test]
fn exceptions_switch_a_rule_off_everywhere_for_an_argument_or_on_a_path() {
    let attack = "/wp-admin/admin-ajax.php?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let base = waf(Vec::new());
    let found = get(&base, attack);
    assert_eq!(found.block, Some(403), "{found:?}");
    let rules: Vec<u32> = found.matched.iter().map(|m| m.id).collect();
    let all = |path: Option<&str>, argument: Option<&str>| -> Vec<Exception> {
        rules
            .iter()
            .map(|id| Exception {
                excluded: Excluded::Rule(*id),
                path: path.map(str::to_string),
                argument: argument.map(str::to_string),
            })
            .collect()
    };
    assert_eq!(
        get(&waf(all(None, None)), attack).block,
        None,
        "removed everywhere"
    );
    let for_q = waf(all(None, Some("q")));
    assert_eq!(get(&for_q, attack).block, None, "not on ARGS:q");
    assert_eq!(
        get(
            &for_q,
            "/wp-admin/admin-ajax.php?s=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
        )
        .block,
        Some(403),
        "still on another argument"
    );
    let on_path = waf(all(Some("/wp-admin/admin-ajax.php"), None));
    assert_eq!(get(&on_path, attack).block, None, "not on that path");
    assert_eq!(
        get(&on_path, "/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").block,
        Some(403),
        "still elsewhere"
    );
}

#[test]
fn a_bad_rules_directory_says_what_to_install() {
    let err =
        RuleSet::open(std::path::Path::new("/nonexistent/crs"), Found::Site).expect_err("no CRS");
    assert!(err.to_string().contains("modsecurity-crs"), "{err}");
}
