//! Responses the edge writes itself, and the request-body hygiene before anything else.

use super::ctx::{Local, RequestCtx};
use bytes::Bytes;
use peakguard_shield::{LocalResponse, pages};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::Session;
use std::time::Duration;

/// A GET/HEAD body larger than this is refused (413) rather than drained.
const MAX_DRAINED_BODY: u64 = 1 << 20;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A response the edge writes itself. `detail` names why, in `Cache-Status` (RFC 9211: this
/// response was neither a hit nor forwarded).
pub(super) async fn respond_local(
    session: &mut Session,
    detail: &str,
    status: u16,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<()> {
    write_local(
        session,
        detail,
        status,
        "text/html; charset=utf-8",
        headers,
        body,
    )
    .await
}

/// A guard's response: its status, page and fields. The connection closes when the guard
/// asks, and whenever the request's body was not read: its bytes must never be parsed as a
/// next request.
pub(super) async fn respond_guard(
    session: &mut Session,
    guard: &str,
    response: LocalResponse,
    body_read: bool,
) -> Result<()> {
    let req = session.req_header();
    let has_body = req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if response.close || (has_body && !body_read) {
        session.set_keepalive(None);
    }
    write_local(
        session,
        guard,
        response.status,
        response.content_type,
        &response.headers,
        response.body,
    )
    .await
}

async fn write_local(
    session: &mut Session,
    detail: &str,
    status: u16,
    content_type: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 4))?;
    resp.insert_header("content-type", content_type)?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("cache-control", "no-store")?;
    resp.insert_header("cache-status", format!("peakguard; detail=\"{detail}\""))?;
    for (k, v) in headers {
        resp.insert_header(k.to_string(), v.as_str())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// A body on GET/HEAD has no meaning for the page, but its bytes must be consumed as a body,
/// never parsed as a next request, and not left unread (closing with unread data resets the
/// connection and can destroy the response). Returns `Ok(false)` when a response was sent.
pub(super) async fn drain_safe_method_body(
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<bool> {
    let req = session.req_header();
    if !matches!(req.method, http::Method::GET | http::Method::HEAD) {
        return Ok(true);
    }
    let length = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = req.headers.contains_key(http::header::TRANSFER_ENCODING);
    if !chunked && length.unwrap_or(0) == 0 {
        return Ok(true);
    }
    if length.is_some_and(|l| l > MAX_DRAINED_BODY) {
        ctx.answer.local = Some(Local::BodyTooLarge);
        session.set_keepalive(None);
        respond_local(
            session,
            "body-too-large",
            413,
            &[],
            pages::page(
                "Request too large",
                "A page request cannot carry a body this large.",
                0,
            ),
        )
        .await?;
        return Ok(false);
    }
    match tokio::time::timeout(DRAIN_TIMEOUT, session.drain_request_body()).await {
        Ok(Ok(())) => {
            ctx.req.drained_body = true;
            Ok(true)
        }
        _ => {
            ctx.answer.local = Some(Local::BadBody);
            session.set_keepalive(None);
            respond_local(
                session,
                "bad-body",
                400,
                &[],
                pages::page("Bad request", "The request body could not be read.", 0),
            )
            .await?;
            Ok(false)
        }
    }
}

pub(super) fn request_host(req: &RequestHeader) -> Option<String> {
    // HTTP/2 carries the host in :authority (the URI); HTTP/1.1 in Host.
    req.uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .filter(|h| !h.is_empty())
}
