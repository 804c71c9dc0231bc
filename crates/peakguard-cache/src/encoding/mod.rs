//! Content codings: which representation of a stored response a client gets.
//!
//! A compressible response is stored once per coding (identity, gzip, brotli); a hit picks
//! the one the client's `Accept-Encoding` prefers ([`Accepted::choose`]) and sends its bytes
//! as stored. This module holds the pure parts: parsing `Accept-Encoding` with q-values
//! (RFC 9110 §12.5.3), the policy of what is worth compressing, the one-shot codecs the
//! background encoders use, and the header of each representation.

mod accept;
mod codec;
mod policy;
mod representation;
mod stream;

pub use accept::Accepted;
pub use codec::{decode, encode};
pub use policy::CompressionPolicy;
pub use representation::{
    ensure_vary_accept_encoding, rebase_header, representation_header, weaken_etag,
};
pub use stream::StreamCoder;

/// A content coding peakguard can store and serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
    /// Any other coding an origin sent (zstd, deflate, ...): stored and served as it came,
    /// never transcoded.
    Other,
}

impl Coding {
    /// The `Content-Encoding` token (`None` for identity).
    pub fn token(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Brotli => Some("br"),
            Coding::Other => None,
        }
    }

    /// The coding a `Content-Encoding` value names (absent or empty: identity).
    pub fn from_content_encoding(value: Option<&[u8]>) -> Coding {
        let Some(v) = value else {
            return Coding::Identity;
        };
        let v = std::str::from_utf8(v).unwrap_or("?").trim();
        if v.is_empty() || v.eq_ignore_ascii_case("identity") {
            Coding::Identity
        } else if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
            Coding::Gzip
        } else if v.eq_ignore_ascii_case("br") {
            Coding::Brotli
        } else {
            Coding::Other
        }
    }

    /// The coding of a response header.
    pub fn of(header: &pingora_http::ResponseHeader) -> Coding {
        Coding::from_content_encoding(
            header
                .headers
                .get(http::header::CONTENT_ENCODING)
                .map(|v| v.as_bytes()),
        )
    }

    /// Label for metrics and the disk format.
    pub fn label(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
            Coding::Other => "other",
        }
    }

    /// One byte in the disk format.
    pub fn to_byte(self) -> u8 {
        match self {
            Coding::Identity => 0,
            Coding::Gzip => 1,
            Coding::Brotli => 2,
            Coding::Other => 3,
        }
    }

    pub fn from_byte(b: u8) -> Option<Coding> {
        match b {
            0 => Some(Coding::Identity),
            1 => Some(Coding::Gzip),
            2 => Some(Coding::Brotli),
            3 => Some(Coding::Other),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
