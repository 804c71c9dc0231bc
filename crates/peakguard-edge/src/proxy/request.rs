//! The request phase, before the cache: the body on GET/HEAD, the site by host, who the
//! client is, the key and bypass, then the site's guards (redirect, maintenance…).

use super::EdgeProxy;
use super::ctx::{Local, RequestCtx};
use super::guards;
use super::local::{drain_safe_method_body, request_host, respond_guard, respond_local};
use crate::state::ClientLimits;
use peakguard_cache::{Accepted, KeyParts, cache_key_url};
use peakguard_shield::{Decision, Phase, client_info, pages};
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

/// Why a request header is over the client limits (`None`: within them).
fn header_over_limits(req: &RequestHeader, limits: &ClientLimits) -> Option<&'static str> {
    if req.headers.len() > limits.max_headers {
        return Some("The request has too many header fields.");
    }
    let size = req.method.as_str().len()
        + req.raw_path().len()
        + req
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    (size > limits.max_header_bytes)
        .then_some("The request header is larger than this site accepts.")
}

impl EdgeProxy {
    /// Returns `Ok(true)` when a response was sent (the request ends here).
    pub(super) async fn on_request(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        let live = self.state.live();
        if let Some(detail) = header_over_limits(session.req_header(), &live.clients) {
            ctx.answer.local = Some(Local::HeaderTooLarge);
            session.set_keepalive(None);
            respond_local(
                session,
                "header-too-large",
                431,
                &[],
                pages::page("Request header too large", detail, 0),
            )
            .await?;
            return Ok(true);
        }
        // Slow clients: each body read and the wait for the next request are bounded.
        session.set_read_timeout(Some(live.clients.timeout));
        if session.get_keepalive().is_some() {
            // Pingora keeps an HTTP/1.1 connection open forever by default; a client that
            // asked to close (or HTTP/1.0) keeps its close.
            session.set_keepalive(Some(live.clients.timeout.as_secs().max(1)));
        }
        if !drain_safe_method_body(session, ctx).await? {
            return Ok(true);
        }
        let Some(host) = request_host(session.req_header()) else {
            ctx.answer.local = Some(Local::NoHost);
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
            ctx.answer.local = Some(Local::UnknownHost);
            ctx.req.host = host;
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
            ctx.req.accepted = Accepted::parse(
                req.headers
                    .get_all(http::header::ACCEPT_ENCODING)
                    .iter()
                    .map(|v| v.as_bytes()),
            );
        }
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        ctx.req.client = Some(client_info(
            peer,
            header("x-forwarded-for"),
            header("x-forwarded-proto"),
            ctx.req.scheme,
            &live.trusted_proxies,
        ));
        ctx.req.path_and_query = req
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        ctx.req.key_url = cache_key_url(
            KeyParts {
                scheme: ctx.req.scheme,
                host: &host,
                path_and_query: &ctx.req.path_and_query,
            },
            &site.rules,
        );
        ctx.req.bypass = site.rules.bypass(
            req.method.as_str(),
            &ctx.req.path_and_query,
            req.headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(|v| v.as_bytes()),
        );
        ctx.req.host = host;
        ctx.req.site = Some(site);

        match guards::run(Phase::Request, session.req_header(), None, ctx).await {
            Decision::Pass => Ok(false),
            Decision::Respond { guard, response } => {
                ctx.answer.local = Some(Local::Guard(guard));
                respond_guard(session, guard, response, ctx.req.drained_body).await?;
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
