//! A recording HTTP receiver for notifications (webhooks, Slack-compatible hooks,
//! Alertmanager's own webhooks): every request's path, `Authorization` and body (at most
//! [`BODY_LIMIT`] bytes each, the last [`KEPT`] requests) are kept for the test to read. It
//! can answer 500 to the first requests, to show a notifier's retries.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BODY_LIMIT: usize = 1 << 20;
pub const KEPT: usize = 1000;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Clone)]
pub struct Receiver {
    got: Arc<Mutex<VecDeque<Received>>>,
    failures_left: Arc<AtomicUsize>,
}

impl Receiver {
    /// Everything received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.got
            .lock()
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until `done` holds for what was received, or `within` passes (`None`).
    pub fn wait_for(
        &self,
        within: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Option<Vec<Received>> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if done(&got) {
                return Some(got);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts a receiver on an ephemeral 127.0.0.1 port in a thread of its own; the first
/// `fail_first` requests get a 500.
pub fn start_receiver(fail_first: usize) -> std::io::Result<(SocketAddr, Receiver)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let receiver = Receiver {
        got: Arc::new(Mutex::new(VecDeque::new())),
        failures_left: Arc::new(AtomicUsize::new(fail_first)),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let serving = receiver.clone();
    std::thread::Builder::new()
        .name("sim-receiver".into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let r = serving.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let r = r.clone();
                            async move {
                                let method = req.method().to_string();
                                let path = req.uri().to_string();
                                let authorization = req
                                    .headers()
                                    .get("authorization")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string);
                                let body = Limited::new(req.into_body(), BODY_LIMIT)
                                    .collect()
                                    .await
                                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                                    .unwrap_or_default();
                                if let Ok(mut g) = r.got.lock() {
                                    if g.len() == KEPT {
                                        g.pop_front();
                                    }
                                    g.push_back(Received {
                                        method,
                                        path,
                                        authorization,
                                        body,
                                    });
                                }
                                let fail = r
                                    .failures_left
                                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                        n.checked_sub(1)
                                    })
                                    .is_ok();
                                let mut response =
                                    hyper::Response::new(Full::new(Bytes::from_static(b"ok\n")));
                                if fail {
                                    *response.status_mut() =
                                        hyper::StatusCode::INTERNAL_SERVER_ERROR;
                                }
                                Ok::<_, Infallible>(response)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            })
        })?;
    Ok((addr, receiver))
}
