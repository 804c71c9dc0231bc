//! The size on disk of the statistics at their retention: 14 days of minutes and 13 months
//! of hours for N sites (default 10), once with every period as full as it can be (every
//! latency bucket, the most pages, referrers, sources, conversions, revenue keys and guards
//! a period keeps: the bound) and once as a busy small shop's. Written to a temporary
//! directory, measured, removed.
//!
//!     cargo run --release -p peakguard-stats --example disk_size [-- SITES]

use peakguard_stats::bucket::{Bucket, HOUR_KEYS, MINUTE_KEYS};
use peakguard_stats::{Record, Resolution, Retention, Store};
use std::time::Duration;

/// How many keys of each kind a period holds, and how many latency buckets it touches.
struct Shape {
    pages: usize,
    referrers: usize,
    sources: usize,
    conversions: usize,
    refusals: usize,
    latency_buckets: usize,
}

const FULL_MINUTE: Shape = Shape {
    pages: MINUTE_KEYS,
    referrers: MINUTE_KEYS,
    sources: MINUTE_KEYS,
    conversions: MINUTE_KEYS,
    refusals: MINUTE_KEYS,
    latency_buckets: 21,
};
const FULL_HOUR: Shape = Shape {
    pages: HOUR_KEYS,
    referrers: HOUR_KEYS,
    sources: HOUR_KEYS,
    conversions: HOUR_KEYS,
    refusals: HOUR_KEYS,
    latency_buckets: 21,
};
/// A busy small shop: a few pages a minute from a few places.
const SHOP_MINUTE: Shape = Shape {
    pages: 8,
    referrers: 3,
    sources: 2,
    conversions: 1,
    refusals: 2,
    latency_buckets: 6,
};
const SHOP_HOUR: Shape = Shape {
    pages: 60,
    referrers: 20,
    sources: 10,
    conversions: 5,
    refusals: 5,
    latency_buckets: 10,
};

fn bucket(shape: &Shape, keys: usize, seed: u64) -> Bucket {
    let mut b = Bucket::default();
    for row in b.requests.iter_mut() {
        for (i, cell) in row.iter_mut().enumerate() {
            *cell = 1_000 + seed % 997 + i as u64;
        }
    }
    b.bytes = 3_000_000_000 + seed;
    for ms in peakguard_stats::latency::EDGES_MS
        .into_iter()
        .take(shape.latency_buckets)
    {
        for _ in 0..3 {
            b.client.observe_micros(u64::from(ms) * 1000 - 1);
            b.origin.observe_micros(u64::from(ms) * 1000 - 1);
        }
    }
    b.client.observe_micros(20_000_000);
    b.origin.observe_micros(20_000_000);
    let count = |k: usize| 10_000 + seed % 1000 + k as u64;
    for k in 0..shape.pages {
        b.pages.add(
            &format!("/product/an-ordinary-product-name-{k}/"),
            count(k),
            keys,
        );
    }
    for k in 0..shape.referrers {
        b.referrers.add(
            &format!("referring-site-number-{k}.example"),
            count(k),
            keys,
        );
    }
    for k in 0..shape.sources {
        b.sources.add(
            &format!("newsletter-{k} / email / black-friday-2026"),
            count(k),
            keys,
        );
    }
    for k in 0..shape.conversions {
        b.conversions.add(
            &format!("newsletter-{k} / email / black-friday-2026"),
            count(k),
            keys,
        );
        b.revenue.add(
            &format!("newsletter-{k} / email / black-friday-2026 · EUR"),
            count(k) * 5990,
            keys,
        );
    }
    for k in 0..shape.refusals {
        b.refusals.add(&format!("guard-{k}"), count(k), keys);
    }
    b.new_visitors = 5_000 + seed % 100;
    b.peak_minute_visitors = 900;
    b
}

fn main() {
    let sites: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "| periods | sites | 14 days of minutes | 13 months of hours | total | one minute | one hour |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, minute, hour) in [
        ("as full as they can be", &FULL_MINUTE, &FULL_HOUR),
        ("a busy small shop", &SHOP_MINUTE, &SHOP_HOUR),
    ] {
        measure(name, sites, minute, hour);
    }
}

fn measure(name: &str, sites: usize, minute_shape: &Shape, hour_shape: &Shape) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("stats");
    let keep = Retention {
        minutes: Duration::from_secs(14 * 86_400),
        hours: Duration::from_secs(400 * 86_400),
    };
    let store = Store::open(&path, keep).expect("store");
    let start = 1_764_547_200; // 2025-12-01T00:00:00Z
    let minute = bucket(minute_shape, MINUTE_KEYS, 1);
    let hour = bucket(hour_shape, HOUR_KEYS, 2);
    let names: Vec<String> = (0..sites).map(|i| format!("site-{i}")).collect();
    // 13 months of hours.
    let hours = 396 * 24;
    for day in 0..hours / 24 {
        let records: Vec<Record> = (0..24)
            .flat_map(|h| names.iter().map(move |s| (h, s.clone())))
            .map(|(h, site)| Record {
                start: start + (day * 24 + h) * 3600,
                site,
                bucket: hour.clone(),
            })
            .collect();
        store.append(Resolution::Hour, &records).expect("hours");
    }
    let hours_bytes = store.size().expect("size");
    // The last 14 days of minutes.
    let minutes_from = start + hours * 3600 - 14 * 86_400;
    for day in 0..14 {
        let records: Vec<Record> = (0..1440)
            .flat_map(|m| names.iter().map(move |s| (m, s.clone())))
            .map(|(m, site)| Record {
                start: minutes_from + day * 86_400 + m * 60,
                site,
                bucket: minute.clone(),
            })
            .collect();
        store.append(Resolution::Minute, &records).expect("minutes");
    }
    let total = store.size().expect("size");
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "| {name} | {sites} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} B | {} B |",
        mib(total - hours_bytes),
        mib(hours_bytes),
        mib(total),
        postcard_len(&minute),
        postcard_len(&hour),
    );
}

fn postcard_len(b: &Bucket) -> usize {
    let r = Record {
        start: 0,
        site: "site-0".into(),
        bucket: b.clone(),
    };
    peakguard_stats::store::encoded_len(&r)
}
