//! What one snapshot reads: the site's files under `/site` and the database dump as
//! `/database.sql`, as one rustic `ReadSource`.
//!
//! Guards against rustic_core 0.13's pitfalls live here:
//! - unreadable files are counted and named (rustic only logs them and goes on);
//! - the dump is not a stream source: rustic records a stream's size as 0, and restic then
//!   restores an EMPTY `database.sql` (seen with Debian's restic 0.14). The dump is written
//!   to a file in the state directory first (through an 8 MiB buffer, its exit status
//!   checked before anything is archived), then archived as a regular file with its real
//!   size and the snapshot's time as mtime, so a parent can never match it.

use parking_lot::Mutex;
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{
    ErrorKind, Excludes, LocalSource, LocalSourceFilterOptions, LocalSourceSaveOptions, ReadSource,
    ReadSourceEntry, ReadSourceOpen, RusticError, RusticResult,
};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The snapshot's layout: files under `/site`, the dump at `/database.sql`.
pub const SITE_DIR: &str = "/site";
pub const DUMP_PATH: &str = "/database.sql";
const DUMP_BUFFER: usize = 8 << 20;

/// What went wrong while reading the source, collected across rustic's worker threads.
#[derive(Debug, Default)]
pub struct SourceReport {
    pub unreadable: Vec<String>,
    /// The archiver wanted to read an unchanged dump (see [`DumpEntry::Unchanged`]).
    pub dump_not_matched: bool,
}

type Shared = Arc<Mutex<SourceReport>>;

type LocalOpen = <LocalSource as ReadSource>::Open;

/// What `/database.sql` is in this snapshot.
#[derive(Debug, Clone)]
pub enum DumpEntry {
    /// A fresh dump file and its size.
    File(PathBuf, u64),
    /// The database is unchanged since the parent snapshot: its `database.sql` node's
    /// metadata, so the archiver matches it and keeps the parent's content without reading.
    /// Should the archiver want to read it anyway, the read fails and is reported (the
    /// snapshot is then removed, never stored with wrong content).
    Unchanged(Metadata),
}

pub struct SiteSource {
    /// `None`: the dump alone.
    local: Option<LocalSource>,
    root: PathBuf,
    dump: Option<DumpEntry>,
    report: Shared,
}

impl SiteSource {
    pub fn new(root: &Path, excludes: &[String], dump: Option<DumpEntry>) -> RusticResult<Self> {
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
            local: Some(local),
            root: root.to_path_buf(),
            dump,
            report: Shared::default(),
        })
    }

    /// The dump alone (for a run whose files are unchanged).
    pub fn dump_only(dump: (PathBuf, u64)) -> Self {
        SiteSource {
            local: None,
            root: PathBuf::new(),
            dump: Some(DumpEntry::File(dump.0, dump.1)),
            report: Shared::default(),
        }
    }

    pub fn report(&self) -> Shared {
        self.report.clone()
    }
}

pub enum SiteOpen {
    File(LocalOpen, PathBuf, Shared),
    Dump(PathBuf),
    /// The unchanged dump: never to be read.
    NotDumped(Shared),
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
            SiteOpen::Dump(path) => {
                let file = std::fs::File::open(&path).map_err(|e| {
                    RusticError::with_source(
                        ErrorKind::InputOutput,
                        "cannot open the database dump",
                        e,
                    )
                })?;
                Ok(Box::new(BufReader::with_capacity(DUMP_BUFFER, file)))
            }
            SiteOpen::NotDumped(report) => {
                report.lock().dump_not_matched = true;
                Err(RusticError::new(
                    ErrorKind::Internal,
                    "database.sql: the archiver did not match the unchanged dump with the parent's",
                ))
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

impl ReadSource for SiteSource {
    type Open = SiteOpen;
    type Iter = Box<dyn Iterator<Item = RusticResult<ReadSourceEntry<SiteOpen>>> + Send>;

    fn size(&self) -> RusticResult<Option<u64>> {
        let dump = match &self.dump {
            Some(DumpEntry::File(_, size)) => *size,
            Some(DumpEntry::Unchanged(meta)) => meta.size,
            None => 0,
        };
        match &self.local {
            Some(local) => Ok(local.size()?.map(|s| s + dump)),
            None => Ok(Some(dump)),
        }
    }

    fn entries(&self) -> Self::Iter {
        let report_dump = self.report.clone();
        let dump = self.dump.clone().map(move |entry| {
            let (meta, open) = match entry {
                DumpEntry::File(file, size) => (
                    Metadata {
                        mode: Some(0o100600),
                        mtime: rustic_core::jiff::Timestamp::try_from(std::time::SystemTime::now())
                            .ok(),
                        size,
                        ..Metadata::default()
                    },
                    SiteOpen::Dump(file),
                ),
                DumpEntry::Unchanged(meta) => (meta, SiteOpen::NotDumped(report_dump)),
            };
            let node = Node::new_node(std::ffi::OsStr::new("database.sql"), NodeType::File, meta);
            Ok(ReadSourceEntry {
                path: PathBuf::from(DUMP_PATH),
                node,
                open: Some(open),
            })
        });
        // rustic's walker leaves the root directory out, so `/site` would be stored with no
        // times or owner (restic then restores it dated 1901): its own entry, first.
        let site_dir = self
            .local
            .as_ref()
            .and_then(|_| root_dir_entry(&self.root))
            .map(Ok);
        let root = self.root.clone();
        let report = self.report.clone();
        let local = self.local.as_ref().map(|l| l.entries());
        let files = local
            .into_iter()
            .flatten()
            .filter_map(move |item| match item {
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
        Box::new(dump.into_iter().chain(site_dir).chain(files))
    }
}

/// The `/site` directory's node, from the site root's metadata (`None` if it cannot be read:
/// the walk reports that itself).
fn root_dir_entry(root: &Path) -> Option<ReadSourceEntry<SiteOpen>> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(root).ok()?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| rustic_core::jiff::Timestamp::try_from(t).ok());
    let meta = Metadata {
        mode: Some(go_dir_mode(m.mode())),
        mtime,
        // As rustic's walker records every other entry: the access time is the mtime (a
        // walk would otherwise change it on every run).
        atime: mtime,
        ctime: rustic_core::jiff::Timestamp::new(
            m.ctime(),
            m.ctime_nsec().clamp(0, 999_999_999) as i32,
        )
        .ok(),
        uid: Some(m.uid()),
        gid: Some(m.gid()),
        inode: m.ino(),
        device_id: m.dev(),
        ..Metadata::default()
    };
    let name = Path::new(SITE_DIR).file_name()?;
    Some(ReadSourceEntry {
        path: PathBuf::from(SITE_DIR),
        node: Node::new_node(name, NodeType::Dir, meta),
        open: None,
    })
}

/// A directory's Unix mode as restic stores it (Go's `os.FileMode`: the directory flag in
/// the top bit, setuid/setgid/sticky in their own bits, permissions below).
fn go_dir_mode(unix: u32) -> u32 {
    const GO_DIR: u32 = 1 << 31;
    const GO_SETUID: u32 = 1 << 23;
    const GO_SETGID: u32 = 1 << 22;
    const GO_STICKY: u32 = 1 << 20;
    let mut mode = GO_DIR | (unix & 0o777);
    for (unix_bit, go_bit) in [
        (0o4000, GO_SETUID),
        (0o2000, GO_SETGID),
        (0o1000, GO_STICKY),
    ] {
        if unix & unix_bit != 0 {
            mode |= go_bit;
        }
    }
    mode
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
