//! Table-driven RFC 9111 cases.

use super::*;
use http::HeaderValue;
use peakguard_config::SiteConfig;

const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
}

fn date(offset: i64) -> String {
    httpdate::fmt_http_date(
        SystemTime::UNIX_EPOCH + Duration::from_secs((NOW as i64 + offset) as u64),
    )
}

fn headers(list: &[(&str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in list {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn wp() -> SiteRules {
    SiteRules::from_config(&SiteConfig::default())
}

fn strict() -> SiteRules {
    SiteRules::from_config(&SiteConfig::quick("http://127.0.0.1:1", Profile::Http))
}

fn run(
    rules: &SiteRules,
    method: Method,
    req: &[(&str, String)],
    status: u16,
    resp: &[(&str, String)],
) -> Decision {
    let req_h = headers(req);
    decide(
        RequestFacts {
            method: &method,
            headers: &req_h,
        },
        StatusCode::from_u16(status).unwrap(),
        &headers(resp),
        rules,
        now(),
    )
}

fn fresh(d: &Decision) -> Option<u64> {
    match d {
        Decision::Store(s) => Some(s.fresh_for.as_secs()),
        Decision::DoNotStore(_) => None,
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

/// (name, rules, status, response headers, expected fresh seconds or None = not stored)
type Case<'a> = (
    &'a str,
    &'a SiteRules,
    u16,
    Vec<(&'a str, String)>,
    Option<u64>,
);

#[test]
fn freshness_table() {
    // (name, rules, status, response headers, expected fresh seconds or None = not stored)
    let w = wp();
    let h = strict();
    let cases: Vec<Case> = vec![
        ("wp default ttl", &w, 200, vec![], Some(300)),
        ("wp 404 default ttl", &w, 404, vec![], Some(300)),
        ("wp 500 never", &w, 500, vec![], None),
        (
            "wp 503 never",
            &w,
            503,
            vec![("cache-control", s("max-age=60"))],
            None,
        ),
        ("wp 302 no explicit", &w, 302, vec![], None),
        (
            "wp 302 explicit",
            &w,
            302,
            vec![("cache-control", s("max-age=60"))],
            Some(60),
        ),
        (
            "max-age",
            &h,
            200,
            vec![("cache-control", s("max-age=120"))],
            Some(120),
        ),
        (
            "s-maxage wins",
            &h,
            200,
            vec![("cache-control", s("max-age=10, s-maxage=90"))],
            Some(90),
        ),
        (
            "no-store",
            &w,
            200,
            vec![("cache-control", s("no-store"))],
            None,
        ),
        (
            "private",
            &w,
            200,
            vec![("cache-control", s("private, max-age=60"))],
            None,
        ),
        (
            "private fields store",
            &h,
            200,
            vec![("cache-control", s("private=\"x-user\", max-age=60"))],
            Some(60),
        ),
        (
            "no-cache stores stale",
            &h,
            200,
            vec![
                ("cache-control", s("no-cache, max-age=60")),
                ("etag", s("\"a\"")),
            ],
            Some(0),
        ),
        (
            "wordpress nocache_headers",
            &w,
            200,
            vec![
                (
                    "cache-control",
                    s("no-cache, must-revalidate, max-age=0, no-store, private"),
                ),
                ("expires", s("Wed, 11 Jan 1984 05:00:00 GMT")),
            ],
            None,
        ),
        (
            "expires minus date",
            &h,
            200,
            vec![("date", date(0)), ("expires", date(600))],
            Some(600),
        ),
        (
            "expires invalid = expired",
            &h,
            200,
            vec![("date", date(0)), ("expires", s("0")), ("etag", s("\"x\""))],
            Some(0),
        ),
        (
            "max-age beats expires",
            &h,
            200,
            vec![
                ("cache-control", s("max-age=5")),
                ("expires", date(600)),
                ("date", date(0)),
            ],
            Some(5),
        ),
        (
            "age reduces",
            &h,
            200,
            vec![("cache-control", s("max-age=100")), ("age", s("30"))],
            Some(70),
        ),
        (
            "date in past reduces",
            &h,
            200,
            vec![("cache-control", s("max-age=100")), ("date", date(-40))],
            Some(60),
        ),
        (
            "age beyond lifetime",
            &h,
            200,
            vec![
                ("cache-control", s("max-age=10")),
                ("age", s("30")),
                ("etag", s("\"e\"")),
            ],
            Some(0),
        ),
        ("strict no headers", &h, 200, vec![], None),
        (
            "strict validator only",
            &h,
            200,
            vec![("etag", s("\"v\""))],
            Some(0),
        ),
        (
            "vary star",
            &h,
            200,
            vec![("cache-control", s("max-age=60")), ("vary", s("*"))],
            None,
        ),
        (
            "vary list with star",
            &h,
            200,
            vec![("cache-control", s("max-age=60")), ("vary", s("accept, *"))],
            None,
        ),
        (
            "set-cookie refused",
            &w,
            200,
            vec![("set-cookie", s("a=1"))],
            None,
        ),
        (
            "cdn-cache-control wins",
            &h,
            200,
            vec![
                ("cache-control", s("no-store")),
                ("cdn-cache-control", s("max-age=30")),
            ],
            Some(30),
        ),
        (
            "cdn-cache-control no-store",
            &h,
            200,
            vec![
                ("cache-control", s("max-age=300")),
                ("cdn-cache-control", s("no-store")),
            ],
            None,
        ),
        (
            // RFC 9213 §2.1: a targeted field that fails to parse as a Dictionary (RFC 8941)
            // is ignored: Cache-Control applies.
            "invalid cdn-cache-control (a quoted key) is ignored",
            &h,
            200,
            vec![
                ("cache-control", s("max-age=300")),
                ("cdn-cache-control", s("no-store, \"quoted\"")),
            ],
            Some(300),
        ),
        (
            "invalid cdn-cache-control (upper-case key) is ignored",
            &h,
            200,
            vec![
                ("cache-control", s("no-store")),
                ("cdn-cache-control", s("Max-Age=60")),
            ],
            None,
        ),
        (
            "cdn-cache-control ignores expires",
            &w,
            200,
            vec![
                ("cdn-cache-control", s("public")),
                ("expires", date(900)),
                ("date", date(0)),
            ],
            Some(300),
        ),
        (
            "duplicate max-age is invalid",
            &h,
            200,
            vec![
                ("cache-control", s("max-age=60, max-age=120")),
                ("etag", s("\"d\"")),
            ],
            Some(0),
        ),
        (
            "quoted comma",
            &h,
            200,
            vec![("cache-control", s("private=\"a, b\", max-age=7"))],
            Some(7),
        ),
        (
            "206 never",
            &h,
            206,
            vec![("cache-control", s("max-age=60"))],
            None,
        ),
    ];
    for (name, rules, status, resp, want) in cases {
        let got = run(rules, Method::GET, &[], status, &resp);
        assert_eq!(fresh(&got), want, "{name}: {got:?}");
    }
}

#[test]
fn unsafe_method_and_request_no_store_are_not_stored() {
    assert_eq!(fresh(&run(&wp(), Method::POST, &[], 200, &[])), None);
    assert_eq!(
        fresh(&run(
            &wp(),
            Method::GET,
            &[("cache-control", s("no-store"))],
            200,
            &[]
        )),
        None
    );
    assert_eq!(fresh(&run(&wp(), Method::HEAD, &[], 200, &[])), Some(300));
}

#[test]
fn authorization_needs_explicit_permission() {
    let auth = [("authorization", s("Basic eDp5"))];
    assert_eq!(
        fresh(&run(
            &strict(),
            Method::GET,
            &auth,
            200,
            &[("cache-control", s("max-age=60"))]
        )),
        None
    );
    assert_eq!(
        fresh(&run(
            &strict(),
            Method::GET,
            &auth,
            200,
            &[("cache-control", s("public, max-age=60"))]
        )),
        Some(60)
    );
    assert_eq!(
        fresh(&run(
            &strict(),
            Method::GET,
            &auth,
            200,
            &[("cache-control", s("s-maxage=60"))]
        )),
        Some(60)
    );
}

#[test]
fn stale_windows_come_from_directives_or_site_defaults() {
    let d = run(
        &wp(),
        Method::GET,
        &[],
        200,
        &[(
            "cache-control",
            s("max-age=60, stale-while-revalidate=30, stale-if-error=600"),
        )],
    );
    let Decision::Store(st) = d else {
        panic!("stored")
    };
    assert_eq!(st.stale_while_revalidate.as_secs(), 30);
    assert_eq!(st.stale_if_error.as_secs(), 600);
    let Decision::Store(st) = run(&wp(), Method::GET, &[], 200, &[]) else {
        panic!("stored")
    };
    assert_eq!(st.stale_if_error.as_secs(), 86_400);
    assert_eq!(st.stale_while_revalidate.as_secs(), 60);
}

#[test]
fn must_revalidate_forbids_stale() {
    let Decision::Store(st) = run(
        &wp(),
        Method::GET,
        &[],
        200,
        &[("cache-control", s("max-age=60, must-revalidate"))],
    ) else {
        panic!()
    };
    assert_eq!(
        (st.stale_if_error, st.stale_while_revalidate),
        (Duration::ZERO, Duration::ZERO)
    );
    // s-maxage implies proxy-revalidate for the strict profile.
    let Decision::Store(st) = run(
        &strict(),
        Method::GET,
        &[],
        200,
        &[("cache-control", s("s-maxage=60, stale-if-error=99"))],
    ) else {
        panic!()
    };
    assert_eq!(st.stale_if_error, Duration::ZERO);
}

#[test]
fn set_cookie_is_stripped_when_configured() {
    let cfg = SiteConfig {
        cache_set_cookie: true,
        ..SiteConfig::default()
    };
    let rules = SiteRules::from_config(&cfg);
    let Decision::Store(st) = run(&rules, Method::GET, &[], 200, &[("set-cookie", s("a=1"))])
    else {
        panic!()
    };
    assert_eq!(st.strip, vec!["set-cookie".to_string()]);
}

#[test]
fn private_field_names_are_stripped() {
    let Decision::Store(st) = run(
        &strict(),
        Method::GET,
        &[],
        200,
        &[("cache-control", s("private=\"x-user, x-b\", max-age=9"))],
    ) else {
        panic!()
    };
    assert_eq!(st.strip, vec!["x-user".to_string(), "x-b".to_string()]);
}

/// RFC 9111 §1.2.2: a delta-seconds larger than a cache can represent counts as 2³¹; so
/// does one whose calculations would overflow. Before, `max-age=18446744073709551615` made
/// the request panic (an empty reply on every request for the URL).
#[test]
fn huge_delta_seconds_are_clamped_to_two_to_the_31() {
    let w = wp();
    let h = strict();
    for value in [
        "max-age=18446744073709551615",
        "max-age=99999999999999999999999999",
        "s-maxage=18446744073709551616",
        "max-age=2147483648",
    ] {
        for rules in [&w, &h] {
            let d = run(rules, Method::GET, &[], 200, &[("cache-control", s(value))]);
            assert_eq!(fresh(&d), Some(MAX_DELTA_SECONDS), "{value}");
            if let Decision::Store(st) = &d {
                // Nothing downstream overflows: a stored lifetime fits a SystemTime.
                assert!(now().checked_add(st.fresh_for).is_some());
            }
        }
    }
    let d = run(
        &h,
        Method::GET,
        &[],
        200,
        &[
            ("cache-control", s("max-age=100")),
            ("age", s("18446744073709551615999")),
        ],
    );
    assert_eq!(fresh(&d), Some(0), "a huge Age: stale at once, no overflow");
    let d = run(
        &h,
        Method::GET,
        &[],
        200,
        &[("expires", s("Fri, 31 Dec 9999 23:59:59 GMT"))],
    );
    assert_eq!(
        fresh(&d),
        Some(MAX_DELTA_SECONDS),
        "a far-future Expires is clamped too"
    );
    let d = run(
        &w,
        Method::GET,
        &[],
        200,
        &[(
            "cache-control",
            s("max-age=60, stale-if-error=18446744073709551615"),
        )],
    );
    match d {
        Decision::Store(st) => {
            assert_eq!(st.stale_if_error.as_secs(), MAX_DELTA_SECONDS);
        }
        Decision::DoNotStore(why) => panic!("{why}"),
    }
    assert_eq!(delta_seconds(" 42 "), Some(42));
    assert_eq!(delta_seconds("-1"), None);
    assert_eq!(delta_seconds("1e3"), None);
    assert_eq!(delta_seconds(""), None);
}

/// RFC 9111 §5.1: the first member of a list-valued `Age`; an invalid value is ignored, but
/// one whose leading digits say "old" (`7200.0`, `7200;x=1`) is read as old (the HTTP cache
/// conformance suite's age-parse tests).
#[test]
fn age_takes_the_first_member_and_its_leading_digits() {
    let age = |values: &[&str]| {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AGE, HeaderValue::from_str(v).expect("value"));
        }
        age_field(&h)
    };
    assert_eq!(age(&["7200"]), Some(7200));
    assert_eq!(age(&["7200,0"]), Some(7200), "the first member");
    assert_eq!(age(&["0, 7200"]), Some(0), "the first member");
    assert_eq!(age(&["0", "7200"]), Some(0), "the first line");
    assert_eq!(age(&["7200.0"]), Some(7200));
    assert_eq!(age(&["7200;foo=111"]), Some(7200));
    assert_eq!(age(&["abc"]), None, "ignored");
    assert_eq!(age(&["-7200"]), None, "ignored");
    assert_eq!(age(&[""]), None);
    assert_eq!(age(&["99999999999999999999999"]), Some(MAX_DELTA_SECONDS));
    assert_eq!(age(&[]), None);
}
