//! A small HTTP/1.1 server for the rehearsal benchmark: answers at once with a 1 KB page,
//! except that every response due within one second, `stall_at` seconds after the first
//! request, waits until that second is over (a stalled server).
//!
//!     cargo run --release --example stall_server -- PORT [STALL_AT_SECONDS]

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, service::service_fn};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: stall_server PORT [STALL_AT_SECONDS]");
    let stall_at = Duration::from_secs_f64(args.next().and_then(|s| s.parse().ok()).unwrap_or(2.0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let start: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
        let body = Bytes::from(vec![b'x'; 1000]);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (start, body) = (start.clone(), body.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let (start, body) = (start.clone(), body.clone());
                    async move {
                        let now = Instant::now();
                        let t0 = *start.get_or_init(|| now);
                        let (from, to) = (t0 + stall_at, t0 + stall_at + Duration::from_secs(1));
                        if now >= from && now < to {
                            tokio::time::sleep_until(to.into()).await;
                        }
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}
