//! RFC 9111 storage and freshness for a shared cache (plus RFC 9213 `CDN-Cache-Control` and
//! RFC 5861 stale extensions): may this response be stored, for how long is it fresh, and how
//! long may it be served stale. Pure: headers in, decision out.

use crate::rules::SiteRules;
use http::{HeaderMap, Method, StatusCode, header};
use peakguard_config::Profile;
use std::time::{Duration, SystemTime};

/// Parsed `Cache-Control`-style directives (names lower-cased).
#[derive(Debug, Default, Clone)]
pub struct Directives {
    items: Vec<(String, Option<String>)>,
}

impl Directives {
    /// Parses every value of the named header; `None` when the header is absent.
    pub fn from_headers(headers: &HeaderMap, name: &str) -> Option<Self> {
        let mut items = Vec::new();
        let mut present = false;
        for value in headers.get_all(name) {
            present = true;
            let Ok(text) = value.to_str() else { continue };
            for part in split_outside_quotes(text) {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                let (k, v) = match part.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"').to_string())),
                    None => (part, None),
                };
                items.push((k.to_ascii_lowercase(), v));
            }
        }
        present.then_some(Directives { items })
    }

    pub fn has(&self, name: &str) -> bool {
        self.items.iter().any(|(k, _)| k == name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// A delta-seconds directive; invalid values count as absent, duplicates as invalid
    /// (RFC 9111 §4.2.1: "a cache MUST consider the freshness lifetime invalid" → use the
    /// most restrictive reading: 0). Values are clamped to 2³¹ (§1.2.2).
    pub fn seconds(&self, name: &str) -> Option<u64> {
        let mut values = self.items.iter().filter(|(k, _)| k == name);
        let first = values.next()?;
        if values.next().is_some() {
            return Some(0);
        }
        first.1.as_deref().map(|v| delta_seconds(v).unwrap_or(0))
    }

    /// Field names listed in a qualified directive (`private="set-cookie, x-a"`).
    pub fn field_names(&self, name: &str) -> Vec<String> {
        self.value(name)
            .map(|v| {
                v.split(',')
                    .map(|f| f.trim().to_ascii_lowercase())
                    .filter(|f| !f.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// What the cache does with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Store(Storable),
    DoNotStore(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storable {
    /// Remaining freshness (zero: stored, but every use revalidates).
    pub fresh_for: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
    /// Header fields to remove before storing (`Set-Cookie`, `private="..."` fields).
    pub strip: Vec<String>,
}

/// Status codes that are heuristically cacheable (RFC 9110 §15.1), minus 206 (we store whole
/// responses only).
fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Status codes we may store at all when freshness is explicit.
fn storable_status(status: StatusCode) -> bool {
    heuristically_cacheable(status) || matches!(status.as_u16(), 302 | 303 | 307)
}

/// The request side of the decision.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
}

/// Decides storage and freshness of `status` + `headers` for the request, under `rules`.
pub fn decide(
    req: RequestFacts<'_>,
    status: StatusCode,
    headers: &HeaderMap,
    rules: &SiteRules,
    now: SystemTime,
) -> Decision {
    if req.method != Method::GET && req.method != Method::HEAD {
        return Decision::DoNotStore("method");
    }
    if Directives::from_headers(req.headers, "cache-control").is_some_and(|d| d.has("no-store")) {
        return Decision::DoNotStore("request no-store");
    }
    if !storable_status(status) {
        return Decision::DoNotStore("status");
    }
    // RFC 9213: a targeted field, when present and valid, replaces Cache-Control (and
    // Expires); one that is not a valid Dictionary is ignored (§2.1).
    let cdn = Directives::from_headers(headers, "cdn-cache-control")
        .filter(|_| valid_dictionary(headers, "cdn-cache-control"));
    let targeted = cdn.is_some();
    let cc = cdn
        .or_else(|| Directives::from_headers(headers, "cache-control"))
        .unwrap_or_default();

    if cc.has("no-store") {
        return Decision::DoNotStore("no-store");
    }
    let mut strip = Vec::new();
    if cc.has("private") {
        let fields = cc.field_names("private");
        if fields.is_empty() {
            return Decision::DoNotStore("private");
        }
        strip.extend(fields);
    }
    if headers.get_all(header::VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|f| f.trim() == "*"))
    }) {
        return Decision::DoNotStore("vary *");
    }
    if req.headers.contains_key(header::AUTHORIZATION)
        && !(cc.has("public") || cc.has("s-maxage") || cc.has("must-revalidate"))
    {
        return Decision::DoNotStore("authorization");
    }
    if headers.contains_key(header::SET_COOKIE) {
        if !rules.cache_set_cookie {
            return Decision::DoNotStore("set-cookie");
        }
        strip.push("set-cookie".into());
    }
    let no_cache = cc.has("no-cache");
    if no_cache {
        strip.extend(cc.field_names("no-cache"));
    }
    let revalidate_every_time = no_cache && cc.field_names("no-cache").is_empty();

    let explicit = cc
        .seconds("s-maxage")
        .or_else(|| cc.seconds("max-age"))
        .map(Duration::from_secs)
        .or_else(|| {
            if targeted {
                None
            } else {
                expires_lifetime(headers, now)
            }
        });

    let lifetime = match explicit {
        Some(l) => l,
        None if rules.profile == Profile::Wordpress && heuristically_cacheable(status) => {
            rules.default_ttl
        }
        None if cc.has("public") && heuristically_cacheable(status) => Duration::ZERO,
        None if has_validator(headers) && heuristically_cacheable(status) => Duration::ZERO,
        None => return Decision::DoNotStore("no freshness"),
    };
    let fresh_for = if revalidate_every_time {
        Duration::ZERO
    } else {
        lifetime.saturating_sub(current_age(headers, now))
    };
    if fresh_for.is_zero()
        && !has_validator(headers)
        && rules.profile == Profile::Http
        && !revalidate_every_time
        && explicit.is_none()
    {
        return Decision::DoNotStore("no freshness");
    }
    let no_stale = cc.has("must-revalidate")
        || cc.has("proxy-revalidate")
        || (cc.has("s-maxage") && !targeted && rules.profile == Profile::Http);
    let (swr, sie) = if no_stale {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (
            cc.seconds("stale-while-revalidate")
                .map(Duration::from_secs)
                .unwrap_or(rules.stale_while_revalidate),
            cc.seconds("stale-if-error")
                .map(Duration::from_secs)
                .unwrap_or(rules.stale_if_error),
        )
    };
    Decision::Store(Storable {
        fresh_for,
        stale_while_revalidate: swr,
        stale_if_error: sie,
        strip,
    })
}

fn has_validator(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED)
}

fn http_date(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<SystemTime>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    let text = v.to_str().map_err(|_| ())?;
    httpdate::parse_http_date(text).map(Some).map_err(|_| ())
}

/// `Expires - Date` (RFC 9111 §4.2.1); an invalid `Expires` means already expired.
fn expires_lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    match http_date(headers, header::EXPIRES) {
        Ok(None) => None,
        Err(()) => Some(Duration::ZERO),
        Ok(Some(expires)) => {
            let date = http_date(headers, header::DATE)
                .ok()
                .flatten()
                .unwrap_or(now);
            // A far-future Expires is a lifetime like any other: clamped as delta-seconds
            // are (found by the property test with an Expires in 2094).
            Some(
                expires
                    .duration_since(date)
                    .unwrap_or(Duration::ZERO)
                    .min(Duration::from_secs(MAX_DELTA_SECONDS)),
            )
        }
    }
}

/// The largest delta-seconds a cache must understand (RFC 9111 §1.2.2): a larger value, or
/// one too large to represent, counts as this.
pub const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// `1*DIGIT` (RFC 9111 §1.2.2), clamped to [`MAX_DELTA_SECONDS`]; `None` when it is not
/// digits.
pub fn delta_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        text.parse::<u64>()
            .map_or(MAX_DELTA_SECONDS, |n| n.min(MAX_DELTA_SECONDS)),
    )
}

/// The origin's `Age` in seconds, read as RFC 9111 §5.1 says: the first member of a list
/// (`7200, 0` is 7200), from the first line. Of that member the leading digits count
/// (`7200.0` and `7200;x=1` are 7200: an age the origin meant as old is never read as
/// fresh); a member with none (`abc`, `-7200`) is ignored.
pub fn age_field(headers: &HeaderMap) -> Option<u64> {
    let text = headers.get(header::AGE)?.to_str().ok()?;
    let first = text.split(',').next()?.trim();
    let digits = first.len() - first.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    delta_seconds(&first[..digits])
}

/// Whether every value of `name`, joined as one field, parses as an RFC 8941 Dictionary.
fn valid_dictionary(headers: &HeaderMap, name: &str) -> bool {
    let mut joined = Vec::new();
    for value in headers.get_all(name) {
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    sfv::Parser::parse_dictionary(&joined).is_ok()
}

/// The response's age when it reached us (RFC 9111 §4.2.3, without the request delay).
pub fn current_age(headers: &HeaderMap, now: SystemTime) -> Duration {
    let age_value = age_field(headers)
        .map(Duration::from_secs)
        .unwrap_or(Duration::ZERO);
    let apparent = http_date(headers, header::DATE)
        .ok()
        .flatten()
        .and_then(|d| now.duration_since(d).ok())
        .unwrap_or(Duration::ZERO);
    age_value.max(apparent)
}

#[cfg(test)]
mod tests;
