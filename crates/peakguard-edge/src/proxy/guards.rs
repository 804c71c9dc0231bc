//! Runs the site's guard chain for a phase, with the request's facts as the shield sees them.

use super::ctx::RequestCtx;
use peakguard_shield::{Decision, Phase, RequestFacts, ResponseFacts};
use pingora::http::RequestHeader;

/// The request as the shield sees it (`None` before the site and client are known).
macro_rules! facts {
    ($req:expr, $ctx:expr) => {
        match (&$ctx.req.site, &$ctx.req.client) {
            (Some(site), Some(client)) => Some((
                site,
                RequestFacts {
                    site: &site.name,
                    client,
                    method: &$req.method,
                    host: &$ctx.req.host,
                    path_and_query: &$ctx.req.path_and_query,
                    raw_target: $req.raw_path(),
                    version: $req.version,
                    headers: &$req.headers,
                    tls_listener: $ctx.req.tls,
                    body: $ctx.req.body.as_deref(),
                },
            )),
            _ => None,
        }
    };
}

/// Whether one of the site's guards must see the request body before the origin phase.
pub(super) fn want_body(req: &RequestHeader, ctx: &RequestCtx) -> bool {
    facts!(req, ctx).is_some_and(|(site, facts)| site.guards.wants_body(&facts))
}

/// Whether one of the site's guards must see the origin's response body.
pub(super) fn want_response_body(
    req: &RequestHeader,
    ctx: &RequestCtx,
    resp: &ResponseFacts<'_>,
) -> bool {
    facts!(req, ctx).is_some_and(|(site, facts)| site.guards.wants_response_body(&facts, resp))
}

/// Shows the collected response body to the guards that asked; what they still have to do
/// (store updates) runs in the background: the response has already gone out.
pub(super) fn response_body_seen(
    req: &RequestHeader,
    ctx: &RequestCtx,
    resp: &ResponseFacts<'_>,
    body: &[u8],
) {
    let Some((site, facts)) = facts!(req, ctx) else {
        return;
    };
    for work in site.guards.run_response_body(&facts, resp, body) {
        tokio::spawn(work);
    }
}

/// Asks the site's guards (none before the site and client are known).
pub(super) async fn run(
    phase: Phase,
    req: &RequestHeader,
    resp: Option<&ResponseFacts<'_>>,
    ctx: &mut RequestCtx,
) -> Decision {
    let Some((site, facts)) = facts!(req, ctx) else {
        return Decision::Pass;
    };
    site.guards
        .run(phase, &facts, resp, &mut ctx.answer.trail)
        .await
}
