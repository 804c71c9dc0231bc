//! The waiting room on the admin API:
//!
//! - `GET  /waiting-room` → every room's state
//! - `POST /waiting-room?site=NAME&mode=normal|queue-all|suspended`
//! - `POST /waiting-room?site=NAME&opens_at=UNIX|RFC3339|none` (a scheduled opening: a
//!   pre-queue before it, shuffled at the opening)
//! - `POST /waiting-room/rotate-key` (new cookie key; places signed with the old one count)
//!
//! Every change is logged.

use crate::state::EdgeState;
use http::StatusCode;
use peakguard_shield::room::RoomMode;
use serde_json::{Value, json};
use std::collections::HashMap;

fn bad(message: String) -> (StatusCode, Value) {
    (StatusCode::BAD_REQUEST, json!({ "error": message }))
}

/// Unix seconds from `1796090000` or `2026-12-01T18:00:00Z`; errors name the `key`.
pub(crate) fn parse_time(key: &str, text: &str) -> Result<u64, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| {
            format!("{key} {text:?}: {e}; give Unix seconds or a time such as 2026-12-01T18:00:00Z")
        })
        .and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .map_err(|_| format!("{key} {text:?} is before 1970"))
        })
}

pub async fn handle(
    state: &EdgeState,
    method: &str,
    path: &str,
    q: &HashMap<String, String>,
) -> Option<(StatusCode, Value)> {
    match (method, path) {
        ("GET", "/waiting-room") => Some((
            StatusCode::OK,
            json!({ "rooms": state.shield.room_statuses().await }),
        )),
        ("POST", "/waiting-room/rotate-key") => Some(rotate_key(state)),
        ("POST", "/waiting-room") => Some(change(state, q).await),
        _ => None,
    }
}

fn rotate_key(state: &EdgeState) -> (StatusCode, Value) {
    let current = state.shield.room_keys.read().clone();
    match crate::room_keys::rotate(&state.room_key_file, &current) {
        Ok(keys) => {
            *state.shield.room_keys.write() = keys;
            log::info!(
                "waiting room: cookie key rotated ({}); places signed with the previous key still count",
                state.room_key_file.display()
            );
            (StatusCode::OK, json!({ "rotated": true }))
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("cannot write {}: {e}", state.room_key_file.display()) }),
        ),
    }
}

async fn change(state: &EdgeState, q: &HashMap<String, String>) -> (StatusCode, Value) {
    let rooms = state.shield.rooms();
    let room = match q.get("site") {
        Some(site) => rooms.into_iter().find(|r| r.site() == site),
        None if rooms.len() == 1 => rooms.into_iter().next(),
        None => return bad("several sites have a waiting room: name one with site=NAME".into()),
    };
    let Some(room) = room else {
        return (
            StatusCode::NOT_FOUND,
            json!({ "error": "no waiting room for that site: set [site.shield.waiting_room] enabled = true" }),
        );
    };
    let result = if let Some(mode) = q.get("mode") {
        let Some(mode) = RoomMode::parse(mode) else {
            return bad(format!("mode {mode:?}: use normal, queue-all or suspended"));
        };
        room.set_mode(mode).await
    } else if let Some(at) = q.get("opens_at") {
        let at = if at == "none" {
            None
        } else {
            match parse_time("opens_at", at) {
                Ok(t) => Some(t),
                Err(e) => return bad(e),
            }
        };
        room.set_opening(at).await
    } else {
        return bad("give mode=normal|queue-all|suspended or opens_at=TIME|none".into());
    };
    match result {
        Ok(()) => match room.status().await {
            Ok(status) => (StatusCode::OK, json!(status)),
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": e.to_string() }),
            ),
        },
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": e.to_string() }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn opening_times_are_unix_or_rfc3339() {
        assert_eq!(parse_time("opens_at", "1796090000"), Ok(1_796_090_000));
        assert_eq!(
            parse_time("opens_at", "2026-12-01T18:00:00Z"),
            Ok(1_796_148_000)
        );
        assert!(
            parse_time("opens_at", "tomorrow")
                .unwrap_err()
                .contains("2026-12-01T18:00:00Z")
        );
    }
}
