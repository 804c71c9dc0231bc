//! Records turned into what a view or a report shows: a series of points and the range's
//! total, with the figures people read (requests by how they were served, errors, p50/p99,
//! share of pages under 200 ms, top pages and referrers, refusals by guard).

use crate::bucket::{Bucket, HOUR_KEYS};
use crate::event::{Served, StatusClass};
use crate::store::{Record, Resolution};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a range looks like.
#[derive(Debug, Serialize)]
pub struct View {
    pub from: i64,
    pub to: i64,
    pub resolution: &'static str,
    pub site: Option<String>,
    /// One point per period that saw requests (of every site asked for), oldest first.
    pub points: Vec<Figures>,
    /// The whole range.
    pub total: Figures,
}

#[derive(Debug, Serialize)]
pub struct Figures {
    /// Unix time of the period's start (the range's start for a total).
    pub start: i64,
    pub requests: u64,
    pub served: BTreeMap<&'static str, u64>,
    pub status: BTreeMap<&'static str, u64>,
    /// Hits (fresh and stale) among requests the cache could answer.
    pub hit_ratio: Option<f64>,
    pub client_p50_ms: Option<u32>,
    pub client_p99_ms: Option<u32>,
    pub origin_p50_ms: Option<u32>,
    pub origin_p99_ms: Option<u32>,
    /// Share of requests answered under 200 ms.
    pub under_200ms: Option<f64>,
    pub bytes: u64,
    /// Daily unique visitors (a visitor seen on two days counts twice).
    pub visitors: u64,
    /// Distinct visitors in the busiest minute.
    pub peak_minute_visitors: u64,
    /// Conversions of every source.
    pub conversions: u64,
    /// Only in totals: the most viewed pages, referring sites and refusing guards; visits by
    /// source (`source / medium / campaign`), conversions by source, and confirmed orders'
    /// totals in cents by `source · CURRENCY`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_pages: Vec<(String, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<(String, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<(String, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<(String, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conversions_by_source: Vec<(String, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revenue_cents: Vec<(String, u64)>,
}

impl Figures {
    pub fn of(start: i64, b: &Bucket, with_keys: bool) -> Figures {
        let hits = b.served(Served::Hit) + b.served(Served::Stale);
        let cacheable = hits + b.served(Served::Origin);
        let keys = |t: &crate::top::Top| -> Vec<(String, u64)> {
            if !with_keys {
                return Vec::new();
            }
            t.ranked()
                .into_iter()
                .map(|(k, n)| (k.to_owned(), n))
                .collect()
        };
        Figures {
            start,
            requests: b.total(),
            served: Served::ALL
                .iter()
                .map(|s| (s.label(), b.served(*s)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            status: StatusClass::ALL
                .iter()
                .map(|c| (c.label(), b.class(*c)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            hit_ratio: (cacheable > 0).then(|| hits as f64 / cacheable as f64),
            client_p50_ms: b.client.quantile_ms(0.5),
            client_p99_ms: b.client.quantile_ms(0.99),
            origin_p50_ms: b.origin.quantile_ms(0.5),
            origin_p99_ms: b.origin.quantile_ms(0.99),
            under_200ms: b.client.share_under_ms(200),
            bytes: b.bytes,
            visitors: b.new_visitors,
            peak_minute_visitors: b.peak_minute_visitors,
            conversions: b.conversions.ranked().iter().map(|(_, n)| n).sum(),
            top_pages: keys(&b.pages),
            referrers: keys(&b.referrers),
            refusals: keys(&b.refusals),
            sources: keys(&b.sources),
            conversions_by_source: keys(&b.conversions),
            revenue_cents: keys(&b.revenue),
        }
    }
}

/// The view of `records` (already limited to the range and site asked for).
pub fn view(records: &[Record], res: Resolution, from: i64, to: i64, site: Option<&str>) -> View {
    let mut by_start: BTreeMap<i64, Bucket> = BTreeMap::new();
    let mut total = Bucket::default();
    for r in records {
        by_start
            .entry(r.start)
            .or_default()
            .merge(&r.bucket, HOUR_KEYS);
        total.merge(&r.bucket, HOUR_KEYS);
    }
    View {
        from,
        to,
        resolution: match res {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
        },
        site: site.map(str::to_owned),
        points: by_start
            .iter()
            .map(|(start, b)| Figures::of(*start, b, false))
            .collect(),
        total: Figures::of(from, &total, true),
    }
}
