//! The end of a request: metrics and the access-log line (with the guards that acted).

use super::EdgeProxy;
use super::ctx::{Local, RequestCtx};
use crate::access_log::AccessRecord;
use crate::metrics::RequestRecord;
use peakguard_cache::CacheOutcome;
use pingora::prelude::*;
use pingora::proxy::Session;

impl EdgeProxy {
    pub(super) fn on_finish(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        // The origin slot, if still held (the response ended without a last body chunk).
        ctx.origin.permit = None;
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let outcome = if ctx.answer.local.is_some() {
            None
        } else if ctx.req.bypass.is_some() {
            Some(CacheOutcome::Bypass)
        } else {
            Some(
                self.state
                    .cache
                    .outcome(&session.cache, ctx.answer.stale_error),
            )
        };
        let coalesced = session.cache.lock_duration().is_some() && !session.cache.upstream_used();
        // A request admission refused never reached the origin: not an origin error.
        let origin_error = ctx.origin.failure.is_some()
            || (ctx.origin.refused.is_none()
                && e.is_some_and(|e| matches!(e.esource(), ErrorSource::Upstream)));
        let total = ctx.start.elapsed();
        let bytes = session.body_bytes_sent() as u64;
        self.state.metrics.record(&RequestRecord {
            outcome,
            status,
            total,
            origin: ctx.origin.time,
            origin_error,
            coalesced,
            maintenance: ctx.answer.local.is_some_and(Local::is_maintenance),
            bytes,
        });
        if let Some(stats) = &self.state.stats {
            stats.record(super::stats_event::event(
                session, ctx, outcome, status, total, bytes,
            ));
        }
        if let Some(log) = &self.state.access_log {
            let req = session.req_header();
            // A password-reset key or a token in the query is never written down.
            let path = peakguard_config::redact::query(
                req.uri.path_and_query().map_or("/", |p| p.as_str()),
            );
            log.write(&AccessRecord {
                time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                client: ctx
                    .req
                    .client
                    .as_ref()
                    .map(|c| c.ip.to_string())
                    .unwrap_or_default(),
                method: req.method.as_str(),
                host: &ctx.req.host,
                path: &path,
                status,
                cache: ctx
                    .answer
                    .local
                    .map_or_else(|| outcome.map_or("none", CacheOutcome::label), Local::label),
                bytes,
                total_ms: total.as_secs_f64() * 1000.0,
                origin_ms: ctx.origin.time.map(|d| d.as_secs_f64() * 1000.0),
                site: ctx.req.site.as_ref().map_or("", |s| s.name.as_str()),
                guard: ctx.answer.trail.as_str(),
            });
        }
    }
}
