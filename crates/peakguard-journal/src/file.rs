//! The journal's file: appended under an exclusive lock (the edge, the monitor and the CLI may
//! write to one file), created 0600 in a private directory, synced after each line; read and
//! verified line by line.

use crate::entry::{Entry, Event, GENESIS};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How far from its end the last line is looked for (a line is at most a few KiB).
const TAIL: u64 = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("journal {0}")]
    Private(#[from] peakguard_config::private_fs::PrivateError),
    #[error(
        "journal {path}: {problem}; nothing was appended (check it with `peakguard journal --verify`)"
    )]
    Broken { path: String, problem: Problem },
    #[error("journal {path}: {why}")]
    Unsafe { path: String, why: String },
}

/// What [`verify`] found wrong, and on which line (1 is the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub why: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

/// A journal file.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn new(path: impl Into<PathBuf>) -> Journal {
        Journal { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` now. Blocking (a lock, a write, a sync): call it off the async runtime.
    pub fn append(&self, event: Event) -> Result<Entry, JournalError> {
        self.append_at(event, SystemTime::now())
    }

    /// Appends `event` as of `at`.
    pub fn append_at(&self, event: Event, at: SystemTime) -> Result<Entry, JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.display().to_string(),
            source,
        };
        peakguard_config::private_fs::ensure_private_parent(&self.path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&self.path)
            .map_err(io)?;
        self.check_private(&file)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io(e.into()))?;
        let (seq, prev) = match last_line(&mut file).map_err(io)? {
            None => (1, GENESIS.to_string()),
            Some(text) => match serde_json::from_str::<Entry>(&text) {
                Ok(last) => (last.seq + 1, last.hash),
                Err(e) => {
                    return Err(JournalError::Broken {
                        path: self.path.display().to_string(),
                        problem: Problem {
                            line: line_count(&mut file).map_err(io)?,
                            why: format!("the last line is not an entry ({e})"),
                        },
                    });
                }
            },
        };
        let entry = Entry::new(event, seq, at, &prev);
        let mut line = entry.line();
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(io)?;
        Ok(entry)
    }

    /// The file must be ours and closed to others: the journal is the site's audit trail.
    fn check_private(&self, file: &File) -> Result<(), JournalError> {
        let unsafe_file = |why: String| JournalError::Unsafe {
            path: self.path.display().to_string(),
            why,
        };
        let meta = file.metadata().map_err(|source| JournalError::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        if !meta.is_file() {
            return Err(unsafe_file("not a regular file".into()));
        }
        if meta.uid() != rustix::process::geteuid().as_raw() {
            return Err(unsafe_file(format!(
                "owned by uid {}, not by this user",
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(unsafe_file(format!(
                "mode {:o}: others may read or change it; chmod 600 it",
                meta.mode() & 0o777
            )));
        }
        Ok(())
    }
}

/// The file's last non-empty line, if it has one.
fn last_line(file: &mut File) -> std::io::Result<Option<String>> {
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
    // From a byte offset: the first line may start inside a character; only the last counts.
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_string))
}

/// How many lines the file has (to name a broken last line).
fn line_count(file: &mut File) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(0))?;
    let mut all = String::new();
    file.read_to_string(&mut all)?;
    Ok(all.lines().count())
}

/// Every line of the journal at `path` (none when it does not exist yet).
pub fn read(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(JournalError::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| JournalError::Broken {
                path: path.display().to_string(),
                problem: Problem {
                    line: i + 1,
                    why: format!("not an entry ({e})"),
                },
            })
        })
        .collect()
}

/// Checks the chain: each line's hash is its content's, follows the line before it (its
/// `prev` and `seq`), and the first starts the chain. `Ok`: how many lines; `Err`: the first
/// line that is wrong and how.
pub fn verify(path: &Path) -> Result<usize, Problem> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(Problem {
                line: 0,
                why: format!("cannot read it: {e}"),
            });
        }
    };
    let mut previous: Option<Entry> = None;
    let mut count = 0;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let problem = |why: String| Problem { line: number, why };
        if line.trim().is_empty() {
            return Err(problem("an empty line: a line was removed by hand".into()));
        }
        let entry: Entry = serde_json::from_str(line)
            .map_err(|e| problem(format!("not an entry ({e}): edited or cut short")))?;
        if entry.computed_hash() != entry.hash {
            return Err(problem(
                "its content does not match its hash: the line was edited".into(),
            ));
        }
        match &previous {
            None => {
                if entry.seq != 1 || entry.prev != GENESIS {
                    return Err(problem(format!(
                        "the journal starts at entry {}, not 1: its first lines were removed",
                        entry.seq
                    )));
                }
            }
            Some(before) => {
                if entry.prev != before.hash || entry.seq != before.seq + 1 {
                    return Err(problem(format!(
                        "entry {} does not follow entry {} (line {}): a line was removed or moved",
                        entry.seq,
                        before.seq,
                        number - 1
                    )));
                }
            }
        }
        previous = Some(entry);
        count += 1;
    }
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(Problem {
            line: count,
            why: "the last line has no end: a write was cut short".into(),
        });
    }
    Ok(count)
}

#[cfg(test)]
mod tests;
