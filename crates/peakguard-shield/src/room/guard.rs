//! The waiting-room guard: on the way to the origin (cache hits never wait), a visitor with
//! a pass or a session the origin issued goes on; anyone else gets a place in line when the
//! room is full, and the page with it.

use crate::GuardConfig;
use super::page::{self, View};
use super::{Place, Room, RoomKeys, RoomMode, Ticket, unix_now};
use crate::admission::{Admission, Lane};
use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use crate::issued::{self, SessionCookies};
use crate::store::StoreError;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

pub const TICKET_COOKIE: &str = "pg_ticket";
pub const PASS_COOKIE: &str = "pg_pass";
/// Marks the waiting page (`position=N` or `pre-queue`), so that tools such as
/// `peakguard rehearse` can tell a visitor in line from a failed request.
pub const ROOM_HEADER: &str = "peakguard-waiting-room";

/// In the chain when `[site.shield.waiting_room]` is on.
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "waiting-room",
    table: "waiting_room",
    build: |b| {
        let w = &super::WaitingRoomConfig::of_site(b.site);
        if !w.enabled {
            return Ok(None);
        }
        let mut made = false;
        let room = b.slot(|| {
            made = true;
            Room::new(&b.site.name, w, b.shield.store.clone())
        });
        if !made {
            room.reconfigure(w);
        }
        let a = crate::admission::AdmissionConfig::of_site(b.site);
        Ok(Some(Arc::new(RoomGuard {
            room,
            keys: b.shield.room_keys.clone(),
            admission: crate::admission::site_admission(b),
            queue_timeout: a.queue_timeout.0,
            sessions: SessionCookies::new(&a.session_cookies),
            template: b.shared.room_templates.get(&b.site.name).cloned(),
        })))
    },
    check: Some(super::config::check),
};

pub struct RoomGuard {
    pub room: Arc<Room>,
    pub keys: Arc<parking_lot::RwLock<RoomKeys>>,
    /// Its estimated wait can fill the room (`max_origin_wait`); a visitor let in waits for
    /// the origin in its session lane, for at most `queue_timeout`.
    pub admission: Option<Admission>,
    pub queue_timeout: Duration,
    pub sessions: SessionCookies,
    /// The site's own page, read by the edge.
    pub template: Option<Arc<str>>,
}

/// Paths that never wait: the admin, logins, APIs used by pages already let in, payment
/// callbacks, and static files.
fn exempt(req: &RequestFacts<'_>) -> bool {
    if !matches!(*req.method, http::Method::GET | http::Method::HEAD) {
        return true;
    }
    let path = req.path();
    let path = &*path;
    if path.starts_with("/wp-admin/")
        || path.starts_with("/wp-json/")
        || path.starts_with("/wc-api/")
        || matches!(path, "/wp-login.php" | "/xmlrpc.php" | "/wp-cron.php")
    {
        return true;
    }
    crate::limits::bucket_of(req).is_none()
}

/// What the request's cookies say, checked without the store.
struct Claims {
    pass_expires: Option<u64>,
    ticket: Option<Ticket>,
    sessions: Vec<String>,
    json: bool,
    secure: bool,
}

fn cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// Checks a request's waiting-room pass (signed, unexpired) for one site.
#[derive(Clone)]
pub struct PassCheck {
    pub keys: Arc<parking_lot::RwLock<RoomKeys>>,
    pub site: String,
}

/// Never prints the keys.
impl std::fmt::Debug for PassCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PassCheck({})", self.site)
    }
}

/// The expiry (Unix seconds) of the request's valid pass for `site`.
fn pass_expiry(keys: &RoomKeys, site: &str, req: &RequestFacts<'_>) -> Option<u64> {
    let now = unix_now();
    let context = format!("{site}|pass");
    req.cookies()
        .filter(|(name, _)| *name == PASS_COOKIE)
        .filter_map(|(_, value)| keys.open(&context, value, 2))
        .filter_map(|f| f[0].parse::<u64>().ok())
        .find(|expires| *expires > now)
}

impl PassCheck {
    pub fn holds(&self, req: &RequestFacts<'_>) -> bool {
        pass_expiry(&self.keys.read(), &self.site, req).is_some()
    }
}

impl RoomGuard {
    fn claims(&self, req: &RequestFacts<'_>, lifetime: Duration) -> Claims {
        let keys = self.keys.read();
        let pass_expires = pass_expiry(&keys, self.room.site(), req);
        let site = self.room.site();
        let now = unix_now();
        let mut ticket = None;
        for (name, value) in req.cookies() {
            if name == TICKET_COOKIE
                && let Some(f) = keys.open(&format!("{site}|ticket"), value, 3)
                && let (Ok(n), Ok(issued)) = (f[1].parse::<u64>(), f[2].parse::<u64>())
                && issued + lifetime.as_secs() > now
            {
                ticket = match f[0] {
                    "p" => u32::try_from(n).ok().map(Ticket::Pre),
                    "q" => Some(Ticket::Seq(n)),
                    _ => None,
                };
            }
        }
        Claims {
            pass_expires,
            ticket,
            sessions: self.sessions.in_request(req),
            json: req
                .header("accept")
                .is_some_and(|a| a.contains("application/json")),
            secure: req.tls_listener || req.client.proto == "https",
        }
    }
}

/// Everything the asynchronous part needs, owned.
struct Decide {
    room: Arc<Room>,
    keys: Arc<parking_lot::RwLock<RoomKeys>>,
    admission: Option<Admission>,
    queue_timeout: Duration,
    template: Option<Arc<str>>,
    claims: Claims,
}

impl Decide {
    /// A visitor let in: the pass goes with the response, and this very request (it does
    /// not carry the pass yet) waits for the origin in the session lane, like the requests
    /// that will carry it.
    fn let_in(&self, reason: &'static str, headers: Vec<(&'static str, String)>) -> Verdict {
        match &self.admission {
            Some(a) => Verdict::Wait {
                reason: format!("{} ({reason})", Lane::Session.label()).into(),
                ticket: Box::new(a.ticket(Lane::Session, self.queue_timeout)),
                headers,
            },
            None => Verdict::Note {
                reason: reason.into(),
                headers,
            },
        }
    }

    fn pass_cookie(&self, session: Duration) -> String {
        let expires = (unix_now() + session.as_secs()).to_string();
        let id = format!("{:016x}", rand::random::<u64>());
        let sealed = self.keys.read().seal(
            &format!("{}|pass", self.room.site()),
            &[expires.as_str(), id.as_str()],
        );
        cookie(PASS_COOKIE, &sealed, session, self.claims.secure)
    }

    fn ticket_cookie(&self, ticket: Ticket, lifetime: Duration) -> String {
        let (kind, n) = match ticket {
            Ticket::Pre(d) => ("p", d as u64),
            Ticket::Seq(n) => ("q", n),
        };
        let (n, issued) = (n.to_string(), unix_now().to_string());
        let sealed = self.keys.read().seal(
            &format!("{}|ticket", self.room.site()),
            &[kind, n.as_str(), issued.as_str()],
        );
        cookie(TICKET_COOKIE, &sealed, lifetime, self.claims.secure)
    }

    fn page(&self, place: Place, set_cookie: Option<String>) -> Verdict {
        let config = self.room.config();
        let refresh = config.refresh.0.as_secs().max(1);
        let (position, opens_at) = match place {
            Place::Waiting(p) => (Some(p), None),
            Place::BeforeOpening { opens_at } => (None, Some(opens_at)),
            Place::In => (Some(1), None),
        };
        let wait_minutes = position.map_or(0, |p| {
            (p as f64 / self.room.pace_per_minute()).ceil() as u64
        });
        let view = View {
            site: self.room.site(),
            position,
            wait_minutes,
            refresh_secs: refresh,
            opens_at,
        };
        let (body, content_type): (Bytes, &'static str) = if self.claims.json {
            (page::json(&view), "application/json")
        } else {
            (
                page::html(&view, self.template.as_deref()),
                "text/html; charset=utf-8",
            )
        };
        let marker = match position {
            Some(p) => format!("position={p}"),
            None => "pre-queue".to_string(),
        };
        let mut response = LocalResponse::page(503, body)
            .with_header("retry-after", refresh.to_string())
            .with_header(ROOM_HEADER, marker);
        response.content_type = content_type;
        if let Some(c) = set_cookie {
            response.headers.push(("set-cookie", c));
        }
        Verdict::Respond {
            reason: match position {
                Some(p) => format!("in line, position {p}").into(),
                None => "in the pre-queue".into(),
            },
            response,
        }
    }

    async fn run(self) -> Result<Verdict, StoreError> {
        let room = self.room.clone();
        let config = room.config();
        let mode = room.mode().await?;
        if mode == RoomMode::Suspended {
            return Ok(Verdict::Pass);
        }
        if let Some(expires) = self.claims.pass_expires {
            // Renewed once past half its life: an active visitor keeps their pass and is
            // counted once per half session.
            if expires.saturating_sub(unix_now()) < config.session.0.as_secs() / 2 {
                room.count_pass(false).await?;
                return Ok(Verdict::Note {
                    reason: "pass renewed".into(),
                    headers: vec![("set-cookie", self.pass_cookie(config.session.0))],
                });
            }
            return Ok(Verdict::Pass);
        }
        if !self.claims.sessions.is_empty()
            && issued::any_issued(room.store.as_ref(), &self.claims.sessions).await?
        {
            // A cart or a login the origin issued: buyers never wait.
            return Ok(Verdict::Pass);
        }
        let origin_wait = self
            .admission
            .as_ref()
            .map_or(Duration::ZERO, Admission::estimated_wait);
        room.tick(origin_wait).await?;
        if let Some(ticket) = self.claims.ticket {
            let place = room.place(ticket).await?;
            if place != Place::In {
                return Ok(self.page(place, None));
            }
            room.claimed().await;
            room.count_pass(true).await?;
            let clear = cookie(TICKET_COOKIE, "", Duration::ZERO, self.claims.secure);
            return Ok(self.let_in(
                "let in from the line",
                vec![
                    ("set-cookie", self.pass_cookie(config.session.0)),
                    ("set-cookie", clear),
                ],
            ));
        }
        if room.must_queue(mode, origin_wait).await? {
            let ticket = room.take_ticket().await?;
            let place = room.place(ticket).await?;
            let set = self.ticket_cookie(ticket, config.ticket_lifetime.0);
            return Ok(self.page(place, Some(set)));
        }
        room.count_pass(true).await?;
        Ok(self.let_in(
            "pass issued",
            vec![("set-cookie", self.pass_cookie(config.session.0))],
        ))
    }
}

impl Guard for RoomGuard {
    fn name(&self) -> &'static str {
        "waiting-room"
    }

    fn before_origin(&self, req: &RequestFacts<'_>) -> Verdict {
        if exempt(req) {
            return Verdict::Pass;
        }
        let lifetime = self.room.config().ticket_lifetime.0;
        let decide = Decide {
            room: self.room.clone(),
            keys: self.keys.clone(),
            admission: self.admission.clone(),
            queue_timeout: self.queue_timeout,
            template: self.template.clone(),
            claims: self.claims(req, lifetime),
        };
        Verdict::Ask(Box::pin(async move {
            decide.run().await.unwrap_or_else(|e| {
                // Fail open: a store that cannot answer must not lock everyone out.
                log::warn!("waiting room: {e}; the visitor passes");
                Verdict::Pass
            })
        }))
    }
}
