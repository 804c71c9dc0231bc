//! A waiting room in front of the target (peakguard's marks its page with the
//! `peakguard-waiting-room` header): a browser shown the page keeps it open and refreshes
//! after `Retry-After`, with the cookie that holds its place. The rehearsal does the same,
//! and counts the time in line instead of an error.

use http::HeaderMap;
use std::time::Duration;

/// The header peakguard's waiting page carries (`position=N` or `pre-queue`).
pub const ROOM_HEADER: &str = "peakguard-waiting-room";

/// How long a browser in line waits before it refreshes, when the page does not say.
const DEFAULT_REFRESH: Duration = Duration::from_secs(15);
/// Bounds on a page's `Retry-After` (a number from the network).
const MIN_REFRESH: Duration = Duration::from_secs(1);
const MAX_REFRESH: Duration = Duration::from_secs(120);

/// When the response is a waiting page: how long until the browser refreshes.
pub fn refresh_after(status: u16, headers: &HeaderMap) -> Option<Duration> {
    if status != 503 || !headers.contains_key(ROOM_HEADER) {
        return None;
    }
    let after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_REFRESH, Duration::from_secs);
    Some(after.clamp(MIN_REFRESH, MAX_REFRESH))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_a_marked_503_is_a_waiting_page_and_its_refresh_is_clamped() {
        let page = headers(&[(ROOM_HEADER, "position=3"), ("retry-after", "5")]);
        assert_eq!(refresh_after(503, &page), Some(Duration::from_secs(5)));
        assert_eq!(refresh_after(200, &page), None);
        let busy = headers(&[("retry-after", "5")]);
        assert_eq!(refresh_after(503, &busy), None, "a busy page is an error");
        let huge = headers(&[(ROOM_HEADER, "pre-queue"), ("retry-after", "999999")]);
        assert_eq!(refresh_after(503, &huge), Some(MAX_REFRESH));
        let zero = headers(&[(ROOM_HEADER, "position=1"), ("retry-after", "0")]);
        assert_eq!(refresh_after(503, &zero), Some(MIN_REFRESH));
        let none = headers(&[(ROOM_HEADER, "position=1")]);
        assert_eq!(refresh_after(503, &none), Some(DEFAULT_REFRESH));
    }
}
