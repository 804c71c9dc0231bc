//! `[monitor]`, `[[alert]]` and `[[notifier]]`: how probe results become alerts and where
//! the alerts go.

use crate::monitor::{ProbeKind, ProbeKindSpec};
use crate::units::Seconds;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[monitor]`: what the running monitor keeps and how it groups notifications (the
/// meanings are Alertmanager's).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSettings {
    /// Results kept per probe for the status API (`GET /probes`), 1–1000.
    pub history: usize,
    /// Silences are kept here (0600), so they outlive a restart. Default: the state
    /// directory's `monitor.json`.
    pub state_file: PathBuf,
    /// Alerts with the same values of these labels are sent together.
    pub group_by: Vec<String>,
    /// How long a new group waits for more alerts before its first notification.
    pub group_wait: Seconds,
    /// How long a group waits before telling of a change (new alert, resolved alert).
    pub group_interval: Seconds,
    /// How often a group still firing is told again.
    pub repeat_interval: Seconds,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            history: 20,
            state_file: PathBuf::new(),
            group_by: vec!["alertname".into()],
            group_wait: Seconds::secs(10),
            group_interval: Seconds::secs(60),
            repeat_interval: Seconds::secs(4 * 3600),
        }
    }
}

/// A comparison in a rule's `when`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// What makes a rule's alert active.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The probe is down: `failures_before_down` failed runs in a row, until
    /// `successes_before_up` good ones.
    Down,
    /// A value of the probe's last result compared with a number (`days_left < 14`).
    Compare {
        value: String,
        op: Op,
        threshold: f64,
    },
}

impl Condition {
    /// Reads `down` or `VALUE OP NUMBER`.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let text = text.trim();
        if text == "down" {
            return Ok(Condition::Down);
        }
        // Two-character operators first.
        for (token, op) in [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if let Some((left, right)) = text.split_once(token) {
                let value = left.trim();
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    return Err(format!(
                        "{value:?} is not a value name (write e.g. `days_left < 14`)"
                    ));
                }
                let threshold: f64 = right.trim().parse().map_err(|_| {
                    format!(
                        "{:?} is not a number (write e.g. `days_left < 14`)",
                        right.trim()
                    )
                })?;
                return Ok(Condition::Compare {
                    value: value.to_string(),
                    op,
                    threshold,
                });
            }
        }
        Err(format!(
            "{text:?}: write `down` or a comparison such as `days_left < 14` (operators < <= > >= == !=)"
        ))
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Condition::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `[[alert]]`: a condition on a probe's results that, held for `for`, fires.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// The alert's name (`alertname` label).
    pub name: String,
    /// The probe it watches; absent: every probe whose kind has the value `when` names.
    pub probe: Option<String>,
    /// `down`, or `VALUE OP NUMBER` on the probe's last result (`days_left < 14`,
    /// `duration > 2`, `free_percent < 10`, `status != 200`).
    pub when: Condition,
    /// How long the condition must hold before the alert fires (pending until then).
    #[serde(rename = "for", default = "zero")]
    pub for_: Seconds,
    /// `severity` label: `critical`, `warning`, `info`…
    #[serde(default = "warning")]
    pub severity: String,
    /// More labels (routing in Alertmanager, grouping).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// One line; `{probe}`, `{value}`, `{message}` are filled in.
    pub summary: Option<String>,
    pub description: Option<String>,
    /// Notifier names; empty: every notifier.
    #[serde(default)]
    pub notify: Vec<String>,
    /// While the edge is in maintenance this alert is silenced (a planned outage explains a
    /// failing site). Default: on for http, tcp and tls probes, off for the others
    /// (a full disk is not explained by maintenance).
    pub silenced_by_maintenance: Option<bool>,
}

fn zero() -> Seconds {
    Seconds(std::time::Duration::ZERO)
}
fn warning() -> String {
    "warning".into()
}

/// What a notifier speaks: the `kind = "..."` of a notifier peakguard-monitor registers
/// (`webhook`, `alertmanager`, `slack`, `email`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct NotifierKind(String);

impl NotifierKind {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind named `name`.
    pub fn named(name: &str) -> NotifierKind {
        NotifierKind(name.to_string())
    }
}

/// A kind of notifier the monitor registers: its name and the checks of its own keys.
#[derive(Clone, Copy)]
pub struct NotifierKindSpec {
    pub name: &'static str,
    /// Problems of the notifier's own keys ([`NotifierConfig::settings`]), as (key, message).
    pub check: fn(&NotifierConfig) -> Vec<(String, String)>,
}

/// `[[notifier]]`: where alerts go — the keys every notifier has, and its kind's own keys in
/// `settings`.
#[derive(Debug, Clone, Deserialize)]
pub struct NotifierConfig {
    pub name: String,
    pub kind: NotifierKind,
    /// One attempt's limit.
    #[serde(default = "ten_seconds")]
    pub timeout: Seconds,
    /// Attempts after the first, with a growing pause (1 s, 2 s, 4 s… at most a minute).
    #[serde(default = "five")]
    pub retries: u32,
    /// Every other key: the kind's own (a webhook's `url`, an email notifier's `smtp`), read
    /// and checked by its notifier.
    #[serde(flatten)]
    pub settings: crate::OwnKeys,
}

fn ten_seconds() -> Seconds {
    Seconds::secs(10)
}
fn five() -> u32 {
    5
}

/// The values a probe kind's results carry, which `when` may compare (from its spec in
/// `kinds`; none for an unknown kind).
pub fn values_of(kind: &ProbeKind, kinds: &[ProbeKindSpec]) -> &'static [&'static str] {
    kinds
        .iter()
        .find(|k| k.name == kind.as_str())
        .map_or(&[], |k| k.values)
}

/// Checks `[monitor]`, `[[alert]]` and `[[notifier]]` against the probes.
pub fn validate_alerts(
    config: &crate::Config,
    kinds: &[ProbeKindSpec],
    notifier_kinds: &[NotifierKindSpec],
    problems: &mut Vec<(String, String)>,
) {
    let m = &config.monitor;
    if !(1..=1000).contains(&m.history) {
        problems.push((
            "monitor.history".into(),
            format!("{} results per probe: give 1 to 1000", m.history),
        ));
    }
    if m.group_interval.0.is_zero() || m.repeat_interval.0.is_zero() {
        problems.push((
            "monitor.group_interval".into(),
            "group_interval and repeat_interval must be longer than zero".into(),
        ));
    }
    let notifiers: Vec<&str> = config.notifiers.iter().map(|n| n.name.as_str()).collect();
    let mut rule_names = std::collections::HashMap::new();
    for (i, rule) in config.alerts.iter().enumerate() {
        let mut p = |k: &str, msg: String| problems.push((format!("alert[{i}].{k}"), msg));
        if rule.name.trim().is_empty() {
            p(
                "name",
                "an alert needs a name (its `alertname` label)".into(),
            );
        }
        if rule_names.insert(rule.name.as_str(), i).is_some() {
            p("name", format!("{:?} names two alerts", rule.name));
        }
        let rule_kinds: Vec<&ProbeKind> = match &rule.probe {
            Some(name) => match config.probes.iter().find(|p| &p.name == name) {
                Some(probe) => vec![&probe.kind],
                None => {
                    let known: Vec<&str> = config.probes.iter().map(|p| p.name.as_str()).collect();
                    p(
                        "probe",
                        format!("no probe named {name:?} (the configuration has {known:?})"),
                    );
                    continue;
                }
            },
            None => config.probes.iter().map(|p| &p.kind).collect(),
        };
        if let Condition::Compare { value, .. } = &rule.when
            && !rule_kinds.is_empty()
            && !rule_kinds
                .iter()
                .any(|k| values_of(k, kinds).contains(&value.as_str()))
        {
            let offered: Vec<String> = rule_kinds
                .iter()
                .map(|k| format!("{}: {}", k.as_str(), values_of(k, kinds).join(", ")))
                .collect();
            p(
                "when",
                format!(
                    "no probe here has a value {value:?} ({})",
                    offered.join("; ")
                ),
            );
        }
        for n in &rule.notify {
            if !notifiers.contains(&n.as_str()) {
                p(
                    "notify",
                    format!("no notifier named {n:?} (the configuration has {notifiers:?})"),
                );
            }
        }
        for key in rule.labels.keys() {
            if !valid_label_name(key) {
                p(
                    "labels",
                    format!("{key:?} is not a label name (letters, digits, _; not first a digit)"),
                );
            }
        }
    }
    let mut names = std::collections::HashMap::new();
    for (i, n) in config.notifiers.iter().enumerate() {
        let mut p = |k: &str, msg: String| problems.push((format!("notifier[{i}].{k}"), msg));
        if names.insert(n.name.as_str(), i).is_some() {
            p("name", format!("{:?} names two notifiers", n.name));
        }
        match notifier_kinds.iter().find(|k| k.name == n.kind.as_str()) {
            Some(spec) => {
                for (k, m) in (spec.check)(n) {
                    p(&k, m);
                }
            }
            None => p(
                "kind",
                crate::own_keys::unknown_kind(
                    n.kind.as_str(),
                    notifier_kinds.iter().map(|k| k.name),
                ),
            ),
        }
    }
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_or_say_how_to_write_them() {
        assert_eq!(Condition::parse(" down "), Ok(Condition::Down));
        assert_eq!(
            Condition::parse("days_left<=14.5"),
            Ok(Condition::Compare {
                value: "days_left".into(),
                op: Op::Le,
                threshold: 14.5
            })
        );
        assert_eq!(
            Condition::parse("status != 200"),
            Ok(Condition::Compare {
                value: "status".into(),
                op: Op::Ne,
                threshold: 200.0
            })
        );
        assert!(Condition::parse("days_left < soon").is_err_and(|e| e.contains("not a number")));
        assert!(Condition::parse("Days Left < 3").is_err_and(|e| e.contains("value name")));
        assert!(Condition::parse("up").is_err_and(|e| e.contains("write `down`")));
        assert!(Op::Ge.holds(2.0, 2.0) && !Op::Gt.holds(2.0, 2.0) && Op::Ne.holds(1.0, 2.0));
    }

    /// The tls kind as the monitor registers it (its keys are its own: none checked here).
    const TLS: crate::ProbeKindSpec = crate::ProbeKindSpec {
        name: "tls",
        values: &["success", "duration", "days_left", "chain_valid"],
        check: |_| Vec::new(),
    };

    /// The webhook kind as the monitor registers it (its keys are its own: none checked here).
    const WEBHOOK: crate::NotifierKindSpec = crate::NotifierKindSpec {
        name: "webhook",
        check: |_| Vec::new(),
    };

    fn problems(text: &str) -> String {
        let kinds = [TLS];
        let notifiers = [WEBHOOK];
        let extensions = crate::Extensions {
            probe_kinds: &kinds,
            notifier_kinds: &notifiers,
            ..Default::default()
        };
        match crate::parse_with(text, "t", &extensions) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn rules_and_notifiers_are_checked_against_what_exists() {
        let base = "[[probe]]\nname = \"cert\"\nkind = \"tls\"\naddress = \"example.com:443\"\n";
        let ok = format!(
            "{base}[[alert]]\nname = \"CertSoon\"\nprobe = \"cert\"\nwhen = \"days_left < 14\"\nfor = \"5m\"\nnotify = [\"ops\"]\n[[notifier]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n"
        );
        assert_eq!(problems(&ok), "");
        let wrong_value = format!(
            "{base}[[alert]]\nname = \"X\"\nprobe = \"cert\"\nwhen = \"free_percent < 10\"\n"
        );
        let e = problems(&wrong_value);
        assert!(
            e.contains("alert[0].when") && e.contains("days_left"),
            "{e}"
        );
        let no_probe =
            format!("{base}[[alert]]\nname = \"X\"\nprobe = \"home\"\nwhen = \"down\"\n");
        assert!(problems(&no_probe).contains("no probe named \"home\""));
        let no_notifier =
            format!("{base}[[alert]]\nname = \"X\"\nwhen = \"down\"\nnotify = [\"pager\"]\n");
        assert!(problems(&no_notifier).contains("no notifier named \"pager\""));
        let bad_when = format!("{base}[[alert]]\nname = \"X\"\nwhen = \"sometimes\"\n");
        let e = problems(&bad_when);
        assert!(e.contains("write `down`") && e.contains("line"), "{e}");
    }
}
