//! A stored object: the response header and freshness, the body, and what purges need.

use bytes::Bytes;
use pingora_cache::CacheMeta;
use pingora_cache::key::HashBinary;
use pingora_http::ResponseHeader;
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
        let mut meta = CacheMeta::new(
            self.fresh_until,
            self.updated,
            self.stale_while_revalidate_sec,
            self.stale_if_error_sec,
            self.header.clone(),
        );
        if let Some(v) = self.variance {
            meta.set_variance(v);
        }
        meta
    }
}

/// One complete cached response.
#[derive(Debug)]
pub struct StoredObject {
    pub meta: MetaParts,
    pub body: Bytes,
    /// The key URL (`https://host/path?q`), for URL and prefix purges.
    pub url: String,
    /// Purge tags from the response's tag headers.
    pub tags: Vec<String>,
}

impl StoredObject {
    /// Bytes this object weighs in a tier (body, header estimate, key).
    pub fn weight(&self) -> usize {
        let headers: usize = self
            .meta
            .header
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        self.body.len() + headers + self.url.len() + 128
    }
}
