//! One record on disk: its length, a CRC-32 of its bytes, then the bytes (postcard). A
//! record cut short by a crash, or damaged, is found by its length or its CRC.

use std::io::{self, Read, Write};

/// A record larger than this is not ours (a damaged length): reading stops there.
pub const MAX_RECORD: usize = 1 << 20;

pub fn write(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    out.write_all(&frame)
}

/// What reading a file of frames found.
#[derive(Debug, Default)]
pub struct Frames {
    pub records: Vec<Vec<u8>>,
    /// Bytes of whole, intact frames from the start.
    pub good_len: u64,
    /// Something after `good_len` was not a whole, intact frame.
    pub damaged: bool,
}

pub fn read_all(input: &mut impl Read) -> io::Result<Frames> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    let mut out = Frames::default();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + 8) else {
            out.damaged = true;
            break;
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let body = if len <= MAX_RECORD {
            bytes.get(at + 8..at + 8 + len)
        } else {
            None
        };
        match body {
            Some(body) if crc32fast::hash(body) == crc => {
                out.records.push(body.to_vec());
                at += 8 + len;
                out.good_len = at as u64;
            }
            _ => {
                out.damaged = true;
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_or_flipped_record_stops_reading_at_the_last_good_one() {
        let mut file = Vec::new();
        write(&mut file, b"one").unwrap();
        write(&mut file, b"two").unwrap();
        let whole = file.clone();
        let f = read_all(&mut whole.as_slice()).unwrap();
        assert_eq!(f.records, vec![b"one".to_vec(), b"two".to_vec()]);
        assert!(!f.damaged);
        for cut in 1..whole.len() - 11 {
            let short = &whole[..whole.len() - cut];
            let f = read_all(&mut &short[..]).unwrap();
            assert_eq!(f.records, vec![b"one".to_vec()], "cut {cut}");
            assert!(f.damaged);
            assert_eq!(f.good_len, 11);
        }
        let mut flipped = whole.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let f = read_all(&mut flipped.as_slice()).unwrap();
        assert_eq!(f.records.len(), 1);
        assert!(f.damaged);
    }
}
