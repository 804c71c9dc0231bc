//! The waiting room: when demand exceeds what the origin can take, new visitors wait in line
//! on a light page the edge serves itself, in the order they came; their place is a signed
//! cookie, so a refresh never loses it.
//!
//! How the line moves: every visitor who comes in gets a numbered ticket (`seq`); the room
//! lets people in by raising `admitted`, as fast as `new_users_per_minute` allows and while
//! fewer than `active_users` hold a pass. A visitor whose number is ≤ `admitted` gets a pass
//! on their next refresh. Someone let in who does not come back within `no_show` has left:
//! their slot is counted free again, so abandoned places do not block the line.
//!
//! A scheduled opening: before it, everyone gets a pre-queue ticket with a random draw; at
//! the opening the pre-queue is let in by draw order (arriving seconds earlier is no
//! advantage), then the numbered line.
//!
//! All shared numbers live in the store (tickets issued, admitted, the mode, the opening,
//! passes per 10-second bucket); a restart keeps the line.

mod config;
pub mod cookie;
mod guard;
mod page;

pub use config::WaitingRoomConfig;
pub use cookie::RoomKeys;
pub use guard::{GUARD, PassCheck, ROOM_HEADER, RoomGuard};

use crate::store::{Store, StoreError};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
// tokio's clock: the same as std's outside tests, pausable in them.
use tokio::time::Instant;

/// Room state keys outlive any line.
const FOREVER: Duration = Duration::from_secs(400 * 86_400);
/// Passes are counted in buckets of this many seconds.
const BUCKET_SECS: u64 = 10;
/// The line moves at most this often.
const TICK: Duration = Duration::from_millis(200);
/// Paced by the origin's wait alone (no `active_users`, no `new_users_per_minute`): at most
/// this many let in per tick while the wait is short (10 a second), so that a line does not
/// rush the origin the moment its queue drains.
const ORIGIN_PACED_PER_TICK: u64 = 2;

/// The switch an operator sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoomMode {
    /// Queue new visitors only when the room is full.
    Normal = 0,
    /// Queue every new visitor.
    QueueAll = 1,
    /// Let everyone through (the line is kept for later).
    Suspended = 2,
}

impl RoomMode {
    fn from_value(v: u64) -> Self {
        match v {
            1 => RoomMode::QueueAll,
            2 => RoomMode::Suspended,
            _ => RoomMode::Normal,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "normal" => Some(RoomMode::Normal),
            "queue-all" => Some(RoomMode::QueueAll),
            "suspended" | "suspend" => Some(RoomMode::Suspended),
            _ => None,
        }
    }
}

/// A place in line, as its cookie says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    /// Taken before a scheduled opening: a random draw.
    Pre(u32),
    /// The n-th visitor in line.
    Seq(u64),
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Its turn came.
    In,
    /// 1 = next.
    Waiting(u64),
    /// Before the opening: the draw happens then.
    BeforeOpening { opens_at: u64 },
}

/// What `GET /shield` and the CLI show of a room.
#[derive(Debug, Clone, Serialize)]
pub struct RoomStatus {
    pub site: String,
    pub mode: RoomMode,
    /// Unix seconds; absent when no opening is scheduled.
    pub opens_at: Option<u64>,
    /// Visitors in line (including those who may have left; they are let in and counted as
    /// no-shows).
    pub waiting: u64,
    pub prequeue: u64,
    /// Visitors holding a pass seen recently.
    pub active: u64,
    pub tickets_issued: u64,
    pub admitted: u64,
    /// Let in, not yet back to claim their pass.
    pub outstanding: u64,
    pub active_users: u64,
    pub new_users_per_minute: u64,
}

#[derive(Default)]
struct Local {
    last_tick: Option<Instant>,
    /// Fractional new-visitor allowance carried between ticks.
    allowance: f64,
    /// Let in but not yet claimed: (how many, when). Older than `no_show`: gone.
    outstanding: VecDeque<(u64, Instant)>,
}

impl Local {
    fn outstanding(&self) -> u64 {
        self.outstanding.iter().map(|(n, _)| n).sum()
    }
}

struct Counters {
    seq: u64,
    admitted: u64,
    pre: u64,
    pre_admitted: u64,
    /// Unix seconds, 0 = none.
    opens: u64,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub struct Room {
    site: String,
    config: parking_lot::RwLock<WaitingRoomConfig>,
    store: Arc<dyn Store>,
    local: tokio::sync::Mutex<Local>,
}

impl Room {
    pub fn new(site: &str, config: &WaitingRoomConfig, store: Arc<dyn Store>) -> Self {
        Room {
            site: site.to_string(),
            config: parking_lot::RwLock::new(config.clone()),
            store,
            local: tokio::sync::Mutex::default(),
        }
    }

    pub fn site(&self) -> &str {
        &self.site
    }

    pub fn reconfigure(&self, config: &WaitingRoomConfig) {
        *self.config.write() = config.clone();
    }

    pub fn config(&self) -> WaitingRoomConfig {
        self.config.read().clone()
    }

    fn key(&self, what: &str) -> String {
        format!("room:{}:{what}", self.site)
    }

    pub async fn mode(&self) -> Result<RoomMode, StoreError> {
        Ok(RoomMode::from_value(
            self.store.get(&self.key("mode")).await?,
        ))
    }

    pub async fn set_mode(&self, mode: RoomMode) -> Result<(), StoreError> {
        self.store
            .hold(&self.key("mode"), mode as u64, FOREVER)
            .await?;
        log::info!("waiting room {}: mode {mode:?}", self.site);
        Ok(())
    }

    /// Schedules the opening (Unix seconds), or cancels it.
    pub async fn set_opening(&self, at: Option<u64>) -> Result<(), StoreError> {
        match at {
            Some(at) => {
                self.store.hold(&self.key("opens"), at, FOREVER).await?;
                log::info!(
                    "waiting room {}: opening scheduled at {at} (Unix time)",
                    self.site
                );
            }
            None => {
                self.store.remove(&self.key("opens")).await?;
                log::info!("waiting room {}: no scheduled opening", self.site);
            }
        }
        Ok(())
    }

    async fn counters(&self) -> Result<Counters, StoreError> {
        Ok(Counters {
            seq: self.store.get(&self.key("seq")).await?,
            admitted: self.store.get(&self.key("admitted")).await?,
            pre: self.store.get(&self.key("pre")).await?,
            pre_admitted: self.store.get(&self.key("pre-admitted")).await?,
            opens: self.store.get(&self.key("opens")).await?,
        })
    }

    fn waiting_of(c: &Counters) -> u64 {
        c.pre.saturating_sub(c.pre_admitted) + c.seq.saturating_sub(c.admitted)
    }

    /// Passes issued or renewed within half a session: a visitor who keeps coming back
    /// renews once per half session, so each counts about once.
    async fn active(&self) -> Result<u64, StoreError> {
        let half = (self.config.read().session.0.as_secs() / 2).max(BUCKET_SECS);
        let now = unix_now() / BUCKET_SECS;
        let mut sum = 0;
        for b in 0..half.div_ceil(BUCKET_SECS) {
            sum += self
                .store
                .get(&self.key(&format!("active:{}", now.saturating_sub(b))))
                .await?;
        }
        Ok(sum)
    }

    /// New passes this minute (the `new_users_per_minute` budget).
    async fn new_this_minute(&self) -> Result<u64, StoreError> {
        self.store
            .get(&self.key(&format!("new:{}", unix_now() / 60)))
            .await
    }

    /// Counts a pass issued (`new`) or renewed.
    async fn count_pass(&self, new: bool) -> Result<(), StoreError> {
        let session = self.config.read().session.0;
        let now = unix_now();
        self.store
            .incr(
                &self.key(&format!("active:{}", now / BUCKET_SECS)),
                1,
                session + Duration::from_secs(2 * BUCKET_SECS),
            )
            .await?;
        if new {
            self.store
                .incr(
                    &self.key(&format!("new:{}", now / 60)),
                    1,
                    Duration::from_secs(120),
                )
                .await?;
        }
        Ok(())
    }

    /// Moves the line: lets in as many as the limits allow (at most every [`TICK`]), and
    /// nobody while the origin's estimated wait is above `max_origin_wait`.
    async fn tick(&self, origin_wait: Duration) -> Result<(), StoreError> {
        let mut local = self.local.lock().await;
        let now = Instant::now();
        let dt = match local.last_tick {
            Some(t) if now.duration_since(t) < TICK => return Ok(()),
            Some(t) => now.duration_since(t),
            None => TICK,
        };
        local.last_tick = Some(now);
        let config = self.config.read().clone();
        let no_show = config.no_show.0;
        while local
            .outstanding
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > no_show)
        {
            local.outstanding.pop_front();
        }
        let c = self.counters().await?;
        if c.opens > unix_now() {
            return Ok(());
        }
        let waiting = Self::waiting_of(&c);
        let mut room = waiting;
        if config.active_users > 0 {
            let taken = self.active().await? + local.outstanding();
            room = room.min(config.active_users.saturating_sub(taken));
        }
        if config.new_users_per_minute > 0 {
            let per_sec = config.new_users_per_minute as f64 / 60.0;
            // At most a few seconds' worth at once: no burst after a quiet spell.
            local.allowance =
                (local.allowance + per_sec * dt.as_secs_f64()).min(per_sec * 5.0 + 1.0);
            room = room.min(local.allowance.floor() as u64);
        }
        let max_wait = config.max_origin_wait.0;
        if !max_wait.is_zero() {
            if origin_wait > max_wait {
                // The origin is behind: whoever is let in now would only wait there.
                room = 0;
            } else if config.active_users == 0 && config.new_users_per_minute == 0 {
                room = room.min(ORIGIN_PACED_PER_TICK);
            }
        }
        if room == 0 {
            return Ok(());
        }
        let from_pre = room.min(c.pre.saturating_sub(c.pre_admitted));
        if from_pre > 0 {
            self.store
                .incr_held(&self.key("pre-admitted"), from_pre, FOREVER)
                .await?;
        }
        if room > from_pre {
            self.store
                .incr_held(&self.key("admitted"), room - from_pre, FOREVER)
                .await?;
        }
        local.allowance -= room as f64;
        local.outstanding.push_back((room, now));
        Ok(())
    }

    /// Where `ticket` stands now.
    async fn place(&self, ticket: Ticket) -> Result<Place, StoreError> {
        let c = self.counters().await?;
        if c.opens > unix_now() {
            return Ok(Place::BeforeOpening { opens_at: c.opens });
        }
        let pre_left = c.pre.saturating_sub(c.pre_admitted);
        Ok(match ticket {
            Ticket::Pre(draw) => {
                // The draw's rank among the pre-queue, 1-based.
                let rank = (draw as u64 * c.pre) >> 32;
                if rank < c.pre_admitted {
                    Place::In
                } else {
                    Place::Waiting(rank - c.pre_admitted + 1)
                }
            }
            Ticket::Seq(n) if n <= c.admitted => Place::In,
            Ticket::Seq(n) => Place::Waiting(pre_left + (n - c.admitted)),
        })
    }

    /// A visitor let in came back for their pass: one less outstanding.
    async fn claimed(&self) {
        let mut local = self.local.lock().await;
        if let Some(front) = local.outstanding.front_mut() {
            front.0 -= 1;
            if front.0 == 0 {
                local.outstanding.pop_front();
            }
        }
    }

    /// Must a new visitor wait in line?
    async fn must_queue(&self, mode: RoomMode, origin_wait: Duration) -> Result<bool, StoreError> {
        if mode == RoomMode::QueueAll {
            return Ok(true);
        }
        let c = self.counters().await?;
        if c.opens > unix_now() || Self::waiting_of(&c) > 0 {
            return Ok(true);
        }
        let config = self.config.read().clone();
        if config.active_users > 0 {
            let outstanding = self.local.lock().await.outstanding();
            if self.active().await? + outstanding >= config.active_users {
                return Ok(true);
            }
        }
        if config.new_users_per_minute > 0
            && self.new_this_minute().await? >= config.new_users_per_minute
        {
            return Ok(true);
        }
        let max_wait = config.max_origin_wait.0;
        Ok(!max_wait.is_zero() && origin_wait > max_wait)
    }

    /// A new place in line: a draw before the opening, the next number after.
    async fn take_ticket(&self) -> Result<Ticket, StoreError> {
        let c = self.counters().await?;
        if c.opens > unix_now() {
            self.store.incr_held(&self.key("pre"), 1, FOREVER).await?;
            return Ok(Ticket::Pre(rand::random::<u32>()));
        }
        Ok(Ticket::Seq(
            self.store.incr_held(&self.key("seq"), 1, FOREVER).await?,
        ))
    }

    /// Roughly how many visitors a minute the line moves.
    fn pace_per_minute(&self) -> f64 {
        let c = self.config.read();
        if c.new_users_per_minute > 0 {
            return c.new_users_per_minute as f64;
        }
        // With only an active-user limit, the line moves as visitors' passes lapse.
        let minutes = (c.session.0.as_secs_f64() / 60.0).max(1.0);
        (c.active_users as f64 / minutes).max(1.0)
    }

    pub async fn status(&self) -> Result<RoomStatus, StoreError> {
        let c = self.counters().await?;
        let config = self.config();
        Ok(RoomStatus {
            site: self.site.clone(),
            mode: self.mode().await?,
            opens_at: (c.opens > 0).then_some(c.opens),
            waiting: Self::waiting_of(&c),
            prequeue: c.pre.saturating_sub(c.pre_admitted),
            active: self.active().await?,
            tickets_issued: c.seq + c.pre,
            admitted: c.admitted + c.pre_admitted,
            outstanding: self.local.lock().await.outstanding(),
            active_users: config.active_users,
            new_users_per_minute: config.new_users_per_minute,
        })
    }
}

/// The exposition text of every waiting room.
pub fn render_metrics(rooms: &[RoomStatus], out: &mut String) {
    use peakguard_prometheus::{Exposition, Kind};
    if rooms.is_empty() {
        return;
    }
    type Value = fn(&RoomStatus) -> u64;
    let families: [(&str, Kind, &str, Value); 5] = [
        (
            "peakguard_waiting_room_waiting",
            Kind::Gauge,
            "Visitors in line (pre-queue included).",
            |r| r.waiting,
        ),
        (
            "peakguard_waiting_room_active",
            Kind::Gauge,
            "Visitors holding a pass seen recently.",
            |r| r.active,
        ),
        (
            "peakguard_waiting_room_tickets_total",
            Kind::Counter,
            "Places in line given out.",
            |r| r.tickets_issued,
        ),
        (
            "peakguard_waiting_room_admitted_total",
            Kind::Counter,
            "Places in line whose turn came.",
            |r| r.admitted,
        ),
        (
            "peakguard_waiting_room_mode",
            Kind::Gauge,
            "The room's switch: 0 normal, 1 queue-all, 2 suspended.",
            |r| r.mode as u64,
        ),
    ];
    let mut e = Exposition::new(out);
    for (name, kind, help, value) in families {
        let mut family = e.family(name, kind, help);
        for r in rooms {
            family.sample(&[("site", &r.site)], value(r));
        }
    }
}

#[cfg(test)]
mod tests;
