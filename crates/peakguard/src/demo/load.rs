//! The demo's bounded load: a fixed number of keep-alive connections, each requesting pages
//! in turn until the time is up. (The full load generator is `peakguard rehearse`.)

use anyhow::{Result, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub struct LoadReport {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    hist: Histogram<u64>,
}

impl LoadReport {
    pub fn rps(&self) -> f64 {
        (self.ok + self.errors) as f64 / self.elapsed.as_secs_f64()
    }
    pub fn p50_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.5) as f64 / 1000.0
    }
    pub fn p99_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.99) as f64 / 1000.0
    }
}

pub async fn wait_ready(addr: SocketAddr) -> Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the edge did not start listening on {addr}")
}

async fn visitor(
    target: SocketAddr,
    id: usize,
    until: Instant,
    pages: usize,
) -> (u64, u64, Histogram<u64>) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("static bounds");
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut n = id;
    'connect: while Instant::now() < until {
        let Ok(stream) = tokio::net::TcpStream::connect(target).await else {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            errors += 1;
            continue;
        };
        tokio::spawn(conn);
        while Instant::now() < until {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let page = (n >> 8) % pages;
            let req = Request::get(format!("/post-{page}/"))
                .header("host", "demo.test")
                .body(Empty::<Bytes>::new());
            let Ok(req) = req else { continue };
            let start = Instant::now();
            let res = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req)).await;
            match res {
                Ok(Ok(resp)) => {
                    let good = resp.status().is_success() || resp.status().is_redirection();
                    let body = resp.into_body().collect().await;
                    let _ = hist.record(start.elapsed().as_micros() as u64);
                    if good && body.is_ok() {
                        ok += 1
                    } else {
                        errors += 1
                    }
                    if body.is_err() {
                        continue 'connect;
                    }
                }
                _ => {
                    errors += 1;
                    continue 'connect;
                }
            }
        }
    }
    (ok, errors, hist)
}

pub async fn run_load(
    target: SocketAddr,
    connections: usize,
    duration: Duration,
    pages: usize,
) -> LoadReport {
    let start = Instant::now();
    let until = start + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(visitor(target, i * 7919 + 1, until, pages)))
        .collect();
    let mut report = LoadReport {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds"),
    };
    for t in tasks {
        if let Ok((ok, errors, hist)) = t.await {
            report.ok += ok;
            report.errors += errors;
            let _ = report.hist.add(hist);
        }
    }
    report.elapsed = start.elapsed();
    report
}
