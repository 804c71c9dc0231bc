//! Response bodies: whole ones, lazily streamed ones, and the two sample payloads.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Frame;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// `mb` MiB in 64 KiB chunks, produced as they are read (never held whole).
pub fn stream_mb(mb: usize) -> Body {
    Repeat {
        chunk: Bytes::from(vec![b'x'; 64 * 1024]),
        left: mb.saturating_mul(16),
    }
    .boxed()
}

struct Repeat {
    chunk: Bytes,
    left: usize,
}

impl hyper::body::Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }
}

/// About 40 KB of HTML, the same for the same path: a shop's category page.
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
