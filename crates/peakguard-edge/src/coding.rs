//! Content coding of responses that do not come from a stored representation: a miss (and
//! the clients following its fill), an uncacheable response, a bypassed request whose origin
//! sent identity. These are compressed on their way to a client that wants it. A stored hit
//! is never compressed here: the storage already chose the representation the client
//! prefers, and its bytes go out as they are. Any response in a coding the client does not
//! accept (an origin that compressed anyway) is decoded on its way out.
//!
//! The decision is [`plan`] (in `response_filter`, where the edge knows the client and
//! whether the body is stored); the bytes are transformed by [`CodingModule`], a downstream
//! module, because only a module sees the end of every response (its done filter flushes
//! the encoder).

use bytes::Bytes;
use peakguard_cache::encoding::{StreamCoder, ensure_vary_accept_encoding, weaken_etag};
use peakguard_cache::{Accepted, Coding, CompressionPolicy};
use pingora::http::ResponseHeader;
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module};
use pingora::prelude::*;
use std::any::Any;

/// What happens to a response's bytes on their way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Compress(Coding),
    Decompress(Coding),
}

/// The facts [`plan`] decides on.
pub struct Facts<'a> {
    pub accepted: &'a Accepted,
    pub policy: &'a CompressionPolicy,
    /// The body is one of the storage's representations, chosen for this client.
    pub from_store: bool,
    /// HEAD, or a response that carries no body.
    pub no_body: bool,
}

/// Decides the transform of one response, and adjusts its header for it.
pub fn plan(resp: &mut ResponseHeader, facts: &Facts<'_>) -> Option<Transform> {
    let status = resp.status.as_u16();
    if facts.no_body || matches!(status, 204 | 206 | 304) || status < 200 {
        return None;
    }
    let transform = match Coding::of(resp) {
        Coding::Identity => {
            if facts.from_store || !facts.accepted.wants_compression() {
                return None;
            }
            let length = resp
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(usize::MAX);
            if !facts.policy.applies(resp, length) {
                return None;
            }
            match facts
                .accepted
                .choose([Coding::Brotli, Coding::Gzip, Coding::Identity])
            {
                Some(c @ (Coding::Brotli | Coding::Gzip)) => Transform::Compress(c),
                _ => return None,
            }
        }
        c @ (Coding::Gzip | Coding::Brotli) => {
            if facts.accepted.accepts(c) || !facts.accepted.accepts(Coding::Identity) {
                return None;
            }
            Transform::Decompress(c)
        }
        Coding::Other => return None,
    };
    match transform {
        Transform::Compress(c) => {
            let token = c.token().unwrap_or("identity");
            let _ = resp.insert_header(http::header::CONTENT_ENCODING, token);
        }
        Transform::Decompress(_) => {
            resp.remove_header(&http::header::CONTENT_ENCODING);
        }
    }
    // Streamed: the length is not known ahead, and byte ranges no longer apply.
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::ACCEPT_RANGES);
    // HTTP/1.1 needs the framing; pingora's HTTP/2 writer drops this field.
    let _ = resp.insert_header(http::header::TRANSFER_ENCODING, "chunked");
    ensure_vary_accept_encoding(resp);
    weaken_etag(resp);
    Some(transform)
}

/// The per-request module that applies a [`Transform`] to the body.
#[derive(Default)]
pub struct CodingModule {
    coder: Option<StreamCoder>,
    ended: bool,
}

impl CodingModule {
    /// Arms the module for this response (called from `response_filter`, before the
    /// module's own filters run).
    pub fn start(&mut self, transform: Transform, policy: &CompressionPolicy) {
        self.coder = match transform {
            Transform::Compress(c) => StreamCoder::encoder(c, policy.level(c)),
            Transform::Decompress(c) => StreamCoder::decoder(c),
        };
        self.ended = false;
    }
}

/// A body that cannot be transcoded ends the response (the header is already sent).
fn coding_error(e: std::io::Error) -> Box<Error> {
    Error::because(ErrorType::InternalError, "content coding of a response", e)
}

#[async_trait::async_trait]
impl HttpModule for CodingModule {
    fn response_body_filter(&mut self, body: &mut Option<Bytes>, end: bool) -> Result<()> {
        let Some(coder) = self.coder.as_mut() else {
            return Ok(());
        };
        if self.ended {
            return Ok(());
        }
        let input = body.as_deref().unwrap_or(&[]);
        let mut out = coder.push(input).map_err(coding_error)?;
        if end {
            let last = coder.finish().map_err(coding_error)?;
            out = if out.is_empty() {
                last
            } else {
                [out, last].concat().into()
            };
        }
        *body = Some(out);
        self.ended = end;
        Ok(())
    }

    fn response_done_filter(&mut self) -> Result<Option<Bytes>> {
        let Some(coder) = self.coder.as_mut() else {
            return Ok(None);
        };
        if self.ended {
            return Ok(None);
        }
        self.ended = true;
        Ok(Some(coder.finish().map_err(coding_error)?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

pub struct CodingModuleBuilder;

impl HttpModuleBuilder for CodingModuleBuilder {
    fn init(&self) -> Module {
        Box::new(CodingModule::default())
    }

    /// Runs late, after other response filters, as pingora's own compression module does.
    fn order(&self) -> i16 {
        i16::MIN / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(ct: &str, extra: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(200, None).unwrap();
        r.insert_header("content-type", ct).unwrap();
        r.insert_header("content-length", "5000").unwrap();
        r.insert_header("etag", "\"abc\"").unwrap();
        for (k, v) in extra {
            r.insert_header(k.to_string(), *v).unwrap();
        }
        r
    }

    fn accepted(v: &str) -> Accepted {
        Accepted::parse(std::iter::once(v.as_bytes()))
    }

    fn decide(r: &mut ResponseHeader, ae: &str, from_store: bool) -> Option<Transform> {
        let policy = CompressionPolicy::default();
        plan(
            r,
            &Facts {
                accepted: &accepted(ae),
                policy: &policy,
                from_store,
                no_body: false,
            },
        )
    }

    #[test]
    fn a_miss_is_compressed_in_the_preferred_coding_with_stream_headers() {
        let mut r = resp("text/html; charset=utf-8", &[]);
        assert_eq!(
            decide(&mut r, "gzip, deflate, br", false),
            Some(Transform::Compress(Coding::Brotli))
        );
        assert_eq!(r.headers["content-encoding"], "br");
        assert!(r.headers.get("content-length").is_none());
        assert_eq!(r.headers["vary"], "Accept-Encoding");
        assert_eq!(r.headers["etag"], "W/\"abc\"");
        let mut r = resp("text/html", &[]);
        assert_eq!(
            decide(&mut r, "br;q=0.5, gzip", false),
            Some(Transform::Compress(Coding::Gzip))
        );
    }

    #[test]
    fn stored_hits_images_and_refusals_are_left_alone() {
        for (ct, ae, from_store) in [
            ("text/html", "gzip, br", true),
            ("image/jpeg", "gzip, br", false),
            ("font/woff2", "gzip, br", false),
            ("text/html", "identity", false),
            ("text/html", "gzip;q=0, br;q=0", false),
        ] {
            let mut r = resp(ct, &[]);
            assert_eq!(
                decide(&mut r, ae, from_store),
                None,
                "{ct} {ae} {from_store}"
            );
            assert_eq!(r.headers["content-length"], "5000");
        }
        let mut r = resp("text/html", &[("cache-control", "public, no-transform")]);
        assert_eq!(decide(&mut r, "gzip", false), None);
    }

    #[test]
    fn a_coding_the_client_refuses_is_decoded() {
        let mut r = resp("text/html", &[("content-encoding", "gzip")]);
        assert_eq!(
            decide(&mut r, "identity", true),
            Some(Transform::Decompress(Coding::Gzip))
        );
        assert!(r.headers.get("content-encoding").is_none());
        let mut r = resp("text/html", &[("content-encoding", "gzip")]);
        assert_eq!(decide(&mut r, "gzip, br", true), None);
    }

    #[test]
    fn the_module_compresses_a_streamed_body_that_decodes_back() {
        let policy = CompressionPolicy::default();
        let text = "<p>peakguard</p>".repeat(500);
        for coding in [Coding::Gzip, Coding::Brotli] {
            let mut m = CodingModule::default();
            m.start(Transform::Compress(coding), &policy);
            let mut out = Vec::new();
            for chunk in text.as_bytes().chunks(1000) {
                let mut body = Some(Bytes::copy_from_slice(chunk));
                m.response_body_filter(&mut body, false).unwrap();
                out.extend_from_slice(&body.unwrap_or_default());
            }
            out.extend_from_slice(&m.response_done_filter().unwrap().unwrap_or_default());
            assert!(out.len() < text.len() / 5);
            let back =
                peakguard_cache::encoding::decode(coding, &out, 1 << 20).unwrap_or_else(|e| {
                    panic!(
                        "{coding:?}: {e} ({} bytes: {:?})",
                        out.len(),
                        &out[..out.len().min(16)]
                    )
                });
            assert_eq!(back, text.as_bytes());
        }
    }
}
