//! The waiting room's cookies, signed with HMAC-SHA256 so that a place in line or a pass
//! cannot be made up or changed. Two keys: new cookies are signed with the current one, and
//! cookies signed with the previous one still count, so a key rotation loses no place.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the signature kept in a cookie (128 bits).
const SIGNATURE_BYTES: usize = 16;

/// The signing keys (the edge reads them from the key file and rotates them).
#[derive(Clone)]
pub struct RoomKeys {
    pub current: Vec<u8>,
    pub previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for RoomKeys {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomKeys(..)")
    }
}

fn mac(key: &[u8], payload: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(payload.as_bytes());
    m
}

impl RoomKeys {
    /// `fields` joined with `.`, then the signature of `context|fields`.
    pub fn seal(&self, context: &str, fields: &[&str]) -> String {
        let body = fields.join(".");
        let sig = mac(&self.current, &format!("{context}|{body}")).finalize();
        format!(
            "{body}.{}",
            hex::encode(&sig.into_bytes()[..SIGNATURE_BYTES])
        )
    }

    /// The fields of a sealed value, if its signature is right under either key.
    pub fn open<'v>(&self, context: &str, value: &'v str, fields: usize) -> Option<Vec<&'v str>> {
        let (body, sig) = value.rsplit_once('.')?;
        let sig = hex::decode(sig).ok()?;
        if sig.len() != SIGNATURE_BYTES {
            return None;
        }
        let payload = format!("{context}|{body}");
        let valid = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|key| mac(key, &payload).verify_truncated_left(&sig).is_ok());
        let parts: Vec<&str> = body.split('.').collect();
        (valid && parts.len() == fields).then_some(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(current: &[u8], previous: Option<&[u8]>) -> RoomKeys {
        RoomKeys {
            current: current.to_vec(),
            previous: previous.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn sealed_values_open_only_unchanged_under_a_known_key_and_context() {
        let k = keys(b"key-one-32-bytes-long-0123456789", None);
        let sealed = k.seal("shop|ticket", &["q", "42", "1796090000"]);
        assert_eq!(
            k.open("shop|ticket", &sealed, 3),
            Some(vec!["q", "42", "1796090000"])
        );
        // Tampered place, other site, other kind, wrong field count, garbage.
        let tampered = sealed.replacen("42", "2", 1);
        assert_eq!(k.open("shop|ticket", &tampered, 3), None);
        assert_eq!(k.open("blog|ticket", &sealed, 3), None);
        assert_eq!(k.open("shop|pass", &sealed, 3), None);
        assert_eq!(k.open("shop|ticket", &sealed, 2), None);
        assert_eq!(k.open("shop|ticket", "q.42.1.zz", 3), None);
        assert_eq!(k.open("shop|ticket", "", 3), None);
        // A rotation keeps what the previous key signed, and only that.
        let rotated = keys(
            b"key-two-32-bytes-long-0123456789",
            Some(b"key-one-32-bytes-long-0123456789"),
        );
        assert!(rotated.open("shop|ticket", &sealed, 3).is_some());
        let again = keys(
            b"key-three-32-bytes-long-01234567",
            Some(b"key-two-32-bytes-long-0123456789"),
        );
        assert_eq!(again.open("shop|ticket", &sealed, 3), None);
        assert!(!format!("{k:?}").contains("key-one"));
    }
}
