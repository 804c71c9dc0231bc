//! Serving: one task per connection on a listener the caller owns, or a thread of its own.

use crate::SimOrigin;
use crate::routes::handle;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

/// Serves `origin` on `listener` until the runtime stops. Accept errors (a full file table)
/// are waited out briefly, never ending the loop.
pub async fn serve(listener: tokio::net::TcpListener, origin: SimOrigin) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let origin = origin.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let origin = origin.clone();
                async move { Ok::<_, Infallible>(handle(origin, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Starts `origin` on an ephemeral 127.0.0.1 port, in a runtime thread of its own (two
/// workers) that lives as long as the process.
pub fn try_start(origin: SimOrigin) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("sim-origin".into())
        .spawn(move || {
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => serve(listener, origin).await,
                    Err(e) => eprintln!("sim origin: cannot listen: {e}"),
                }
            })
        })?;
    Ok(addr)
}

/// For tests: a plain origin ([`SimOrigin::new`]) on an ephemeral loopback port; panics
/// (failing the test) when no port can be bound.
pub fn start() -> (SocketAddr, SimOrigin) {
    let origin = SimOrigin::new();
    match try_start(origin.clone()) {
        Ok(addr) => (addr, origin),
        Err(e) => panic!("the simulated origin cannot listen on 127.0.0.1: {e}"),
    }
}
