//! What a visitor in line sees: the branded page (or the site's own template), or JSON for
//! `Accept: application/json`.

use crate::pages::escape;
use bytes::Bytes;

/// One visitor's view of the line.
pub struct View<'a> {
    pub site: &'a str,
    /// 1 = next; `None` before a scheduled opening.
    pub position: Option<u64>,
    pub wait_minutes: u64,
    pub refresh_secs: u64,
    /// Unix seconds of the scheduled opening, when it is ahead.
    pub opens_at: Option<u64>,
}

pub fn json(v: &View<'_>) -> Bytes {
    let value = serde_json::json!({
        "in_queue": true,
        "position": v.position,
        "estimated_wait_seconds": v.wait_minutes * 60,
        "refresh_seconds": v.refresh_secs,
        "opens_at": v.opens_at,
    });
    Bytes::from(value.to_string())
}

/// The site's template with `{{position}}`, `{{wait_minutes}}`, `{{refresh_seconds}}` and
/// `{{site}}` replaced, or the branded page.
pub fn html(v: &View<'_>, template: Option<&str>) -> Bytes {
    let position = v
        .position
        .map_or_else(|| "—".to_string(), |p| p.to_string());
    if let Some(t) = template {
        return Bytes::from(
            t.replace("{{position}}", &position)
                .replace("{{wait_minutes}}", &v.wait_minutes.to_string())
                .replace("{{refresh_seconds}}", &v.refresh_secs.to_string())
                .replace("{{site}}", &escape(v.site)),
        );
    }
    let status = match (v.position, v.opens_at) {
        (None, Some(_)) => "The doors open soon. Everyone who is here before the opening gets a place by random draw at the opening — arriving earlier gives no advantage.".to_string(),
        (Some(1), _) => "You are next.".to_string(),
        (Some(p), _) => format!(
            "There are {} people ahead of you. Estimated wait: about {} minute(s).",
            p - 1,
            v.wait_minutes.max(1)
        ),
        (None, None) => "You are in line.".to_string(),
    };
    Bytes::from(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="{refresh}">
<title>You are in line</title>
<style>body{{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1d2327;display:flex;min-height:100vh;margin:0;align-items:center;justify-content:center}}
main{{max-width:34rem;padding:2.5rem;background:#fff;border-radius:12px;box-shadow:0 2px 12px #0001;text-align:center}}
h1{{font-size:1.5rem;margin:0 0 1rem}}p{{line-height:1.5}}.pos{{font-size:3rem;font-weight:700;margin:.5rem 0}}small{{color:#646970}}</style></head>
<body><main><h1>You are in line</h1><p>{site} has many visitors right now. Your place is kept: this page refreshes by itself every {refresh} seconds and lets you in when it is your turn.</p>
<p class="pos" id="position">{position}</p><p>{status}</p><p><small>Please keep this page open; refreshing it does not lose your place.</small></p></main></body></html>
"#,
        refresh = v.refresh_secs,
        site = escape(v.site),
        status = escape(&status),
    ))
}
