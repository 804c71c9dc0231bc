//! The origin phase: the site's guards on a miss or bypass (admission waits here, hits never
//! do), the peer, the request to the origin, and its response.

use super::EdgeProxy;
use super::ctx::{Local, OriginFailure, RequestCtx};
use super::guards;
use super::local::{respond_guard, respond_local};
use bytes::Bytes;
use peakguard_shield::guard::MAX_INSPECTED_BODY;
use peakguard_shield::{Decision, Phase, ResponseFacts, pages};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::Session;
use std::time::{Duration, Instant};

pub(super) const RETRY_AFTER_ORIGIN_DOWN: u64 = 30;
/// The error type of a request origin admission did not let through.
pub(super) const ADMISSION_REFUSED: ErrorType = ErrorType::Custom("origin admission refused");
/// The error type of a request body that streamed past the site's limit.
pub(super) const BODY_TOO_LARGE: ErrorType = ErrorType::Custom("request body too large");

const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a request body a guard must see, keeping it in pingora's retry buffer so that the
/// origin still gets it whole. Too large or too slow: the status and page to answer.
async fn read_inspected_body(
    session: &mut Session,
) -> std::result::Result<Bytes, (u16, Local, Bytes)> {
    let too_large = || {
        (
            413,
            Local::BodyTooLarge,
            pages::page(
                "Request too large",
                "This kind of request cannot carry a body this large.",
                0,
            ),
        )
    };
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_INSPECTED_BODY as u64) {
        return Err(too_large());
    }
    session.as_mut().enable_retry_buffering();
    let read = async {
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_INSPECTED_BODY {
                return Ok::<_, Box<Error>>(None);
            }
        }
        Ok(Some(body.freeze()))
    };
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(Ok(Some(body))) => Ok(body),
        Ok(Ok(None)) => Err(too_large()),
        _ => Err((
            400,
            Local::BadBody,
            pages::page("Bad request", "The request body could not be read.", 0),
        )),
    }
}

impl EdgeProxy {
    /// A miss or bypass about to go to the origin (coalesced misses come here once: the
    /// others wait on the cache lock). Returns `Ok(false)` when a guard answered.
    pub(super) async fn before_origin(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        if ctx.req.body.is_none() && guards::want_body(session.req_header(), ctx) {
            match read_inspected_body(session).await {
                Ok(body) => ctx.req.body = Some(body),
                Err((status, detail, page)) => {
                    ctx.answer.local = Some(detail);
                    session.set_keepalive(None);
                    respond_local(session, detail.label(), status, &[], page).await?;
                    return Ok(false);
                }
            }
        }
        match guards::run(Phase::Origin, session.req_header(), None, ctx).await {
            Decision::Pass => Ok(true),
            Decision::Respond { guard, response } => {
                ctx.answer.local = Some(Local::Guard(guard));
                respond_guard(session, guard, response, ctx.req.body.is_some()).await?;
                Ok(false)
            }
            Decision::Wait { guard, ticket } => {
                // Awaited in `peer`: a refusal there is an origin-side error, for which pingora
                // serves the stale copy when there is one.
                ctx.origin.ticket = Some((guard, ticket));
                Ok(true)
            }
        }
    }

    /// Waits for the origin slot (if a guard asked), then names the origin.
    pub(super) async fn peer(&self, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        if let Some((guard, ticket)) = ctx.origin.ticket.take() {
            let immediate = ticket.immediate();
            match ticket.wait().await {
                Ok(admitted) => {
                    if !immediate {
                        ctx.answer.trail.note(
                            guard,
                            &format!("admitted after {:.3}s", admitted.waited.as_secs_f64()),
                        );
                    }
                    ctx.origin.permit = Some(admitted.hold);
                }
                Err(refused) => {
                    ctx.origin.refused = Some(refused);
                    ctx.answer.trail.note(guard, refused.label());
                    return Err(Error::create(
                        ADMISSION_REFUSED,
                        ErrorSource::Upstream,
                        Some(refused.label().into()),
                        None,
                    ));
                }
            }
        }
        let site = ctx
            .req
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

    /// Host preserved (from `:authority` for HTTP/2), X-Forwarded-*, X-Peakguard-Edge, identity encoding from
    /// the origin when caching (one stored copy, compressed per client).
    pub(super) fn origin_request(
        &self,
        session: &Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if req.headers.get(http::header::HOST).is_none() && !ctx.req.host.is_empty() {
            req.insert_header(http::header::HOST, ctx.req.host.as_str())?;
        }
        // Tells the origin a request came through peakguard (the WordPress plugin's Site
        // Health test reads it); a value a client sent is replaced.
        req.insert_header("x-peakguard-edge", "1")?;
        if let Some(c) = &ctx.req.client {
            req.insert_header("x-forwarded-for", c.forwarded_for.as_str())?;
            req.insert_header("x-forwarded-proto", c.proto.as_str())?;
            req.insert_header("x-real-ip", c.ip.to_string())?;
        }
        // Identity from the origin when caching (one stored copy, compressed per client),
        // and when a guard read the request (login, XML-RPC): it may need to read the
        // response too.
        if session.cache.enabled() || ctx.req.body.is_some() {
            req.remove_header(&http::header::ACCEPT_ENCODING);
        }
        if ctx.req.drained_body {
            // Explicitly empty: without framing pingora would add `Transfer-Encoding: chunked`.
            req.remove_header(&http::header::TRANSFER_ENCODING);
            req.insert_header(http::header::CONTENT_LENGTH, "0")?;
        }
        let target = ctx.req.site.as_ref().and_then(|s| {
            s.rules
                .upstream_target(req.uri.path_and_query().map_or("", |p| p.as_str()))
        });
        if let Some(uri) = target.and_then(|t| t.parse().ok()) {
            req.set_uri(uri);
        }
        ctx.origin.sent = Some(Instant::now());
        Ok(())
    }

    /// The origin's response header: hop-by-hop fields go, a 304's fields are kept for the
    /// stored copy, the site's guards see it, and an origin 5xx on a page request becomes
    /// the branded 503 in the `wordpress` profile (when no stale copy could be served:
    /// pingora has tried that first).
    pub(super) async fn origin_response(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // An interim response (103 Early Hints, 100 Continue) goes on as the origin sent it;
        // the final one follows.
        if resp.status.is_informational() && resp.status != http::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(());
        }
        if let Some(sent) = ctx.origin.sent {
            ctx.origin.time = Some(sent.elapsed());
        }
        // The origin's Age: a miss served through the cache gets it back (the stored copy keeps
        // it as an earlier creation time instead).
        ctx.origin.age = resp.headers.get(http::header::AGE).cloned();
        let listed = peakguard_cache::hop::connection_listed(
            resp.headers.get_all(http::header::CONNECTION).iter(),
        );
        for name in listed {
            resp.remove_header(name.as_str());
        }
        // The plugin's order field is for the statistics alone: off the response (and so off
        // any stored copy) before a guard, the cache or the client sees it.
        if let Some(order) = resp.remove_header(peakguard_stats::ORDER_FIELD) {
            ctx.origin.order = order
                .to_str()
                .ok()
                .filter(|v| v.len() <= peakguard_stats::MAX_ORDER_FIELD)
                .map(Into::into);
        }
        if resp.status == http::StatusCode::NOT_MODIFIED {
            ctx.origin.not_modified_fields =
                Some(peakguard_cache::revalidate::fields_kept(&resp.headers));
        }
        let facts = ResponseFacts {
            status: resp.status.as_u16(),
            headers: &resp.headers,
        };
        if let Decision::Respond { guard, response } =
            guards::run(Phase::Response, session.req_header(), Some(&facts), ctx).await
        {
            ctx.answer.local = Some(Local::Guard(guard));
            let mut page = ResponseHeader::build(response.status, Some(4))?;
            page.insert_header("content-type", response.content_type)?;
            page.insert_header("cache-control", "no-store")?;
            page.insert_header("content-length", response.body.len().to_string())?;
            for (k, v) in &response.headers {
                page.insert_header(k.to_string(), v.as_str())?;
            }
            if response.close {
                session.set_keepalive(None);
            }
            *resp = page;
            ctx.answer.replacement = Some(response.body);
            return Ok(());
        }
        let status = resp.status.as_u16();
        let origin = ResponseFacts {
            status,
            headers: &resp.headers,
        };
        if guards::want_response_body(session.req_header(), ctx, &origin) {
            ctx.origin.response_body = Some((status, resp.headers.clone(), bytes::BytesMut::new()));
        }
        let page_request = matches!(
            session.req_header().method,
            http::Method::GET | http::Method::HEAD
        );
        if resp.status.is_server_error() {
            ctx.origin.failed(OriginFailure::ServerError);
            let branded = ctx.req.site.as_ref().is_some_and(|s| s.branded_errors);
            if branded && page_request && matches!(resp.status.as_u16(), 500 | 502 | 503 | 504) {
                let body = pages::unavailable(RETRY_AFTER_ORIGIN_DOWN);
                let mut page = ResponseHeader::build(503, Some(4))?;
                page.insert_header("content-type", "text/html; charset=utf-8")?;
                page.insert_header("retry-after", RETRY_AFTER_ORIGIN_DOWN.to_string())?;
                page.insert_header("cache-control", "no-store")?;
                page.insert_header("content-length", body.len().to_string())?;
                *resp = page;
                ctx.answer.replacement = Some(body);
            }
        }
        Ok(())
    }

    /// Holds a streaming request body to the site's limit (one with a `Content-Length` over
    /// it was refused before the origin was asked).
    pub(super) fn request_body(&self, body: &Option<Bytes>, ctx: &mut RequestCtx) -> Result<()> {
        let Some(chunk) = body else { return Ok(()) };
        ctx.req.body_sent += chunk.len() as u64;
        let Some(site) = &ctx.req.site else {
            return Ok(());
        };
        let path = ctx
            .req
            .path_and_query
            .split_once('?')
            .map_or(ctx.req.path_and_query.as_str(), |(p, _)| p);
        let limit = site.body_limits.limit_for(path);
        if ctx.req.body_sent > limit {
            return Err(Error::create(
                BODY_TOO_LARGE,
                ErrorSource::Downstream,
                Some(format!("more than {limit} bytes").into()),
                None,
            ));
        }
        Ok(())
    }

    /// A replaced response sends its page instead of the origin's body. The origin slot is
    /// given back as soon as the origin's body has ended (not when the client has read it).
    /// A guard that asked sees the origin's body (its first 64 KiB) once it has ended.
    pub(super) fn origin_body(
        &self,
        session: &Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut RequestCtx,
    ) {
        if let Some(page) = &ctx.answer.replacement {
            *body = if end { Some(page.clone()) } else { None };
        }
        if let (Some((_, _, kept)), Some(chunk)) =
            (ctx.origin.response_body.as_mut(), body.as_ref())
        {
            let room = MAX_INSPECTED_BODY.saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        if end {
            ctx.origin.permit = None;
            if let Some((status, headers, kept)) = ctx.origin.response_body.take() {
                let origin = ResponseFacts {
                    status,
                    headers: &headers,
                };
                guards::response_body_seen(session.req_header(), ctx, &origin, &kept);
            }
        }
    }
}
