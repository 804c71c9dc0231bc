//! One writer at a time per site: rustic writes no repository locks, so every command that
//! writes (backup, copy, forget/prune, rollback) holds this local file lock.

use crate::error::{BackupError, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held while alive; the kernel drops it if the process dies (even `kill -9`).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the lock in `state_dir`, waiting up to `wait` for another writer to finish.
    pub fn acquire(state_dir: &Path, wait: Duration) -> Result<WriterLock> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| BackupError::io("creating the state directory", state_dir, e))?;
        let path = state_dir.join("writer.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| BackupError::io("opening the lock file", &path, e))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    return Err(BackupError::Locked {
                        path,
                        holder: if holder.is_empty() {
                            String::new()
                        } else {
                            format!(", held by {holder}")
                        },
                    });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(BackupError::io("locking", &path, e));
                }
            }
        }
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "pid {}", std::process::id());
        Ok(WriterLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_with_the_holder() {
        let dir = std::env::temp_dir().join(format!("pg-lock-{}", std::process::id()));
        let first = WriterLock::acquire(&dir, Duration::ZERO).expect("first lock");
        let err = WriterLock::acquire(&dir, Duration::from_millis(200)).expect_err("held");
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        WriterLock::acquire(&dir, Duration::ZERO).expect("free again");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
