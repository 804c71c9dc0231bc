//! Alert states and notification timing, with no I/O: the service feeds it probe results
//! (`observe`) and the time (`tick`); it answers with what to send.
//!
//! An alert is one rule on one probe. Condition true → pending; held for `for` → firing;
//! false again → resolved (a pending alert is simply dropped). Firing and resolved alerts
//! are told in groups (the labels of `[monitor] group_by`), as Alertmanager does: a new
//! group waits `group_wait` for company, a change is told at most every `group_interval`, a
//! group still firing is told again every `repeat_interval`. A silenced alert (a silence
//! matching its labels, or maintenance for rules it explains) changes state as usual but is
//! told to nobody; a resolved alert whose firing nobody was told is dropped quietly.

use crate::alerts::silence::Silences;
use crate::result::ProbeResult;
use peakguard_config::{AlertRule, Condition, MonitorSettings, ProbeConfig, ProbeKind};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

/// Transitions remembered for the status API.
const EVENTS_KEPT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

/// One rule on one probe.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// When the condition started to hold.
    #[serde(serialize_with = "crate::result::unix_seconds")]
    pub active_since: SystemTime,
    #[serde(serialize_with = "optional_unix_seconds")]
    pub fired_at: Option<SystemTime>,
    #[serde(serialize_with = "optional_unix_seconds")]
    pub resolved_at: Option<SystemTime>,
    /// The compared value at the last result (`None` for `down`, or when missing).
    pub value: Option<f64>,
    /// Why nobody is told: a silence's id, or `maintenance`.
    pub silenced_by: Option<String>,
    /// Someone was told it fires (so its end is told too).
    pub notified: bool,
    /// Notifier names (empty: all).
    #[serde(skip)]
    pub notify: Vec<String>,
    #[serde(skip)]
    for_: Duration,
    #[serde(skip)]
    maintenance_explains: bool,
}

fn optional_unix_seconds<S: serde::Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => crate::result::unix_seconds(t, s),
        None => s.serialize_none(),
    }
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    fn sendable(&self) -> bool {
        self.silenced_by.is_none() && self.state == AlertState::Firing
            || self.state == AlertState::Resolved && self.notified
    }

    /// A stable identity of its labels (FNV-1a), as Alertmanager's `fingerprint`.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (k, v) in &self.labels {
            for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    }
}

/// A notification for one group: the alerts to tell, as they are now.
#[derive(Debug, Clone)]
pub struct GroupNotice {
    pub key: String,
    pub group_labels: BTreeMap<String, String>,
    pub alerts: Vec<Alert>,
}

/// A state change worth remembering.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(serialize_with = "crate::result::unix_seconds")]
    pub at: SystemTime,
    pub alertname: String,
    pub probe: String,
    pub state: AlertState,
    pub silenced: bool,
}

#[derive(Debug)]
struct Group {
    labels: BTreeMap<String, String>,
    created: SystemTime,
    last_sent: Option<SystemTime>,
    /// Something changed since the last notification.
    dirty: bool,
}

/// What a tick asks the service to send.
#[derive(Debug, Default)]
pub struct TickOutput {
    /// Group notifications due now (webhook, Slack, e-mail).
    pub groups: Vec<GroupNotice>,
    /// Alerts that started firing or were resolved in this tick or the observations before it,
    /// unsilenced (Alertmanager is told at once and groups on its own).
    pub changed: Vec<Alert>,
}

pub struct Engine {
    rules: Vec<AlertRule>,
    settings: MonitorSettings,
    /// Keyed by (rule name, probe name).
    alerts: BTreeMap<(String, String), Alert>,
    groups: BTreeMap<String, Group>,
    events: VecDeque<Event>,
    changed: Vec<Alert>,
}

impl Engine {
    pub fn new(rules: Vec<AlertRule>, settings: MonitorSettings) -> Engine {
        Engine {
            rules,
            settings,
            alerts: BTreeMap::new(),
            groups: BTreeMap::new(),
            events: VecDeque::new(),
            changed: Vec::new(),
        }
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// Evaluates the rules that watch this probe against its newest result; `down` is the
    /// probe's state after its thresholds.
    pub fn observe(&mut self, probe: &ProbeConfig, result: &ProbeResult, down: bool) {
        let now = result.at;
        let rules = std::mem::take(&mut self.rules);
        for rule in &rules {
            if rule.probe.as_ref().is_some_and(|p| p != &probe.name) {
                continue;
            }
            let (active, value) = match &rule.when {
                Condition::Down => (down, None),
                Condition::Compare {
                    value,
                    op,
                    threshold,
                } => {
                    if !crate::probe::values_of(&probe.kind).contains(&value.as_str()) {
                        continue; // a rule for every probe, this kind has no such value
                    }
                    match result.value(value) {
                        Some(v) => (op.holds(v, *threshold), Some(v)),
                        // Not measured this run (a failed handshake has no days_left):
                        // unknown, so the alert stays as it is.
                        None => continue,
                    }
                }
            };
            let key = (rule.name.clone(), probe.name.clone());
            match (self.alerts.get_mut(&key), active) {
                (Some(alert), true) if alert.state != AlertState::Resolved => {
                    alert.value = value;
                    alert.annotations = annotations(rule, probe, result, value);
                }
                (Some(_), true) | (None, true) => {
                    let alert = new_alert(rule, probe, result, value, now);
                    self.alerts.insert(key, alert);
                }
                (Some(alert), false) => match alert.state {
                    AlertState::Pending => {
                        self.alerts.remove(&key);
                    }
                    AlertState::Firing => {
                        alert.state = AlertState::Resolved;
                        alert.resolved_at = Some(now);
                        alert.value = value;
                        let alert = alert.clone();
                        self.transition(&alert, now);
                        if !alert.notified {
                            self.alerts.remove(&key);
                        }
                    }
                    AlertState::Resolved => {}
                },
                (None, false) => {}
            }
        }
        self.rules = rules;
    }

    fn transition(&mut self, alert: &Alert, now: SystemTime) {
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            at: now,
            alertname: alert.name().to_string(),
            probe: alert.labels.get("probe").cloned().unwrap_or_default(),
            state: alert.state,
            silenced: alert.silenced_by.is_some(),
        });
        if alert.sendable() {
            self.changed.push(alert.clone());
            let key = self.group_key(alert);
            let labels = self.group_labels(alert);
            let group = self.groups.entry(key).or_insert(Group {
                labels,
                created: now,
                last_sent: None,
                dirty: false,
            });
            group.dirty = true;
        }
    }

    fn group_labels(&self, alert: &Alert) -> BTreeMap<String, String> {
        self.settings
            .group_by
            .iter()
            .filter_map(|l| alert.labels.get(l).map(|v| (l.clone(), v.clone())))
            .collect()
    }

    fn group_key(&self, alert: &Alert) -> String {
        let labels: Vec<String> = self
            .group_labels(alert)
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{{}}:{{{}}}", labels.join(","))
    }

    /// Moves pending alerts whose `for` has passed to firing, applies silences and
    /// maintenance, and says which groups are due.
    pub fn tick(&mut self, now: SystemTime, silences: &Silences, maintenance: bool) -> TickOutput {
        let unix = crate::result::unix(now);
        let keys: Vec<_> = self.alerts.keys().cloned().collect();
        for key in keys {
            let Some(alert) = self.alerts.get_mut(&key) else {
                continue;
            };
            let was_silenced = alert.silenced_by.is_some();
            alert.silenced_by = if maintenance && alert.maintenance_explains {
                Some("maintenance".into())
            } else {
                silences.covering(&alert.labels, unix).map(|s| s.id.clone())
            };
            let fires = alert.state == AlertState::Pending
                && now
                    .duration_since(alert.active_since)
                    .is_ok_and(|held| held >= alert.for_);
            if fires {
                alert.state = AlertState::Firing;
                alert.fired_at = Some(now);
                let alert = alert.clone();
                self.transition(&alert, now);
            } else if was_silenced
                && alert.silenced_by.is_none()
                && alert.state == AlertState::Firing
                && !alert.notified
            {
                // A silence ended over an alert still firing: tell it now.
                let alert = alert.clone();
                self.transition(&alert, now);
            }
        }
        let mut out = TickOutput {
            changed: std::mem::take(&mut self.changed),
            ..TickOutput::default()
        };
        let group_keys: Vec<String> = self.groups.keys().cloned().collect();
        for gk in group_keys {
            let members: Vec<(String, String)> = self
                .alerts
                .iter()
                .filter(|(_, a)| a.sendable() && self.group_key(a) == gk)
                .map(|(k, _)| k.clone())
                .collect();
            let Some(group) = self.groups.get_mut(&gk) else {
                continue;
            };
            if members.is_empty() {
                self.groups.remove(&gk);
                continue;
            }
            let after = |t: SystemTime, d: Duration| now.duration_since(t).is_ok_and(|e| e >= d);
            let due = match group.last_sent {
                None => group.dirty && after(group.created, self.settings.group_wait.0),
                Some(last) => {
                    group.dirty && after(last, self.settings.group_interval.0)
                        || after(last, self.settings.repeat_interval.0)
                }
            };
            if !due {
                continue;
            }
            group.last_sent = Some(now);
            group.dirty = false;
            let mut alerts = Vec::with_capacity(members.len());
            for key in members {
                let resolved = self
                    .alerts
                    .get(&key)
                    .is_some_and(|a| a.state == AlertState::Resolved);
                if resolved {
                    if let Some(a) = self.alerts.remove(&key) {
                        alerts.push(a);
                    }
                } else if let Some(a) = self.alerts.get_mut(&key) {
                    a.notified = true;
                    alerts.push(a.clone());
                }
            }
            out.groups.push(GroupNotice {
                key: gk.clone(),
                group_labels: group.labels.clone(),
                alerts,
            });
        }
        // Resolved alerts nobody will be told of (their group went) leave too.
        self.alerts
            .retain(|_, a| a.state != AlertState::Resolved || a.notified);
        out
    }

    /// Every alert firing and unsilenced now (Alertmanager is reminded of them).
    pub fn firing(&self) -> Vec<Alert> {
        self.alerts
            .values()
            .filter(|a| a.state == AlertState::Firing && a.silenced_by.is_none())
            .cloned()
            .collect()
    }
}

fn maintenance_explains(rule: &AlertRule, kind: &ProbeKind) -> bool {
    rule.silenced_by_maintenance
        .unwrap_or_else(|| crate::probe::find(kind).is_some_and(|p| p.silenced_by_maintenance()))
}

fn new_alert(
    rule: &AlertRule,
    probe: &ProbeConfig,
    result: &ProbeResult,
    value: Option<f64>,
    now: SystemTime,
) -> Alert {
    let mut labels = rule.labels.clone();
    labels.insert("alertname".into(), rule.name.clone());
    labels.insert("severity".into(), rule.severity.clone());
    labels.insert("probe".into(), probe.name.clone());
    labels.insert("kind".into(), probe.kind.as_str().into());
    Alert {
        labels,
        annotations: annotations(rule, probe, result, value),
        state: AlertState::Pending,
        active_since: now,
        fired_at: None,
        resolved_at: None,
        value,
        silenced_by: None,
        notified: false,
        notify: rule.notify.clone(),
        for_: rule.for_.0,
        maintenance_explains: maintenance_explains(rule, &probe.kind),
    }
}

fn annotations(
    rule: &AlertRule,
    probe: &ProbeConfig,
    result: &ProbeResult,
    value: Option<f64>,
) -> BTreeMap<String, String> {
    let shown = value.map_or_else(String::new, |v| {
        format!("{}", (v * 1000.0).round() / 1000.0)
    });
    let fill = |template: &str| {
        template
            .replace("{probe}", &probe.name)
            .replace("{value}", &shown)
            .replace("{message}", &result.message)
    };
    let summary = match (&rule.summary, &rule.when) {
        (Some(s), _) => fill(s),
        (None, Condition::Down) => fill("{probe} is down: {message}"),
        (
            None,
            Condition::Compare {
                value,
                op,
                threshold,
            },
        ) => format!(
            "{}: {value} is {shown} ({value} {} {threshold})",
            probe.name,
            op.as_str()
        ),
    };
    let mut out = BTreeMap::from([("summary".to_string(), summary)]);
    if let Some(d) = &rule.description {
        out.insert("description".into(), fill(d));
    }
    out.insert("message".into(), result.message.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> peakguard_config::Config {
        peakguard_config::parse_with(text, "test", &crate::extensions())
            .expect("valid configuration")
    }

    const BASE: &str = "[monitor]\ngroup_wait = \"10s\"\ngroup_interval = \"60s\"\nrepeat_interval = \"1h\"\n[[probe]]\nname = \"cert\"\nkind = \"tls\"\naddress = \"127.0.0.1:1\"\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n";

    fn tls_result(probe: &ProbeConfig, days: f64, at: SystemTime) -> ProbeResult {
        let mut r = ProbeResult::new(probe, true, "ok".into());
        r.at = at;
        r.tls = Some(crate::result::TlsDetail {
            earliest_expiry: 0,
            days_left: days,
            chain_valid: Some(true),
        });
        r
    }

    fn secs(t0: SystemTime, s: u64) -> SystemTime {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved_in_groups() {
        let c = config(&format!(
            "{BASE}[[alert]]\nname = \"CertSoon\"\nprobe = \"cert\"\nwhen = \"days_left < 14\"\nfor = \"30s\"\nseverity = \"critical\"\nlabels = {{ team = \"web\" }}\n"
        ));
        let dir = tempfile::tempdir().expect("temp dir");
        let silences = Silences::load(dir.path().join("s.json"));
        let mut e = Engine::new(c.alerts.clone(), c.monitor.clone());
        let probe = &c.probes[0];
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        e.observe(probe, &tls_result(probe, 30.0, t0), false);
        assert_eq!(e.alerts().count(), 0, "30 days left is fine");
        e.observe(probe, &tls_result(probe, 5.0, secs(t0, 1)), false);
        let a = e.alerts().next().expect("pending");
        assert_eq!(a.state, AlertState::Pending);
        assert_eq!(a.labels["team"], "web");
        assert_eq!(a.labels["severity"], "critical");
        assert!(a.annotations["summary"].contains("days_left is 5"), "{a:?}");
        let out = e.tick(secs(t0, 20), &silences, false);
        assert!(
            out.groups.is_empty() && out.changed.is_empty(),
            "still pending"
        );
        let out = e.tick(secs(t0, 31), &silences, false);
        assert_eq!(out.changed.len(), 1, "fired: Alertmanager hears at once");
        assert!(
            out.groups.is_empty(),
            "the group waits group_wait for company"
        );
        let out = e.tick(secs(t0, 41), &silences, false);
        assert_eq!(out.groups.len(), 1);
        assert_eq!(out.groups[0].key, "{}:{alertname=\"CertSoon\"}");
        assert_eq!(out.groups[0].alerts[0].state, AlertState::Firing);
        assert!(
            e.tick(secs(t0, 120), &silences, false).groups.is_empty(),
            "nothing new"
        );
        let repeat = e.tick(secs(t0, 41 + 3600), &silences, false);
        assert_eq!(repeat.groups.len(), 1, "repeat_interval: told again");
        e.observe(probe, &tls_result(probe, 90.0, secs(t0, 3700)), false);
        let out = e.tick(secs(t0, 3700), &silences, false);
        assert_eq!(out.changed.len(), 1);
        assert!(
            out.groups.is_empty(),
            "group_interval since the last notice"
        );
        let out = e.tick(secs(t0, 41 + 3600 + 60), &silences, false);
        assert_eq!(out.groups.len(), 1);
        assert_eq!(out.groups[0].alerts[0].state, AlertState::Resolved);
        assert_eq!(e.alerts().count(), 0, "told, then forgotten");
        let states: Vec<_> = e.events().map(|ev| ev.state).collect();
        assert_eq!(states, [AlertState::Firing, AlertState::Resolved]);
    }

    #[test]
    fn a_run_that_measured_nothing_leaves_a_value_alert_as_it_was() {
        let c = config(&format!(
            "{BASE}[[alert]]\nname = \"CertSoon\"\nprobe = \"cert\"\nwhen = \"days_left < 14\"\n"
        ));
        let dir = tempfile::tempdir().expect("temp dir");
        let silences = Silences::load(dir.path().join("s.json"));
        let mut e = Engine::new(c.alerts.clone(), c.monitor.clone());
        let probe = &c.probes[0];
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        e.observe(probe, &tls_result(probe, 5.0, t0), false);
        e.tick(secs(t0, 1), &silences, false);
        // The server is down: no handshake, no days_left. Not a reason to say it resolved.
        let mut failed = ProbeResult::new(probe, false, "cannot connect".into());
        failed.at = secs(t0, 2);
        e.observe(probe, &failed, true);
        let out = e.tick(secs(t0, 3), &silences, false);
        assert!(out.changed.is_empty(), "{:?}", out.changed);
        assert_eq!(e.alerts().next().map(|a| a.state), Some(AlertState::Firing));
    }

    #[test]
    fn a_blip_shorter_than_for_tells_nobody_and_a_silence_hides_a_firing_alert() {
        let c = config(&format!(
            "{BASE}[[alert]]\nname = \"Down\"\nwhen = \"down\"\nfor = \"60s\"\n"
        ));
        let dir = tempfile::tempdir().expect("temp dir");
        let mut silences = Silences::load(dir.path().join("s.json"));
        let mut e = Engine::new(c.alerts.clone(), c.monitor.clone());
        let home = &c.probes[1];
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut failed = ProbeResult::new(home, false, "HTTP 500".into());
        failed.at = t0;
        e.observe(home, &failed, true);
        let mut ok = ProbeResult::new(home, true, "HTTP 200".into());
        ok.at = secs(t0, 30);
        e.observe(home, &ok, false);
        assert_eq!(e.alerts().count(), 0, "pending, then gone");
        let out = e.tick(secs(t0, 100), &silences, false);
        assert!(out.changed.is_empty() && out.groups.is_empty());

        let now = crate::result::unix(secs(t0, 100));
        silences
            .add(
                BTreeMap::from([("probe".to_string(), "home".to_string())]),
                now + 600,
                "deploy".into(),
                now,
            )
            .expect("silence");
        failed.at = secs(t0, 100);
        e.observe(home, &failed, true);
        let out = e.tick(secs(t0, 200), &silences, false);
        let a = e.alerts().next().expect("firing");
        assert_eq!(a.state, AlertState::Firing);
        assert!(a.silenced_by.is_some());
        assert!(out.changed.is_empty() && out.groups.is_empty(), "silenced");
        let out = e.tick(secs(t0, 300), &silences, false);
        assert!(out.groups.is_empty());
        // The silence ends (at 700): told then.
        let out = e.tick(secs(t0, 701), &silences, false);
        assert_eq!(out.changed.len(), 1);
        let out = e.tick(secs(t0, 711), &silences, false);
        assert_eq!(out.groups.len(), 1);
    }

    #[test]
    fn maintenance_silences_the_site_probes_it_explains() {
        let c = config(&format!(
            "{BASE}[[alert]]\nname = \"Down\"\nwhen = \"down\"\n[[probe]]\nname = \"disk\"\nkind = \"disk\"\npath = \"/\"\n"
        ));
        let dir = tempfile::tempdir().expect("temp dir");
        let silences = Silences::load(dir.path().join("s.json"));
        let mut e = Engine::new(c.alerts.clone(), c.monitor.clone());
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for probe in &c.probes[1..] {
            let mut failed = ProbeResult::new(probe, false, "failing".into());
            failed.at = t0;
            e.observe(probe, &failed, true);
        }
        let out = e.tick(secs(t0, 1), &silences, true);
        let told: Vec<_> = out
            .changed
            .iter()
            .map(|a| a.labels["probe"].clone())
            .collect();
        assert_eq!(
            told,
            ["disk"],
            "maintenance explains the site, not a full disk"
        );
        let home = e
            .alerts()
            .find(|a| a.labels["probe"] == "home")
            .expect("home alert");
        assert_eq!(home.silenced_by.as_deref(), Some("maintenance"));
    }
}
