//! Property tests (proptest) of everything that parses what an origin or a client sends:
//! RFC 9111 freshness over arbitrary `Cache-Control`, `CDN-Cache-Control`, `Age`, `Date`,
//! `Expires` values; `Accept-Encoding`; the cache key and the bypass rules over arbitrary
//! paths and queries. None may panic, and what they return must stay within its bounds.
//! The number of cases is bounded (`PROPTEST_CASES`, default 512 per property here) so the
//! run is a few seconds in CI.

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use peakguard_cache::freshness::{self, Decision, RequestFacts};
use peakguard_cache::{Accepted, Coding, KeyParts, SiteRules, cache_key_url};
use peakguard_config::{Profile, SiteConfig};
use proptest::prelude::*;
use std::time::{Duration, SystemTime};

/// RFC 9111 §1.2.2: delta-seconds are clamped to 2³¹.
const MAX_DELTA: u64 = 1 << 31;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        ..ProptestConfig::default()
    }
}

/// Header values as origins send them, good and bad: directive soup, huge numbers, quotes,
/// commas, non-ASCII bytes.
fn field_value() -> impl Strategy<Value = Vec<u8>> {
    let directive = prop_oneof![
        Just("max-age".to_string()),
        Just("s-maxage".to_string()),
        Just("no-store".to_string()),
        Just("no-cache".to_string()),
        Just("private".to_string()),
        Just("public".to_string()),
        Just("must-revalidate".to_string()),
        Just("stale-while-revalidate".to_string()),
        Just("stale-if-error".to_string()),
        "[a-zA-Z*\"-]{0,12}",
    ];
    let value = prop_oneof![
        Just(String::new()),
        any::<u64>().prop_map(|n| format!("={n}")),
        "[0-9]{15,40}".prop_map(|d| format!("={d}")),
        "-?[0-9]{1,5}".prop_map(|d| format!("={d}")),
        "\"[ -~]{0,10}\"?".prop_map(|q| format!("={q}")),
        "=[ -~]{0,10}",
    ];
    let item = (directive, value).prop_map(|(d, v)| format!("{d}{v}"));
    prop_oneof![
        4 => prop::collection::vec(item, 0..6).prop_map(|items| items.join(", ").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn date_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u64..4_000_000_000).prop_map(|s| httpdate::fmt_http_date(
            SystemTime::UNIX_EPOCH + Duration::from_secs(s)
        )
        .into_bytes()),
        prop::collection::vec(any::<u8>(), 0..40),
        Just(b"0".to_vec()),
        Just(b"-1".to_vec()),
    ]
}

fn headers(fields: Vec<(&'static str, Vec<u8>)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        // Bytes a header value cannot hold never reach us (the HTTP parser refuses them).
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            map.append(name, v);
        }
    }
    map
}

fn rules(http: bool) -> SiteRules {
    if http {
        SiteRules::from_config(&SiteConfig::quick("http://127.0.0.1:1", Profile::Http))
    } else {
        SiteRules::from_config(&SiteConfig::default())
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn freshness_never_panics_and_stays_bounded(
        cc in field_value(),
        cdn in proptest::option::of(field_value()),
        age in proptest::option::of(prop_oneof![field_value(), "[0-9]{1,40}".prop_map(String::into_bytes)]),
        date in proptest::option::of(date_value()),
        expires in proptest::option::of(date_value()),
        request_cc in proptest::option::of(field_value()),
        status in 100u16..600,
        http in any::<bool>(),
    ) {
        let mut fields = vec![("cache-control", cc)];
        fields.extend(cdn.map(|v| ("cdn-cache-control", v)));
        fields.extend(age.map(|v| ("age", v)));
        fields.extend(date.map(|v| ("date", v)));
        fields.extend(expires.map(|v| ("expires", v)));
        let response = headers(fields);
        let request = headers(request_cc.map(|v| ("cache-control", v)).into_iter().collect());
        let status = StatusCode::from_u16(status).expect("100..600 is a status");
        let now = SystemTime::now();
        let decision = freshness::decide(
            RequestFacts { method: &Method::GET, headers: &request },
            status,
            &response,
            &rules(http),
            now,
        );
        if let Decision::Store(s) = decision {
            // Any lifetime fits in the 2³¹ s clamp, and a stored time can be computed from it.
            prop_assert!(s.fresh_for <= Duration::from_secs(MAX_DELTA));
            prop_assert!(s.stale_while_revalidate <= Duration::from_secs(MAX_DELTA));
            prop_assert!(s.stale_if_error <= Duration::from_secs(MAX_DELTA));
            prop_assert!(now.checked_add(s.fresh_for + s.stale_if_error).is_some());
        }
        let age = freshness::current_age(&response, now);
        prop_assert!(age <= Duration::from_secs(MAX_DELTA).max(now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()));
    }

    #[test]
    fn delta_seconds_is_digits_clamped(text in "[ -~]{0,30}") {
        match freshness::delta_seconds(&text) {
            Some(n) => {
                prop_assert!(n <= MAX_DELTA);
                prop_assert!(text.trim().bytes().all(|b| b.is_ascii_digit()));
            }
            None => prop_assert!(text.trim().is_empty() || !text.trim().bytes().all(|b| b.is_ascii_digit())),
        }
    }

    #[test]
    fn accept_encoding_never_panics_and_choices_are_acceptable(
        values in prop::collection::vec(
            prop_oneof![
                "(gzip|br|deflate|identity|\\*|x-[a-z]{1,4})(;q=[0-9.]{0,6})?(, ?(gzip|br|identity|\\*)(;q=[0-9.]{0,6})?){0,3}",
                "[ -~]{0,30}",
            ],
            0..3,
        )
    ) {
        let accepted = Accepted::parse(values.iter().map(|v| v.as_bytes()));
        let available = [Coding::Identity, Coding::Gzip, Coding::Brotli];
        if let Some(chosen) = accepted.choose(available) {
            prop_assert!(accepted.accepts(chosen), "chose {chosen:?} from {values:?}");
        }
        for c in available {
            prop_assert!(accepted.q(c) <= 1000);
        }
    }

    #[test]
    fn cache_keys_and_bypass_never_panic(
        host in "[a-zA-Z0-9.:\\[\\]-]{0,30}",
        path in "(/|%[0-9a-fA-F]{0,2}|[ -~]){0,60}",
        method in prop_oneof![Just("GET".to_string()), Just("HEAD".to_string()), Just("POST".to_string()), "[A-Z]{1,7}"],
        cookie in "[ -~]{0,60}",
        http in any::<bool>(),
    ) {
        let rules = rules(http);
        let key = cache_key_url(KeyParts { scheme: "https", host: &host, path_and_query: &path }, &rules);
        prop_assert!(key.starts_with("https://"));
        let _ = rules.bypass(&method, &path, std::iter::once(cookie.as_bytes()));
        // The WordPress rules see a cart path however it is written.
        if !http && method == "GET" {
            for written in ["/cart/", "//cart/", "/%63art/", "/./cart/", "/x/../cart/"] {
                prop_assert!(rules.bypass("GET", written, std::iter::empty()).is_some(), "{written}");
            }
        }
    }
}
