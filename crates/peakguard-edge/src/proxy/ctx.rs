//! What one request carries across the hooks, in three parts: what the request is
//! ([`Incoming`]), what the origin said ([`FromOrigin`]) and what is answered ([`Answer`]).

use crate::sites::Site;
use bytes::Bytes;
use peakguard_cache::{Accepted, Bypass};
use peakguard_shield::guard::{NoTurn, Turn};
use peakguard_shield::{ClientInfo, Trail};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct RequestCtx {
    pub(super) start: Instant,
    pub(super) req: Incoming,
    pub(super) origin: FromOrigin,
    pub(super) answer: Answer,
}

/// What the request is: its site, client, target, cache key and body.
pub struct Incoming {
    pub(super) site: Option<Arc<Site>>,
    pub(super) client: Option<ClientInfo>,
    pub(super) host: String,
    pub(super) path_and_query: String,
    pub(super) scheme: &'static str,
    pub(super) tls: bool,
    pub(super) key_url: String,
    pub(super) bypass: Option<Bypass>,
    /// The client's `Accept-Encoding` (identity only for a range request).
    pub(super) accepted: Accepted,
    /// A GET/HEAD body was read and discarded here; the origin gets `Content-Length: 0`.
    pub(super) drained_body: bool,
    /// The request body, read before the origin phase because a guard asked to see it
    /// (replayed to the origin by pingora's retry buffer).
    pub(super) body: Option<Bytes>,
    /// Request body bytes that went to the origin so far (held to the site's limit).
    pub(super) body_sent: u64,
}

/// What the origin said, and the turn the request waited for to ask it.
#[derive(Default)]
pub struct FromOrigin {
    pub(super) sent: Option<Instant>,
    pub(super) time: Option<Duration>,
    /// How the origin failed, where a hook saw it fail.
    pub(super) failure: Option<OriginFailure>,
    /// The header fields of a 304 received while revalidating (RFC 9111 §4.3.4: they update
    /// the stored response; pingora merges only a few of them).
    pub(super) not_modified_fields: Option<http::HeaderMap>,
    /// The `Age` the origin's response carried (forwarded on a miss).
    pub(super) age: Option<http::HeaderValue>,
    /// The origin phase's ticket (and the guard that gave it), awaited before connecting to
    /// the origin.
    pub(super) ticket: Option<(&'static str, Box<dyn Turn>)>,
    /// The origin slot, held until the origin's response has ended.
    pub(super) permit: Option<Box<dyn Send + Sync>>,
    /// Origin admission refused this request (it got the stale copy or the busy page).
    pub(super) refused: Option<NoTurn>,
    /// The origin's status, header fields and response body, collected (bounded) for a
    /// guard that asked to see it.
    pub(super) response_body: Option<(u16, http::HeaderMap, bytes::BytesMut)>,
    /// The order the companion plugin reported on a confirmation page (its
    /// `X-Peakguard-Order` field, taken off the response), for the statistics.
    pub(super) order: Option<Box<str>>,
}

/// How the origin failed: each is seen by another of Pingora's hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginFailure {
    /// It answered a 5xx (`upstream_response_filter`).
    ServerError,
    /// No usable answer, and nothing was sent to the client yet (`fail_to_proxy`).
    NoAnswer,
    /// It failed while a stored copy could stand in: the stale copy was served
    /// (`should_serve_stale`).
    StaleServed,
}

impl FromOrigin {
    /// The origin failed this way; the first failure seen is kept.
    pub(super) fn failed(&mut self, how: OriginFailure) {
        self.failure.get_or_insert(how);
    }
}

/// What is answered.
#[derive(Default)]
pub struct Answer {
    /// Answered by the edge itself.
    pub(super) local: Option<Local>,
    /// The origin failed and its body is replaced by the branded page.
    pub(super) replacement: Option<Bytes>,
    pub(super) stale_error: bool,
    /// The cache found a complete stored object (its representation for this client).
    pub(super) stored_hit: bool,
    /// Which guards acted, and why (the access log's `guard` field).
    pub(super) trail: Trail,
}

/// Who answered a request the edge answered itself (the access log's `cache` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// A guard of the shield, by its name.
    Guard(&'static str),
    HeaderTooLarge,
    NoHost,
    UnknownHost,
    BodyTooLarge,
    BadBody,
    /// Origin admission refused the request and no stale copy existed (the busy page).
    OriginBusy,
}

impl Local {
    pub fn label(self) -> &'static str {
        match self {
            Local::Guard(name) => name,
            Local::HeaderTooLarge => "header-too-large",
            Local::NoHost => "no-host",
            Local::UnknownHost => "unknown-host",
            Local::BodyTooLarge => "body-too-large",
            Local::BadBody => "bad-body",
            Local::OriginBusy => "admission",
        }
    }

    /// The maintenance page (counted apart).
    pub fn is_maintenance(self) -> bool {
        self == Local::Guard(peakguard_shield::maintenance::GUARD.name)
    }
}

impl RequestCtx {
    pub(super) fn new(tls: bool) -> Self {
        RequestCtx {
            start: Instant::now(),
            req: Incoming {
                site: None,
                client: None,
                host: String::new(),
                path_and_query: String::new(),
                scheme: if tls { "https" } else { "http" },
                tls,
                key_url: String::new(),
                bypass: None,
                accepted: Accepted::identity_only(),
                drained_body: false,
                body: None,
                body_sent: 0,
            },
            origin: FromOrigin::default(),
            answer: Answer::default(),
        }
    }
}
