//! The statistics on the admin API (a `read` token is enough):
//!
//! - `GET /stats?last=60m[&site=NAME]` → the last hour, minute by minute
//! - `GET /stats?from=TIME&to=TIME[&site=NAME][&resolution=minute|hour]` → a range
//!   (minutes up to two days, hours beyond — `Resolution::for_span` — unless `resolution`
//!   says)
//! - `GET /stats?campaign=NAME[&site=NAME]` → a `[[campaign]]`'s window, with its visits,
//!   conversions, revenue and cost per acquisition
//!
//! Each answer has one point per period and the range's total (with top pages, referring
//! sites and refusals by guard).

use crate::admin_room::parse_time;
use crate::state::EdgeState;
use http::StatusCode;
use peakguard_stats::{Resolution, view};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Longest range asked at once, and longest at minute resolution.
const MAX_RANGE: Duration = Duration::from_secs(400 * 86_400);
const MAX_MINUTES: Duration = Duration::from_secs(14 * 86_400);

fn bad(message: String) -> (StatusCode, Value) {
    (StatusCode::BAD_REQUEST, json!({ "error": message }))
}

/// `(from, to, resolution)` from the query.
fn range(q: &HashMap<String, String>, now: i64) -> Result<(i64, i64, Resolution), String> {
    let (from, to) = match (q.get("last"), q.get("from"), q.get("to")) {
        (Some(last), None, None) => {
            let d = humantime::parse_duration(last)
                .map_err(|e| format!("last {last:?}: {e}; write e.g. last=60m or last=24h"))?;
            let d = d.min(MAX_RANGE).as_secs() as i64;
            // Through the minute being counted.
            (now - d, now + 60)
        }
        (None, Some(from), to) => {
            let from = parse_time("from", from)? as i64;
            let to = match to {
                Some(t) => parse_time("to", t)? as i64,
                None => now + 60,
            };
            (from, to)
        }
        (None, None, None) => (now - 3600, now + 60),
        _ => return Err("give last=DURATION, or from=TIME with an optional to=TIME".into()),
    };
    if to <= from {
        return Err(format!("to ({to}) must be after from ({from})"));
    }
    if (to - from) as u64 > MAX_RANGE.as_secs() + 60 {
        return Err("at most 400 days at once".into());
    }
    let span = Duration::from_secs((to - from) as u64);
    let res = match q.get("resolution").map(String::as_str) {
        Some("minute") if span > MAX_MINUTES + Duration::from_secs(60) => {
            return Err("minutes are kept 14 days: ask resolution=hour for this range".into());
        }
        Some("minute") => Resolution::Minute,
        Some("hour") => Resolution::Hour,
        Some(other) => return Err(format!("resolution {other:?}: minute or hour")),
        None => Resolution::for_span(to - from),
    };
    Ok((res.start_of(from), to, res))
}

pub async fn handle(state: &Arc<EdgeState>, q: &HashMap<String, String>) -> (StatusCode, Value) {
    if state.stats.is_none() {
        return (
            StatusCode::NOT_FOUND,
            json!({"error": "statistics are off ([stats] enabled = false)"}),
        );
    }
    let campaign = match q.get("campaign") {
        Some(name) => match state.live().campaigns.iter().find(|c| &c.name == name) {
            Some(c) => Some(c.clone()),
            None => {
                return (
                    StatusCode::NOT_FOUND,
                    json!({"error": format!("no [[campaign]] named {name:?}")}),
                );
            }
        },
        None => None,
    };
    let window = match &campaign {
        Some(c) => {
            let res = Resolution::for_span(c.to - c.from);
            Ok((res.start_of(c.from), c.to, res))
        }
        None => range(q, peakguard_stats::now_unix()),
    };
    let (from, to, res) = match window {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let site = q.get("site").cloned();
    let state = state.clone();
    // Reading the files blocks: off the runtime.
    let read = tokio::task::spawn_blocking(move || {
        let stats = state.stats.as_ref()?;
        Some(stats.range(res, from, to, site.as_deref()).map(|records| {
            let v = view::view(&records, res, from, to, site.as_deref());
            let figures = campaign.map(|c| c.figures(&peakguard_stats::total(&records)));
            (v, figures)
        }))
    })
    .await;
    match read {
        Ok(Some(Ok((v, None)))) => (StatusCode::OK, json!(v)),
        Ok(Some(Ok((v, Some(figures))))) => {
            let mut value = json!(v);
            value["campaign"] = json!(figures);
            (StatusCode::OK, value)
        }
        Ok(Some(Err(e))) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": e.to_string() }),
        ),
        Ok(None) | Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": "statistics unavailable" }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ranges_are_read_from_the_query_and_clamped() {
        let now = 1_796_637_630;
        let (from, to, res) = range(&q(&[("last", "60m")]), now).unwrap();
        assert_eq!(
            (from, to, res),
            (1_796_634_000, now + 60, Resolution::Minute)
        );
        let (_, _, res) = range(&q(&[("last", "7d")]), now).unwrap();
        assert_eq!(res, Resolution::Hour);
        assert!(
            range(&q(&[("last", "30d"), ("resolution", "minute")]), now)
                .unwrap_err()
                .contains("resolution=hour")
        );
        assert!(
            range(&q(&[("last", "soon")]), now)
                .unwrap_err()
                .contains("last=60m")
        );
        assert!(
            range(
                &q(&[
                    ("from", "2026-12-07T10:00:00Z"),
                    ("to", "2026-12-07T09:00:00Z")
                ]),
                now
            )
            .unwrap_err()
            .contains("must be after")
        );
        let (_, _, res) = range(&q(&[("last", "1000d")]), now).unwrap();
        assert_eq!(res, Resolution::Hour, "clamped to 400 days");
    }
}
