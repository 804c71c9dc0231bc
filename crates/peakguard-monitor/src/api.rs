//! What the monitor answers through an admin API (the edge's in `serve`, its own in
//! `peakguard monitor`):
//!
//! - `GET  /probes` → each probe: up or down, counts, its last results
//! - `GET  /alerts` → alerts (pending, firing, resolved-not-yet-told), silences, notifiers,
//!   recent transitions
//! - `POST /alerts/silence?match=alertname=X,probe=Y&for=2h[&comment=…]` (or `until=UNIX`)
//! - `POST /alerts/unsilence?id=ID`
//!
//! and its Prometheus text for `/metrics`.

use crate::service::Monitor;
use peakguard_prometheus::{Exposition, Kind};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

/// Longest silence: a year (a forgotten silence must end some day).
const MAX_SILENCE_SECS: u64 = 366 * 86_400;

/// What a per-probe metric reads of a probe's track.
type TrackValue = fn(&crate::track::Track) -> u64;

/// The monitor in the edge's admin API (`serve`).
impl peakguard_admin::AdminExtension for Monitor {
    fn name(&self) -> &str {
        "monitor"
    }

    fn handle(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
    ) -> Option<(u16, Value)> {
        Monitor::handle(self, method, path, query)
    }

    fn metrics(&self) -> String {
        Monitor::metrics(self)
    }

    fn status(&self) -> Value {
        Monitor::status(self)
    }
}

impl Monitor {
    /// Answers `method path` when the endpoint is the monitor's.
    pub fn handle(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
    ) -> Option<(u16, Value)> {
        match (method, path) {
            ("GET", "/probes") => Some((200, self.probes_json())),
            ("GET", "/alerts") => Some((200, self.alerts_json())),
            ("POST", "/alerts/silence") => Some(self.silence(query)),
            ("POST", "/alerts/unsilence") => Some(self.unsilence(query)),
            (_, "/probes" | "/alerts" | "/alerts/silence" | "/alerts/unsilence") => Some((
                405,
                json!({"error": "GET /probes, GET /alerts, POST /alerts/silence, POST /alerts/unsilence"}),
            )),
            _ => None,
        }
    }

    fn probes_json(&self) -> Value {
        let probes: Vec<Value> = self
            .inner
            .tracks
            .iter()
            .map(|t| serde_json::to_value(&*t.lock()).unwrap_or(Value::Null))
            .collect();
        json!({ "probes": probes })
    }

    fn alerts_json(&self) -> Value {
        let (alerts, events) = {
            let engine = self.inner.engine.lock();
            let alerts: Vec<Value> = engine
                .alerts()
                .map(|a| serde_json::to_value(a).unwrap_or(Value::Null))
                .collect();
            let events: Vec<Value> = engine
                .events()
                .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
                .collect();
            (alerts, events)
        };
        let silences = self.inner.silences.lock().in_force().to_vec();
        json!({
            "alerts": alerts,
            "silences": silences,
            "notifiers": self.notifier_statuses(),
            "maintenance": self.inner.maintenance.load(Ordering::Relaxed),
            "events": events,
        })
    }

    fn silence(&self, q: &HashMap<String, String>) -> (u16, Value) {
        let bad = |m: String| (400, json!({ "error": m }));
        let mut matchers = BTreeMap::new();
        for pair in q.get("match").map_or("", String::as_str).split(',') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            match pair.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    matchers.insert(k.trim().to_string(), v.trim().to_string());
                }
                _ => {
                    return bad(format!(
                        "match: {pair:?} is not label=value (e.g. alertname=SiteDown,probe=home)"
                    ));
                }
            }
        }
        let now = crate::result::unix(SystemTime::now());
        let ends_at = match (q.get("for"), q.get("until")) {
            (Some(d), None) => match humantime::parse_duration(d) {
                Ok(d) => now.saturating_add(d.as_secs().min(MAX_SILENCE_SECS)),
                Err(_) => return bad(format!("for: {d:?} is not a duration (write 2h, 30m)")),
            },
            (None, Some(u)) => match u.parse::<u64>() {
                Ok(u) => u.min(now.saturating_add(MAX_SILENCE_SECS)),
                Err(_) => return bad(format!("until: {u:?} is not seconds since the epoch")),
            },
            _ => return bad("say how long: for=2h or until=UNIX_SECONDS".into()),
        };
        let comment: String = q
            .get("comment")
            .map_or("", String::as_str)
            .chars()
            .take(500)
            .collect();
        match self
            .inner
            .silences
            .lock()
            .add(matchers, ends_at, comment, now)
        {
            Ok(s) => {
                log::info!(
                    "silence {} added until {}: {:?}",
                    s.id,
                    s.ends_at,
                    s.matchers
                );
                (200, json!(s))
            }
            Err(crate::alerts::SilenceError::Invalid(m)) => bad(m),
            Err(e) => (500, json!({ "error": e.to_string() })),
        }
    }

    fn unsilence(&self, q: &HashMap<String, String>) -> (u16, Value) {
        let Some(id) = q.get("id") else {
            return (
                400,
                json!({"error": "say which silence: id=ID (see GET /alerts)"}),
            );
        };
        match self.inner.silences.lock().remove(id) {
            Ok(true) => (200, json!({ "removed": id })),
            Ok(false) => (
                404,
                json!({ "error": format!("no silence {id:?} is in force") }),
            ),
            Err(e) => (500, json!({ "error": e.to_string() })),
        }
    }

    /// Prometheus text: the probes' last results (blackbox_exporter's names), whether each
    /// probe is up after its thresholds, `ALERTS` as Prometheus writes it, the notifiers.
    pub fn metrics(&self) -> String {
        let tracks: Vec<crate::track::Track> =
            self.inner.tracks.iter().map(|t| t.lock().clone()).collect();
        let last: Vec<crate::ProbeResult> =
            tracks.iter().filter_map(|t| t.last().cloned()).collect();
        let mut out = crate::metrics::render(&last);
        let mut e = Exposition::new(&mut out);
        let per_probe: [(&str, Kind, &str, TrackValue); 3] = [
            (
                "peakguard_probe_up",
                Kind::Gauge,
                "Whether the probe counts as up after its failure and success thresholds.",
                |t| u64::from(!t.down),
            ),
            (
                "peakguard_probe_runs_total",
                Kind::Counter,
                "Runs of the probe.",
                |t| t.runs,
            ),
            (
                "peakguard_probe_failures_total",
                Kind::Counter,
                "Failed runs of the probe.",
                |t| t.failures,
            ),
        ];
        for (name, kind, help, value) in per_probe {
            let mut f = e.family(name, kind, help);
            for t in &tracks {
                f.sample(&[("probe", &t.name), ("kind", t.kind)], value(t));
            }
        }
        let alerts: Vec<crate::alerts::Alert> =
            self.inner.engine.lock().alerts().cloned().collect();
        let mut f = e.family(
            "ALERTS",
            Kind::Gauge,
            "Alerts pending or firing (as Prometheus exposes them).",
        );
        for a in alerts
            .iter()
            .filter(|a| a.state != crate::alerts::AlertState::Resolved)
        {
            let mut labels: Vec<(&str, &str)> = a
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            labels.push((
                "alertstate",
                if a.state == crate::alerts::AlertState::Firing {
                    "firing"
                } else {
                    "pending"
                },
            ));
            f.sample(&labels, 1u64);
        }
        let notifiers = self.notifier_statuses();
        if !notifiers.is_empty() {
            let mut f = e.family(
                "peakguard_notifications_total",
                Kind::Counter,
                "Notifications by notifier and outcome (sent; failed after every retry; dropped: queue full).",
            );
            for n in &notifiers {
                for (result, v) in [
                    ("sent", n.sent),
                    ("failed", n.failed),
                    ("dropped", n.dropped),
                ] {
                    f.sample(
                        &[("notifier", &n.name), ("kind", n.kind), ("result", result)],
                        v,
                    );
                }
            }
            let mut f = e.family(
                "peakguard_notifier_failing",
                Kind::Gauge,
                "Whether the notifier's last attempt failed.",
            );
            for n in &notifiers {
                f.sample(&[("notifier", &n.name), ("kind", n.kind)], n.failing);
            }
        }
        let silences = self.inner.silences.lock().in_force().len();
        e.single(
            "peakguard_silences",
            Kind::Gauge,
            "Silences in force.",
            silences,
        );
        out
    }

    /// A short summary for `/status`.
    pub fn status(&self) -> Value {
        let down: Vec<String> = self
            .inner
            .tracks
            .iter()
            .filter_map(|t| {
                let t = t.lock();
                t.down.then(|| t.name.clone())
            })
            .collect();
        let firing = self
            .inner
            .engine
            .lock()
            .alerts()
            .filter(|a| a.state == crate::alerts::AlertState::Firing)
            .count();
        let failing: Vec<String> = self
            .notifier_statuses()
            .into_iter()
            .filter(|n| n.failing)
            .map(|n| n.name)
            .collect();
        json!({
            "probes": self.inner.tracks.len(),
            "down": down,
            "alerts_firing": firing,
            "notifiers_failing": failing,
        })
    }
}
