//! Periods being counted: events go into the current minute of their site; a finished
//! minute is written and added to its hour; a finished hour is written. Driven by the
//! caller's clock (`now`, unix seconds), so it is tested without waiting.

use crate::bucket::{Bucket, HOUR_KEYS, MINUTE_KEYS};
use crate::event::{Event, StatusClass};
use crate::store::{Current, Record, Resolution, Result, Store};
use crate::visitors::{Attribution, Visitors, attribution_of};
use std::collections::{HashMap, HashSet};

/// Sites counted apart; events of further sites (only a configuration with more sites than
/// this) are counted under [`OTHER_SITES`].
pub const MAX_SITES: usize = 1024;
pub const OTHER_SITES: &str = "(other sites)";
/// Finished periods kept in memory while the disk refuses them (then the oldest go).
const MAX_PENDING: usize = 10_000;
/// Visitors told apart within one minute, and conversions remembered for the day (past
/// these, a minute's visitors stop growing and a conversion may count twice).
const MAX_MINUTE_VISITORS: usize = 100_000;
const MAX_CONVERSIONS_PER_DAY: usize = 100_000;
/// Where a visitor without a source converts.
pub const DIRECT: &str = "(direct)";
/// The default goal: WooCommerce's order confirmation.
pub const DEFAULT_GOAL: &str = "/checkout/order-received/";

pub struct Aggregator {
    store: Store,
    minute: i64,
    minutes: HashMap<String, Bucket>,
    hour: i64,
    hours: HashMap<String, Bucket>,
    /// Finished periods not yet on disk (a write failed): retried at the next roll.
    pending: Vec<(Resolution, Record)>,
    /// Finished periods given up on because the disk kept refusing them.
    pub lost: u64,
    /// The store's writer lock. During a zero-downtime upgrade the old process holds it
    /// until it has saved what it counted; the new one counts in memory meanwhile, then
    /// takes the lock and adds the saved periods to its own (nothing counted twice or lost).
    owner: Option<std::fs::File>,
    said_waiting: bool,
    visitors: Option<Visitors>,
    minute_visitors: HashMap<String, HashSet<u64>>,
    /// Path prefixes whose successful GET is a conversion.
    goals: Vec<String>,
    day: i64,
    /// Orders (site, id) and goals reached (site, visitor, goal) counted today.
    converted: HashSet<(String, String)>,
}

impl Aggregator {
    /// Continues from the saved current periods, finishing those `now` is past.
    pub fn resume(store: Store, now: i64) -> Result<Aggregator> {
        let mut a = Aggregator {
            store,
            minute: Resolution::Minute.start_of(now),
            minutes: HashMap::new(),
            hour: Resolution::Hour.start_of(now),
            hours: HashMap::new(),
            pending: Vec::new(),
            lost: 0,
            owner: None,
            said_waiting: false,
            visitors: None,
            minute_visitors: HashMap::new(),
            goals: vec![DEFAULT_GOAL.to_owned()],
            day: now.div_euclid(86_400),
            converted: HashSet::new(),
        };
        a.take_over(now)?;
        a.visitors = match Visitors::open(a.store.dir(), now) {
            Ok(v) => Some(v),
            Err(e) => {
                log::error!("statistics: visitors are not counted: {e}");
                None
            }
        };
        a.roll(now);
        Ok(a)
    }

    /// Path prefixes that count as conversions (the default: [`DEFAULT_GOAL`]).
    pub fn set_goals(&mut self, goals: Vec<String>) {
        self.goals = goals;
    }

    /// Takes the writer lock if free, and adds the saved periods to those being counted.
    fn take_over(&mut self, now: i64) -> Result<()> {
        let Some(lock) = self.store.try_lock()? else {
            if !self.said_waiting {
                log::info!(
                    "statistics: {} is in use (the process being upgraded?): counting in memory until it is free",
                    self.store.dir().display()
                );
                self.said_waiting = true;
            }
            return Ok(());
        };
        self.owner = Some(lock);
        let Some(saved) = self.store.load_current()? else {
            return Ok(());
        };
        // The saved periods first finish as they would have, then what is left joins ours.
        let mut before = Aggregator {
            store: self.store.clone_handle(),
            minute: saved.minute,
            minutes: saved.minutes.into_iter().collect(),
            hour: saved.hour,
            hours: saved.hours.into_iter().collect(),
            pending: Vec::new(),
            lost: 0,
            owner: None,
            said_waiting: true,
            visitors: None,
            minute_visitors: HashMap::new(),
            goals: Vec::new(),
            day: 0,
            converted: HashSet::new(),
        };
        before.roll_periods(now);
        self.pending.append(&mut before.pending);
        for (site, b) in before.minutes {
            self.minutes.entry(site).or_default().merge(&b, MINUTE_KEYS);
        }
        for (site, b) in before.hours {
            self.hours.entry(site).or_default().merge(&b, HOUR_KEYS);
        }
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Counts one finished request at `now`.
    pub fn add(&mut self, now: i64, mut e: Event) {
        self.roll(now);
        let target = e.settle();
        let site = if self.minutes.contains_key(&*e.site) || self.minutes.len() < MAX_SITES {
            e.site.to_string()
        } else {
            OTHER_SITES.to_owned()
        };
        let day = now.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            self.converted.clear();
        }
        let bucket = self.minutes.entry(site.clone()).or_default();
        bucket.add(&e);
        let (Some(visitors), Some(client)) = (self.visitors.as_mut(), e.client) else {
            return;
        };
        let said = attribution_of(&target, e.referrer.as_deref());
        let visit = visitors.visit(
            now,
            &site,
            client,
            e.user_agent.as_deref().unwrap_or(""),
            said,
        );
        if visit.new_today {
            bucket.new_visitors += 1;
        }
        let seen = self.minute_visitors.entry(site.clone()).or_default();
        if seen.len() < MAX_MINUTE_VISITORS {
            seen.insert(visit.id);
        }
        bucket.peak_minute_visitors = bucket.peak_minute_visitors.max(seen.len() as u64);
        let source = visit
            .attribution
            .as_ref()
            .map_or(DIRECT, Attribution::key)
            .to_owned();
        if visit.attributed_now {
            bucket.sources.add(&source, 1, MINUTE_KEYS);
        }
        let room = self.converted.len() < MAX_CONVERSIONS_PER_DAY;
        if let Some(order) = e.order.as_deref().and_then(crate::order::parse) {
            if !room
                || self
                    .converted
                    .insert((site.clone(), format!("order {}", order.id)))
            {
                bucket.conversions.add(&source, 1, MINUTE_KEYS);
                let key = format!("{source} · {}", order.currency);
                bucket.revenue.add(&key, order.cents, MINUTE_KEYS);
            }
            return;
        }
        let path = target.split(['?', '#']).next().unwrap_or("");
        let reached = e.method_is_get
            && StatusClass::of(e.status) == StatusClass::Success
            && self.goals.iter().any(|g| path.starts_with(g.as_str()));
        if reached
            && (!room
                || self
                    .converted
                    .insert((site.clone(), format!("visitor {} {path}", visit.id))))
        {
            bucket.conversions.add(&source, 1, MINUTE_KEYS);
        }
    }

    /// Finishes the minute and the hour if `now` is past them. A write that fails is
    /// logged and retried at the next roll.
    pub fn roll(&mut self, now: i64) {
        if self.owner.is_none()
            && let Err(e) = self.take_over(now)
        {
            log::error!("statistics: {e}");
        }
        self.roll_periods(now);
        if self.owner.is_some() {
            self.write_pending();
        }
        if self.pending.len() > MAX_PENDING {
            let over = self.pending.len() - MAX_PENDING;
            self.pending.drain(..over);
            self.lost += over as u64;
        }
    }

    fn roll_periods(&mut self, now: i64) {
        let minute = Resolution::Minute.start_of(now);
        if minute != self.minute {
            let finished_hour = Resolution::Hour.start_of(self.minute);
            if finished_hour != self.hour {
                self.finish_hour();
                self.hour = finished_hour;
            }
            let start = self.minute;
            self.minute_visitors.clear();
            for (site, b) in std::mem::take(&mut self.minutes) {
                if b.is_empty() {
                    continue;
                }
                self.hours
                    .entry(site.clone())
                    .or_default()
                    .merge(&b, HOUR_KEYS);
                self.pending.push((
                    Resolution::Minute,
                    Record {
                        start,
                        site,
                        bucket: b,
                    },
                ));
            }
            self.minute = minute;
        }
        let hour = Resolution::Hour.start_of(now);
        if hour != self.hour {
            self.finish_hour();
            self.hour = hour;
        }
    }

    fn finish_hour(&mut self) {
        let start = self.hour;
        for (site, b) in std::mem::take(&mut self.hours) {
            self.pending.push((
                Resolution::Hour,
                Record {
                    start,
                    site,
                    bucket: b,
                },
            ));
        }
    }

    fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        for res in [Resolution::Minute, Resolution::Hour] {
            let records: Vec<Record> = self
                .pending
                .iter()
                .filter(|(r, _)| *r == res)
                .map(|(_, rec)| rec.clone())
                .collect();
            if records.is_empty() {
                continue;
            }
            match self.store.append(res, &records) {
                Ok(()) => self.pending.retain(|(r, _)| *r != res),
                Err(e) => log::error!("statistics not written (retried in a moment): {e}"),
            }
        }
    }

    /// What is being counted, as saved to disk.
    pub fn current(&self) -> Current {
        Current {
            minute: self.minute,
            minutes: self
                .minutes
                .iter()
                .map(|(s, b)| (s.clone(), b.clone()))
                .collect(),
            hour: self.hour,
            hours: self
                .hours
                .iter()
                .map(|(s, b)| (s.clone(), b.clone()))
                .collect(),
        }
    }

    /// Saves what is being counted (only by the process holding the store).
    pub fn save(&self) -> Result<()> {
        if self.owner.is_none() {
            return Ok(());
        }
        self.store.save_current(&self.current())
    }

    /// Gives the store up after a last save (the next process takes over).
    pub fn release(&mut self) -> Result<()> {
        let saved = self.save();
        self.owner = None;
        saved
    }

    /// Records of periods starting in `[from, to)`: those on disk, those not yet written,
    /// and the ones being counted (an hour being counted includes its current minute).
    pub fn range(
        &self,
        res: Resolution,
        from: i64,
        to: i64,
        site: Option<&str>,
    ) -> Result<Vec<Record>> {
        let live = self.live(res, from, to, site);
        live.complete(res, from, to, site)
    }

    /// What only this aggregator knows of a range (the periods not yet on disk), to be
    /// completed from the disk without holding the aggregator ([`Live::complete`]).
    pub fn live(&self, res: Resolution, from: i64, to: i64, site: Option<&str>) -> Live {
        let wanted =
            |start: i64, s: &str| start >= from && start < to && site.is_none_or(|w| w == s);
        let current = self.current();
        // Periods from here on are in memory (and may reach the disk meanwhile).
        let mut cutoff = match res {
            Resolution::Minute => current.minute,
            Resolution::Hour => current.hour,
        };
        let mut records: Vec<Record> = Vec::new();
        for (r, rec) in &self.pending {
            if *r == res {
                cutoff = cutoff.min(rec.start);
                if wanted(rec.start, &rec.site) {
                    records.push(rec.clone());
                }
            }
        }
        records.extend(current.records(res, from, to, site));
        Live {
            store: self.store.clone_handle(),
            records,
            cutoff,
        }
    }
}

/// A range's periods not yet on disk, and where the disk's part of the range ends.
pub struct Live {
    store: Store,
    records: Vec<Record>,
    cutoff: i64,
}

impl Live {
    /// Adds the disk's records (those before the periods in memory), oldest first.
    pub fn complete(
        self,
        res: Resolution,
        from: i64,
        to: i64,
        site: Option<&str>,
    ) -> Result<Vec<Record>> {
        let mut out = self.store.read(res, from, to.min(self.cutoff), site)?;
        out.extend(self.records);
        out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.site.cmp(&b.site)));
        Ok(out)
    }
}

/// The sum of records (of a range, a campaign's window, …), keeping `MINUTE_KEYS` or more.
pub fn total<'a>(records: impl IntoIterator<Item = &'a Record>) -> Bucket {
    let mut b = Bucket::default();
    for r in records {
        b.merge(&r.bucket, HOUR_KEYS.max(MINUTE_KEYS));
    }
    b
}
