//! What one request carries across the hooks.

use crate::sites::Site;
use bytes::Bytes;
use peakguard_cache::{Accepted, Bypass};
use peakguard_shield::guard::{NoTurn, Turn};
use peakguard_shield::{ClientInfo, Trail};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct RequestCtx {
    pub(super) start: Instant,
    pub(super) site: Option<Arc<Site>>,
    pub(super) client: Option<ClientInfo>,
    pub(super) host: String,
    pub(super) path_and_query: String,
    pub(super) scheme: &'static str,
    pub(super) tls: bool,
    pub(super) key_url: String,
    pub(super) bypass: Option<Bypass>,
    pub(super) origin_sent: Option<Instant>,
    pub(super) origin_time: Option<Duration>,
    pub(super) origin_error: bool,
    /// The origin failed and its body is replaced by the branded page.
    pub(super) replacement: Option<Bytes>,
    pub(super) stale_error: bool,
    /// Answered by the edge itself (a guard's name, a redirect, unknown host…).
    pub(super) local: Option<&'static str>,
    /// A GET/HEAD body was read and discarded here; the origin gets `Content-Length: 0`.
    pub(super) drained_body: bool,
    /// The header fields of a 304 received while revalidating (RFC 9111 §4.3.4: they update
    /// the stored response; pingora merges only a few of them).
    pub(super) not_modified_fields: Option<http::HeaderMap>,
    /// The `Age` the origin's response carried (forwarded on a miss).
    pub(super) origin_age: Option<http::HeaderValue>,
    /// The client's `Accept-Encoding` (identity only for a range request).
    pub(super) accepted: Accepted,
    /// The cache found a complete stored object (its representation for this client).
    pub(super) stored_hit: bool,
    /// Which guards acted, and why (the access log's `guard` field).
    pub(super) trail: Trail,
    /// The origin phase's ticket (and the guard that gave it), awaited before connecting to
    /// the origin.
    pub(super) ticket: Option<(&'static str, Box<dyn Turn>)>,
    /// The origin slot, held until the origin's response has ended.
    pub(super) permit: Option<Box<dyn Send + Sync>>,
    /// Origin admission refused this request (it got the stale copy or the busy page).
    pub(super) refused: Option<NoTurn>,
    /// The request body, read before the origin phase because a guard asked to see it
    /// (replayed to the origin by pingora's retry buffer).
    pub(super) body: Option<Bytes>,
    /// Request body bytes that went to the origin so far (held to the site's limit).
    pub(super) body_sent: u64,
    /// The origin's status, header fields and response body, collected (bounded) for a
    /// guard that asked to see it.
    pub(super) response_body: Option<(u16, http::HeaderMap, bytes::BytesMut)>,
}

impl RequestCtx {
    pub(super) fn new(tls: bool) -> Self {
        RequestCtx {
            start: Instant::now(),
            site: None,
            client: None,
            host: String::new(),
            path_and_query: String::new(),
            scheme: if tls { "https" } else { "http" },
            tls,
            key_url: String::new(),
            bypass: None,
            origin_sent: None,
            origin_time: None,
            origin_error: false,
            replacement: None,
            stale_error: false,
            local: None,
            drained_body: false,
            not_modified_fields: None,
            origin_age: None,
            accepted: Accepted::identity_only(),
            stored_hit: false,
            trail: Trail::default(),
            ticket: None,
            permit: None,
            refused: None,
            body: None,
            body_sent: 0,
            response_body: None,
        }
    }
}
