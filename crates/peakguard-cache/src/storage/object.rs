//! A stored object: the response header and freshness, the body in each stored coding, and
//! what purges need.

use crate::encoding::{Accepted, Coding, representation_header};
use bytes::Bytes;
use pingora_cache::CacheMeta;
use pingora_cache::key::HashBinary;
use pingora_http::ResponseHeader;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

/// Freshness and header of a stored response, kept unserialized so a hit rebuilds its
/// `CacheMeta` without decoding anything.
#[derive(Debug, Clone)]
pub struct MetaParts {
    pub fresh_until: SystemTime,
    pub updated: SystemTime,
    pub stale_while_revalidate_sec: u32,
    pub stale_if_error_sec: u32,
    pub variance: Option<HashBinary>,
    pub header: ResponseHeader,
}

impl MetaParts {
    pub fn from_meta(meta: &CacheMeta) -> Self {
        MetaParts {
            fresh_until: meta.fresh_until(),
            updated: meta.updated(),
            stale_while_revalidate_sec: meta.stale_while_revalidate_sec(),
            stale_if_error_sec: meta.stale_if_error_sec(),
            variance: meta.variance(),
            header: meta.response_header_copy(),
        }
    }

    pub fn to_meta(&self) -> CacheMeta {
        self.to_meta_with(&self.header)
    }

    /// The meta with another header (that of one representation).
    pub fn to_meta_with(&self, header: &ResponseHeader) -> CacheMeta {
        let mut meta = CacheMeta::new(
            self.fresh_until,
            self.updated,
            self.stale_while_revalidate_sec,
            self.stale_if_error_sec,
            header.clone(),
        );
        if let Some(v) = self.variance {
            meta.set_variance(v);
        }
        meta
    }
}

/// One more coding of a stored body, made from it by a background encoder.
#[derive(Debug, Clone)]
pub struct Representation {
    pub coding: Coding,
    /// Ready to send: `Content-Encoding`, `Content-Length`, `Vary`, weakened `ETag`.
    pub header: ResponseHeader,
    pub body: Bytes,
}

impl Representation {
    /// Builds the representation of `body` in `coding` for an object whose base header is
    /// `base`.
    pub fn new(base: &ResponseHeader, coding: Coding, body: Bytes) -> Self {
        Representation {
            coding,
            header: representation_header(base, Coding::of(base), coding, body.len()),
            body,
        }
    }
}

/// One complete cached response.
#[derive(Debug)]
pub struct StoredObject {
    /// Freshness and the base header: the response as the origin sent it (its coding, with
    /// `Content-Length`).
    pub meta: MetaParts,
    /// The body as the origin sent it.
    pub body: Bytes,
    /// The other codings of the same body (brotli, gzip; identity when the origin sent it
    /// compressed). Empty until a background encoder has run.
    pub encoded: Vec<Representation>,
    /// The key URL (`https://host/path?q`), for URL and prefix purges.
    pub url: String,
    /// Purge tags from the response's tag headers.
    pub tags: Vec<String>,
    /// The compression policy applies and no encoding exists yet.
    pub encodable: bool,
    /// A background encoding of this object was queued (at most one per object).
    pub encoding_queued: AtomicBool,
}

impl StoredObject {
    pub fn new(meta: MetaParts, body: Bytes, url: String, tags: Vec<String>) -> Self {
        StoredObject {
            meta,
            body,
            encoded: Vec::new(),
            url,
            tags,
            encodable: false,
            encoding_queued: AtomicBool::new(false),
        }
    }

    /// The coding of the body as stored from the origin.
    pub fn base_coding(&self) -> Coding {
        Coding::of(&self.meta.header)
    }

    /// The representation to send to a client that accepts `accepted`: its header and body.
    /// Without a preference (`None`), or when the client accepts none of them, the base one
    /// (the edge then decodes it on the way out if it can).
    pub fn select(&self, accepted: Option<&Accepted>) -> (&ResponseHeader, &Bytes) {
        let base = (&self.meta.header, &self.body);
        let Some(accepted) = accepted else {
            return base;
        };
        if self.encoded.is_empty() {
            return base;
        }
        let available =
            std::iter::once(self.base_coding()).chain(self.encoded.iter().map(|r| r.coding));
        match accepted.choose(available) {
            Some(c) if c != self.base_coding() => self
                .encoded
                .iter()
                .find(|r| r.coding == c)
                .map_or(base, |r| (&r.header, &r.body)),
            _ => base,
        }
    }

    /// The same object with new freshness and base header (after a revalidation): every
    /// representation keeps its bytes and gets its header derived again.
    pub fn with_meta(&self, meta: MetaParts) -> Self {
        let encoded = self
            .encoded
            .iter()
            .map(|r| Representation::new(&meta.header, r.coding, r.body.clone()))
            .collect();
        StoredObject {
            meta,
            body: self.body.clone(),
            encoded,
            url: self.url.clone(),
            tags: self.tags.clone(),
            encodable: self.encodable,
            encoding_queued: AtomicBool::new(false),
        }
    }

    /// Bytes this object weighs in a tier (every body, header estimates, key).
    pub fn weight(&self) -> usize {
        let header_size = |h: &ResponseHeader| -> usize {
            h.headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 4)
                .sum()
        };
        let encoded: usize = self
            .encoded
            .iter()
            .map(|r| r.body.len() + header_size(&r.header) + 32)
            .sum();
        self.body.len() + header_size(&self.meta.header) + encoded + self.url.len() + 128
    }
}
