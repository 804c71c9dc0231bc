//! What each notifier sends, built from alerts: Alertmanager's webhook body (version 4),
//! Alertmanager's v2 `postableAlerts`, a Slack `text`, an e-mail's subject and body.

use crate::alerts::{Alert, AlertState, GroupNotice};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Alertmanager's "not set" time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// How long Alertmanager keeps a firing alert without hearing of it again (we remind it
/// every minute, as Prometheus does with 4× its resend delay).
pub const ALERTMANAGER_VALIDITY: Duration = Duration::from_secs(4 * 60);

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn status(a: &Alert) -> &'static str {
    if a.state == AlertState::Resolved {
        "resolved"
    } else {
        "firing"
    }
}

fn starts_at(a: &Alert) -> SystemTime {
    a.fired_at.unwrap_or(a.active_since)
}

/// Labels (or annotations) every alert of the list has with the same value.
fn common(maps: Vec<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let Some((first, rest)) = maps.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The body Alertmanager's webhook receivers get (`version: "4"`).
pub fn webhook_v4(receiver: &str, notice: &GroupNotice, external_url: &str) -> Value {
    let firing = notice
        .alerts
        .iter()
        .any(|a| a.state != AlertState::Resolved);
    let alerts: Vec<Value> = notice
        .alerts
        .iter()
        .map(|a| {
            json!({
                "status": status(a),
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(starts_at(a)),
                "endsAt": a.resolved_at.map_or_else(|| ZERO_TIME.to_string(), rfc3339),
                "generatorURL": format!("{external_url}/probes"),
                "fingerprint": a.fingerprint(),
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": notice.key,
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": receiver,
        "groupLabels": notice.group_labels,
        "commonLabels": common(notice.alerts.iter().map(|a| &a.labels).collect()),
        "commonAnnotations": common(notice.alerts.iter().map(|a| &a.annotations).collect()),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

/// Alertmanager v2 `POST /api/v2/alerts` body. A firing alert is valid for
/// [`ALERTMANAGER_VALIDITY`] (reminded every minute); a resolved one ends when it was resolved.
pub fn alertmanager_v2(alerts: &[Alert], external_url: &str, now: SystemTime) -> Value {
    Value::Array(
        alerts
            .iter()
            .map(|a| {
                json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(starts_at(a)),
                    "endsAt": rfc3339(a.resolved_at.unwrap_or(now + ALERTMANAGER_VALIDITY)),
                    "generatorURL": format!("{external_url}/probes"),
                })
            })
            .collect(),
    )
}

/// `[FIRING:2] CertSoon` / `[RESOLVED] CertSoon`, as Alertmanager titles them.
pub fn title(notice: &GroupNotice) -> String {
    let firing = notice
        .alerts
        .iter()
        .filter(|a| a.state != AlertState::Resolved)
        .count();
    let names: Vec<&str> = notice.group_labels.values().map(String::as_str).collect();
    let what = if names.is_empty() {
        "alerts".to_string()
    } else {
        names.join(" ")
    };
    if firing > 0 {
        format!("[FIRING:{firing}] {what}")
    } else {
        format!("[RESOLVED] {what}")
    }
}

/// A plain-text account of the group: title, then one paragraph per alert.
pub fn text(notice: &GroupNotice) -> String {
    let mut out = title(notice);
    out.push('\n');
    for a in &notice.alerts {
        let state = if a.state == AlertState::Resolved {
            "RESOLVED"
        } else {
            "FIRING"
        };
        let summary = a.annotations.get("summary").map_or("", String::as_str);
        out.push_str(&format!(
            "\n{state} {} on {}: {summary}\n  since {}",
            a.name(),
            a.labels.get("probe").map_or("", String::as_str),
            rfc3339(starts_at(a)),
        ));
        if let Some(end) = a.resolved_at {
            out.push_str(&format!(", resolved {}", rfc3339(end)));
        }
        if let Some(d) = a.annotations.get("description") {
            out.push_str(&format!("\n  {d}"));
        }
        let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("\n  labels: {}\n", labels.join(", ")));
    }
    out
}

/// A Slack-compatible incoming-webhook body.
pub fn slack(notice: &GroupNotice) -> Value {
    json!({ "text": text(notice) })
}
