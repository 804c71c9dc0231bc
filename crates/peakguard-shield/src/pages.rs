//! The branded pages the edge answers itself: maintenance, "temporarily unavailable", and
//! "busy" (origin admission could not give a request its turn in time; it retries itself).
//! Small and self-contained (no external assets): they must work when all else fails.

use bytes::Bytes;

/// The shield's pages' escaping (text, and attribute values in double quotes): html-escape's,
/// as the rehearse report's.
pub(crate) fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

/// The branded frame. `head` and `body` are HTML, already escaped.
fn frame(title: &str, head: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">{head}
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1d2327;display:flex;min-height:100vh;margin:0;align-items:center;justify-content:center}}
main{{max-width:34rem;padding:2.5rem;background:#fff;border-radius:12px;box-shadow:0 2px 12px #0001;text-align:center}}
h1{{font-size:1.5rem;margin:0 0 1rem}}p{{line-height:1.5}}small{{color:#646970}}</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>
"#,
        title = escape(title),
    ))
}

/// A page with a title, a message and "try again in about N minute(s)".
pub fn page(title: &str, message: &str, retry_after_secs: u64) -> Bytes {
    let minutes = retry_after_secs.div_ceil(60).max(1);
    frame(
        title,
        "",
        &format!(
            "<p>{}</p><p><small>Please try again in about {minutes} minute(s).</small></p>",
            escape(message)
        ),
    )
}

pub fn unavailable(retry_after_secs: u64) -> Bytes {
    page(
        "We'll be right back",
        "This page is temporarily unavailable while we fix a problem on our side. Nothing you did caused it.",
        retry_after_secs,
    )
}

pub fn maintenance(message: &str, retry_after_secs: u64) -> Bytes {
    let message = if message.is_empty() {
        "We are performing scheduled maintenance."
    } else {
        message
    };
    page("Down for maintenance", message, retry_after_secs)
}

/// The origin is at its limit and this request did not get its turn in time: the page
/// reloads itself after `retry_after_secs`.
pub fn busy(retry_after_secs: u64) -> Bytes {
    let secs = retry_after_secs.max(1);
    frame(
        "One moment, please",
        &format!(r#"<meta http-equiv="refresh" content="{secs}">"#),
        &format!(
            "<p>Many visitors are here right now. This page tries again by itself in {secs} seconds; please keep it open.</p><p><small>Nothing is lost: your cart is kept.</small></p>"
        ),
    )
}

/// This client is refused (deny list).
pub fn denied() -> Bytes {
    frame(
        "Access denied",
        "",
        "<p>This site does not accept requests from this client.</p>",
    )
}

/// This client sent more requests than its budget allows.
pub fn too_many(retry_after_secs: u64) -> Bytes {
    frame(
        "Too many requests",
        "",
        &format!(
            "<p>You sent more requests than this site accepts from one visitor in a short time.</p><p><small>Please wait {retry_after_secs} seconds, then try again.</small></p>"
        ),
    )
}

/// Too many failed logins from this client: it may try again later.
pub fn login_locked(retry_after_secs: u64) -> Bytes {
    frame(
        "Too many failed logins",
        "",
        &format!(
            "<p>There were too many failed login attempts from your connection.</p><p><small>You can try again in {retry_after_secs} seconds. If you forgot your password, ask the site's administrator.</small></p>"
        ),
    )
}

/// The WAF refused a request: the incident id lets the site's owner find out why
/// (`peakguard waf explain ID`) and allow it if it was legitimate.
pub fn blocked(incident: &str) -> Bytes {
    frame(
        "Request blocked",
        "",
        &format!(
            "<p>This request looked like an attack on the site and was not passed on. If you were doing something ordinary, please tell the site's owner this reference:</p><p><code>{}</code></p>",
            escape(incident)
        ),
    )
}
