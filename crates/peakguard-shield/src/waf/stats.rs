//! What the WAF did, per site: inspections by result, blocks by rule family, bodies that
//! passed uninspected, engine failures; rendered into `/metrics`.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use peakguard_prometheus::{Exposition, Kind};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The CRS family of a rule id (`942100` → `sqli`).
pub fn family(rule: u32) -> &'static str {
    match rule / 1000 {
        911 => "method",
        913 => "scanner",
        920 => "protocol",
        921 => "protocol-attack",
        922 => "multipart",
        930 => "lfi",
        931 => "rfi",
        932 => "rce",
        933 => "php",
        934 => "generic",
        941 => "xss",
        942 => "sqli",
        943 => "session-fixation",
        944 => "java",
        950 => "data-leakage",
        951 => "sql-leakage",
        952 => "java-leakage",
        953 => "php-leakage",
        954 => "iis-leakage",
        955 => "web-shell",
        956 => "ruby-leakage",
        _ => "other",
    }
}

#[derive(Default)]
pub struct WafStats {
    pub passed: AtomicU64,
    pub blocked: AtomicU64,
    pub detected: AtomicU64,
    /// The engine could not answer: failed, or its queue was full.
    pub errors: AtomicU64,
    pub overloaded: AtomicU64,
    /// Requests whose body was not inspected (larger than `body_limit`, or of unknown
    /// length).
    pub uninspected_bodies: AtomicU64,
    /// Inspection time, microseconds (sum) and count.
    pub micros: AtomicU64,
    /// Origin responses inspected (`inspect_responses`): nothing found, a finding, the
    /// engine could not answer.
    pub responses_passed: AtomicU64,
    pub responses_detected: AtomicU64,
    pub responses_failed: AtomicU64,
    /// Blocks (or, in detect mode, would-be blocks) by the family of the rules that matched.
    pub families: Mutex<BTreeMap<&'static str, u64>>,
}

impl WafStats {
    pub fn count_families(&self, rules: &[u32]) {
        let mut seen: Vec<&'static str> = rules.iter().map(|r| family(*r)).collect();
        seen.sort();
        seen.dedup();
        let mut f = self.families.lock();
        for name in seen {
            *f.entry(name).or_insert(0) += 1;
        }
    }
}

/// Prometheus text for every site's WAF.
pub fn render(sites: &[(String, std::sync::Arc<WafStats>)], out: &mut String) {
    if sites.is_empty() {
        return;
    }
    let mut e = Exposition::new(out);
    let mut f = e.family(
        "peakguard_waf_inspections_total",
        Kind::Counter,
        "Requests the WAF inspected, by result (error: the engine could not answer, on_error decided).",
    );
    for (site, s) in sites {
        for (result, v) in [
            ("pass", &s.passed),
            ("block", &s.blocked),
            ("detect", &s.detected),
            ("error", &s.errors),
        ] {
            f.sample(&[("site", site), ("result", result)], v.load(Relaxed));
        }
    }
    let mut f = e.family(
        "peakguard_waf_responses_total",
        Kind::Counter,
        "Origin responses the WAF inspected (inspect_responses; cache hits never), by result (detect: the response rules scored it at outbound_threshold; it was already sent).",
    );
    for (site, s) in sites {
        for (result, v) in [
            ("pass", &s.responses_passed),
            ("detect", &s.responses_detected),
            ("error", &s.responses_failed),
        ] {
            f.sample(&[("site", site), ("result", result)], v.load(Relaxed));
        }
    }
    let mut f = e.family(
        "peakguard_waf_overloaded_total",
        Kind::Counter,
        "Inspections refused because the WAF's queue was full.",
    );
    for (site, s) in sites {
        f.sample(&[("site", site)], s.overloaded.load(Relaxed));
    }
    let mut f = e.family(
        "peakguard_waf_uninspected_bodies_total",
        Kind::Counter,
        "Request bodies that passed uninspected (over body_limit or of unknown length).",
    );
    for (site, s) in sites {
        f.sample(&[("site", site)], s.uninspected_bodies.load(Relaxed));
    }
    let mut f = e.family(
        "peakguard_waf_blocks_total",
        Kind::Counter,
        "Requests blocked (or, in detect mode, that would have been), by rule family.",
    );
    for (site, s) in sites {
        for (family, n) in s.families.lock().iter() {
            f.sample(&[("site", site), ("family", family)], *n);
        }
    }
    let mut f = e.family(
        "peakguard_waf_inspection_seconds_total",
        Kind::Counter,
        "Time spent inspecting.",
    );
    for (site, s) in sites {
        f.sample(&[("site", site)], s.micros.load(Relaxed) as f64 / 1e6);
    }
}
