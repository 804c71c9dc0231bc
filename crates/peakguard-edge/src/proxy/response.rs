//! The response phase: `Cache-Status`, the coding of responses that are not stored
//! representations, invalidation after unsafe methods, and what the client gets when
//! proxying failed.

use super::EdgeProxy;
use super::ctx::{Local, OriginFailure, RequestCtx};
use super::local::respond_local;
use super::upstream::{ADMISSION_REFUSED, BODY_TOO_LARGE, RETRY_AFTER_ORIGIN_DOWN};
use crate::coding::{CodingModule, Facts};
use http::HeaderValue;
use peakguard_cache::{CacheEngine, CacheOutcome, KeyParts, cache_key_url};
use peakguard_shield::pages;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, Session};

impl EdgeProxy {
    /// `Cache-Status` (RFC 9211) on every response; unsafe methods invalidate the URL.
    pub(super) fn on_response(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // An interim response is the origin's, passed on untouched.
        if resp.status.is_informational() && resp.status != http::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(());
        }
        let outcome = self
            .state
            .cache
            .outcome(&session.cache, ctx.answer.stale_error);
        // RFC 9111 §5.1: the origin's Age goes on with a response fetched for this request
        // (one served through the cache comes with the stored header, which keeps no Age).
        if !outcome.from_cache()
            && !resp.headers.contains_key(http::header::AGE)
            && let Some(age) = ctx.origin.age.clone()
        {
            resp.insert_header(http::header::AGE, age)?;
        }
        // Constant values are static header values: a hit allocates nothing here.
        let filling = stored(session);
        let status = match (&ctx.req.bypass, outcome) {
            (Some(b), _) => {
                HeaderValue::try_from(format!("peakguard; fwd=bypass; detail=\"{}\"", b.label()))
                    .unwrap_or(HeaderValue::from_static("peakguard; fwd=bypass"))
            }
            (None, CacheOutcome::Hit) => HeaderValue::from_static("peakguard; hit"),
            (None, CacheOutcome::StaleError) if ctx.origin.refused.is_some() => {
                HeaderValue::from_static("peakguard; hit; fwd=stale; detail=\"origin-busy\"")
            }
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
        // Fields guards asked for (a waiting-room pass).
        for (name, value) in ctx.answer.trail.headers.drain(..) {
            resp.append_header(name, value)?;
        }
        self.plan_coding(session, resp, ctx, outcome);
        let method = &session.req_header().method;
        let unsafe_method = !(method.is_safe());
        if unsafe_method && resp.status.as_u16() < 400 {
            self.invalidate_after_unsafe(resp, ctx);
        }
        Ok(())
    }

    /// What the client gets when proxying failed: the busy page when origin admission
    /// refused the request (and no stale copy could be served), the branded 503 when the
    /// origin failed before answering, else an error status.
    pub(super) async fn on_failure(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        // Pingora never reuses a client connection after a failed proxy: every answer from
        // here says `Connection: close`, so no client sends its next request into it.
        session.set_keepalive(None);
        if *e.etype() == ADMISSION_REFUSED && session.response_written().is_none() {
            let retry = ctx
                .req
                .site
                .as_ref()
                .map_or(5, |s| s.busy_retry_after.as_secs().max(1));
            ctx.answer.local = Some(Local::OriginBusy);
            let _ = respond_local(
                session,
                "origin-busy",
                503,
                &[("retry-after", retry.to_string())],
                pages::busy(retry),
            )
            .await;
            return FailToProxy {
                error_code: 503,
                can_reuse_downstream: false,
            };
        }
        if *e.etype() == BODY_TOO_LARGE && session.response_written().is_none() {
            ctx.answer.local = Some(Local::BodyTooLarge);
            let limit = ctx.req.site.as_ref().map_or(0, |s| {
                s.body_limits
                    .limit_for(ctx.req.path_and_query.split('?').next().unwrap_or("/"))
            });
            let page = peakguard_shield::body::too_large(limit);
            let _ = respond_local(session, "body-too-large", 413, &[], page.body).await;
            return FailToProxy {
                error_code: 413,
                can_reuse_downstream: false,
            };
        }
        let upstream = matches!(e.esource(), ErrorSource::Upstream);
        if upstream && session.response_written().is_none() {
            ctx.origin.failed(OriginFailure::NoAnswer);
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
}

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
        let from_store = ctx.answer.stored_hit
            && matches!(
                outcome,
                CacheOutcome::Hit
                    | CacheOutcome::StaleError
                    | CacheOutcome::StaleRevalidating
                    | CacheOutcome::Revalidated
            );
        let policy = self.state.cache.compression();
        let facts = Facts {
            accepted: &ctx.req.accepted,
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
        let mut purged = storage.purge_url(&ctx.req.key_url);
        let Some(site) = &ctx.req.site else { return };
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
                        != peakguard_cache::key::host_without_port(&ctx.req.host)
                    {
                        continue;
                    }
                    let pq = match u.query() {
                        Some(q) => format!("{}?{q}", u.path()),
                        None => u.path().to_string(),
                    };
                    cache_key_url(
                        KeyParts {
                            scheme: ctx.req.scheme,
                            host: &ctx.req.host,
                            path_and_query: &pq,
                        },
                        &site.rules,
                    )
                }
                Err(_) if v.starts_with('/') => cache_key_url(
                    KeyParts {
                        scheme: ctx.req.scheme,
                        host: &ctx.req.host,
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
                ctx.req.key_url
            );
        }
    }
}
