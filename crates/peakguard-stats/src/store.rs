//! The time series on disk: one file of minute records per day (`minutes/2026-12-07.pgs`),
//! one file of hour records per month (`hours/2026-12.pgs`), and the periods still being
//! counted (`current.pgs`, replaced whole every few seconds). Records are appended and
//! synced; a record cut short by a crash is cut off the file before the next append. Old
//! files are removed by [`Store::prune`]: the size on disk is bounded by the retention,
//! the number of sites and the bounded size of a record.

use crate::bucket::Bucket;
use crate::frame;
use crate::keys::{Dictionary, Entry};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("statistics record: {0}")]
    Encoding(#[from] postcard::Error),
}

pub type Result<T> = std::result::Result<T, StatsError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StatsError + '_ {
    move |source| StatsError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Minute,
    Hour,
}

impl Resolution {
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Minute => 60,
            Resolution::Hour => 3600,
        }
    }

    /// The resolution a range of `span` seconds is shown at: minutes up to two days.
    pub fn for_span(span: i64) -> Resolution {
        if span <= 2 * 86_400 {
            Resolution::Minute
        } else {
            Resolution::Hour
        }
    }

    /// The start of the period `unix` falls in.
    pub fn start_of(self, unix: i64) -> i64 {
        unix - unix.rem_euclid(self.seconds())
    }

    fn dir(self) -> &'static str {
        match self {
            Resolution::Minute => "minutes",
            Resolution::Hour => "hours",
        }
    }

    /// The file a period starting at `unix` is in: its UTC day, or its UTC month.
    fn file_stem(self, unix: i64) -> String {
        let t = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
        let date = humantime::format_rfc3339_seconds(t).to_string();
        match self {
            Resolution::Minute => date[..10].to_owned(),
            Resolution::Hour => date[..7].to_owned(),
        }
    }
}

/// One site's figures for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Unix time of the period's start.
    pub start: i64,
    pub site: String,
    pub bucket: Bucket,
}

/// The periods still being counted, saved so a restart (or a crash) loses at most the time
/// since the last save.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    pub minute: i64,
    pub minutes: Vec<(String, Bucket)>,
    pub hour: i64,
    pub hours: Vec<(String, Bucket)>,
}

/// The bytes a record takes in a file that already has its keys (frame included).
pub fn encoded_len(r: &Record) -> usize {
    let mut dict = Dictionary::default();
    dict.encode(r)
        .and_then(|entries| entries.last().and_then(|e| postcard::to_stdvec(e).ok()))
        .map_or(0, |v| v.len() + 8)
}

/// A file's dictionary, read from it; a record cut short by a crash is cut off first.
fn load_dictionary(path: &Path) -> Result<Dictionary> {
    let mut dict = Dictionary::default();
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(dict),
        Err(e) => return Err(io(path)(e)),
    };
    let frames = frame::read_all(&mut f).map_err(io(path))?;
    if frames.damaged {
        log::warn!(
            "{}: the last record was cut short (a crash?); removed",
            path.display()
        );
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        f.set_len(frames.good_len).map_err(io(path))?;
        f.sync_all().map_err(io(path))?;
    }
    for bytes in frames.records {
        if let Ok(Entry::Key(id, name)) = postcard::from_bytes::<Entry>(&bytes) {
            dict.learn(id, name);
        }
    }
    Ok(dict)
}

impl Current {
    /// The periods being counted as records of `res` starting in `[from, to)`, of one site
    /// or all: the minute, or the hour with its current minute added.
    pub fn records(self, res: Resolution, from: i64, to: i64, site: Option<&str>) -> Vec<Record> {
        let (start, periods): (i64, Vec<(String, Bucket)>) = match res {
            Resolution::Minute => (self.minute, self.minutes),
            Resolution::Hour => {
                let mut hours: std::collections::BTreeMap<String, Bucket> =
                    self.hours.into_iter().collect();
                for (s, b) in self.minutes {
                    hours
                        .entry(s)
                        .or_default()
                        .merge(&b, crate::bucket::HOUR_KEYS);
                }
                (self.hour, hours.into_iter().collect())
            }
        };
        if start < from || start >= to {
            return Vec::new();
        }
        periods
            .into_iter()
            .filter(|(s, _)| site.is_none_or(|w| w == s))
            .map(|(site, bucket)| Record {
                start,
                site,
                bucket,
            })
            .collect()
    }
}

/// How long each resolution is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub minutes: Duration,
    pub hours: Duration,
}

pub struct Store {
    dir: PathBuf,
    retention: Retention,
    /// The dictionaries of the files appended to last (checked for a cut-off last record
    /// when first opened by this process), at most [`OPEN_DICTIONARIES`].
    dictionaries: parking_lot::Mutex<Vec<(PathBuf, Dictionary)>>,
}

/// Files whose dictionary is kept in memory (today's and yesterday's minutes, this month's
/// and last month's hours); another is read again from its file when appended to.
const OPEN_DICTIONARIES: usize = 4;

const EXT: &str = "pgs";

impl Store {
    /// Opens (creating, owner-only) the statistics directory. An existing one that others
    /// may read or enter is refused: it would show who visited when.
    pub fn open(dir: &Path, retention: Retention) -> Result<Store> {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(dir) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(StatsError::Io {
                    path: dir.to_owned(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!(
                            "open to other users (mode {mode:o}): `chmod 700 {}` or choose another [stats] dir",
                            dir.display()
                        ),
                    ),
                });
            }
        }
        for sub in [dir.to_path_buf(), dir.join("minutes"), dir.join("hours")] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&sub)
                .map_err(io(&sub))?;
        }
        Ok(Store {
            dir: dir.to_owned(),
            retention,
            dictionaries: Default::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Another handle on the same directory.
    pub fn clone_handle(&self) -> Store {
        Store {
            dir: self.dir.clone(),
            retention: self.retention,
            dictionaries: Default::default(),
        }
    }

    /// The writer lock (`lock`, held while the returned file is open), if no other process
    /// holds it.
    pub fn try_lock(&self) -> Result<Option<File>> {
        let path = self.dir.join("lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(f)),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
            Err(e) => Err(io(&path)(e.into())),
        }
    }

    fn file(&self, res: Resolution, start: i64) -> PathBuf {
        self.dir
            .join(res.dir())
            .join(format!("{}.{EXT}", res.file_stem(start)))
    }

    /// Appends finished periods (and the keys they name that the file does not have yet)
    /// and syncs them to disk.
    pub fn append(&self, res: Resolution, records: &[Record]) -> Result<()> {
        let mut by_file: Vec<(PathBuf, Vec<&Record>)> = Vec::new();
        for r in records {
            let path = self.file(res, r.start);
            match by_file.iter_mut().find(|(p, _)| *p == path) {
                Some((_, rs)) => rs.push(r),
                None => by_file.push((path, vec![r])),
            }
        }
        let mut open = self.dictionaries.lock();
        for (path, records) in by_file {
            let at = match open.iter().position(|(p, _)| *p == path) {
                Some(i) => i,
                None => {
                    let dict = load_dictionary(&path)?;
                    if open.len() >= OPEN_DICTIONARIES {
                        open.remove(0);
                    }
                    open.push((path.clone(), dict));
                    open.len() - 1
                }
            };
            let mut bytes = Vec::new();
            for r in records {
                let Some(entries) = open[at].1.encode(r) else {
                    log::error!(
                        "{}: too many different keys; a record is not written",
                        path.display()
                    );
                    continue;
                };
                for e in entries {
                    frame::write(&mut bytes, &postcard::to_stdvec(&e)?).map_err(io(&path))?;
                }
            }
            let written = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| {
                    f.write_all(&bytes)?;
                    f.sync_data()
                });
            if let Err(e) = written {
                // The dictionary may now name keys the file lacks: read it again next time
                // (which also cuts off a partly written record).
                open.remove(at);
                return Err(io(&path)(e));
            }
        }
        Ok(())
    }

    /// The records of periods starting in `[from, to)`, of one site or all, oldest first.
    pub fn read(
        &self,
        res: Resolution,
        from: i64,
        to: i64,
        site: Option<&str>,
    ) -> Result<Vec<Record>> {
        let (first, last) = (res.file_stem(from), res.file_stem(to));
        let mut out = Vec::new();
        for (stem, path) in self.files(res)? {
            if stem < first || stem > last {
                continue;
            }
            let mut f = File::open(&path).map_err(io(&path))?;
            let frames = frame::read_all(&mut f).map_err(io(&path))?;
            let mut dict = Dictionary::default();
            for bytes in frames.records {
                match postcard::from_bytes::<Entry>(&bytes) {
                    Ok(Entry::Key(id, name)) => dict.learn(id, name),
                    Ok(Entry::Record(stored)) => match dict.decode(stored) {
                        Some(r) => {
                            if r.start >= from && r.start < to && site.is_none_or(|s| s == r.site) {
                                out.push(r);
                            }
                        }
                        None => {
                            log::warn!("{}: a record names an unknown key; skipped", path.display())
                        }
                    },
                    Err(_) => {
                        log::warn!("{}: an entry that does not decode; skipped", path.display())
                    }
                }
            }
        }
        out.sort_by_key(|r| r.start);
        Ok(out)
    }

    /// As [`Store::read`], plus the periods being counted as last saved (`current.pgs`):
    /// for a reader in another process (`peakguard report`). An hour being counted includes
    /// its current minute.
    pub fn read_with_saved(
        &self,
        res: Resolution,
        from: i64,
        to: i64,
        site: Option<&str>,
    ) -> Result<Vec<Record>> {
        let mut out = self.read(res, from, to, site)?;
        if let Some(current) = self.load_current()? {
            // A save older than the last finished period (written at the minute's end, saved
            // a few seconds later) would count that period twice: left out.
            let newest_on_disk = out.iter().map(|r| r.start).max().unwrap_or(i64::MIN);
            let start = match res {
                Resolution::Minute => current.minute,
                Resolution::Hour => current.hour,
            };
            if start > newest_on_disk {
                out.extend(current.records(res, from, to, site));
            }
        }
        out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.site.cmp(&b.site)));
        Ok(out)
    }

    /// The files of a resolution, by their stem (a day or a month), in order.
    fn files(&self, res: Resolution) -> Result<Vec<(String, PathBuf)>> {
        let dir = self.dir.join(res.dir());
        let mut files = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXT) {
                continue;
            }
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                files.push((stem.to_owned(), path.clone()));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Removes the days and months wholly older than the retention. Returns how many files.
    pub fn prune(&self, now: i64) -> Result<usize> {
        let mut removed = 0;
        for (res, keep) in [
            (Resolution::Minute, self.retention.minutes),
            (Resolution::Hour, self.retention.hours),
        ] {
            let cutoff = res.file_stem(now - keep.as_secs() as i64);
            for (stem, path) in self.files(res)? {
                if stem < cutoff {
                    fs::remove_file(&path).map_err(io(&path))?;
                    self.dictionaries.lock().retain(|(p, _)| *p != path);
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Bytes on disk (all files).
    pub fn size(&self) -> Result<u64> {
        let mut total = 0;
        for res in [Resolution::Minute, Resolution::Hour] {
            for (_, path) in self.files(res)? {
                total += fs::metadata(&path).map_err(io(&path))?.len();
            }
        }
        Ok(total)
    }

    fn current_path(&self) -> PathBuf {
        self.dir.join(format!("current.{EXT}"))
    }

    /// Replaces the saved current periods (written aside, synced, then renamed over).
    pub fn save_current(&self, c: &Current) -> Result<()> {
        let path = self.current_path();
        let tmp = self.dir.join(format!("current.{EXT}.tmp"));
        let payload = postcard::to_stdvec(c)?;
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        frame::write(&mut f, &payload).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The saved current periods, if any and intact.
    pub fn load_current(&self) -> Result<Option<Current>> {
        let path = self.current_path();
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let frames = frame::read_all(&mut f).map_err(io(&path))?;
        match frames.records.first() {
            Some(bytes) if !frames.damaged => Ok(postcard::from_bytes(bytes).ok()),
            _ => {
                log::warn!("{}: damaged; the periods it held are lost", path.display());
                Ok(None)
            }
        }
    }
}
