//! The rehearsal's result: what it asked for, what happened, per URL group and traffic class,
//! second by second. Written as JSON (`--json`) and read back by `compare`.

use crate::stats::{Second, Summary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub tool: String,
    pub format: u32,
    pub target: String,
    pub started_at: String,
    pub profile: String,
    pub duration_s: f64,
    pub concurrency: usize,
    /// Requests the profile asked for.
    pub scheduled: u64,
    pub sent: u64,
    /// Scheduled but not sent: the backlog behind the concurrency cap was full, or a bound
    /// (`--max-requests`) was reached.
    pub not_sent: u64,
    pub achieved_rps: f64,
    pub connections_opened: u64,
    pub total: Summary,
    pub groups: BTreeMap<String, Summary>,
    pub classes: BTreeMap<String, Summary>,
    /// Seconds from the start after which `warm_classes` counts (`--warm-after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_after_s: Option<f64>,
    /// Each class, for the requests intended from `warm_after_s` on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub warm_classes: BTreeMap<String, Summary>,
    pub series: Vec<Second>,
}

fn row(out: &mut String, name: &str, s: &Summary) {
    let _ = writeln!(
        out,
        "  {:<22} {:>9} {:>8.2}% {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>10.1}",
        name,
        s.requests,
        s.error_rate * 100.0,
        s.p50_ms,
        s.p90_ms,
        s.p99_ms,
        s.p999_ms,
        s.max_ms
    );
}

fn header(out: &mut String, what: &str) {
    let _ = writeln!(
        out,
        "  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        what, "requests", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
}

impl Report {
    /// The final text summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Rehearsal of {} ({})", self.target, self.profile);
        let _ = writeln!(
            out,
            "  {:.1}s, {} scheduled, {} sent, {} not sent, {:.1} req/s achieved, {} connections",
            self.duration_s,
            self.scheduled,
            self.sent,
            self.not_sent,
            self.achieved_rps,
            self.connections_opened
        );
        let t = &self.total;
        let _ = writeln!(
            out,
            "  latency from the intended send time: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} errors ({} timeouts, {} connect, {} I/O); {:.1} MB of bodies on the wire ({:.1} KB per response, as sent: compressed where the server compressed)",
            t.p50_ms,
            t.p99_ms,
            t.max_ms,
            t.errors,
            t.timeouts,
            t.connect_errors,
            t.io_errors,
            t.bytes as f64 / 1e6,
            t.bytes as f64 / 1e3 / (t.requests.max(1)) as f64
        );
        let statuses: Vec<String> = t
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            out,
            "  status codes: {}",
            if statuses.is_empty() {
                "none".into()
            } else {
                statuses.join(", ")
            }
        );
        out.push('\n');
        header(&mut out, "URL group");
        for (name, s) in &self.groups {
            row(&mut out, name, s);
        }
        out.push('\n');
        header(&mut out, "traffic class");
        for (name, s) in &self.classes {
            row(&mut out, name, s);
        }
        if let Some(w) = self.warm_after_s {
            out.push('\n');
            header(&mut out, &format!("class, from {w:.0}s on"));
            for (name, s) in &self.warm_classes {
                row(&mut out, name, s);
            }
        }
        let held: Vec<_> = self
            .classes
            .iter()
            .filter_map(|(name, s)| s.waiting_room.as_ref().map(|r| (name, r)))
            .collect();
        if !held.is_empty() {
            let _ = writeln!(
                out,
                "\n  Waiting room (its pages are not requests and not errors; a visitor let in is counted once, with the answer it finally got):"
            );
            let _ = writeln!(
                out,
                "  {:<22} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11} {:>11}",
                "traffic class",
                "visitors",
                "let in",
                "still in",
                "pages",
                "wait p50 s",
                "wait p99 s",
                "wait max s"
            );
            for (name, r) in held {
                let _ = writeln!(
                    out,
                    "  {:<22} {:>9} {:>9} {:>9} {:>11} {:>11.1} {:>11.1} {:>11.1}",
                    name,
                    r.visitors,
                    r.let_in,
                    r.unfinished,
                    r.pages,
                    r.wait_p50_ms / 1000.0,
                    r.wait_p99_ms / 1000.0,
                    r.wait_max_ms / 1000.0
                );
            }
        }
        out
    }
}

/// `compare before after`: per URL group (and the total), how p50, p99 and the error rate
/// changed.
pub fn compare(before: &Report, after: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Before: {} ({}, {})",
        before.target, before.profile, before.started_at
    );
    let _ = writeln!(
        out,
        "After:  {} ({}, {})\n",
        after.target, after.profile, after.started_at
    );
    let _ = writeln!(
        out,
        "  {:<20} {:>21} {:>23} {:>21}",
        "URL group", "p50 ms before→after", "p99 ms before→after", "errors before→after"
    );
    let change = |a: f64, b: f64| {
        if a <= 0.0 {
            "   new".to_string()
        } else {
            format!("{:+5.0}%", (b - a) / a * 100.0)
        }
    };
    let mut line = |name: &str, a: Option<&Summary>, b: Option<&Summary>| {
        let fmt = |s: Option<&Summary>, f: fn(&Summary) -> f64| {
            s.map_or("-".to_string(), |s| format!("{:.1}", f(s)))
        };
        let p50 = format!("{}→{}", fmt(a, |s| s.p50_ms), fmt(b, |s| s.p50_ms));
        let p99 = format!("{}→{}", fmt(a, |s| s.p99_ms), fmt(b, |s| s.p99_ms));
        let err = format!(
            "{}→{}",
            a.map_or("-".into(), |s| format!("{:.2}%", s.error_rate * 100.0)),
            b.map_or("-".into(), |s| format!("{:.2}%", s.error_rate * 100.0))
        );
        let p99_change = match (a, b) {
            (Some(a), Some(b)) => change(a.p99_ms, b.p99_ms),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {:<20} {:>21} {:>16} {:>6} {:>21}",
            name, p50, p99, p99_change, err
        );
    };
    let mut names: Vec<&String> = before.groups.keys().chain(after.groups.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        line(name, before.groups.get(name), after.groups.get(name));
    }
    line("(all)", Some(&before.total), Some(&after.total));
    out
}
