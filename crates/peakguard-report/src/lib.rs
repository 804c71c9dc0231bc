//! The morning-after report: what a range of time (or a campaign's window) looked like to
//! marketing and to IT, from the statistics and the journal — traffic and conversions by
//! source, revenue and cost per acquisition, top pages, the peak, cache hit ratio, latency,
//! errors visitors saw, waiting-room and guard refusals, alerts, and every intervention.
//!
//! Owns: gathering those figures ([`build`]) and writing them as one self-contained HTML
//! page ([`html`]: inline SVG charts of our own, no script, no external request, printable)
//! or as JSON. Must not touch: files, the network, the request path (the caller reads the
//! statistics and the journal and hands them over).
#![forbid(unsafe_code)]

mod html;
mod svg;

pub use html::{html, verdict};

use peakguard_journal::Entry;
use peakguard_stats::campaign::{Campaign, CampaignFigures};
use peakguard_stats::view::Figures;
use peakguard_stats::{Record, Resolution, StatusClass};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a report is made of.
pub struct Input<'a> {
    pub title: String,
    pub site: Option<String>,
    pub from: i64,
    pub to: i64,
    pub resolution: Resolution,
    /// The range's records (of the site, or of every site).
    pub records: &'a [Record],
    /// Journal entries (those outside the range are left out here).
    pub journal: &'a [Entry],
    pub campaign: Option<&'a Campaign>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub title: String,
    pub site: Option<String>,
    pub from: String,
    pub to: String,
    pub resolution: &'static str,
    /// The whole range (top pages, sources, conversions, revenue, refusals included).
    pub total: Figures,
    /// Period by period.
    pub series: Vec<Point>,
    /// The busiest period's requests per second (its average over the period).
    pub peak_requests_per_second: f64,
    pub peak_at: Option<String>,
    /// 5xx responses visitors received, and their share of all requests.
    pub server_errors: u64,
    pub server_error_rate: Option<f64>,
    /// Pages the waiting room answered instead of the site (visitors kept in line).
    pub waiting_room_pages: u64,
    pub campaign: Option<CampaignFigures>,
    /// Alerts that fired or were resolved, from the journal.
    pub alerts: Vec<Line>,
    /// Every journal entry in the range.
    pub interventions: Vec<Line>,
}

#[derive(Debug, Serialize)]
pub struct Point {
    pub start: i64,
    pub requests: u64,
    pub visitors: u64,
    pub server_errors: u64,
    pub client_p99_ms: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Line {
    pub at: String,
    pub who: String,
    pub what: String,
    pub site: Option<String>,
    pub detail: String,
    pub result: String,
}

fn rfc3339(unix: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64),
    )
    .to_string()
}

/// The journal entry's time as Unix seconds (`None` when it does not parse).
fn entry_unix(e: &Entry) -> Option<i64> {
    humantime::parse_rfc3339_weak(&e.at)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

pub fn build(input: &Input<'_>) -> Report {
    let mut by_start: BTreeMap<i64, peakguard_stats::Bucket> = BTreeMap::new();
    for r in input.records {
        by_start
            .entry(r.start)
            .or_default()
            .merge(&r.bucket, peakguard_stats::bucket::HOUR_KEYS);
    }
    let total_bucket = peakguard_stats::total(input.records);
    let total = Figures::of(input.from, &total_bucket, true);
    let series: Vec<Point> = by_start
        .iter()
        .map(|(start, b)| Point {
            start: *start,
            requests: b.total(),
            visitors: b.new_visitors,
            server_errors: b.class(StatusClass::ServerError),
            client_p99_ms: b.client.quantile_ms(0.99),
        })
        .collect();
    let seconds = input.resolution.seconds() as f64;
    let peak = series.iter().max_by_key(|p| p.requests);
    let server_errors = total_bucket.class(StatusClass::ServerError);
    let requests = total_bucket.total();
    let waiting_room_pages = total_bucket
        .refusals
        .ranked()
        .iter()
        .filter(|(k, _)| *k == "waiting-room")
        .map(|(_, n)| n)
        .sum();
    let in_range: Vec<&Entry> = input
        .journal
        .iter()
        .filter(|e| entry_unix(e).is_some_and(|t| t >= input.from && t < input.to))
        .filter(|e| {
            input
                .site
                .as_deref()
                .is_none_or(|s| e.site.as_deref().is_none_or(|es| es == s))
        })
        .collect();
    let line = |e: &&Entry| Line {
        at: e.at.clone(),
        who: e.who.clone(),
        what: e.what.clone(),
        site: e.site.clone(),
        detail: e.detail.clone(),
        result: e.result.clone(),
    };
    Report {
        title: input.title.clone(),
        site: input.site.clone(),
        from: rfc3339(input.from),
        to: rfc3339(input.to),
        resolution: match input.resolution {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
        },
        total,
        peak_requests_per_second: peak.map_or(0.0, |p| p.requests as f64 / seconds),
        peak_at: peak.filter(|p| p.requests > 0).map(|p| rfc3339(p.start)),
        series,
        server_errors,
        server_error_rate: (requests > 0).then(|| server_errors as f64 / requests as f64),
        waiting_room_pages,
        campaign: input.campaign.map(|c| c.figures(&total_bucket)),
        alerts: in_range
            .iter()
            .filter(|e| e.what.starts_with("alert "))
            .map(line)
            .collect(),
        interventions: in_range.iter().map(line).collect(),
    }
}

#[cfg(test)]
mod tests;
