//! [`EdgeProxy`]: the request path as pingora hooks. Each hook's contract is pingora's; this
//! file only says which phase handles it. The phases, one file each:
//!
//! - `request.rs`: before the cache — site, client, key, bypass, the request-phase guards;
//! - `cache.rs`: the cache's hooks — enable, key, storability, variance, stale serving;
//! - `upstream.rs`: a miss or bypass — origin-phase guards (admission waits here), the
//!   peer, the origin's request and response (response-phase guards);
//! - `response.rs`: `Cache-Status`, coding, invalidation, failures;
//! - `logging.rs`: metrics and the access log.
//!
//! The shield decides (guards, client identity), the cache engine decides (bypass, key,
//! storability), the phases act.

mod cache;
mod ctx;
mod guards;
mod local;
mod logging;
mod request;
mod response;
mod stats_event;
mod upstream;

pub use ctx::RequestCtx;

use crate::coding::CodingModuleBuilder;
use crate::state::EdgeState;
use async_trait::async_trait;
use bytes::Bytes;
use peakguard_cache::hook_types::{
    CacheKey, CacheMeta, ForcedFreshness, HashBinary, HitHandler, RespCacheable,
};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::Duration;

pub struct EdgeProxy {
    pub state: Arc<EdgeState>,
    /// Whether this proxy's listeners are TLS (one proxy service per scheme).
    pub tls: bool,
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx::new(self.tls)
    }

    /// Compresses (or decodes) responses that are not a stored representation; see
    /// `coding.rs`. Stored hits go out as stored.
    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        modules.add_module(Box::new(CodingModuleBuilder));
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        self.on_request(session, ctx).await
    }

    fn request_cache_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<()> {
        self.cache_filter(session, ctx);
        Ok(())
    }

    fn cache_key_callback(&self, _session: &Session, ctx: &mut Self::CTX) -> Result<CacheKey> {
        Ok(self.key(ctx))
    }

    fn response_cache_filter(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<RespCacheable> {
        self.cacheable(session, resp, ctx)
    }

    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        _ctx: &mut Self::CTX,
        req: &RequestHeader,
    ) -> Option<HashBinary> {
        self.variance(meta, req)
    }

    fn should_serve_stale(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
        error: Option<&Error>,
    ) -> bool {
        let serve = self.serve_stale(ctx, error);
        if serve && error.is_some() {
            // Pingora closes the client's connection after a stale copy served on an origin
            // error; say so (`Connection: close`) so that no client sends its next request
            // into a connection being closed.
            session.set_keepalive(None);
        }
        serve
    }

    async fn cache_hit_filter(
        &self,
        _session: &mut Session,
        meta: &CacheMeta,
        hit_handler: &mut HitHandler,
        is_fresh: bool,
        ctx: &mut Self::CTX,
    ) -> Result<Option<ForcedFreshness>> {
        Ok(self.on_hit(meta, hit_handler, is_fresh, ctx))
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        self.request_body(body, ctx)
    }

    async fn proxy_upstream_filter(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<bool> {
        self.before_origin(session, ctx).await
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        self.peer(ctx).await
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        self.origin_request(session, req, ctx)
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        self.origin_response(session, resp, ctx).await
    }

    fn upstream_response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Self::CTX,
    ) -> Result<Option<Duration>> {
        self.origin_body(session, body, end, ctx);
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        self.on_response(session, resp, ctx)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        self.on_failure(session, e, ctx).await
    }

    /// Refusals by origin admission are counted and logged per request, not as errors.
    fn suppress_error_log(&self, _session: &Session, ctx: &Self::CTX, _error: &Error) -> bool {
        ctx.origin.refused.is_some()
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        self.on_finish(session, e, ctx);
    }
}
