//! One-shot compression and decompression of a whole stored body (background encoders).

use super::Coding;
use std::io::{self, Read, Write};

/// Compresses `data` with `coding` at `level` (gzip 1–9, brotli 0–11).
pub fn encode(coding: Coding, data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 3 + 64),
                flate2::Compression::new(level.clamp(1, 9)),
            );
            e.write_all(data)?;
            e.finish()
        }
        Coding::Brotli => {
            let mut out = Vec::with_capacity(data.len() / 4 + 64);
            {
                // 22: brotli's default window (4 MiB); what every browser decodes.
                let mut w = brotli::CompressorWriter::new(&mut out, 16 << 10, level.min(11), 22);
                w.write_all(data)?;
                w.flush()?;
            }
            Ok(out)
        }
        Coding::Identity | Coding::Other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot encode to {}", coding.label()),
        )),
    }
}

/// Decompresses `data`; fails if the result would exceed `max` bytes (a body that inflates
/// past the cache's object limit is not stored decoded).
pub fn decode(coding: Coding, data: &[u8], max: usize) -> io::Result<Vec<u8>> {
    let limit = max as u64 + 1;
    let mut out = Vec::with_capacity((data.len() * 4).min(max));
    match coding {
        Coding::Gzip => {
            flate2::read::MultiGzDecoder::new(data)
                .take(limit)
                .read_to_end(&mut out)?;
        }
        Coding::Brotli => {
            brotli::Decompressor::new(data, 16 << 10)
                .take(limit)
                .read_to_end(&mut out)?;
        }
        Coding::Identity | Coding::Other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot decode {}", coding.label()),
            ));
        }
    }
    if out.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("decoded body exceeds {max} bytes"),
        ));
    }
    Ok(out)
}
