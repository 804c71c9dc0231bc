//! What one snapshot reads: the site's files under `/site` and the database dump as
//! `/database.sql`, as one rustic `ReadSource`.
//!
//! Guards against rustic_core 0.13's pitfalls live here:
//! - unreadable files are counted and named (rustic only logs them and goes on);
//! - the dump is read through a large buffer (a pipe read in small pieces is ~10× slower);
//! - the dump entry carries the dump's start time as its mtime, so a parent snapshot can
//!   never match it and keep an old dump; the caller also checks the stored size.

use crate::database::Database;
use parking_lot::Mutex;
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{
    ErrorKind, Excludes, LocalSource, LocalSourceFilterOptions, LocalSourceSaveOptions, ReadSource,
    ReadSourceEntry, ReadSourceOpen, RusticError, RusticResult,
};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::Arc;

/// The snapshot's layout: files under `/site`, the dump at `/database.sql`.
pub const SITE_DIR: &str = "/site";
pub const DUMP_PATH: &str = "/database.sql";
const DUMP_BUFFER: usize = 8 << 20;

/// What went wrong while reading the source, collected across rustic's worker threads.
#[derive(Debug, Default)]
pub struct SourceReport {
    pub unreadable: Vec<String>,
    pub dump_bytes: u64,
    pub dump_started: Option<std::time::SystemTime>,
    /// `Some(Ok)` once the dump finished, `Some(Err(why))` when it failed.
    pub dump_result: Option<Result<(), String>>,
}

type Shared = Arc<Mutex<SourceReport>>;

type LocalOpen = <LocalSource as ReadSource>::Open;

pub struct SiteSource {
    local: LocalSource,
    root: PathBuf,
    dump: Option<Database>,
    report: Shared,
}

impl SiteSource {
    pub fn new(root: &Path, excludes: &[String], dump: Option<Database>) -> RusticResult<Self> {
        let mut globs = Excludes::default();
        globs.globs = excludes
            .iter()
            .map(|g| {
                let g = g.trim_start_matches('/');
                format!("!{}/{g}", root.display())
            })
            .collect();
        let excludes = globs;
        let local = LocalSource::new(
            LocalSourceSaveOptions::default(),
            &excludes,
            &LocalSourceFilterOptions::default(),
            &[root.to_path_buf()],
        )?;
        Ok(SiteSource {
            local,
            root: root.to_path_buf(),
            dump,
            report: Shared::default(),
        })
    }

    pub fn report(&self) -> Shared {
        self.report.clone()
    }
}

pub enum SiteOpen {
    File(LocalOpen, PathBuf, Shared),
    Dump(Database, Shared),
}

impl ReadSourceOpen for SiteOpen {
    type Reader = Box<dyn Read + Send>;

    fn open(self) -> RusticResult<Self::Reader> {
        match self {
            SiteOpen::File(open, path, report) => match open.open() {
                Ok(file) => Ok(Box::new(CountErrors {
                    inner: file,
                    path,
                    report,
                })),
                Err(e) => {
                    report.lock().unreadable.push(format!(
                        "{} ({})",
                        path.display(),
                        e.display_log()
                    ));
                    Err(e)
                }
            },
            SiteOpen::Dump(db, report) => {
                let mut cmd = db.dump_command_line();
                cmd.stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .stdin(Stdio::null());
                let mut child = cmd.spawn().map_err(|e| {
                    report.lock().dump_result =
                        Some(Err(format!("cannot start {}: {e}", db.dump_command)));
                    RusticError::with_source(
                        ErrorKind::ExternalCommand,
                        "cannot start the database dump",
                        e,
                    )
                })?;
                let stdout = child.stdout.take().ok_or_else(|| {
                    RusticError::new(ErrorKind::ExternalCommand, "the dump has no output pipe")
                })?;
                Ok(Box::new(DumpReader {
                    inner: BufReader::with_capacity(DUMP_BUFFER, stdout),
                    child: Some(child),
                    report,
                    bytes: 0,
                }))
            }
        }
    }
}

/// A file reader that records read errors (the file is then incomplete in the snapshot).
struct CountErrors<R> {
    inner: R,
    path: PathBuf,
    report: Shared,
}

impl<R: Read> Read for CountErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.report
                .lock()
                .unreadable
                .push(format!("{} (read error: {e})", self.path.display()))
        })
    }
}

/// Reads the dump's output; at its end, waits for the process and records its status.
struct DumpReader {
    inner: BufReader<ChildStdout>,
    child: Option<Child>,
    report: Shared,
    bytes: u64,
}

impl Read for DumpReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) => {
                self.finish(None);
                Ok(0)
            }
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.finish(Some(format!("reading its output: {e}")));
                Err(e)
            }
        }
    }
}

impl DumpReader {
    fn finish(&mut self, error: Option<String>) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        let status = child.wait();
        let result = match (error, status) {
            (Some(e), _) => Err(e),
            (None, Ok(s)) if s.success() => Ok(()),
            (None, Ok(s)) => Err(format!("{s}: {}", stderr.trim())),
            (None, Err(e)) => Err(format!("waiting for it: {e}")),
        };
        let mut report = self.report.lock();
        report.dump_bytes = self.bytes;
        report.dump_result = Some(result);
    }
}

impl Drop for DumpReader {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Dropped before the end: the dump is incomplete.
            let _ = child.kill();
            let _ = child.wait();
            let mut report = self.report.lock();
            report.dump_bytes = self.bytes;
            if report.dump_result.is_none() {
                report.dump_result = Some(Err("the dump was not read to its end".into()));
            }
        }
    }
}

impl ReadSource for SiteSource {
    type Open = SiteOpen;
    type Iter = Box<dyn Iterator<Item = RusticResult<ReadSourceEntry<SiteOpen>>> + Send>;

    fn size(&self) -> RusticResult<Option<u64>> {
        self.local.size()
    }

    fn entries(&self) -> Self::Iter {
        let dump = self.dump.clone().map(|db| {
            let now = std::time::SystemTime::now();
            self.report.lock().dump_started = Some(now);
            let meta = Metadata {
                mode: Some(0o100600),
                mtime: rustic_core::jiff::Timestamp::try_from(now).ok(),
                ..Metadata::default()
            };
            let node = Node::new_node(std::ffi::OsStr::new("database.sql"), NodeType::File, meta);
            Ok(ReadSourceEntry {
                path: PathBuf::from(DUMP_PATH),
                node,
                open: Some(SiteOpen::Dump(db, self.report.clone())),
            })
        });
        let root = self.root.clone();
        let report = self.report.clone();
        let files = self.local.entries().filter_map(move |item| match item {
            Ok(entry) => {
                let Ok(rel) = entry.path.strip_prefix(&root) else {
                    return Some(Ok(entry_with(entry, PathBuf::from(SITE_DIR), &report)));
                };
                let path = Path::new(SITE_DIR).join(rel);
                Some(Ok(entry_with(entry, path, &report)))
            }
            Err(e) => {
                report.lock().unreadable.push(e.display_log());
                None
            }
        });
        Box::new(dump.into_iter().chain(files))
    }
}

fn entry_with(
    entry: ReadSourceEntry<LocalOpen>,
    path: PathBuf,
    report: &Shared,
) -> ReadSourceEntry<SiteOpen> {
    let original = entry.path.clone();
    ReadSourceEntry {
        path,
        node: entry.node,
        open: entry
            .open
            .map(|o| SiteOpen::File(o, original, report.clone())),
    }
}
