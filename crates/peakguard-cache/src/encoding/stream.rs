//! Streaming codecs for responses that pass through (not stored): each input chunk gives
//! the bytes ready so far, `finish` ends the stream. (Pingora's own brotli encoder only
//! flushes at the end and never writes brotli's last block, so its streams do not decode.)

use super::Coding;
use bytes::Bytes;
use std::io::{self, Write};

/// The brotli states are several KB each: boxed, so a coder is small until used.
enum Inner {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Option<Box<brotli::CompressorWriter<Vec<u8>>>>),
    Gunzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Unbrotli(Option<Box<brotli::DecompressorWriter<Vec<u8>>>>),
}

/// Compresses or decompresses one response body, chunk by chunk.
pub struct StreamCoder(Inner);

impl StreamCoder {
    /// An encoder to `coding` at `level`; `None` for identity and unknown codings.
    pub fn encoder(coding: Coding, level: u32) -> Option<Self> {
        Some(StreamCoder(match coding {
            Coding::Gzip => Inner::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level.clamp(1, 9)),
            )),
            Coding::Brotli => Inner::Brotli(Some(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                level.min(11),
                22,
            )))),
            Coding::Identity | Coding::Other => return None,
        }))
    }

    /// A decoder of `coding`; `None` for identity and unknown codings.
    pub fn decoder(coding: Coding) -> Option<Self> {
        Some(StreamCoder(match coding {
            Coding::Gzip => Inner::Gunzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            Coding::Brotli => Inner::Unbrotli(Some(Box::new(brotli::DecompressorWriter::new(
                Vec::new(),
                4096,
            )))),
            Coding::Identity | Coding::Other => return None,
        }))
    }

    /// Feeds a chunk; returns the output ready so far (possibly empty).
    pub fn push(&mut self, input: &[u8]) -> io::Result<Bytes> {
        let out = match &mut self.0 {
            Inner::Gzip(e) => {
                e.write_all(input)?;
                e.get_mut()
            }
            Inner::Brotli(Some(e)) => {
                e.write_all(input)?;
                e.get_mut()
            }
            Inner::Gunzip(d) => {
                d.write_all(input)?;
                d.get_mut()
            }
            Inner::Unbrotli(Some(d)) => {
                d.write_all(input)?;
                d.get_mut()
            }
            Inner::Brotli(None) | Inner::Unbrotli(None) => return Err(finished()),
        };
        Ok(Bytes::from(std::mem::take(out)))
    }

    /// Ends the stream; returns the last bytes.
    pub fn finish(&mut self) -> io::Result<Bytes> {
        let out = match &mut self.0 {
            Inner::Gzip(e) => {
                e.try_finish()?;
                std::mem::take(e.get_mut())
            }
            Inner::Brotli(e) => e.take().ok_or_else(finished)?.into_inner(),
            Inner::Gunzip(d) => {
                d.try_finish()?;
                std::mem::take(d.get_mut())
            }
            Inner::Unbrotli(d) => {
                d.take().ok_or_else(finished)?.into_inner().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "truncated brotli body")
                })?
            }
        };
        Ok(Bytes::from(out))
    }
}

fn finished() -> io::Error {
    io::Error::other("stream already finished")
}
