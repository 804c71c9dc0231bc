//! Records on disk name their keys (the site, pages, referrers, sources, guards) by number:
//! each file has its own dictionary, written as `Key` entries just before the first record
//! that uses them. A page seen every minute of a day is written once that day, not 1,440
//! times. Append-only like the records: a `Key` entry cut by a crash was never used.

use crate::bucket::Bucket;
use crate::event::{Served, StatusClass};
use crate::latency::Latency;
use crate::store::Record;
use crate::top::Top;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Keys one file may define (past it, records with new keys are not written: a file holds
/// one day of minutes or one month of hours, whose keys are bounded far below this).
pub const MAX_KEYS_PER_FILE: usize = 4_000_000;

#[derive(Debug, Serialize, Deserialize)]
pub enum Entry {
    Key(u32, String),
    Record(Box<Stored>),
}

type Ids = Vec<(u32, u64)>;

/// A record with its keys as numbers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stored {
    start: i64,
    site: u32,
    requests: [[u64; StatusClass::COUNT]; Served::COUNT],
    bytes: u64,
    client: Latency,
    origin: Latency,
    refusals: Ids,
    pages: Ids,
    referrers: Ids,
    new_visitors: u64,
    peak_minute_visitors: u64,
    sources: Ids,
    conversions: Ids,
    revenue: Ids,
}

/// One file's dictionary.
#[derive(Debug, Default)]
pub struct Dictionary {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Dictionary {
    /// Learns a key read from the file (ids are given in order; a gap means damage and the
    /// key is ignored).
    pub fn learn(&mut self, id: u32, name: String) {
        if id as usize == self.names.len() {
            self.ids.insert(name.clone(), id);
            self.names.push(name);
        }
    }

    fn id(&mut self, key: &str, new: &mut Vec<Entry>) -> Option<u32> {
        if let Some(id) = self.ids.get(key) {
            return Some(*id);
        }
        if self.names.len() >= MAX_KEYS_PER_FILE {
            return None;
        }
        let id = self.names.len() as u32;
        self.ids.insert(key.to_owned(), id);
        self.names.push(key.to_owned());
        new.push(Entry::Key(id, key.to_owned()));
        Some(id)
    }

    fn ids(&mut self, top: &Top, new: &mut Vec<Entry>) -> Option<Ids> {
        top.entries()
            .iter()
            .map(|(k, n)| Some((self.id(k, new)?, *n)))
            .collect()
    }

    /// The entries that write `r`: its new keys, then the record. `None` when the file's
    /// dictionary is full.
    pub fn encode(&mut self, r: &Record) -> Option<Vec<Entry>> {
        let mut out = Vec::new();
        let b = &r.bucket;
        let stored = Stored {
            start: r.start,
            site: self.id(&r.site, &mut out)?,
            requests: b.requests,
            bytes: b.bytes,
            client: b.client.clone(),
            origin: b.origin.clone(),
            refusals: self.ids(&b.refusals, &mut out)?,
            pages: self.ids(&b.pages, &mut out)?,
            referrers: self.ids(&b.referrers, &mut out)?,
            new_visitors: b.new_visitors,
            peak_minute_visitors: b.peak_minute_visitors,
            sources: self.ids(&b.sources, &mut out)?,
            conversions: self.ids(&b.conversions, &mut out)?,
            revenue: self.ids(&b.revenue, &mut out)?,
        };
        out.push(Entry::Record(Box::new(stored)));
        Some(out)
    }

    fn top(&self, ids: Ids) -> Option<Top> {
        ids.into_iter()
            .map(|(id, n)| Some((self.names.get(id as usize)?.clone(), n)))
            .collect::<Option<Vec<_>>>()
            .map(Top::from_entries)
    }

    /// The record `s` stands for; `None` when it names a key the file does not define.
    pub fn decode(&self, s: Box<Stored>) -> Option<Record> {
        Some(Record {
            start: s.start,
            site: self.names.get(s.site as usize)?.clone(),
            bucket: Bucket {
                requests: s.requests,
                bytes: s.bytes,
                client: s.client,
                origin: s.origin,
                refusals: self.top(s.refusals)?,
                pages: self.top(s.pages)?,
                referrers: self.top(s.referrers)?,
                new_visitors: s.new_visitors,
                peak_minute_visitors: s.peak_minute_visitors,
                sources: self.top(s.sources)?,
                conversions: self.top(s.conversions)?,
                revenue: self.top(s.revenue)?,
            },
        })
    }
}
