//! Runs the site's guard chain for a phase, with the request's facts as the shield sees them.

use super::ctx::RequestCtx;
use peakguard_shield::{Decision, Phase, RequestFacts, ResponseFacts};
use pingora::http::RequestHeader;

/// Asks the site's guards (none before the site and client are known).
pub(super) fn run(
    phase: Phase,
    req: &RequestHeader,
    resp: Option<&ResponseFacts<'_>>,
    ctx: &mut RequestCtx,
) -> Decision {
    let (Some(site), Some(client)) = (&ctx.site, &ctx.client) else {
        return Decision::Pass;
    };
    let facts = RequestFacts {
        site: &site.name,
        client,
        method: &req.method,
        host: &ctx.host,
        path_and_query: &ctx.path_and_query,
        headers: &req.headers,
        tls_listener: ctx.tls,
    };
    site.guards.run(phase, &facts, resp, &mut ctx.trail)
}
