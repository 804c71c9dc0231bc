//! A small real HTTP/1.1 origin (hyper) for edge tests that do not need WordPress. It records
//! every request it parsed (method, path, headers, body length) and answers by path:
//!
//! - `/cacheable...` → `Cache-Control: max-age=60`, body names the path
//! - `/vary` → `Vary: X-Variant`, body echoes X-Variant
//! - `/etag` → `ETag: "v1"`, `Cache-Control: max-age=0`; a matching If-None-Match gets 304 with
//!   a new `X-Revision` header
//! - `/setcookie` → `Set-Cookie` + `Cache-Control: max-age=60`
//! - `/echo` → body lists the request headers
//! - `/big?mb=N` → N MiB streamed in 64 KiB chunks, `Cache-Control: no-store`
//! - `/large?mb=N` → N MiB streamed with Content-Length, cacheable
//! - `/chunked-large?mb=N` → the same without Content-Length (chunked)
//! - `/swr` → `max-age=1, stale-while-revalidate=30`, body `rev N` (N counts fetches)
//! - `/slow?ms=N` → answers after N ms, cacheable
//! - `/flaky` → `max-age=1` page, or 500 while `failing` is set
//! - `/?add-to-cart=ID` sets a cart session cookie; `/cart/` and `/checkout/` answer 409
//!   without it
//! - any request waits while `stall_until` is in the future
//! - Yoast-shaped sitemaps: `/wp-sitemap.xml` 404, `/sitemap_index.xml` → post and product
//!   sitemaps of 3 URLs each
//! - `/hop` → `Connection: x-internal` listing a header that must not be forwarded
//! - `/fail` → 500
//! - POST anything → reads the whole body, answers 303 `Location: /cacheable-target`
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, service::service_fn};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

#[derive(Clone, Default)]
pub struct Origin {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub revision: Arc<Mutex<u32>>,
    /// When set, `/flaky` answers 500.
    pub failing: Arc<std::sync::atomic::AtomicBool>,
    /// Until this instant every request waits (a stalled server).
    pub stall_until: Arc<Mutex<Option<std::time::Instant>>>,
}

impl Seen {
    /// The first value of a request header (names are lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Origin {
    pub fn count(&self, path_prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.starts_with(path_prefix))
            .count()
    }
    pub fn last(&self, path_prefix: &str) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s.path.starts_with(path_prefix))
            .cloned()
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

fn stream_mb(mb: usize) -> Body {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let n = mb * 16;
    futures_lite_stream(chunk, n).boxed()
}

fn futures_lite_stream(
    chunk: Bytes,
    n: usize,
) -> impl hyper::body::Body<Data = Bytes, Error = Infallible> + Send + Sync + 'static {
    // A body that yields `n` copies of `chunk`, produced lazily (never buffered whole).
    struct Repeat {
        chunk: Bytes,
        left: usize,
    }
    impl hyper::body::Body for Repeat {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.left == 0 {
                return std::task::Poll::Ready(None);
            }
            self.left -= 1;
            std::task::Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
        }
    }
    Repeat { chunk, left: n }
}

async fn handle(origin: Origin, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let stall = *origin.stall_until.lock().unwrap();
    if let Some(until) = stall.filter(|u| *u > std::time::Instant::now()) {
        tokio::time::sleep_until(until.into()).await;
    }
    let cookie = header("cookie").unwrap_or_default();
    let inm = header("if-none-match");
    let variant = header("x-variant").unwrap_or_default();
    let echo: String = headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    let mut body_len = 0;
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => body_len += f.data_ref().map_or(0, |d| d.len()),
            Err(_) => break,
        }
    }
    origin.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        headers,
        body_len,
    });
    let b = Response::builder();
    let mb = |p: &str| {
        p.split("mb=")
            .nth(1)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
    };
    let resp = if method == "POST" || method == "PUT" || method == "DELETE" {
        b.status(303)
            .header("location", "/cacheable-target")
            .body(full(format!("received {body_len} bytes")))
    } else if path.starts_with("/page/") {
        // A WordPress-sized page of HTML, with a strong validator.
        b.header("cache-control", "max-age=60")
            .header("content-type", "text/html; charset=UTF-8")
            .header("etag", "\"page-1\"")
            .body(full(html_page(&path)))
    } else if path.starts_with("/photo.jpg") {
        b.header("cache-control", "max-age=60")
            .header("content-type", "image/jpeg")
            .body(full(photo()))
    } else if path.starts_with("/pregzip/") {
        // An origin that compresses even when not asked to.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        let _ = std::io::Write::write_all(&mut e, html_page(&path).as_bytes());
        b.header("cache-control", "max-age=60")
            .header("content-type", "text/html; charset=UTF-8")
            .header("content-encoding", "gzip")
            .body(full(e.finish().unwrap_or_default()))
    } else if path.starts_with("/huge-max-age") {
        // Larger than any cache can represent (RFC 9111 §1.2.2).
        b.header("cache-control", "max-age=18446744073709551615")
            .body(full(format!("huge {path}")))
    } else if path.starts_with("/cacheable") {
        b.header("cache-control", "max-age=60")
            .header("content-type", "text/plain")
            .body(full(format!("page {path}")))
    } else if path.starts_with("/varystar") {
        b.header("cache-control", "max-age=60")
            .header("vary", "*")
            .body(full("star"))
    } else if path.starts_with("/vary") {
        b.header("cache-control", "max-age=60")
            .header("vary", "X-Variant")
            .body(full(format!("variant {variant}")))
    } else if path.starts_with("/etag") {
        let mut rev = origin.revision.lock().unwrap();
        *rev += 1;
        if inm.as_deref() == Some("\"v1\"") {
            b.status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=0")
                .header("x-revision", rev.to_string())
                .body(full(""))
        } else {
            b.header("etag", "\"v1\"")
                .header("cache-control", "max-age=0")
                .header("x-revision", rev.to_string())
                .body(full("etag body"))
        }
    } else if path.starts_with("/setcookie") {
        b.header("cache-control", "max-age=60")
            .header("set-cookie", "session=secret")
            .body(full("with cookie"))
    } else if path.starts_with("/echo") {
        b.header("cache-control", "no-store").body(full(echo))
    } else if path.starts_with("/chunked-large") {
        b.header("cache-control", "max-age=60")
            .body(stream_mb(mb(&path)))
    } else if path.starts_with("/big") {
        b.header("cache-control", "no-store")
            .header("content-length", (mb(&path) << 20).to_string())
            .body(stream_mb(mb(&path)))
    } else if path.starts_with("/large") {
        b.header("cache-control", "max-age=60")
            .header("content-length", (mb(&path) << 20).to_string())
            .body(stream_mb(mb(&path)))
    } else if path.starts_with("/swr") {
        let n = {
            let mut rev = origin.revision.lock().unwrap();
            *rev += 1;
            *rev
        };
        b.header("cache-control", "max-age=1, stale-while-revalidate=30")
            .body(full(format!("rev {n}")))
    } else if path.starts_with("/slow") {
        let ms = path
            .split("ms=")
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1000);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        b.header("cache-control", "max-age=60")
            .body(full(format!("slow {path}")))
    } else if path.starts_with("/flaky") {
        if origin.failing.load(std::sync::atomic::Ordering::Relaxed) {
            b.status(500).body(full("database down"))
        } else {
            b.header("cache-control", "max-age=1")
                .body(full("flaky page"))
        }
    } else if path.starts_with("/?add-to-cart=") {
        // A WooCommerce-like cart: the session cookie is set when something is added.
        b.header("set-cookie", "wp_woocommerce_session_abc=cart-1; path=/")
            .header("set-cookie", "woocommerce_items_in_cart=1; path=/")
            .header("cache-control", "no-store")
            .body(full("added"))
    } else if path.starts_with("/cart/") || path.starts_with("/checkout/") {
        if cookie.contains("wp_woocommerce_session_abc=cart-1") {
            b.header("cache-control", "no-store")
                .body(full("your cart: 1 item"))
        } else {
            b.status(409).body(full("empty cart: no session cookie"))
        }
    } else if path == "/wp-sitemap.xml" {
        // A site with Yoast: WordPress core's sitemap is off, Yoast's index is there.
        b.status(404).body(full("not found"))
    } else if path == "/sitemap_index.xml" {
        b.header("content-type", "application/xml").body(full(
            "<?xml version=\"1.0\"?><sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\"><sitemap><loc>https://shop.example/post-sitemap.xml</loc></sitemap><sitemap><loc>https://shop.example/product-sitemap.xml</loc></sitemap></sitemapindex>",
        ))
    } else if path == "/post-sitemap.xml" || path == "/product-sitemap.xml" {
        let kind = path
            .trim_start_matches('/')
            .trim_end_matches("-sitemap.xml");
        let urls: String = (1..=3)
            .map(|i| format!("<url><loc>https://shop.example/{kind}-{i}/</loc></url>"))
            .collect();
        b.header("content-type", "application/xml").body(full(format!(
            "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{urls}</urlset>"
        )))
    } else if path.starts_with("/hop") {
        b.header("cache-control", "max-age=60")
            .header("connection", "x-internal")
            .header("x-internal", "secret")
            .header("keep-alive", "timeout=99")
            .body(full("hop"))
    } else if path.starts_with("/fail") {
        b.status(500).body(full("origin broke"))
    } else {
        b.header("cache-control", "max-age=60")
            .body(full(format!("default {path}")))
    };
    resp.unwrap_or_else(|_| Response::new(full("")))
}

/// About 40 KB of HTML, the same for the same path.
pub fn html_page(path: &str) -> String {
    let mut out = format!("<!doctype html><html><head><title>{path}</title></head><body>");
    for i in 0..400 {
        out.push_str(&format!(
            "<article class=\"product\"><a href=\"/product/{i}/\">Product {i}</a> <span>{}.90 EUR</span></article>\n",
            10 + i % 90
        ));
    }
    out.push_str("</body></html>");
    out
}

/// 30 KB of bytes that do not compress, like a JPEG.
pub fn photo() -> Vec<u8> {
    let mut x: u32 = 2463534242;
    (0..30_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Starts the origin on an ephemeral loopback port, in its own runtime thread.
pub fn start() -> (SocketAddr, Origin) {
    let origin = Origin::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind origin");
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let o = origin.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let o = o.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let o = o.clone();
                        async move { Ok::<_, Infallible>(handle(o, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    (addr, origin)
}
