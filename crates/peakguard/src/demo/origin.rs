//! A simulated WordPress-like origin: a few "PHP workers", each page takes a while, and a
//! "database" that can fail (then every page is a fast 500, as WordPress does).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

pub struct SimOrigin {
    workers: Semaphore,
    page_time: Duration,
    pub db_failed: AtomicBool,
    pub requests: AtomicU64,
}

impl SimOrigin {
    pub fn new(workers: usize, page_time: Duration) -> Self {
        SimOrigin {
            workers: Semaphore::new(workers),
            page_time,
            db_failed: AtomicBool::new(false),
            requests: AtomicU64::new(0),
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let _worker = self.workers.acquire().await;
        if self.db_failed.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            return Response::builder()
                .status(500)
                .header("content-type", "text/html")
                .body(Full::new(Bytes::from_static(
                    b"<h1>Error establishing a database connection</h1>",
                )))
                .unwrap_or_default();
        }
        tokio::time::sleep(self.page_time).await;
        let body = format!(
            "<!doctype html><title>{0}</title><h1>Simulated WordPress page {0}</h1>{1}",
            req.uri().path(),
            "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>".repeat(200)
        );
        Response::builder()
            .header("content-type", "text/html; charset=UTF-8")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    }
}

pub async fn serve(addr: SocketAddr, sim: Arc<SimOrigin>) {
    let Ok(listener) = tokio::net::TcpListener::bind(addr).await else {
        eprintln!("demo origin: cannot listen on {addr}");
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let sim = sim.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let sim = sim.clone();
                async move { Ok::<_, std::convert::Infallible>(sim.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
