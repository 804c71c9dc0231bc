//! [`EdgeProxy`]: the request path as pingora hooks. Each hook's contract is pingora's; what
//! we do in it is said above it. The shield decides (client, maintenance), the cache engine
//! decides (bypass, key, storability), this file acts.

use crate::access_log::AccessRecord;
use crate::coding::{CodingModule, CodingModuleBuilder, Facts};
use crate::metrics::RequestRecord;
use crate::pages;
use crate::sites::Site;
use crate::state::EdgeState;
use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderValue;
use peakguard_cache::hook_types::{
    CacheKey, CacheMeta, ForcedFreshness, HashBinary, HitHandler, RespCacheable,
};
use peakguard_cache::{Accepted, Bypass, CacheEngine, CacheOutcome, KeyParts, cache_key_url};
use peakguard_shield::{ClientInfo, client_info};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-request state carried across the hooks.
pub struct RequestCtx {
    start: Instant,
    site: Option<Arc<Site>>,
    client: Option<ClientInfo>,
    host: String,
    scheme: &'static str,
    key_url: String,
    bypass: Option<Bypass>,
    origin_sent: Option<Instant>,
    origin_time: Option<Duration>,
    origin_error: bool,
    /// The origin failed and its body is replaced by the branded page.
    replacement: Option<Bytes>,
    stale_error: bool,
    /// Answered by the edge itself (maintenance, redirect, unknown host).
    local: Option<&'static str>,
    /// A GET/HEAD body was read and discarded here; the origin gets `Content-Length: 0`.
    drained_body: bool,
    /// The header fields of a 304 received while revalidating (RFC 9111 §4.3.4: they update
    /// the stored response; pingora merges only a few of them).
    not_modified_fields: Option<http::HeaderMap>,
    /// The client's `Accept-Encoding` (identity only for a range request).
    accepted: Accepted,
    /// The cache found a complete stored object (its representation for this client).
    stored_hit: bool,
}

pub struct EdgeProxy {
    pub state: Arc<EdgeState>,
    /// Whether this proxy's listeners are TLS (one proxy service per scheme).
    pub tls: bool,
}

const RETRY_AFTER_ORIGIN_DOWN: u64 = 30;
/// A GET/HEAD body larger than this is refused (413) rather than drained.
const MAX_DRAINED_BODY: u64 = 1 << 20;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A body on GET/HEAD has no meaning for the page, but its bytes must be consumed as a body,
/// never parsed as a next request, and not left unread (closing with unread data resets the
/// connection and can destroy the response). Returns `Ok(false)` when a response was sent.
async fn drain_safe_method_body(session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
    let req = session.req_header();
    if !matches!(req.method, http::Method::GET | http::Method::HEAD) {
        return Ok(true);
    }
    let length = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = req.headers.contains_key(http::header::TRANSFER_ENCODING);
    if !chunked && length.unwrap_or(0) == 0 {
        return Ok(true);
    }
    if length.is_some_and(|l| l > MAX_DRAINED_BODY) {
        ctx.local = Some("body-too-large");
        session.set_keepalive(None);
        respond_local(
            session,
            "body-too-large",
            413,
            &[],
            pages::page(
                "Request too large",
                "A page request cannot carry a body this large.",
                0,
            ),
        )
        .await?;
        return Ok(false);
    }
    match tokio::time::timeout(DRAIN_TIMEOUT, session.drain_request_body()).await {
        Ok(Ok(())) => {
            ctx.drained_body = true;
            Ok(true)
        }
        _ => {
            ctx.local = Some("bad-body");
            session.set_keepalive(None);
            respond_local(
                session,
                "bad-body",
                400,
                &[],
                pages::page("Bad request", "The request body could not be read.", 0),
            )
            .await?;
            Ok(false)
        }
    }
}

fn request_host(req: &RequestHeader) -> Option<String> {
    // HTTP/2 carries the host in :authority (the URI); HTTP/1.1 in Host.
    req.uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .filter(|h| !h.is_empty())
}

/// A response the edge writes itself. `detail` names why, in `Cache-Status` (RFC 9211: this
/// response was neither a hit nor forwarded).
async fn respond_local(
    session: &mut Session,
    detail: &str,
    status: u16,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 3))?;
    resp.insert_header("content-type", "text/html; charset=utf-8")?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("cache-control", "no-store")?;
    resp.insert_header("cache-status", format!("peakguard; detail=\"{detail}\""))?;
    for (k, v) in headers {
        resp.insert_header(k.to_string(), v.as_str())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx {
            start: Instant::now(),
            site: None,
            client: None,
            host: String::new(),
            scheme: if self.tls { "https" } else { "http" },
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
            accepted: Accepted::identity_only(),
            stored_hit: false,
        }
    }

    /// Compresses (or decodes) responses that are not a stored representation; see
    /// `coding.rs`. Stored hits go out as stored.
    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        modules.add_module(Box::new(CodingModuleBuilder));
    }

    /// Site routing, client identity, HTTPS redirect, maintenance.
    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        if !drain_safe_method_body(session, ctx).await? {
            return Ok(true);
        }
        let live = self.state.live();
        let Some(host) = request_host(session.req_header()) else {
            ctx.local = Some("no-host");
            respond_local(
                session,
                "no-host",
                400,
                &[],
                pages::page("Bad request", "The request named no host.", 0),
            )
            .await?;
            return Ok(true);
        };
        let Some(site) = live.sites.find(&host).cloned() else {
            ctx.local = Some("unknown-host");
            ctx.host = host;
            respond_local(
                session,
                "unknown-host",
                421,
                &[],
                pages::page("Unknown site", "This server does not serve that site.", 0),
            )
            .await?;
            return Ok(true);
        };
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        let req = session.req_header();
        // A byte range refers to the identity body.
        if !req.headers.contains_key(http::header::RANGE) {
            ctx.accepted = Accepted::parse(
                req.headers
                    .get_all(http::header::ACCEPT_ENCODING)
                    .iter()
                    .map(|v| v.as_bytes()),
            );
        }
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let client = client_info(
            peer,
            header("x-forwarded-for"),
            header("x-forwarded-proto"),
            ctx.scheme,
            &live.trusted_proxies,
        );
        let path_and_query = req
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        ctx.key_url = cache_key_url(
            KeyParts {
                scheme: ctx.scheme,
                host: &host,
                path_and_query: &path_and_query,
            },
            &site.rules,
        );
        ctx.bypass = site.rules.bypass(
            req.method.as_str(),
            &path_and_query,
            req.headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(|v| v.as_bytes()),
        );
        ctx.host = host;

        if site.https_redirect && !self.tls && client.proto != "https" {
            ctx.local = Some("redirect");
            let location = format!(
                "https://{}{}",
                peakguard_cache::key::host_without_port(&ctx.host),
                path_and_query
            );
            ctx.client = Some(client);
            ctx.site = Some(site);
            respond_local(
                session,
                "https-redirect",
                301,
                &[("location", location)],
                Bytes::new(),
            )
            .await?;
            return Ok(true);
        }

        // Cloned only while maintenance is on: the common path takes a read lock and a bool.
        let maintenance = {
            let m = self.state.maintenance.read();
            m.on.then(|| m.clone())
        };
        if let Some(maintenance) = maintenance {
            let cookies = session.req_header().headers.get_all(http::header::COOKIE);
            if !live
                .maintenance_policy
                .admits(client.ip, cookies.iter().map(|v| v.as_bytes()))
            {
                ctx.local = Some("maintenance");
                let retry = if maintenance.retry_after_secs > 0 {
                    maintenance.retry_after_secs
                } else {
                    live.default_retry_after
                };
                ctx.client = Some(client);
                ctx.site = Some(site);
                session.set_keepalive(None);
                respond_local(
                    session,
                    "maintenance",
                    503,
                    &[("retry-after", retry.to_string())],
                    pages::maintenance(&maintenance.message, retry),
                )
                .await?;
                return Ok(true);
            }
        }
        ctx.client = Some(client);
        ctx.site = Some(site);
        Ok(false)
    }

    /// Cache only what the site's rules allow (WordPress cookies, paths, methods).
    fn request_cache_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<()> {
        if ctx.bypass.is_none() && ctx.site.is_some() {
            self.state.cache.enable(&mut session.cache);
        }
        Ok(())
    }

    /// The key URL built in `request_filter` (host from `:authority` or `Host`).
    fn cache_key_callback(&self, _session: &Session, ctx: &mut Self::CTX) -> Result<CacheKey> {
        Ok(self.state.cache.key(ctx.key_url.clone(), ctx.accepted))
    }

    /// After a 304, pingora passes the stored header merged with a few 304 fields; every
    /// other field the 304 carried is merged here too, so the stored copy is updated.
    fn response_cache_filter(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<RespCacheable> {
        let Some(site) = &ctx.site else {
            return Ok(self.state.cache.not_storable("no site"));
        };
        let cache = &self.state.cache;
        let Some(fields) = ctx.not_modified_fields.take() else {
            return Ok(cache.response_cacheable(session.req_header(), resp, &site.rules));
        };
        let mut merged = resp.clone();
        for name in fields.keys() {
            let mut values = fields.get_all(name).iter();
            if let Some(first) = values.next() {
                merged.insert_header(name.clone(), first.clone())?;
                for v in values {
                    merged.append_header(name.clone(), v.clone())?;
                }
            }
        }
        Ok(cache.response_cacheable(session.req_header(), &merged, &site.rules))
    }

    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        _ctx: &mut Self::CTX,
        req: &RequestHeader,
    ) -> Option<HashBinary> {
        self.state.cache.variance(meta, req)
    }

    /// Serve stale on any origin failure (the stored stale-if-error window still applies),
    /// and while revalidating (stale-while-revalidate).
    fn should_serve_stale(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
        error: Option<&Error>,
    ) -> bool {
        if error.is_some() {
            ctx.stale_error = true;
            ctx.origin_error = true;
            self.state.cache.note_origin_failure(&ctx.key_url);
        }
        self.state.cache.serve_stale_on_error()
    }

    /// While the origin is in back-off for this page, its stale copy is served as is.
    async fn cache_hit_filter(
        &self,
        _session: &mut Session,
        meta: &CacheMeta,
        hit_handler: &mut HitHandler,
        is_fresh: bool,
        ctx: &mut Self::CTX,
    ) -> Result<Option<ForcedFreshness>> {
        ctx.stored_hit = CacheEngine::is_stored_hit(hit_handler);
        let forced = self
            .state
            .cache
            .hit_during_backoff(&ctx.key_url, meta, is_fresh);
        if forced.is_some() {
            ctx.stale_error = true;
        }
        Ok(forced)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let site = ctx
            .site
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no site chosen"))?;
        let o = &site.origin;
        let mut peer = HttpPeer::new(o.addr, o.tls, o.sni.clone());
        peer.options.connection_timeout = Some(o.connect_timeout);
        peer.options.total_connection_timeout = Some(o.connect_timeout);
        peer.options.read_timeout = Some(o.read_timeout);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        Ok(Box::new(peer))
    }

    /// Host preserved (from `:authority` for HTTP/2), X-Forwarded-*, identity encoding from
    /// the origin when caching (one stored copy, compressed per client).
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if req.headers.get(http::header::HOST).is_none() && !ctx.host.is_empty() {
            req.insert_header(http::header::HOST, ctx.host.as_str())?;
        }
        if let Some(c) = &ctx.client {
            req.insert_header("x-forwarded-for", c.forwarded_for.as_str())?;
            req.insert_header("x-forwarded-proto", c.proto.as_str())?;
            req.insert_header("x-real-ip", c.ip.to_string())?;
        }
        if session.cache.enabled() {
            req.remove_header(&http::header::ACCEPT_ENCODING);
        }
        if ctx.drained_body {
            // Explicitly empty: without framing pingora would add `Transfer-Encoding: chunked`.
            req.remove_header(&http::header::TRANSFER_ENCODING);
            req.insert_header(http::header::CONTENT_LENGTH, "0")?;
        }
        if let Some(site) = ctx
            .site
            .as_ref()
            .filter(|s| s.rules.strip_tracking_upstream)
        {
            let pq = req
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let (path, query) = peakguard_cache::key::split_query(&pq);
            if let Some(q) = query {
                let kept =
                    peakguard_cache::key::strip_params(q, |n| site.rules.is_tracking_param(n));
                let uri = if kept.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{kept}")
                };
                if let Ok(uri) = uri.parse() {
                    req.set_uri(uri);
                }
            }
        }
        ctx.origin_sent = Some(Instant::now());
        Ok(())
    }

    /// An origin 5xx on a page request becomes the branded 503 (when no stale copy could be
    /// served: pingora has already tried that before this hook). Hop-by-hop fields go.
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if let Some(sent) = ctx.origin_sent {
            ctx.origin_time = Some(sent.elapsed());
        }
        let listed = peakguard_cache::hop::connection_listed(
            resp.headers.get_all(http::header::CONNECTION).iter(),
        );
        for name in listed {
            resp.remove_header(name.as_str());
        }
        if resp.status == http::StatusCode::NOT_MODIFIED {
            let mut fields = resp.headers.clone();
            // Fields that describe this message, not the stored representation.
            for name in [
                "content-length",
                "transfer-encoding",
                "content-encoding",
                "content-range",
                "connection",
                "keep-alive",
            ] {
                fields.remove(name);
            }
            ctx.not_modified_fields = Some(fields);
        }
        let page_request = matches!(
            session.req_header().method,
            http::Method::GET | http::Method::HEAD
        );
        if resp.status.is_server_error() {
            ctx.origin_error = true;
            if page_request && matches!(resp.status.as_u16(), 500 | 502 | 503 | 504) {
                let body = pages::unavailable(RETRY_AFTER_ORIGIN_DOWN);
                let mut page = ResponseHeader::build(503, Some(4))?;
                page.insert_header("content-type", "text/html; charset=utf-8")?;
                page.insert_header("retry-after", RETRY_AFTER_ORIGIN_DOWN.to_string())?;
                page.insert_header("cache-control", "no-store")?;
                page.insert_header("content-length", body.len().to_string())?;
                *resp = page;
                ctx.replacement = Some(body);
            }
        }
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Self::CTX,
    ) -> Result<Option<Duration>> {
        if let Some(page) = &ctx.replacement {
            *body = if end { Some(page.clone()) } else { None };
        }
        Ok(None)
    }

    /// `Cache-Status` (RFC 9211) on every response; unsafe methods invalidate the URL.
    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let outcome = self.state.cache.outcome(&session.cache, ctx.stale_error);
        // Constant values are static header values: a hit allocates nothing here.
        let filling = stored(session);
        let status = match (&ctx.bypass, outcome) {
            (Some(b), _) => {
                HeaderValue::try_from(format!("peakguard; fwd=bypass; detail=\"{}\"", b.label()))
                    .unwrap_or(HeaderValue::from_static("peakguard; fwd=bypass"))
            }
            (None, CacheOutcome::Hit) => HeaderValue::from_static("peakguard; hit"),
            (None, CacheOutcome::StaleError) => {
                HeaderValue::from_static("peakguard; hit; fwd=stale; detail=\"origin-error\"")
            }
            (None, CacheOutcome::StaleRevalidating) => {
                HeaderValue::from_static("peakguard; hit; fwd=stale; detail=\"revalidating\"")
            }
            (None, CacheOutcome::Miss) if filling => {
                HeaderValue::from_static("peakguard; fwd=uri-miss; stored")
            }
            (None, CacheOutcome::Expired) if filling => {
                HeaderValue::from_static("peakguard; fwd=stale; stored")
            }
            (None, CacheOutcome::Expired) => HeaderValue::from_static("peakguard; fwd=stale"),
            (None, CacheOutcome::Revalidated) => {
                HeaderValue::from_static("peakguard; fwd=stale; fwd-status=304")
            }
            (None, CacheOutcome::Miss | CacheOutcome::Uncacheable | CacheOutcome::Bypass) => {
                HeaderValue::from_static("peakguard; fwd=uri-miss")
            }
        };
        resp.insert_header(CACHE_STATUS, status)?;
        if !outcome.from_cache() {
            resp.remove_header("age");
        }
        self.plan_coding(session, resp, ctx, outcome);
        let method = &session.req_header().method;
        let unsafe_method = !(method.is_safe());
        if unsafe_method && resp.status.as_u16() < 400 {
            self.invalidate_after_unsafe(resp, ctx);
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let upstream = matches!(e.esource(), ErrorSource::Upstream);
        if upstream && session.response_written().is_none() {
            ctx.origin_error = true;
            let page = pages::unavailable(RETRY_AFTER_ORIGIN_DOWN);
            let _ = respond_local(
                session,
                "origin-unavailable",
                503,
                &[("retry-after", RETRY_AFTER_ORIGIN_DOWN.to_string())],
                page,
            )
            .await;
            return FailToProxy {
                error_code: 503,
                can_reuse_downstream: false,
            };
        }
        let code = match e.etype() {
            ErrorType::HTTPStatus(c) => *c,
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => 0,
            _ if matches!(e.esource(), ErrorSource::Downstream) => 400,
            _ => 500,
        };
        if code > 0 && session.response_written().is_none() {
            let _ = session.respond_error(code).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let outcome = if ctx.local.is_some() {
            None
        } else if ctx.bypass.is_some() {
            Some(CacheOutcome::Bypass)
        } else {
            Some(self.state.cache.outcome(&session.cache, ctx.stale_error))
        };
        let coalesced = session.cache.lock_duration().is_some() && !session.cache.upstream_used();
        let origin_error =
            ctx.origin_error || e.is_some_and(|e| matches!(e.esource(), ErrorSource::Upstream));
        let total = ctx.start.elapsed();
        let bytes = session.body_bytes_sent() as u64;
        self.state.metrics.record(&RequestRecord {
            outcome,
            status,
            total,
            origin: ctx.origin_time,
            origin_error,
            coalesced,
            maintenance: ctx.local == Some("maintenance"),
            bytes,
        });
        if let Some(log) = &self.state.access_log {
            let req = session.req_header();
            log.write(&AccessRecord {
                time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                client: ctx
                    .client
                    .as_ref()
                    .map(|c| c.ip.to_string())
                    .unwrap_or_default(),
                method: req.method.as_str(),
                host: &ctx.host,
                path: req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
                status,
                cache: ctx
                    .local
                    .unwrap_or_else(|| outcome.map_or("none", CacheOutcome::label)),
                bytes,
                total_ms: total.as_secs_f64() * 1000.0,
                origin_ms: ctx.origin_time.map(|d| d.as_secs_f64() * 1000.0),
                site: ctx.site.as_ref().map_or("", |s| s.name.as_str()),
            });
        }
    }
}

/// Is this response being stored (a fill)?
fn stored(session: &Session) -> bool {
    session.cache.enabled() && !session.cache.bypassing() && CacheEngine::filling(&session.cache)
}

const CACHE_STATUS: http::HeaderName = http::HeaderName::from_static("cache-status");

impl EdgeProxy {
    /// Arms the coding module when this response must be compressed or decoded on its way.
    fn plan_coding(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &RequestCtx,
        outcome: CacheOutcome,
    ) {
        let from_store = ctx.stored_hit
            && matches!(
                outcome,
                CacheOutcome::Hit
                    | CacheOutcome::StaleError
                    | CacheOutcome::StaleRevalidating
                    | CacheOutcome::Revalidated
            );
        let policy = self.state.cache.compression();
        let facts = Facts {
            accepted: &ctx.accepted,
            policy,
            from_store,
            no_body: session.req_header().method == http::Method::HEAD,
        };
        if let Some(transform) = crate::coding::plan(resp, &facts)
            && let Some(module) = session.downstream_modules_ctx.get_mut::<CodingModule>()
        {
            module.start(transform, policy);
        }
    }

    /// RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI and
    /// the `Location`/`Content-Location` URIs on the same host.
    fn invalidate_after_unsafe(&self, resp: &ResponseHeader, ctx: &RequestCtx) {
        let storage = self.state.cache.storage;
        let mut purged = storage.purge_url(&ctx.key_url);
        let Some(site) = &ctx.site else { return };
        for name in ["location", "content-location"] {
            let Some(v) = resp.headers.get(name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            let target = match url::Url::parse(v) {
                Ok(u) => {
                    let host = u.host_str().unwrap_or("").to_string();
                    let host = match u.port() {
                        Some(p) => format!("{host}:{p}"),
                        None => host,
                    };
                    if peakguard_cache::key::host_without_port(&host)
                        != peakguard_cache::key::host_without_port(&ctx.host)
                    {
                        continue;
                    }
                    let pq = match u.query() {
                        Some(q) => format!("{}?{q}", u.path()),
                        None => u.path().to_string(),
                    };
                    cache_key_url(
                        KeyParts {
                            scheme: ctx.scheme,
                            host: &ctx.host,
                            path_and_query: &pq,
                        },
                        &site.rules,
                    )
                }
                Err(_) if v.starts_with('/') => cache_key_url(
                    KeyParts {
                        scheme: ctx.scheme,
                        host: &ctx.host,
                        path_and_query: v,
                    },
                    &site.rules,
                ),
                Err(_) => continue,
            };
            purged += storage.purge_url(&target);
        }
        if purged > 0 {
            log::debug!(
                "invalidated {purged} object(s) after an unsafe request to {}",
                ctx.key_url
            );
        }
    }
}
