//! The headers a browser sends with a page request. A rehearsal sends them by default: a
//! server that is fast only for clients that ask for no compression (a bare benchmark tool)
//! is not fast on the day. `--raw` sends none; a class's `headers` table overrides them
//! (an empty value removes one).

use http::{HeaderName, HeaderValue};
use std::collections::BTreeMap;

/// What a current desktop Chrome sends for a navigation (`Accept-Encoding` without zstd,
/// which peakguard does not make).
pub const BROWSER_HEADERS: &[(&str, &str)] = &[
    (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    ),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-language", "en-US,en;q=0.9"),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ),
];

/// A class's request headers: the browser's (unless `raw`), then the class's own on top.
/// Errors name the bad header.
pub fn class_headers(
    raw: bool,
    overrides: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    if !raw {
        for (k, v) in BROWSER_HEADERS {
            merged.insert(k.to_string(), v.to_string());
        }
    }
    for (k, v) in overrides {
        let k = k.to_ascii_lowercase();
        if matches!(
            k.as_str(),
            "host" | "content-length" | "transfer-encoding" | "cookie"
        ) {
            return Err(format!(
                "header {k:?} is set by rehearse itself and cannot be configured"
            ));
        }
        if v.is_empty() {
            merged.remove(&k);
        } else {
            merged.insert(k, v.clone());
        }
    }
    merged
        .into_iter()
        .map(|(k, v)| {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("{k:?} is not a header name"))?;
            let value = HeaderValue::from_str(&v)
                .map_err(|_| format!("the value of header {k:?} is not valid: {v:?}"))?;
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_headers_by_default_none_when_raw_and_classes_override() {
        let none = BTreeMap::new();
        let h = class_headers(false, &none).unwrap();
        let get = |h: &[(HeaderName, HeaderValue)], n: &str| {
            h.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            get(&h, "accept-encoding").as_deref(),
            Some("gzip, deflate, br")
        );
        assert!(get(&h, "user-agent").unwrap().starts_with("Mozilla/5.0"));
        assert!(class_headers(true, &none).unwrap().is_empty());

        let mut o = BTreeMap::new();
        o.insert("Accept-Encoding".to_string(), "gzip".to_string());
        o.insert("accept-language".to_string(), String::new());
        o.insert("X-Campaign".to_string(), "spring".to_string());
        let h = class_headers(false, &o).unwrap();
        assert_eq!(get(&h, "accept-encoding").as_deref(), Some("gzip"));
        assert_eq!(get(&h, "accept-language"), None);
        assert_eq!(get(&h, "x-campaign").as_deref(), Some("spring"));

        let mut bad = BTreeMap::new();
        bad.insert("Host".to_string(), "x".to_string());
        assert!(class_headers(false, &bad).unwrap_err().contains("host"));
        let mut bad = BTreeMap::new();
        bad.insert("bad header".to_string(), "x".to_string());
        assert!(
            class_headers(false, &bad)
                .unwrap_err()
                .contains("bad header")
        );
    }
}
