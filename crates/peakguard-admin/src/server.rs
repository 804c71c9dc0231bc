//! The admin listener of a peakguard process that runs no edge (`peakguard monitor`): it
//! carries calls to [`crate::api::answer`] — the [`AdminExtension`]s' endpoints, `/metrics`
//! and `/status` behind the same tokens as the edge's admin API, `GET /healthz` without. Bounded: at most [`MAX_CONNECTIONS`]
//! connections at once (more wait in the kernel's backlog), each request's header read
//! within 10 s. Where an edge runs, its admin API serves the same extensions.

use crate::AdminExtension;
use crate::api::{Call, Reply, Tokens, answer};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use peakguard_config::AdminPermission;
use peakguard_journal::Journal;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

const MAX_CONNECTIONS: usize = 64;

fn reply(r: Reply) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", r.content_type)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(r.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Serves `parts` to the holders of `token` and `scoped` tokens until `stop` turns true;
/// what changes something goes to `journal`.
pub async fn serve(
    listener: TcpListener,
    token: String,
    scoped: Vec<(String, String, Vec<AdminPermission>)>,
    parts: Vec<Arc<dyn AdminExtension>>,
    journal: Journal,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let tokens = Arc::new((token, scoped));
    let parts = Arc::new(parts);
    let journal = Arc::new(journal);
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
        let tokens = tokens.clone();
        let journal = journal.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let parts = parts.clone();
                let tokens = tokens.clone();
                let journal = journal.clone();
                async move {
                    let authorization = req
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    let call = Call::new(
                        req.method().as_str(),
                        req.uri().path(),
                        req.uri().query(),
                        authorization,
                    );
                    let caller = authorization.and_then(|a| {
                        Tokens {
                            admin: &tokens.0,
                            scoped: &tokens.1,
                        }
                        .caller(a)
                    });
                    let answered =
                        answer(&call, caller, None, &parts, Some(journal.as_ref())).await;
                    Ok::<_, std::convert::Infallible>(reply(answered))
                }
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
