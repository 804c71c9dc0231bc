//! What is worth compressing: by media type and size.

use super::Coding;
use pingora_http::ResponseHeader;

/// Which responses get gzip and brotli representations, and how hard to compress them.
#[derive(Debug, Clone)]
pub struct CompressionPolicy {
    pub enabled: bool,
    /// Media types (`type/subtype`, or `type/*`), lower case.
    pub types: Vec<String>,
    /// Bodies smaller than this are served as they are.
    pub min_size: usize,
    pub gzip_level: u32,
    pub brotli_level: u32,
}

impl Default for CompressionPolicy {
    fn default() -> Self {
        CompressionPolicy::from_config(&peakguard_config::CompressionConfig::default())
    }
}

impl CompressionPolicy {
    pub fn from_config(c: &peakguard_config::CompressionConfig) -> Self {
        CompressionPolicy {
            enabled: c.enabled,
            types: c
                .types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect(),
            min_size: usize::try_from(c.min_size.0).unwrap_or(usize::MAX),
            gzip_level: c.gzip_level.clamp(1, 9),
            brotli_level: c.brotli_level.min(11),
        }
    }

    /// Is this media type (a `Content-Type` value, parameters allowed) on the list?
    pub fn type_listed(&self, content_type: &str) -> bool {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let Some((major, _)) = media.split_once('/') else {
            return false;
        };
        self.types.iter().any(|t| match t.strip_suffix("/*") {
            Some(prefix) => prefix == major,
            None => *t == media,
        })
    }

    /// Should a response with this header and a body of `len` bytes get compressed
    /// representations (or, when it came compressed, an identity one)?
    pub fn applies(&self, header: &ResponseHeader, len: usize) -> bool {
        if !self.enabled || len < self.min_size || header.status.as_u16() != 200 {
            return false;
        }
        if Coding::of(header) == Coding::Other {
            return false;
        }
        if header
            .headers
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
            })
        {
            return false;
        }
        header
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| self.type_listed(ct))
    }

    /// The level for one coding.
    pub fn level(&self, coding: Coding) -> u32 {
        match coding {
            Coding::Gzip => self.gzip_level,
            Coding::Brotli => self.brotli_level,
            Coding::Identity | Coding::Other => 0,
        }
    }
}
