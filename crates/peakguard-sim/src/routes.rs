//! What the origin answers, by path (with query):
//!
//! - `/blog/...` → a WordPress page as WordPress sends it: ~40 KB of HTML, no
//!   `Cache-Control` (the edge's `wordpress` profile decides how long to keep it)
//! - `/page/...` → the same HTML with `Cache-Control: max-age=60` and a strong `ETag`
//! - `/photo.jpg` → 30 KB that does not compress (a static file: served even with the
//!   database down)
//! - `/pregzip/...` → a page gzip-compressed although nobody asked
//! - `/cacheable...` → `Cache-Control: max-age=60`, body names the path
//! - `/huge-max-age` → a `max-age` larger than any cache can represent
//! - `/vary` → `Vary: X-Variant`, body echoes X-Variant; `/varystar` → `Vary: *`
//! - `/etag` → `ETag: "v1"`, `max-age=0`; a matching If-None-Match gets 304; both carry an
//!   `X-Revision` that counts fetches
//! - `/setcookie` → `Set-Cookie` + `max-age=60`
//! - `/echo` → body lists the request headers
//! - `/big?mb=N` → N MiB streamed with Content-Length, `no-store`
//! - `/large?mb=N` → N MiB streamed with Content-Length, cacheable
//! - `/chunked-large?mb=N` → the same without Content-Length (chunked)
//! - `/swr` → `max-age=1, stale-while-revalidate=30`, body `rev N` (N counts fetches)
//! - `/slow?ms=N` → answers after N ms (at most 60 s), cacheable
//! - `/flaky` → a `max-age=1` page (500 while the database is down, as every page)
//! - `/?add-to-cart=ID` sets a cart session cookie; `/cart/` and `/checkout/` answer 409
//!   without it
//! - Yoast-shaped sitemaps: `/wp-sitemap.xml` 404, `/sitemap_index.xml` → post and product
//!   sitemaps of 3 URLs each
//! - `/hop` → `Connection: x-internal` listing a header that must not be forwarded
//! - `/redirect?to=PATH` → 302 `Location: PATH`
//! - `/fail` → 500
//! - `/leak` → a cacheable page showing a PHP fatal error (what `display_errors` leaks)
//! - POST `/wp-login.php` → 302 to `/wp-admin/` with a `wordpress_logged_in_…` session
//!   cookie (a successful login)
//! - POST, PUT, DELETE → reads the whole body, answers 303 `Location: /cacheable-target`
//! - anything else → `max-age=60`, body `default PATH`
//!
//! Every request first waits out a stall, then holds a PHP worker for the page time.

use crate::SimOrigin;
use crate::body::{Body, full, html_page, photo, stream_mb};
use crate::{Seen, lock};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What WordPress answers when its database is gone.
pub const DB_ERROR_PAGE: &str = "<!DOCTYPE html><html><head><title>Database Error</title></head><body><h1>Error establishing a database connection</h1></body></html>";

/// A theme calling a function of a plugin that is off, with `display_errors` on: the path
/// and line leak to every visitor.
pub const PHP_FATAL_PAGE: &str = "<html><body><br />\n<b>Fatal error</b>:  Uncaught Error: Call to undefined function wc_get_product() in /var/www/html/wp-content/themes/shop/functions.php:12\nStack trace:\n#0 {main}\n  thrown in <b>/var/www/html/wp-content/themes/shop/functions.php</b> on line <b>12</b><br />\n</body></html>";

/// How long a page takes when the database is down (PHP fails fast).
const DB_DOWN_TIME: Duration = Duration::from_millis(5);

/// The largest `/slow?ms=` honoured.
const SLOW_LIMIT_MS: u64 = 60_000;

/// The largest `?mb=` honoured.
const MB_LIMIT: usize = 4096;

fn query_number<T: std::str::FromStr>(path: &str, key: &str) -> Option<T> {
    path.split(key).nth(1)?.split('&').next()?.parse().ok()
}

pub(crate) async fn handle(origin: SimOrigin, req: Request<Incoming>) -> Response<Body> {
    origin.count_request();
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
    origin.wait_out_stalls().await;
    let mut body_len = 0;
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => body_len += f.data_ref().map_or(0, |d| d.len()),
            Err(_) => break,
        }
    }
    let seen = Seen {
        method,
        path,
        headers,
        body_len,
    };
    origin.record(seen.clone());
    let is_static = seen.path.starts_with("/photo.jpg");
    if !is_static && origin.db_down.load(Ordering::Relaxed) {
        let _worker = match &origin.workers {
            Some(w) => w.acquire().await.ok(),
            None => None,
        };
        tokio::time::sleep(DB_DOWN_TIME).await;
        return Response::builder()
            .status(500)
            .header("content-type", "text/html; charset=UTF-8")
            .body(full(DB_ERROR_PAGE))
            .unwrap_or_else(|_| Response::new(full("")));
    }
    origin.work().await;
    route(&origin, &seen)
        .await
        .unwrap_or_else(|_| Response::new(full("")))
}

async fn route(origin: &SimOrigin, seen: &Seen) -> http::Result<Response<Body>> {
    let path = seen.path.as_str();
    let method = seen.method.as_str();
    let b = Response::builder();
    let mb = || {
        query_number::<usize>(path, "mb=")
            .unwrap_or(1)
            .min(MB_LIMIT)
    };
    if method == "POST" && path.starts_with("/wp-login.php") {
        // A successful WordPress login: the session cookie an editor carries afterwards.
        return b
            .status(302)
            .header("location", "/wp-admin/")
            .header("cache-control", "no-store")
            .header(
                "set-cookie",
                "wordpress_logged_in_0123abcd=editor%7C1767225600%7Cq1w2e3r4t5y6u7i8o9p0; path=/; HttpOnly",
            )
            .body(full(""));
    }
    if method == "POST" || method == "PUT" || method == "DELETE" {
        return b
            .status(303)
            .header("location", "/cacheable-target")
            .body(full(format!("received {} bytes", seen.body_len)));
    }
    if path.starts_with("/blog/") {
        return b
            .header("content-type", "text/html; charset=UTF-8")
            .body(full(html_page(path)));
    }
    if path.starts_with("/page/") {
        return b
            .header("cache-control", "max-age=60")
            .header("content-type", "text/html; charset=UTF-8")
            .header("etag", "\"page-1\"")
            .body(full(html_page(path)));
    }
    if path.starts_with("/photo.jpg") {
        return b
            .header("cache-control", "max-age=60")
            .header("content-type", "image/jpeg")
            .body(full(photo()));
    }
    if path.starts_with("/pregzip/") {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        let _ = std::io::Write::write_all(&mut e, html_page(path).as_bytes());
        return b
            .header("cache-control", "max-age=60")
            .header("content-type", "text/html; charset=UTF-8")
            .header("content-encoding", "gzip")
            .body(full(e.finish().unwrap_or_default()));
    }
    if path.starts_with("/huge-max-age") {
        // Larger than any cache can represent (RFC 9111 §1.2.2).
        return b
            .header("cache-control", "max-age=18446744073709551615")
            .body(full(format!("huge {path}")));
    }
    if path.starts_with("/cacheable") {
        return b
            .header("cache-control", "max-age=60")
            .header("content-type", "text/plain")
            .body(full(format!("page {path}")));
    }
    if path.starts_with("/varystar") {
        return b
            .header("cache-control", "max-age=60")
            .header("vary", "*")
            .body(full("star"));
    }
    if path.starts_with("/vary") {
        let variant = seen.header("x-variant").unwrap_or_default();
        return b
            .header("cache-control", "max-age=60")
            .header("vary", "X-Variant")
            .body(full(format!("variant {variant}")));
    }
    if path.starts_with("/etag") {
        let rev = {
            let mut rev = lock(&origin.revision);
            *rev += 1;
            *rev
        };
        let b = b
            .header("etag", "\"v1\"")
            .header("cache-control", "max-age=0")
            .header("x-revision", rev.to_string());
        return if seen.header("if-none-match") == Some("\"v1\"") {
            b.status(304).body(full(""))
        } else {
            b.body(full("etag body"))
        };
    }
    if path.starts_with("/setcookie") {
        return b
            .header("cache-control", "max-age=60")
            .header("set-cookie", "session=secret")
            .body(full("with cookie"));
    }
    if path.starts_with("/echo") {
        let echo: String = seen
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        return b.header("cache-control", "no-store").body(full(echo));
    }
    if path.starts_with("/chunked-large") {
        return b
            .header("cache-control", "max-age=60")
            .body(stream_mb(mb()));
    }
    if path.starts_with("/big") {
        return b
            .header("cache-control", "no-store")
            .header("content-length", (mb() << 20).to_string())
            .body(stream_mb(mb()));
    }
    if path.starts_with("/large") {
        return b
            .header("cache-control", "max-age=60")
            .header("content-length", (mb() << 20).to_string())
            .body(stream_mb(mb()));
    }
    if path.starts_with("/swr") {
        let n = {
            let mut rev = lock(&origin.revision);
            *rev += 1;
            *rev
        };
        return b
            .header("cache-control", "max-age=1, stale-while-revalidate=30")
            .body(full(format!("rev {n}")));
    }
    if path.starts_with("/slow") {
        let ms = query_number::<u64>(path, "ms=")
            .unwrap_or(1000)
            .min(SLOW_LIMIT_MS);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return b
            .header("cache-control", "max-age=60")
            .body(full(format!("slow {path}")));
    }
    if path.starts_with("/flaky") {
        return b
            .header("cache-control", "max-age=1")
            .body(full("flaky page"));
    }
    if path.starts_with("/?add-to-cart=") {
        // A WooCommerce-like cart: the session cookie is set when something is added.
        return b
            .header("set-cookie", "wp_woocommerce_session_abc=cart-1; path=/")
            .header("set-cookie", "woocommerce_items_in_cart=1; path=/")
            .header("cache-control", "no-store")
            .body(full("added"));
    }
    if let Some(rest) = path.strip_prefix("/checkout/order-received/") {
        // WooCommerce's confirmation with the companion plugin's order field:
        // `/checkout/order-received/ID/?total=59.90` (EUR).
        let (id, query) = rest.split_once('?').unwrap_or((rest, ""));
        let id = id.trim_end_matches('/');
        let total = query
            .split('&')
            .find_map(|p| p.strip_prefix("total="))
            .unwrap_or("0");
        return b
            .header("cache-control", "no-store")
            .header(
                "x-peakguard-order",
                format!("id={id}; total={total}; currency=EUR"),
            )
            .body(full(format!("thank you for order {id}")));
    }
    if path.starts_with("/cart/") || path.starts_with("/checkout/") {
        let cookie = seen.header("cookie").unwrap_or_default();
        return if cookie.contains("wp_woocommerce_session_abc=cart-1") {
            b.header("cache-control", "no-store")
                .body(full("your cart: 1 item"))
        } else {
            b.status(409).body(full("empty cart: no session cookie"))
        };
    }
    if path == "/wp-sitemap.xml" {
        // A site with Yoast: WordPress core's sitemap is off, Yoast's index is there.
        return b.status(404).body(full("not found"));
    }
    if path == "/sitemap_index.xml" {
        return b.header("content-type", "application/xml").body(full(
            "<?xml version=\"1.0\"?><sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\"><sitemap><loc>https://shop.example/post-sitemap.xml</loc></sitemap><sitemap><loc>https://shop.example/product-sitemap.xml</loc></sitemap></sitemapindex>",
        ));
    }
    if path == "/post-sitemap.xml" || path == "/product-sitemap.xml" {
        let kind = path
            .trim_start_matches('/')
            .trim_end_matches("-sitemap.xml");
        let urls: String = (1..=3)
            .map(|i| format!("<url><loc>https://shop.example/{kind}-{i}/</loc></url>"))
            .collect();
        return b.header("content-type", "application/xml").body(full(format!(
            "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{urls}</urlset>"
        )));
    }
    if path.starts_with("/hop") {
        return b
            .header("cache-control", "max-age=60")
            .header("connection", "x-internal")
            .header("x-internal", "secret")
            .header("keep-alive", "timeout=99")
            .body(full("hop"));
    }
    if let Some(to) = path.strip_prefix("/redirect?to=") {
        return b.status(302).header("location", to).body(full("moved"));
    }
    if path.starts_with("/fail") {
        return b.status(500).body(full("origin broke"));
    }
    if path.starts_with("/leak") {
        return b
            .header("cache-control", "max-age=60")
            .header("content-type", "text/html; charset=UTF-8")
            .body(full(PHP_FATAL_PAGE));
    }
    b.header("cache-control", "max-age=60")
        .body(full(format!("default {path}")))
}
