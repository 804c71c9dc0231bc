//! `Accept-Encoding` (RFC 9110 §12.5.3): the q-value of each coding peakguard serves.

use super::Coding;

/// What one request accepts, as q-values in thousandths (0 = not acceptable). Small and
/// `Copy`: it travels with the cache key to the storage lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    identity: u16,
    gzip: u16,
    brotli: u16,
}

impl Default for Accepted {
    /// No `Accept-Encoding`: identity only. (RFC 9110 allows any coding then, but clients
    /// that send nothing, such as scripts and health checks, expect plain bytes.)
    fn default() -> Self {
        Accepted::identity_only()
    }
}

impl Accepted {
    pub const fn identity_only() -> Self {
        Accepted {
            identity: 1000,
            gzip: 0,
            brotli: 0,
        }
    }

    /// Parses every `Accept-Encoding` field line of a request. Unknown codings are ignored;
    /// a malformed q-value counts as 0 for that entry (never as acceptance).
    pub fn parse<'a>(values: impl Iterator<Item = &'a [u8]>) -> Accepted {
        let mut identity: Option<u16> = None;
        let mut gzip: Option<u16> = None;
        let mut brotli: Option<u16> = None;
        let mut star: Option<u16> = None;
        let mut any_field = false;
        for value in values {
            any_field = true;
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            for entry in value.split(',') {
                let mut parts = entry.split(';');
                let name = parts.next().unwrap_or("").trim();
                if name.is_empty() {
                    continue;
                }
                let mut q = 1000;
                for param in parts {
                    let Some((k, v)) = param.split_once('=') else {
                        continue;
                    };
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = parse_qvalue(v.trim()).unwrap_or(0);
                    }
                }
                let slot =
                    if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                        &mut gzip
                    } else if name.eq_ignore_ascii_case("br") {
                        &mut brotli
                    } else if name.eq_ignore_ascii_case("identity") {
                        &mut identity
                    } else if name == "*" {
                        &mut star
                    } else {
                        continue;
                    };
                // The same coding listed twice: the higher weight wins.
                *slot = Some(slot.map_or(q, |old| old.max(q)));
            }
        }
        if !any_field {
            return Accepted::identity_only();
        }
        Accepted {
            // Identity is acceptable unless excluded by `identity;q=0`, or by `*;q=0` with no
            // entry of its own. Not listed, it is the fallback: acceptable, but after every
            // coding the client named (as nginx and Apache treat it).
            identity: identity.unwrap_or(match star {
                Some(0) => 0,
                _ => 1,
            }),
            gzip: gzip.or(star).unwrap_or(0),
            brotli: brotli.or(star).unwrap_or(0),
        }
    }

    /// The q-value (thousandths) of a coding; `Other` is never chosen by weight.
    pub fn q(&self, coding: Coding) -> u16 {
        match coding {
            Coding::Identity => self.identity,
            Coding::Gzip => self.gzip,
            Coding::Brotli => self.brotli,
            Coding::Other => 0,
        }
    }

    pub fn accepts(&self, coding: Coding) -> bool {
        self.q(coding) > 0
    }

    /// Does the client accept any compressed coding peakguard makes?
    pub fn wants_compression(&self) -> bool {
        self.gzip > 0 || self.brotli > 0
    }

    /// Of the codings available, the one this client prefers: the highest q-value, ties
    /// going to the smaller coding (brotli, then gzip, then identity). `None` when the client
    /// accepts none of them.
    pub fn choose(&self, available: impl IntoIterator<Item = Coding>) -> Option<Coding> {
        let rank = |c: Coding| match c {
            Coding::Brotli => 3u8,
            Coding::Gzip => 2,
            Coding::Identity => 1,
            Coding::Other => 0,
        };
        available
            .into_iter()
            .filter(|c| self.accepts(*c))
            .max_by_key(|c| (self.q(*c), rank(*c)))
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = match v.split_once('.') {
        Some((i, f)) => (i, f),
        None => (v, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}
