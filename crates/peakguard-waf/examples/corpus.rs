//! Runs a WAF corpus (JSON Lines, ../shared/waf-corpus format) through the engine in-process
//! and prints, per source and category, how many attacks were blocked and how many
//! legitimate requests passed. A quick look while tuning; the measurement that counts goes
//! through `peakguard serve` with the corpus's own runner (score.py).
//!
//!   cargo run --release -p peakguard-waf --example corpus -- ../shared/waf-corpus/dev.jsonl \
//!       [PARANOIA] [CRS_DIR] [PLUGIN_DIR…]
//!
//! CRS_DIR: a CRS tree (default: Debian's); PLUGIN_DIR: CRS 4 plugins to load.

use peakguard_waf::{Found, Plugin, Request, RuleSet, Settings, Waf};
use std::collections::BTreeMap;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("a corpus file");
    let paranoia: u8 = args.next().and_then(|p| p.parse().ok()).unwrap_or(1);
    let crs = args
        .next()
        .unwrap_or_else(|| peakguard_waf::crs::DEBIAN_CRS.to_string());
    let crs = RuleSet::open(std::path::Path::new(&crs), Found::Site).expect("a CRS tree");
    let mut settings = Settings::new(crs);
    settings.paranoia = paranoia;
    settings.plugins = args
        .map(|dir| Plugin::open(std::path::Path::new(&dir)).expect("a plugin"))
        .collect();
    let waf = Waf::build(settings).expect("the CRS");
    let text = std::fs::read_to_string(&path).expect("corpus");
    // (source, category, expect) → (total, blocked)
    let mut tally: BTreeMap<(String, String, String), (u32, u32)> = BTreeMap::new();
    let mut cost: Vec<f64> = Vec::new();
    // RESULTS=FILE: one JSON line per record ({"id", "blocked", "rules"}), to compare with
    // score.py's results through the edge.
    let mut results = std::env::var("RESULTS")
        .ok()
        .map(|p| std::fs::File::create(p).expect("RESULTS file"));
    for line in text.lines() {
        let r: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if r["source"] == "crs"
            && r["paranoia"]
                .as_u64()
                .is_some_and(|p| p > u64::from(paranoia))
        {
            continue;
        }
        let headers: Vec<(String, String)> = r["headers"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let body = r["body"].as_str().unwrap_or("").to_string();
        let uri = r["meta"]["wp_uri"]
            .as_str()
            .or(r["uri"].as_str())
            .unwrap_or("/")
            .to_string();
        let method = r["method"].as_str().unwrap_or("GET").to_string();
        let request = Request {
            client: "203.0.113.9".parse().expect("ip"),
            client_port: 40000,
            method: &method,
            uri: &uri,
            version: "1.1",
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                .collect(),
            body: body.as_bytes(),
        };
        let started = std::time::Instant::now();
        let inspection = waf.inspect(&request).ok();
        let blocked = inspection.as_ref().is_some_and(|i| i.block.is_some());
        // WHY=1: print the rules behind each legitimate request that was blocked.
        if blocked
            && r["expect"] == "allow"
            && std::env::var("WHY").is_ok()
            && let Some(i) = &inspection
        {
            let ids: Vec<String> = i
                .matched
                .iter()
                .map(|m| format!("{}@{}", m.id, m.target.clone().unwrap_or_default()))
                .collect();
            eprintln!("FP {} {}", r["id"].as_str().unwrap_or(""), ids.join(" "));
        }
        cost.push(started.elapsed().as_secs_f64());
        if let Some(out) = results.as_mut() {
            use std::io::Write;
            let rules: Vec<u32> = inspection
                .as_ref()
                .map(|i| i.matched.iter().map(|m| m.id).collect())
                .unwrap_or_default();
            let line = serde_json::json!({"id": r["id"], "blocked": blocked, "rules": rules});
            writeln!(out, "{line}").expect("write RESULTS");
        }
        let key = (
            r["source"].as_str().unwrap_or("").to_string(),
            r["category"].as_str().unwrap_or("").to_string(),
            r["expect"].as_str().unwrap_or("").to_string(),
        );
        let e = tally.entry(key).or_default();
        e.0 += 1;
        e.1 += u32::from(blocked);
    }
    let mut by_expect: BTreeMap<(String, String), (u32, u32)> = BTreeMap::new();
    for ((source, category, expect), (n, b)) in &tally {
        println!(
            "{source:<10} {category:<18} {expect:<6} {b:>5}/{n:<5} blocked ({:.1} %)",
            100.0 * f64::from(*b) / f64::from(*n)
        );
        let e = by_expect
            .entry((source.clone(), expect.clone()))
            .or_default();
        e.0 += n;
        e.1 += b;
    }
    println!();
    for ((source, expect), (n, b)) in &by_expect {
        println!(
            "{source:<10} {expect:<6} {b:>5}/{n:<5} blocked ({:.1} %)",
            100.0 * f64::from(*b) / f64::from(*n)
        );
    }
    cost.sort_by(|a, b| a.total_cmp(b));
    if !cost.is_empty() {
        println!(
            "\ncost per request: p50 {:.0} µs, p99 {:.0} µs",
            cost[cost.len() / 2] * 1e6,
            cost[cost.len() * 99 / 100] * 1e6
        );
    }
}
