//! What one site did in one period (a minute or an hour): the figures both views and the
//! report are made of. Mergeable, so hours are sums of their minutes and a range is the
//! sum of its periods.

use crate::event::{Event, Served, StatusClass};
use crate::latency::Latency;
use crate::top::Top;
use serde::{Deserialize, Serialize};

/// How many pages, referrers and refusing guards a minute keeps; an hour keeps more.
pub const MINUTE_KEYS: usize = 20;
pub const HOUR_KEYS: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Requests by how they were served and by status class.
    pub requests: [[u64; StatusClass::COUNT]; Served::COUNT],
    /// Body bytes sent to clients.
    pub bytes: u64,
    /// Time to the last byte as clients saw it.
    pub client: Latency,
    /// Time the origin took, for requests that went there.
    pub origin: Latency,
    /// Requests a guard refused, by guard.
    pub refusals: Top,
    /// Page views (GET, 2xx, not an asset) by path.
    pub pages: Top,
    /// Requests arriving from another site, by the referring host.
    pub referrers: Top,
    /// Visitors first seen that day in this period (additive: a range's sum is its daily
    /// unique visitors).
    pub new_visitors: u64,
    /// Distinct visitors in the busiest minute (a minute's own count; the maximum when
    /// periods are added up).
    pub peak_minute_visitors: u64,
    /// Visits newly attributed to a source, by `source / medium / campaign`.
    pub sources: Top,
    /// Conversions (a goal reached, or an order confirmed) by the visitor's source
    /// (`(direct)` when it had none).
    pub conversions: Top,
    /// Confirmed orders' totals in cents, by `source / medium / campaign · CURRENCY`.
    pub revenue: Top,
}

impl Bucket {
    pub fn add(&mut self, e: &Event) {
        self.requests[e.served as usize][StatusClass::of(e.status) as usize] += 1;
        self.bytes = self.bytes.saturating_add(e.bytes);
        self.client.observe_micros(u64::from(e.client_micros));
        if let Some(o) = e.origin_micros {
            self.origin.observe_micros(u64::from(o));
        }
        if let Some(g) = &e.refused_by {
            self.refusals.add(g, 1, MINUTE_KEYS);
        }
        if let Some(p) = &e.page {
            self.pages.add(p, 1, MINUTE_KEYS);
        }
        if let Some(r) = &e.referrer {
            self.referrers.add(r, 1, MINUTE_KEYS);
        }
    }

    /// Adds `other`, keeping at most `keys` pages, referrers and guards.
    pub fn merge(&mut self, other: &Bucket, keys: usize) {
        for (a, b) in self.requests.iter_mut().zip(&other.requests) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.client.merge(&other.client);
        self.origin.merge(&other.origin);
        self.refusals.merge(&other.refusals, keys);
        self.pages.merge(&other.pages, keys);
        self.referrers.merge(&other.referrers, keys);
        self.new_visitors += other.new_visitors;
        self.peak_minute_visitors = self.peak_minute_visitors.max(other.peak_minute_visitors);
        self.sources.merge(&other.sources, keys);
        self.conversions.merge(&other.conversions, keys);
        self.revenue.merge(&other.revenue, keys);
    }

    pub fn total(&self) -> u64 {
        self.requests.iter().flatten().sum()
    }

    pub fn served(&self, s: Served) -> u64 {
        self.requests[s as usize].iter().sum()
    }

    pub fn class(&self, c: StatusClass) -> u64 {
        self.requests.iter().map(|r| r[c as usize]).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}
