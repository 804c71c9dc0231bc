//! The disk tier: one file per object under `<dir>/<2 hex>/<hex>`, bounded in bytes, kept
//! across restarts. All file writes and deletes go through one writer thread in order, so a
//! purge that follows a write always wins; the queue to it is bounded (a full queue drops the
//! disk copy, never blocks a request). Files are written to a temporary name and renamed, so
//! a crash never leaves a half object under a real name.
//!
//! A file is `PGC2`, the key URL, the tags, pingora's serialized meta (the base header), a
//! table of the other codings (coding, length), then the base body and each coding's body.
//! Files of the previous format (`PGC1`, one body) are still read.

use super::object::{MetaParts, Representation, StoredObject};
use crate::encoding::Coding;
use bytes::Bytes;
use parking_lot::Mutex;
use pingora_cache::CacheMeta;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

const MAGIC: &[u8; 4] = b"PGC2";
const MAGIC_V1: &[u8; 4] = b"PGC1";
/// More codings than this in one file means the file is damaged.
const MAX_REPRESENTATIONS: usize = 8;
const QUEUE: usize = 4096;

enum Job {
    Write {
        hex: String,
        bytes: Vec<u8>,
        bodies: Vec<Bytes>,
    },
    Delete {
        hex: String,
    },
    Barrier(std::sync::mpsc::Sender<()>),
}

struct Index {
    entries: HashMap<String, (u64, u64)>, // hex -> (size, seq)
    order: BTreeMap<u64, String>,
    used: u64,
    next_seq: u64,
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
    index: Mutex<Index>,
    jobs: SyncSender<Job>,
    pub dropped_writes: AtomicU64,
    pub evictions: AtomicU64,
}

impl DiskTier {
    /// Opens (creating if needed) the directory and indexes what is already there.
    pub fn open(dir: &Path, capacity: u64) -> io::Result<(Self, Vec<Recovered>)> {
        fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for shard in fs::read_dir(dir)? {
            let shard = shard?.path();
            if !shard.is_dir() {
                continue;
            }
            for file in fs::read_dir(&shard)? {
                let path = file?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.ends_with(".tmp") {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                match read_prelude(&path) {
                    Ok((url, tags, size, mtime)) => {
                        found.push((mtime, name.to_string(), url, tags, size))
                    }
                    Err(_) => {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
        found.sort_by_key(|f| f.0);
        let mut index = Index {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            used: 0,
            next_seq: 0,
        };
        let mut recovered = Vec::new();
        for (_, hex, url, tags, size) in found {
            let seq = index.next_seq;
            index.next_seq += 1;
            index.entries.insert(hex.clone(), (size, seq));
            index.order.insert(seq, hex.clone());
            index.used += size;
            recovered.push(Recovered { hex, url, tags });
        }
        let (jobs, rx) = sync_channel::<Job>(QUEUE);
        let writer_dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("peakguard-disk-writer".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Write { hex, bytes, bodies } => {
                            if let Err(e) = write_atomic(&writer_dir, &hex, &bytes, &bodies) {
                                log::warn!(
                                    "disk cache: cannot write {hex} under {}: {e}",
                                    writer_dir.display()
                                );
                            }
                        }
                        Job::Delete { hex } => {
                            let _ = fs::remove_file(object_path(&writer_dir, &hex));
                        }
                        Job::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        let tier = DiskTier {
            dir: dir.to_path_buf(),
            capacity,
            index: Mutex::new(index),
            jobs,
            dropped_writes: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        };
        Ok((tier, recovered))
    }

    pub fn contains(&self, hex: &str) -> bool {
        self.index.lock().entries.contains_key(hex)
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
        let job = Job::Write {
            hex: hex.to_string(),
            bytes: prelude,
            bodies,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped_writes.fetch_add(1, Ordering::Relaxed);
                return Vec::new();
            }
        }
        let mut evicted = Vec::new();
        let mut index = self.index.lock();
        if let Some((old, seq)) = index.entries.remove(hex) {
            index.used -= old;
            index.order.remove(&seq);
        }
        let seq = index.next_seq;
        index.next_seq += 1;
        index.entries.insert(hex.to_string(), (size, seq));
        index.order.insert(seq, hex.to_string());
        index.used += size;
        while index.used > self.capacity {
            let Some((_, victim)) = index.order.pop_first() else {
                break;
            };
            if let Some((vsize, _)) = index.entries.remove(&victim) {
                index.used -= vsize;
            }
            let _ = self.jobs.try_send(Job::Delete {
                hex: victim.clone(),
            });
            self.evictions.fetch_add(1, Ordering::Relaxed);
            evicted.push(victim);
        }
        evicted
    }

    pub fn remove(&self, hex: &str) -> bool {
        let mut index = self.index.lock();
        let Some((size, seq)) = index.entries.remove(hex) else {
            return false;
        };
        index.used -= size;
        index.order.remove(&seq);
        drop(index);
        if self
            .jobs
            .send(Job::Delete {
                hex: hex.to_string(),
            })
            .is_err()
        {
            let _ = fs::remove_file(object_path(&self.dir, hex));
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
        self.index.lock().used
    }

    pub fn len(&self) -> usize {
        self.index.lock().entries.len()
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

/// Reads only the prelude: url, tags, file size, modification time.
fn read_prelude(path: &Path) -> io::Result<(String, Vec<String>, u64, std::time::SystemTime)> {
    let mut f = fs::File::open(path)?;
    let md = f.metadata()?;
    let mut head = vec![0u8; (md.len() as usize).min(64 * 1024)];
    f.read_exact(&mut head)?;
    let (url, tags, _) = read_head(&mut Cursor { buf: &head, pos: 0 })?;
    Ok((url, tags, md.len(), md.modified()?))
}
