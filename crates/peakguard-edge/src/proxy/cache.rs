//! The cache phase: whether to cache, the key, storability, variance, stale serving.

use super::EdgeProxy;
use super::ctx::{OriginFailure, RequestCtx};
use peakguard_cache::CacheEngine;
use peakguard_cache::hook_types::{
    CacheKey, CacheMeta, ForcedFreshness, HashBinary, HitHandler, RespCacheable,
};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::Session;

impl EdgeProxy {
    /// Cache only what the site's rules allow (WordPress cookies, paths, methods).
    pub(super) fn cache_filter(&self, session: &mut Session, ctx: &mut RequestCtx) {
        if ctx.req.bypass.is_none() && ctx.req.site.is_some() {
            self.state.cache.enable(&mut session.cache);
        }
    }

    /// The key URL built in the request phase (host from `:authority` or `Host`).
    pub(super) fn key(&self, ctx: &RequestCtx) -> CacheKey {
        self.state
            .cache
            .key(ctx.req.key_url.clone(), ctx.req.accepted)
    }

    /// After a 304, pingora passes the stored header merged with a few 304 fields; every
    /// other field the 304 carried is merged here too, so the stored copy is updated.
    pub(super) fn cacheable(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<RespCacheable> {
        let Some(site) = &ctx.req.site else {
            return Ok(self.state.cache.not_storable("no site"));
        };
        let cache = &self.state.cache;
        let Some(fields) = ctx.origin.not_modified_fields.take() else {
            return Ok(cache.response_cacheable(session.req_header(), resp, &site.rules));
        };
        let merged = peakguard_cache::revalidate::merge(resp, &fields)?;
        Ok(cache.response_cacheable(session.req_header(), &merged, &site.rules))
    }

    pub(super) fn variance(&self, meta: &CacheMeta, req: &RequestHeader) -> Option<HashBinary> {
        self.state.cache.variance(meta, req)
    }

    /// Serve stale on any origin failure (the stored stale-if-error window still applies),
    /// while revalidating (stale-while-revalidate), and when origin admission could not give
    /// the request its turn (the stale copy beats the busy page).
    pub(super) fn serve_stale(&self, ctx: &mut RequestCtx, error: Option<&Error>) -> bool {
        if error.is_some() {
            ctx.answer.stale_error = true;
            if ctx.origin.refused.is_none() {
                ctx.origin.failed(OriginFailure::StaleServed);
                self.state.cache.note_origin_failure(&ctx.req.key_url);
            }
        }
        self.state.cache.serve_stale_on_error()
    }

    /// While the origin is in back-off for this page, its stale copy is served as is.
    pub(super) fn on_hit(
        &self,
        meta: &CacheMeta,
        hit_handler: &HitHandler,
        is_fresh: bool,
        ctx: &mut RequestCtx,
    ) -> Option<ForcedFreshness> {
        ctx.answer.stored_hit = CacheEngine::is_stored_hit(hit_handler);
        let forced = self
            .state
            .cache
            .hit_during_backoff(&ctx.req.key_url, meta, is_fresh);
        if forced.is_some() {
            ctx.answer.stale_error = true;
        }
        forced
    }
}
