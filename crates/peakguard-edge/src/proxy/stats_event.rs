//! What a finished request hands to the statistics: what the edge already knows, copied
//! as it is (the classification happens later, on the statistics' own thread).

use super::ctx::{Local, RequestCtx};
use peakguard_cache::CacheOutcome;
use peakguard_stats::{Event, Served};
use pingora::proxy::Session;
use std::time::Duration;

pub(super) fn event(
    session: &Session,
    ctx: &RequestCtx,
    outcome: Option<CacheOutcome>,
    status: u16,
    total: Duration,
    bytes: u64,
) -> Event {
    let req = session.req_header();
    let served = match outcome {
        None => Served::Local,
        Some(CacheOutcome::Hit) => Served::Hit,
        Some(CacheOutcome::StaleError | CacheOutcome::StaleRevalidating) => Served::Stale,
        Some(CacheOutcome::Bypass) => Served::Bypass,
        Some(_) => Served::Origin,
    };
    let refused_by = ctx
        .answer
        .local
        .filter(|l| status >= 400 && !l.is_maintenance())
        .map(|l: Local| l.label().into());
    Event {
        site: ctx
            .req
            .site
            .as_ref()
            .map_or_else(Default::default, |s| s.name.as_str().into()),
        served,
        status,
        bytes,
        client_micros: Event::clamp_micros(total),
        origin_micros: ctx.origin.time.map(Event::clamp_micros),
        refused_by,
        page: req.uri.path_and_query().map(|p| p.as_str().into()),
        referrer: req
            .headers
            .get(http::header::REFERER)
            .and_then(|v| v.to_str().ok())
            .map(Into::into),
        host: ctx.req.host.as_str().into(),
        method_is_get: req.method == http::Method::GET,
        client: ctx.req.client.as_ref().map(|c| c.ip),
        user_agent: req
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(Into::into),
        order: ctx.origin.order.clone(),
    }
}
