//! The disk tier: one file per object under `<dir>/<2 hex>/<hex>`, bounded in bytes, kept
//! across restarts. Every file write and delete is done by one writer thread: a write only
//! if the index still names that object with that sequence number (so a purge that follows a
//! write always wins), deletes from a set that is never dropped (a purge or an eviction never
//! waits and is never lost). The write queue is bounded (a full queue drops the disk copy,
//! never blocks a request). Files are written to a temporary name and renamed, so a crash
//! never leaves a half object under a real name. A restart indexes the directory listing
//! alone and serves at once; key URLs and tags are read afterwards (`recover`).
//!
//! A file is `PGC2`, the key URL, the tags, pingora's serialized meta (the base header), a
//! table of the other codings (coding, length), then the base body and each coding's body.
//! Files of the previous format (`PGC1`, one body) are still read.

use super::object::{MetaParts, Representation, StoredObject};
use crate::encoding::Coding;
use bytes::Bytes;
use parking_lot::Mutex;
use pingora_cache::CacheMeta;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

const MAGIC: &[u8; 4] = b"PGC2";
const MAGIC_V1: &[u8; 4] = b"PGC1";
/// More codings than this in one file means the file is damaged.
const MAX_REPRESENTATIONS: usize = 8;
const QUEUE: usize = 4096;

enum Job {
    /// Written only if the index still names this object with this sequence number (a purge
    /// or a newer store since means the file is not wanted).
    Write {
        hex: String,
        seq: u64,
        bytes: Vec<u8>,
        bodies: Vec<Bytes>,
    },
    /// Deletes are waiting (the writer looks after every job anyway).
    Wake,
    Barrier(std::sync::mpsc::Sender<()>),
}

struct Index {
    entries: HashMap<String, (u64, u64)>, // hex -> (size, seq)
    order: BTreeMap<u64, String>,
    used: u64,
    next_seq: u64,
}

impl Index {
    fn take(&mut self, hex: &str) -> Option<u64> {
        let (size, seq) = self.entries.remove(hex)?;
        self.used -= size;
        self.order.remove(&seq);
        Some(size)
    }

    fn current(&self, hex: &str, seq: u64) -> bool {
        self.entries.get(hex).is_some_and(|e| e.1 == seq)
    }
}

/// What the writer thread and the tier share.
struct Shared {
    index: Mutex<Index>,
    /// Objects whose file must go: never dropped, whatever the write queue holds. Bounded by
    /// the objects the index held (each key at most once).
    deletes: Mutex<HashSet<String>>,
}

/// What a restart finds on disk for one object.
pub struct Recovered {
    pub hex: String,
    pub url: String,
    pub tags: Vec<String>,
}

pub struct DiskTier {
    dir: PathBuf,
    capacity: u64,
    shared: Arc<Shared>,
    jobs: SyncSender<Job>,
    pub dropped_writes: AtomicU64,
    pub evictions: AtomicU64,
}

impl DiskTier {
    /// Opens (creating if needed) the directory and indexes what is already there from the
    /// directory listing alone (names, sizes, times: no file is read), so a restart serves at
    /// once; what is over the capacity goes, oldest first. Returns the keys found, whose key
    /// URLs and tags [`DiskTier::recover`] reads afterwards.
    pub fn open(dir: &Path, capacity: u64) -> io::Result<(Self, Vec<String>)> {
        fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for shard in fs::read_dir(dir)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for file in fs::read_dir(shard.path())? {
                let file = file?;
                let name = file.file_name().to_string_lossy().into_owned();
                if name.ends_with(".tmp") || name.len() < 2 {
                    let _ = fs::remove_file(file.path());
                    continue;
                }
                let Ok(md) = file.metadata() else { continue };
                if !md.is_file() {
                    continue;
                }
                let mtime = md.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((mtime, name, md.len()));
            }
        }
        found.sort();
        let mut index = Index {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            used: 0,
            next_seq: 0,
        };
        for (_, hex, size) in &found {
            let seq = index.next_seq;
            index.next_seq += 1;
            index.entries.insert(hex.clone(), (*size, seq));
            index.order.insert(seq, hex.clone());
            index.used += size;
        }
        // A smaller disk_size than last time: the oldest go (their files as the writer starts).
        let mut deletes = HashSet::new();
        while index.used > capacity {
            let Some((_, victim)) = index.order.pop_first() else {
                break;
            };
            if let Some((size, _)) = index.entries.remove(&victim) {
                index.used -= size;
            }
            deletes.insert(victim);
        }
        let keys: Vec<String> = index.entries.keys().cloned().collect();
        let shared = Arc::new(Shared {
            index: Mutex::new(index),
            deletes: Mutex::new(deletes),
        });
        let (jobs, rx) = sync_channel::<Job>(QUEUE);
        let writer_dir = dir.to_path_buf();
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("peakguard-disk-writer".into())
            .spawn(move || run_writer(&writer_dir, &writer_shared, rx))?;
        let _ = jobs.try_send(Job::Wake);
        let tier = DiskTier {
            dir: dir.to_path_buf(),
            capacity,
            shared,
            jobs,
            dropped_writes: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        };
        Ok((tier, keys))
    }

    /// Reads the key URL and tags of a stored object (blocking: the recovery thread calls
    /// it). `None`: gone meanwhile, or damaged (then dropped).
    pub fn recover(&self, hex: &str) -> Option<Recovered> {
        if !self.contains(hex) {
            return None;
        }
        match read_prelude(&object_path(&self.dir, hex)) {
            Ok((url, tags)) => Some(Recovered {
                hex: hex.to_string(),
                url,
                tags,
            }),
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    log::warn!("disk cache: unreadable object {hex}: {e}; dropping it");
                }
                self.remove(hex);
                None
            }
        }
    }

    pub fn contains(&self, hex: &str) -> bool {
        self.shared.index.lock().entries.contains_key(hex)
    }

    /// Queues the object for writing; returns the keys evicted to make room.
    pub fn store(&self, hex: &str, object: &StoredObject) -> Vec<String> {
        let Ok(prelude) = encode_prelude(object) else {
            return Vec::new();
        };
        let mut bodies = vec![object.body.clone()];
        bodies.extend(object.encoded.iter().map(|r| r.body.clone()));
        let size = (prelude.len() + bodies.iter().map(Bytes::len).sum::<usize>()) as u64;
        if size > self.capacity {
            return Vec::new();
        }
        let mut evicted = Vec::new();
        let mut index = self.shared.index.lock();
        let seq = index.next_seq;
        let job = Job::Write {
            hex: hex.to_string(),
            seq,
            bytes: prelude,
            bodies,
        };
        // Queued under the index lock: the writer checks the index before writing, so it
        // sees this entry.
        if self.jobs.try_send(job).is_err() {
            self.dropped_writes.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        index.next_seq += 1;
        index.take(hex);
        index.entries.insert(hex.to_string(), (size, seq));
        index.order.insert(seq, hex.to_string());
        index.used += size;
        let mut deletes = self.shared.deletes.lock();
        while index.used > self.capacity {
            let Some((_, victim)) = index.order.pop_first() else {
                break;
            };
            if let Some((vsize, _)) = index.entries.remove(&victim) {
                index.used -= vsize;
            }
            deletes.insert(victim.clone());
            self.evictions.fetch_add(1, Ordering::Relaxed);
            evicted.push(victim);
        }
        evicted
    }

    /// Forgets an object; its file is deleted by the writer (never dropped, never waited
    /// for: this is called on the request path).
    pub fn remove(&self, hex: &str) -> bool {
        if self.shared.index.lock().take(hex).is_none() {
            return false;
        }
        self.shared.deletes.lock().insert(hex.to_string());
        match self.jobs.try_send(Job::Wake) {
            // Full: the writer is at work and looks at the deletes after each job.
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => {
                let _ = fs::remove_file(object_path(&self.dir, hex));
            }
        }
        true
    }

    /// Reads an object (blocking: call from a blocking thread).
    pub fn load(&self, hex: &str) -> io::Result<Option<StoredObject>> {
        if !self.contains(hex) {
            return Ok(None);
        }
        match fs::read(object_path(&self.dir, hex)) {
            Ok(bytes) => decode(bytes).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits until every queued write and delete is on disk (tests, shutdown).
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.jobs.send(Job::Barrier(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    pub fn used_bytes(&self) -> u64 {
        self.shared.index.lock().used
    }

    pub fn len(&self) -> usize {
        self.shared.index.lock().entries.len()
    }
}

/// The writer thread: jobs in order, and after each one the deletes waiting.
fn run_writer(dir: &Path, shared: &Shared, jobs: std::sync::mpsc::Receiver<Job>) {
    for job in jobs {
        match job {
            Job::Write {
                hex,
                seq,
                bytes,
                bodies,
            } => {
                if !shared.index.lock().current(&hex, seq) {
                    continue; // purged or replaced before its turn
                }
                if let Err(e) = write_atomic(dir, &hex, &bytes, &bodies) {
                    log::warn!(
                        "disk cache: cannot write {hex} under {}: {e}",
                        dir.display()
                    );
                }
                // Purged while being written: the delete below (queued by the purge) sees the
                // index without it and removes the file.
            }
            Job::Wake => {}
            Job::Barrier(done) => {
                apply_deletes(dir, shared);
                let _ = done.send(());
                continue;
            }
        }
        apply_deletes(dir, shared);
    }
    apply_deletes(dir, shared);
}

/// Deletes the files of objects the index no longer holds (one stored again since is left to
/// its own write).
fn apply_deletes(dir: &Path, shared: &Shared) {
    let pending = std::mem::take(&mut *shared.deletes.lock());
    for hex in pending {
        if !shared.index.lock().entries.contains_key(&hex) {
            let _ = fs::remove_file(object_path(dir, &hex));
        }
    }
}

fn object_path(dir: &Path, hex: &str) -> PathBuf {
    dir.join(&hex[..2.min(hex.len())]).join(hex)
}

fn write_atomic(dir: &Path, hex: &str, prelude: &[u8], bodies: &[Bytes]) -> io::Result<()> {
    let path = object_path(dir, hex);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(prelude)?;
    for body in bodies {
        f.write_all(body)?;
    }
    drop(f);
    fs::rename(&tmp, &path)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn encode_prelude(object: &StoredObject) -> pingora_error::Result<Vec<u8>> {
    let (internal, header) = object.meta.to_meta().serialize()?;
    let mut out = Vec::with_capacity(64 + internal.len() + header.len() + object.url.len());
    out.extend_from_slice(MAGIC);
    put_bytes(&mut out, object.url.as_bytes());
    out.extend_from_slice(&(object.tags.len() as u32).to_le_bytes());
    for t in &object.tags {
        put_bytes(&mut out, t.as_bytes());
    }
    put_bytes(&mut out, &internal);
    put_bytes(&mut out, &header);
    out.extend_from_slice(&(object.body.len() as u64).to_le_bytes());
    out.extend_from_slice(&(object.encoded.len() as u32).to_le_bytes());
    for r in &object.encoded {
        out.push(r.coding.to_byte());
        out.extend_from_slice(&(r.body.len() as u64).to_le_bytes());
    }
    Ok(out)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> io::Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A length read from the file, checked against what is left of it.
    fn len(&mut self) -> io::Result<usize> {
        let n = usize::try_from(self.u64()?).map_err(|_| corrupt())?;
        if n > self.buf.len() - self.pos {
            return Err(corrupt());
        }
        Ok(n)
    }
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(corrupt)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn string(&mut self) -> io::Result<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| corrupt())
    }
}

fn corrupt() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "corrupt cache object")
}

/// The key URL and tags at the start of every object file, after the magic; and whether the
/// file has the current format.
fn read_head(c: &mut Cursor<'_>) -> io::Result<(String, Vec<String>, bool)> {
    let current = match c.take(4)? {
        m if m == MAGIC => true,
        m if m == MAGIC_V1 => false,
        _ => return Err(corrupt()),
    };
    let url = c.string()?;
    let ntags = c.u32()? as usize;
    let mut tags = Vec::with_capacity(ntags.min(1024));
    for _ in 0..ntags {
        tags.push(c.string()?);
    }
    Ok((url, tags, current))
}

fn decode(bytes: Vec<u8>) -> io::Result<StoredObject> {
    let mut c = Cursor {
        buf: &bytes,
        pos: 0,
    };
    let (url, tags, current) = read_head(&mut c)?;
    let n = c.u32()? as usize;
    let internal = c.take(n)?;
    let n = c.u32()? as usize;
    let header = c.take(n)?;
    let meta = CacheMeta::deserialize(internal, header).map_err(|_| corrupt())?;
    let mut table: Vec<(Coding, usize)> = Vec::new();
    let base_len = if current {
        let base_len = c.len()?;
        let count = c.u32()? as usize;
        if count > MAX_REPRESENTATIONS {
            return Err(corrupt());
        }
        for _ in 0..count {
            let coding = Coding::from_byte(c.take(1)?[0]).ok_or_else(corrupt)?;
            table.push((coding, c.len()?));
        }
        base_len
    } else {
        c.buf.len() - c.pos
    };
    let body_start = c.pos;
    let total: usize = base_len + table.iter().map(|(_, n)| n).sum::<usize>();
    if body_start + total != bytes.len() {
        return Err(corrupt());
    }
    // The bodies are views into the file's bytes: no second copy.
    let all = Bytes::from(bytes);
    let body = all.slice(body_start..body_start + base_len);
    let parts = MetaParts::from_meta(&meta);
    let mut at = body_start + base_len;
    let mut encoded = Vec::with_capacity(table.len());
    for (coding, n) in table {
        encoded.push(Representation::new(
            &parts.header,
            coding,
            all.slice(at..at + n),
        ));
        at += n;
    }
    let mut object = StoredObject::new(parts, body, url, tags);
    object.encoded = encoded;
    Ok(object)
}

/// Reads only the prelude: the key URL and tags (at most 64 KiB of the file).
fn read_prelude(path: &Path) -> io::Result<(String, Vec<String>)> {
    let f = fs::File::open(path)?;
    let mut head = Vec::with_capacity(4096);
    f.take(64 * 1024).read_to_end(&mut head)?;
    let (url, tags, _) = read_head(&mut Cursor { buf: &head, pos: 0 })?;
    Ok((url, tags))
}
