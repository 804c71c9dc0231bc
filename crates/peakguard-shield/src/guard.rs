//! The one extension point on the request path. A [`Guard`] is asked once per phase of a
//! request and answers a [`Verdict`]; the edge acts on it. A new request policy is a new
//! guard: a file in this crate with its `GUARD` entry, and its name in `guards![...]` in
//! `lib.rs` (see [`crate::registry`]).

use crate::client::ClientInfo;
use bytes::Bytes;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Where on the request path a guard is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the cache: every request, hits included. Keep it cheap.
    Request,
    /// A miss or a bypass, before it goes to the origin (coalesced misses are asked once).
    Origin,
    /// The origin's response header, before it goes to the client.
    Response,
}

/// What a guard sees of a request: borrowed, nothing copied.
pub struct RequestFacts<'a> {
    pub site: &'a str,
    pub client: &'a ClientInfo,
    pub method: &'a http::Method,
    /// The host as the client named it (port included when it gave one).
    pub host: &'a str,
    pub path_and_query: &'a str,
    /// The request target exactly as the client sent it (an absolute URI, a fragment, raw
    /// bytes kept): what the WAF inspects, as a web server's ModSecurity does.
    pub raw_target: &'a [u8],
    /// The HTTP version the request came in.
    pub version: http::Version,
    pub headers: &'a http::HeaderMap,
    /// The request came in on a TLS listener.
    pub tls_listener: bool,
    /// The request's body, once read for a guard that asked for it ([`Guard::wants_body`]);
    /// from the origin phase on.
    pub body: Option<&'a [u8]>,
}

/// Paths from the configuration, in the form [`RequestFacts::path`] gives, to compare with it.
pub fn rule_paths(paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .map(|p| peakguard_config::rule_path::normalized(p).into_owned())
        .collect()
}

impl RequestFacts<'_> {
    /// The path as the origin's router reads it (escapes decoded, `//`, `.` and `..`
    /// resolved, lower-cased: see `peakguard_config::rule_path`), so that `//wp-login.php`
    /// or `/wp-login%2ephp` meet the same guards as `/wp-login.php`. Borrowed when the path
    /// is already in that form (nearly always).
    pub fn path(&self) -> std::borrow::Cow<'_, str> {
        peakguard_config::rule_path::normalized(
            self.path_and_query
                .split_once('?')
                .map_or(self.path_and_query, |(p, _)| p),
        )
    }

    pub fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }

    /// Every `name=value` of the query as sent (a bare `name` has an empty value).
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every `name=value` of every `Cookie` header (values as sent).
    pub fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|c| c.trim().split_once('='))
    }
}

/// The most a guard may ask the edge to read of a request body before the origin sees it
/// (what Pingora can replay to the origin).
pub const MAX_INSPECTED_BODY: usize = 64 * 1024;

/// What a guard sees of the origin's response.
pub struct ResponseFacts<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
}

/// A response the edge writes itself on a guard's behalf.
#[derive(Debug, Clone)]
pub struct LocalResponse {
    pub status: u16,
    /// Extra header fields (`Content-Type`, `Content-Length`, `Cache-Control: no-store` and
    /// `Cache-Status` are the edge's).
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: Bytes,
    /// Close the connection after this response (a client we refuse should go away).
    pub close: bool,
}

impl LocalResponse {
    /// A branded HTML page.
    pub fn page(status: u16, body: Bytes) -> Self {
        LocalResponse {
            status,
            headers: Vec::new(),
            content_type: "text/html; charset=utf-8",
            body,
            close: false,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

/// A guard's answer for one request in one phase.
pub enum Verdict {
    /// Nothing to say: the next guard is asked.
    Pass,
    /// The edge answers with this response; no later guard is asked.
    Respond {
        reason: Cow<'static, str>,
        response: LocalResponse,
    },
    /// The request waits for its turn (origin phase): the edge awaits the ticket before it
    /// connects to the origin. No later guard is asked.
    Wait {
        reason: Cow<'static, str>,
        ticket: Box<dyn Turn>,
        /// Response fields for the client (the waiting room's pass), like [`Verdict::Note`].
        headers: Vec<(&'static str, String)>,
    },
    /// The guard would have acted but runs in dry-run mode: counted and logged, the request
    /// goes on.
    DryRun { reason: Cow<'static, str> },
    /// Nothing to refuse, but something worth saying (a failed login counted, a waiting-room
    /// pass issued): the request goes on, the reason is logged and counted, and `headers`
    /// are added to its response (a `Set-Cookie`).
    Note {
        reason: Cow<'static, str>,
        headers: Vec<(&'static str, String)>,
    },
    /// The guard must ask the shared store before it can decide: the chain awaits this
    /// answer (an answer that asks again counts as a pass).
    Ask(Pin<Box<dyn Future<Output = Verdict> + Send>>),
}

impl Verdict {
    pub fn note(reason: impl Into<Cow<'static, str>>) -> Self {
        Verdict::Note {
            reason: reason.into(),
            headers: Vec::new(),
        }
    }
}

/// A turn a request waits for before it goes to the origin (origin admission's place in a
/// lane). The chain and the edge know only this: how the turn is given is the guard's.
pub trait Turn: Send + Sync + std::any::Any {
    /// The turn is given already: nothing to wait for (counted as a pass).
    fn immediate(&self) -> bool;
    /// Waits for the turn (dropping the future gives the place up).
    fn wait(self: Box<Self>) -> Pin<Box<dyn Future<Output = Result<Granted, NoTurn>> + Send>>;
    /// For a guard's own tests: the concrete turn.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A turn given: what the request holds while the origin answers (dropping it ends the
/// turn) and how long it waited.
pub struct Granted {
    pub hold: Box<dyn Send + Sync>,
    pub waited: Duration,
}

/// Why a turn was not given, as the access log names it (`lane-full`, `timed-out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoTurn(pub &'static str);

impl NoTurn {
    pub fn label(self) -> &'static str {
        self.0
    }
}

/// One request policy. Every method has a default that passes, so a guard implements only
/// the phases it cares about. Guards must not block: a decision that needs the shared store
/// returns [`Verdict::Ask`], one that makes the request wait for the origin
/// [`Verdict::Wait`].
pub trait Guard: Send + Sync {
    /// The `guard` label in metrics and the access log.
    fn name(&self) -> &'static str;

    fn on_request(&self, _req: &RequestFacts<'_>) -> Verdict {
        Verdict::Pass
    }

    /// Whether this guard must see the request's body before its origin phase. The edge then
    /// reads it first (at most [`MAX_INSPECTED_BODY`] bytes; a larger one is refused with
    /// 413) and passes it on to the origin unchanged.
    fn wants_body(&self, _req: &RequestFacts<'_>) -> bool {
        false
    }

    fn before_origin(&self, _req: &RequestFacts<'_>) -> Verdict {
        Verdict::Pass
    }

    fn on_response(&self, _req: &RequestFacts<'_>, _resp: &ResponseFacts<'_>) -> Verdict {
        Verdict::Pass
    }

    /// Whether this guard must see the origin's response body (at most
    /// [`MAX_INSPECTED_BODY`] bytes of it) after it went to the client.
    fn wants_response_body(&self, _req: &RequestFacts<'_>, _resp: &ResponseFacts<'_>) -> bool {
        false
    }

    /// The origin's response (its header as the origin sent it) and body, once it has
    /// ended. The response is already on its way: only `Pass`, `Note` and `Ask` (whose
    /// answer is then only counted) mean anything here.
    fn on_response_body(
        &self,
        _req: &RequestFacts<'_>,
        _resp: &ResponseFacts<'_>,
        _body: &[u8],
    ) -> Verdict {
        Verdict::Pass
    }
}
