//! One probe's running record: its last results (bounded) and whether it counts as down
//! after its thresholds (`failures_before_down` failed runs in a row make it down,
//! `successes_before_up` good ones make it up again).

use crate::result::ProbeResult;
use peakguard_config::ProbeConfig;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::SystemTime;

#[derive(Debug, Clone, Serialize)]
pub struct Track {
    pub name: String,
    pub kind: &'static str,
    /// Down after the thresholds (not merely the last run failed).
    pub down: bool,
    /// When `down` last changed (or the first run).
    #[serde(serialize_with = "optional_unix")]
    pub since: Option<SystemTime>,
    pub runs: u64,
    pub failures: u64,
    /// Newest last, at most `[monitor] history`.
    pub history: VecDeque<ProbeResult>,
    #[serde(skip)]
    failures_in_row: u32,
    #[serde(skip)]
    successes_in_row: u32,
    #[serde(skip)]
    keep: usize,
}

fn optional_unix<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_u64(crate::result::unix(*t)),
        None => s.serialize_none(),
    }
}

impl Track {
    pub fn new(probe: &ProbeConfig, keep: usize) -> Track {
        Track {
            name: probe.name.clone(),
            kind: crate::probe::kind_name(&probe.kind),
            down: false,
            since: None,
            runs: 0,
            failures: 0,
            history: VecDeque::with_capacity(keep.min(64)),
            failures_in_row: 0,
            successes_in_row: 0,
            keep: keep.max(1),
        }
    }

    /// Adds a result; says whether the probe is down now.
    pub fn record(&mut self, probe: &ProbeConfig, result: ProbeResult) -> bool {
        self.runs += 1;
        if result.success {
            self.successes_in_row += 1;
            self.failures_in_row = 0;
            if self.down && self.successes_in_row >= probe.successes_before_up {
                self.down = false;
                self.since = Some(result.at);
            }
        } else {
            self.failures += 1;
            self.failures_in_row += 1;
            self.successes_in_row = 0;
            if !self.down && self.failures_in_row >= probe.failures_before_down {
                self.down = true;
                self.since = Some(result.at);
            }
        }
        if self.since.is_none() {
            self.since = Some(result.at);
        }
        if self.history.len() >= self.keep {
            self.history.pop_front();
        }
        self.history.push_back(result);
        self.down
    }

    pub fn last(&self) -> Option<&ProbeResult> {
        self.history.back()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_blip_is_not_down_and_recovery_needs_its_successes() {
        let c = peakguard_config::parse_with(
            "[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nfailures_before_down = 2\nsuccesses_before_up = 3\n",
            "t",
            &crate::extensions(),
        )
        .expect("valid");
        let p = &c.probes[0];
        let mut t = Track::new(p, 4);
        let run = |t: &mut Track, ok: bool| t.record(p, ProbeResult::new(p, ok, String::new()));
        assert!(!run(&mut t, false), "one failure");
        assert!(!run(&mut t, true));
        assert!(!run(&mut t, false));
        assert!(run(&mut t, false), "two in a row: down");
        assert!(
            run(&mut t, true) && run(&mut t, true),
            "still down after two good runs"
        );
        assert!(!run(&mut t, true), "up after three");
        assert_eq!(t.history.len(), 4, "bounded");
        assert_eq!((t.runs, t.failures), (7, 3));
    }
}
