//! The request phase, before the cache: the body on GET/HEAD, the site by host, who the
//! client is, the key and bypass, then the site's guards (redirect, maintenance…).

use super::EdgeProxy;
use super::ctx::RequestCtx;
use super::guards;
use super::local::{drain_safe_method_body, request_host, respond_guard, respond_local};
use peakguard_cache::{Accepted, KeyParts, cache_key_url};
use peakguard_shield::{Decision, Phase, client_info, pages};
use pingora::prelude::*;
use pingora::proxy::Session;

impl EdgeProxy {
    /// Returns `Ok(true)` when a response was sent (the request ends here).
    pub(super) async fn on_request(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
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
        ctx.client = Some(client_info(
            peer,
            header("x-forwarded-for"),
            header("x-forwarded-proto"),
            ctx.scheme,
            &live.trusted_proxies,
        ));
        ctx.path_and_query = req
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        ctx.key_url = cache_key_url(
            KeyParts {
                scheme: ctx.scheme,
                host: &host,
                path_and_query: &ctx.path_and_query,
            },
            &site.rules,
        );
        ctx.bypass = site.rules.bypass(
            req.method.as_str(),
            &ctx.path_and_query,
            req.headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(|v| v.as_bytes()),
        );
        ctx.host = host;
        ctx.site = Some(site);

        match guards::run(Phase::Request, session.req_header(), None, ctx).await {
            Decision::Pass => Ok(false),
            Decision::Respond { guard, response } => {
                ctx.local = Some(guard);
                respond_guard(session, guard, response).await?;
                Ok(true)
            }
            // The request phase is before the cache: waiting here would make hits wait.
            Decision::Wait { guard, .. } => {
                log::error!("guard {guard} asked a request to wait before the cache; passed");
                Ok(false)
            }
        }
    }
}
