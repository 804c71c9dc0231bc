//! The waiting room's cookie keys on disk: the current key and the previous one, hex, one
//! per line, created 0600. Rotation writes a new current key and keeps the old one as
//! previous, so places in line signed before the rotation still count.

use peakguard_config::private_fs::{ensure_private_parent, read_private, write_private};
use peakguard_shield::room::RoomKeys;
use std::io::Read;
use std::path::Path;

/// A key of the file: hex, at least 16 bytes.
fn unhex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text.trim()).ok().filter(|k| k.len() >= 16)
}

fn random_key() -> std::io::Result<Vec<u8>> {
    let mut key = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

fn write(path: &Path, keys: &RoomKeys) -> std::io::Result<()> {
    let mut text = hex::encode(&keys.current);
    text.push('\n');
    if let Some(prev) = &keys.previous {
        text.push_str(&hex::encode(prev));
        text.push('\n');
    }
    write_private(path, text.as_bytes()).map_err(std::io::Error::other)
}

/// Reads the keys, or creates the file with a new random key.
pub fn load_or_create(path: &Path) -> std::io::Result<RoomKeys> {
    ensure_private_parent(path).map_err(std::io::Error::other)?;
    match read_private(path).map_err(std::io::Error::other)? {
        Some(text) => {
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let current = lines.next().and_then(unhex).ok_or_else(|| {
                std::io::Error::other(format!(
                    "{} holds no key (expected hex, one per line); delete it to start with a new key (places in line are then lost)",
                    path.display()
                ))
            })?;
            Ok(RoomKeys {
                current,
                previous: lines.next().and_then(unhex),
            })
        }
        None => {
            let keys = RoomKeys {
                current: random_key()?,
                previous: None,
            };
            write(path, &keys)?;
            Ok(keys)
        }
    }
}

/// A new current key; the current one becomes the previous (the one before is dropped).
pub fn rotate(path: &Path, keys: &RoomKeys) -> std::io::Result<RoomKeys> {
    let rotated = RoomKeys {
        current: random_key()?,
        previous: Some(keys.current.clone()),
    };
    write(path, &rotated)?;
    Ok(rotated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_created_private_read_back_and_rotated() {
        let dir = std::env::temp_dir().join(format!("pg-room-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("room.key");
        let first = load_or_create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(&path).expect("read");
        assert_eq!(again.current, first.current);
        let rotated = rotate(&path, &again).expect("rotate");
        assert_ne!(rotated.current, first.current);
        assert_eq!(rotated.previous.as_deref(), Some(first.current.as_slice()));
        let read = load_or_create(&path).expect("read rotated");
        assert_eq!(read.current, rotated.current);
        assert_eq!(read.previous, rotated.previous);
        std::fs::write(&path, "not hex\n").expect("damage");
        let err = load_or_create(&path).expect_err("damaged");
        assert!(err.to_string().contains("delete it"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
