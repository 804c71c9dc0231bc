//! Origin admission: at most `limit` requests at the origin at once; the rest wait in
//! bounded lanes and are let in by priority (checkout first, bots last), FIFO within a lane.
//!
//! A request gets a [`Ticket`] without waiting (the slot at once, a place in its lane, or
//! "lane full"); the edge awaits it before connecting to the origin and keeps the
//! [`Permit`] until the origin's response has ended. A finished request hands its slot
//! straight to the next waiter, so the count never dips and rises between them. Bounds: each
//! lane holds at most `queue_size` waiters (a full lane refuses at once), every wait ends at
//! its deadline, and a waiter that gives up (timeout, client gone) leaves its lane at once.

mod config;
mod gradient;
mod guard;
mod lanes;

pub use config::AdmissionConfig;
pub use gradient::Gradient;
pub use guard::{AdmissionGuard, GUARD, site_admission};
pub use lanes::{Lane, LaneRules};

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
// tokio's clock: the same as std's outside tests, pausable in them.
use tokio::time::Instant;
use tokio::sync::oneshot;

struct Waiter {
    id: u64,
    tx: oneshot::Sender<()>,
}

struct State {
    limit: usize,
    /// The adaptive limit, when on: it sets `limit` from each request's time.
    adaptive: Option<Gradient>,
    in_flight: usize,
    queue_size: usize,
    lanes: [VecDeque<Waiter>; Lane::ALL.len()],
    next_id: u64,
}

impl State {
    fn waiting(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    /// The first waiter of the highest-priority lane that has one.
    fn pop_next(&mut self) -> Option<Waiter> {
        self.lanes.iter_mut().find_map(VecDeque::pop_front)
    }
}

#[derive(Default)]
struct LaneStats {
    admitted_at_once: AtomicU64,
    admitted_after_wait: AtomicU64,
    timed_out: AtomicU64,
    lane_full: AtomicU64,
    wait_micros: AtomicU64,
}

struct Inner {
    site: String,
    state: Mutex<State>,
    stats: [LaneStats; Lane::ALL.len()],
    peak_in_flight: AtomicU64,
    /// How long a request holds its slot, a moving average in microseconds.
    service_micros: AtomicU64,
}

impl Inner {
    /// A slot is free again after `held`: the adaptive limit learns from it; the slot goes
    /// to the next live waiter, or back.
    fn release(&self, held: Option<Duration>) {
        let mut st = self.state.lock();
        let in_flight = st.in_flight;
        if let (Some(held), Some(g)) = (held, st.adaptive.as_mut()) {
            st.limit = g.sample(held, in_flight);
            Self::admit_up_to_limit(&mut st, self);
        }
        if st.in_flight > st.limit {
            // The limit was lowered: this slot goes away.
            st.in_flight -= 1;
            return;
        }
        while let Some(w) = st.pop_next() {
            if w.tx.send(()).is_ok() {
                return;
            }
        }
        st.in_flight = st.in_flight.saturating_sub(1);
    }

    /// Lets waiters in while there is room under the limit (it was raised).
    fn admit_up_to_limit(st: &mut State, inner: &Inner) {
        while st.in_flight < st.limit {
            let Some(w) = st.pop_next() else { break };
            if w.tx.send(()).is_ok() {
                st.in_flight += 1;
                inner.note_in_flight(st.in_flight);
            }
        }
    }

    fn forget(&self, lane: Lane, id: u64) {
        let mut st = self.state.lock();
        let q = &mut st.lanes[lane as usize];
        if let Some(pos) = q.iter().position(|w| w.id == id) {
            q.remove(pos);
        }
    }

    fn note_in_flight(&self, n: usize) {
        self.peak_in_flight.fetch_max(n as u64, Relaxed);
    }
}

/// The origin admission of one site. Cheap to clone; kept across reloads (a reload changes
/// the limit and the bounds, not the requests in flight).
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

/// Why a request was not let through to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its lane already held `queue_size` waiters.
    LaneFull,
    /// It waited `queue_timeout` without getting a slot.
    TimedOut,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Refused::LaneFull => "lane-full",
            Refused::TimedOut => "timed-out",
        }
    }
}

/// A slot at the origin; dropping it lets the next waiter in.
pub struct Permit {
    inner: Arc<Inner>,
    since: Instant,
}

impl Drop for Permit {
    fn drop(&mut self) {
        // A moving average (1/8 weight) of how long a slot is held; races only blur it.
        let held = self.since.elapsed().as_micros().min(u64::MAX as u128) as u64;
        let avg = self.inner.service_micros.load(Relaxed);
        let next = if avg == 0 {
            held
        } else {
            avg - avg / 8 + held / 8
        };
        self.inner.service_micros.store(next, Relaxed);
        self.inner.release(Some(self.since.elapsed()));
    }
}

/// A request let through, and how long it waited.
pub struct Admitted {
    pub permit: Permit,
    pub lane: Lane,
    pub waited: Duration,
}

enum Place {
    Slot,
    Queued { id: u64, rx: oneshot::Receiver<()> },
    Full,
}

/// Admission's turn, for the chain and the edge (which know no admission type).
impl crate::guard::Turn for Ticket {
    fn immediate(&self) -> bool {
        Ticket::immediate(self)
    }

    fn wait(
        self: Box<Self>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<crate::guard::Granted, crate::guard::NoTurn>>
                + Send,
        >,
    > {
        Box::pin(async move {
            match Ticket::wait(*self).await {
                Ok(admitted) => Ok(crate::guard::Granted {
                    hold: Box::new(admitted.permit),
                    waited: admitted.waited,
                }),
                Err(refused) => Err(crate::guard::NoTurn(refused.label())),
            }
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A request's claim on an origin slot, taken without waiting.
pub struct Ticket {
    inner: Arc<Inner>,
    lane: Lane,
    timeout: Duration,
    created: Instant,
    place: Option<Place>,
}

impl Ticket {
    /// Got its slot at once (no wait, no refusal).
    pub fn immediate(&self) -> bool {
        matches!(self.place, Some(Place::Slot))
    }

    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// Waits for the slot until the deadline. Dropping the future (the client left) gives
    /// the place up.
    pub async fn wait(mut self) -> Result<Admitted, Refused> {
        let stats = &self.inner.stats[self.lane as usize];
        match &mut self.place {
            Some(Place::Slot) => {}
            Some(Place::Queued { rx, .. }) => {
                let left = self.timeout.saturating_sub(self.created.elapsed());
                match tokio::time::timeout(left, rx).await {
                    Ok(Ok(())) => {}
                    // The sender is only dropped after a send or when the admission goes
                    // away: either way there is no slot for us.
                    Ok(Err(_)) | Err(_) => {
                        stats.timed_out.fetch_add(1, Relaxed);
                        // Drop gives the place up (and a slot sent at the last moment).
                        return Err(Refused::TimedOut);
                    }
                }
            }
            Some(Place::Full) | None => {
                stats.lane_full.fetch_add(1, Relaxed);
                self.place = None;
                return Err(Refused::LaneFull);
            }
        }
        let waited = self.created.elapsed();
        if matches!(self.place, Some(Place::Slot)) {
            stats.admitted_at_once.fetch_add(1, Relaxed);
        } else {
            stats.admitted_after_wait.fetch_add(1, Relaxed);
            stats
                .wait_micros
                .fetch_add(waited.as_micros().min(u64::MAX as u128) as u64, Relaxed);
        }
        // The slot is the permit's now: Drop must not release it again.
        self.place = None;
        Ok(Admitted {
            permit: Permit {
                inner: self.inner.clone(),
                since: Instant::now(),
            },
            lane: self.lane,
            waited,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        match self.place.take() {
            Some(Place::Slot) => self.inner.release(None),
            Some(Place::Queued { id, mut rx }) => {
                self.inner.forget(self.lane, id);
                rx.close();
                if rx.try_recv().is_ok() {
                    // A slot arrived as we gave up: pass it on.
                    self.inner.release(None);
                }
            }
            Some(Place::Full) | None => {}
        }
    }
}

/// What the metrics and the status show of one site's admission.
#[derive(Debug, Clone)]
pub struct AdmissionSnapshot {
    pub site: String,
    pub limit: usize,
    pub adaptive: bool,
    pub in_flight: usize,
    pub peak_in_flight: u64,
    /// How long a request arriving now would wait, estimated.
    pub estimated_wait: Duration,
    pub waiting: [usize; Lane::ALL.len()],
    pub admitted_at_once: [u64; Lane::ALL.len()],
    pub admitted_after_wait: [u64; Lane::ALL.len()],
    pub timed_out: [u64; Lane::ALL.len()],
    pub lane_full: [u64; Lane::ALL.len()],
    pub wait_seconds: [f64; Lane::ALL.len()],
}

impl Admission {
    pub fn new(site: &str, limit: usize, queue_size: usize) -> Self {
        Admission {
            inner: Arc::new(Inner {
                site: site.to_string(),
                state: Mutex::new(State {
                    limit: limit.max(1),
                    adaptive: None,
                    in_flight: 0,
                    queue_size,
                    lanes: Default::default(),
                    next_id: 0,
                }),
                stats: Default::default(),
                peak_in_flight: AtomicU64::new(0),
                service_micros: AtomicU64::new(0),
            }),
        }
    }

    /// Takes a place for a request in `lane`, without waiting.
    pub fn ticket(&self, lane: Lane, timeout: Duration) -> Ticket {
        let mut st = self.inner.state.lock();
        let place = if st.in_flight < st.limit && st.waiting() == 0 {
            st.in_flight += 1;
            self.inner.note_in_flight(st.in_flight);
            Place::Slot
        } else if st.lanes[lane as usize].len() >= st.queue_size {
            Place::Full
        } else {
            let (tx, rx) = oneshot::channel();
            let id = st.next_id;
            st.next_id += 1;
            st.lanes[lane as usize].push_back(Waiter { id, tx });
            Place::Queued { id, rx }
        };
        drop(st);
        Ticket {
            inner: self.inner.clone(),
            lane,
            timeout,
            created: Instant::now(),
            place: Some(place),
        }
    }

    /// Sets the limit (fixed), or makes it adaptive between `adaptive = (min, max)` starting
    /// from `limit`; an adaptive limit that stays adaptive keeps what it learned, within the
    /// new bounds.
    pub fn configure(&self, limit: usize, queue_size: usize, adaptive: Option<(usize, usize)>) {
        let mut st = self.inner.state.lock();
        st.queue_size = queue_size;
        match adaptive {
            None => {
                st.adaptive = None;
                st.limit = limit.max(1);
            }
            Some((min, max)) => {
                let start = if st.adaptive.is_some() {
                    st.limit
                } else {
                    limit
                };
                let g = Gradient::new(start, min, max);
                st.limit = g.limit();
                st.adaptive = Some(g);
            }
        }
        Inner::admit_up_to_limit(&mut st, &self.inner);
    }

    /// How long a request arriving now would wait for its slot, estimated from the waiters
    /// ahead of it and how long a slot is held on average.
    pub fn estimated_wait(&self) -> Duration {
        let (waiting, limit) = {
            let st = self.inner.state.lock();
            (st.waiting() as u64, st.limit.max(1) as u64)
        };
        let service = self.inner.service_micros.load(Relaxed);
        Duration::from_micros(waiting.saturating_mul(service) / limit)
    }

    pub fn snapshot(&self) -> AdmissionSnapshot {
        let (limit, adaptive, in_flight, waiting) = {
            let st = self.inner.state.lock();
            (
                st.limit,
                st.adaptive.is_some(),
                st.in_flight,
                std::array::from_fn(|i| st.lanes[i].len()),
            )
        };
        let s = &self.inner.stats;
        AdmissionSnapshot {
            site: self.inner.site.clone(),
            limit,
            adaptive,
            in_flight,
            peak_in_flight: self.inner.peak_in_flight.load(Relaxed),
            estimated_wait: self.estimated_wait(),
            waiting,
            admitted_at_once: std::array::from_fn(|i| s[i].admitted_at_once.load(Relaxed)),
            admitted_after_wait: std::array::from_fn(|i| s[i].admitted_after_wait.load(Relaxed)),
            timed_out: std::array::from_fn(|i| s[i].timed_out.load(Relaxed)),
            lane_full: std::array::from_fn(|i| s[i].lane_full.load(Relaxed)),
            wait_seconds: std::array::from_fn(|i| s[i].wait_micros.load(Relaxed) as f64 / 1e6),
        }
    }
}

type SiteValue = fn(&AdmissionSnapshot) -> f64;
type LaneValue = fn(&AdmissionSnapshot, usize) -> f64;

/// Prometheus text for every site's admission.
pub fn render_metrics(snapshots: &[AdmissionSnapshot], out: &mut String) {
    use peakguard_prometheus::{Exposition, Kind};
    if snapshots.is_empty() {
        return;
    }
    let per_site: [(&str, &str, SiteValue); 4] = [
        (
            "peakguard_admission_estimated_wait_seconds",
            "How long a request arriving now would wait for an origin slot (waiters x mean slot time / limit).",
            |s| s.estimated_wait.as_secs_f64(),
        ),
        (
            "peakguard_origin_limit",
            "Concurrent origin requests allowed now (origin admission; adaptive limits move).",
            |s| s.limit as f64,
        ),
        (
            "peakguard_origin_in_flight",
            "Requests at the origin now, counted by origin admission.",
            |s| s.in_flight as f64,
        ),
        (
            "peakguard_origin_in_flight_peak",
            "The most requests at the origin at once since start.",
            |s| s.peak_in_flight as f64,
        ),
    ];
    let mut e = Exposition::new(out);
    for (name, help, value) in per_site {
        let mut family = e.family(name, Kind::Gauge, help);
        for s in snapshots {
            family.sample(&[("site", &s.site)], value(s));
        }
    }
    let by_lane = |family: &mut peakguard_prometheus::Family<'_>, result: Option<&str>, value: LaneValue| {
        for s in snapshots {
            for lane in Lane::ALL {
                let mut labels = vec![("site", s.site.as_str()), ("lane", lane.label())];
                if let Some(result) = result {
                    labels.push(("result", result));
                }
                family.sample(&labels, value(s, lane as usize));
            }
        }
    };
    by_lane(
        &mut e.family(
            "peakguard_admission_queue_length",
            Kind::Gauge,
            "Requests waiting for an origin slot, by lane.",
        ),
        None,
        |s, i| s.waiting[i] as f64,
    );
    let mut admitted = e.family(
        "peakguard_admission_total",
        Kind::Counter,
        "Requests let through to the origin (at once or after waiting) or refused (lane full, timed out), by lane.",
    );
    let results: [(&str, LaneValue); 4] = [
        ("at_once", |s, i| s.admitted_at_once[i] as f64),
        ("after_wait", |s, i| s.admitted_after_wait[i] as f64),
        ("timed_out", |s, i| s.timed_out[i] as f64),
        ("lane_full", |s, i| s.lane_full[i] as f64),
    ];
    for (result, value) in results {
        by_lane(&mut admitted, Some(result), value);
    }
    by_lane(
        &mut e.family(
            "peakguard_admission_wait_seconds_total",
            Kind::Counter,
            "Time spent waiting in their lane by requests let through after waiting.",
        ),
        None,
        |s, i| s.wait_seconds[i],
    );
}

#[cfg(test)]
mod tests;
