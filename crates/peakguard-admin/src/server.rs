//! The admin listener of a peakguard process that runs no edge (`peakguard monitor`): the
//! [`AdminExtension`]s' endpoints, `/metrics` and `/status` behind the same bearer token as
//! the edge's admin API, `GET /healthz` without it. Bounded: at most [`MAX_CONNECTIONS`]
//! connections at once (more wait in the kernel's backlog), each request's header read
//! within 10 s. Where an edge runs, its admin API serves the same extensions.

use crate::AdminExtension;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

const MAX_CONNECTIONS: usize = 64;

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn answer(
    parts: &[Arc<dyn AdminExtension>],
    token: &str,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == "/healthz" {
        return reply(200, "text/plain", b"ok\n".to_vec());
    }
    let expected = format!("Bearer {token}");
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(expected.as_bytes())));
    if !authorized {
        return reply(
            401,
            "application/json",
            b"{\"error\":\"missing or wrong bearer token (Authorization: Bearer TOKEN; see admin.token / admin.token_file)\"}\n".to_vec(),
        );
    }
    if path == "/metrics" {
        let text: String = parts.iter().map(|p| p.metrics()).collect();
        return reply(200, "text/plain; version=0.0.4", text.into_bytes());
    }
    if path == "/status" {
        let body: serde_json::Map<String, serde_json::Value> = parts
            .iter()
            .map(|p| (p.name().to_string(), p.status()))
            .collect();
        let body = serde_json::Value::Object(body);
        return reply(200, "application/json", format!("{body}\n").into_bytes());
    }
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    match parts
        .iter()
        .find_map(|p| p.handle(req.method().as_str(), path, &query))
    {
        Some((status, body)) => reply(status, "application/json", format!("{body}\n").into_bytes()),
        None => reply(
            404,
            "application/json",
            b"{\"error\":\"not found: see /status for what this process serves; /metrics, /healthz\"}\n".to_vec(),
        ),
    }
}

/// Serves `parts` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    token: String,
    parts: Vec<Arc<dyn AdminExtension>>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let token = Arc::new(token);
    let parts = Arc::new(parts);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    log::warn!("admin listener: {e}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let parts = parts.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let response = answer(&parts, &token, &req);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
            drop(permit);
        });
    }
}
