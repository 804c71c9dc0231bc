//! [`TieredStorage`]: pingora's `Storage` over a memory tier and a disk tier, with streaming
//! partial writes (a waiter reads the body while the one origin fetch is still writing it)
//! and the purge index.

mod disk;
pub mod encoder;
mod hit;
mod memory;
pub mod object;
mod recovery;

use crate::encoding::{Accepted, CompressionPolicy, ensure_vary_accept_encoding, rebase_header};
use crate::index::PurgeIndex;
use crate::stats::CacheStats;
use async_trait::async_trait;
use bytes::Bytes;
use disk::DiskTier;
use hit::{CompleteHit, PartialHit, PartialObject};
use memory::MemoryTier;
use object::{MetaParts, Representation, StoredObject};
use parking_lot::{Mutex, RwLock};
use pingora_cache::storage::{
    HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget, PurgeType,
    Storage, streaming_write::U64WriteId,
};
use pingora_cache::trace::SpanHandle;
use pingora_cache::{CacheKey, CacheMeta, key::CacheHashKey};
use pingora_error::Result;
use recovery::{Purge, PurgeLog};
use std::any::Any;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, OnceLock};

/// The most purge tags one stored object keeps (the first ones the origin sent).
pub const MAX_TAGS_PER_OBJECT: usize = 256;

/// Settings of the storage.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    pub memory_bytes: usize,
    /// `None`: memory only.
    pub disk: Option<(std::path::PathBuf, u64)>,
    pub max_object_bytes: usize,
    /// Response headers whose comma/space separated values are purge tags.
    pub tag_headers: Vec<String>,
    /// Which stored responses get compressed representations.
    pub compression: CompressionPolicy,
    /// Background encoder threads (at least 1).
    pub encoder_threads: usize,
}

pub struct TieredStorage {
    memory: RwLock<MemoryTier>,
    disk: Option<DiskTier>,
    partial: RwLock<HashMap<String, Arc<PartialObject>>>,
    index: Mutex<PurgeIndex>,
    /// Disk objects found at the start whose key URL and tags are still to be read.
    to_recover: Mutex<Vec<String>>,
    /// While they are read: the purges since the start (locked after `index`, never before).
    recovering: Mutex<Option<PurgeLog>>,
    settings: StorageSettings,
    next_write_id: AtomicU64,
    /// The background encoders' queue, once started.
    encoder: OnceLock<SyncSender<encoder::EncodeJob>>,
    pub stats: CacheStats,
}

impl TieredStorage {
    /// Opens the storage; with a disk tier, what a previous run stored is served at once and
    /// indexed for purges by [`TieredStorage::start_recovery`].
    pub fn open(settings: StorageSettings) -> std::io::Result<Self> {
        let (disk, found) = match &settings.disk {
            Some((dir, bytes)) => {
                let (tier, found) = DiskTier::open(Path::new(dir), *bytes)?;
                (Some(tier), found)
            }
            None => (None, Vec::new()),
        };
        let recovering = (!found.is_empty()).then(PurgeLog::default);
        Ok(TieredStorage {
            memory: RwLock::new(MemoryTier::new(settings.memory_bytes)),
            disk,
            partial: RwLock::new(HashMap::new()),
            index: Mutex::new(PurgeIndex::default()),
            to_recover: Mutex::new(found),
            recovering: Mutex::new(recovering),
            settings,
            next_write_id: AtomicU64::new(1),
            encoder: OnceLock::new(),
            stats: CacheStats::default(),
        })
    }

    /// Reads the key URL and tags of the disk objects found at the start into the purge
    /// index, on a background thread (a restart does not wait for it).
    pub fn start_recovery(&'static self) -> std::io::Result<()> {
        let keys = std::mem::take(&mut *self.to_recover.lock());
        if keys.is_empty() {
            *self.recovering.lock() = None;
            return Ok(());
        }
        std::thread::Builder::new()
            .name("peakguard-disk-recovery".into())
            .spawn(move || self.recover(keys))?;
        Ok(())
    }

    fn recover(&self, keys: Vec<String>) {
        let Some(disk) = &self.disk else { return };
        for hex in keys {
            let Some(found) = disk.recover(&hex) else {
                continue;
            };
            let mut index = self.index.lock();
            if self.purged_while_recovering(&found.url, &found.tags) {
                drop(index);
                self.remove_keys(&[hex]);
            } else {
                index.add(&found.hex, &found.url, &found.tags);
            }
        }
        let _index = self.index.lock();
        *self.recovering.lock() = None;
    }

    /// Whether a purge since the start names this object (always false once every object
    /// found at the start was read).
    fn purged_while_recovering(&self, url: &str, tags: &[String]) -> bool {
        self.recovering
            .lock()
            .as_ref()
            .is_some_and(|log| log.names(url, tags))
    }

    /// Remembers a purge for the objects not read yet (call with the index locked).
    fn log_purge(&self, purge: Purge) {
        if let Some(log) = self.recovering.lock().as_mut() {
            log.record(purge);
        }
    }

    /// Whether every disk object found at the start is in the purge index (tests).
    pub fn recovered(&self) -> bool {
        self.recovering.lock().is_none()
    }

    /// Starts the background encoders. Until then (and if this is never called) objects are
    /// stored and served in the coding the origin sent.
    pub fn start_encoders(&'static self) -> std::io::Result<()> {
        if self.encoder.get().is_some() {
            return Ok(());
        }
        let tx = encoder::start(self, self.settings.encoder_threads)?;
        let _ = self.encoder.set(tx);
        Ok(())
    }

    /// Marks an object that the compression policy applies to (it will get representations)
    /// and names `Accept-Encoding` in its `Vary`: every response for it depends on it.
    fn prepare(&self, object: &mut StoredObject) {
        let applies = self
            .settings
            .compression
            .applies(&object.meta.header, object.body.len());
        if applies || !object.encoded.is_empty() {
            ensure_vary_accept_encoding(&mut object.meta.header);
        }
        object.encodable = applies && object.encoded.is_empty();
    }

    /// Queues a background encoding of an object that needs one (once per object; a full
    /// queue drops the job, and a later hit tries again).
    fn maybe_encode(&self, hex: &str, object: &Arc<StoredObject>) {
        if !object.encodable || object.encoding_queued.load(Ordering::Relaxed) {
            return;
        }
        let Some(tx) = self.encoder.get() else {
            return;
        };
        if object.encoding_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if encoder::submit(tx, hex, object) {
            self.stats.encode_queued.fetch_add(1, Ordering::Relaxed);
        } else {
            object.encoding_queued.store(false, Ordering::Release);
            self.stats.encode_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A background encoder finished `object`: the stored copy gains the representations,
    /// unless it was purged or replaced meanwhile. The disk copy is queued under the memory
    /// lock, so a purge that follows always deletes it.
    fn attach_encodings(
        &self,
        hex: &str,
        object: &Arc<StoredObject>,
        encoded: Vec<Representation>,
    ) {
        let updated = Arc::new(StoredObject {
            meta: object.meta.clone(),
            body: object.body.clone(),
            encoded,
            url: object.url.clone(),
            tags: object.tags.clone(),
            encodable: false,
            encoding_queued: std::sync::atomic::AtomicBool::new(true),
        });
        // Keys evicted from a tier by the growth; the disk tier counts its own evictions.
        let mut gone = Vec::new();
        {
            let mut memory = self.memory.write();
            if !memory.get(hex).is_some_and(|o| Arc::ptr_eq(&o, object)) {
                self.stats.encode_discarded.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if let Some(evicted) = memory.replace(hex, updated.clone()) {
                self.stats
                    .evictions
                    .fetch_add(evicted.len() as u64, Ordering::Relaxed);
                gone = evicted;
            }
            if let Some(disk) = &self.disk {
                gone.extend(
                    disk.store(hex, &updated)
                        .into_iter()
                        .filter(|k| !memory.contains(k)),
                );
            }
        }
        self.stats.encoded_objects.fetch_add(1, Ordering::Relaxed);
        if !gone.is_empty() {
            let disk = self.disk.as_ref();
            let mut index = self.index.lock();
            for k in gone {
                if !disk.is_some_and(|d| d.contains(&k)) {
                    index.remove(&k);
                }
            }
        }
    }

    /// The purge tags of a response (at most MAX_TAGS_PER_OBJECT: a list page of a shop
    /// names each product it shows).
    fn tags_of(&self, meta: &CacheMeta) -> Vec<String> {
        let mut tags = Vec::new();
        for name in &self.settings.tag_headers {
            for v in meta.headers().get_all(name.as_str()) {
                if let Ok(v) = v.to_str() {
                    tags.extend(
                        v.split([',', ' '])
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(str::to_string),
                    );
                }
            }
        }
        tags.truncate(MAX_TAGS_PER_OBJECT);
        tags
    }

    /// Stores a finished object in memory (and disk), indexing it.
    fn commit(&self, hex: &str, object: Arc<StoredObject>) {
        self.index.lock().add(hex, &object.url, &object.tags);
        let evicted_mem = self.memory.write().insert(hex.to_string(), object.clone());
        self.stats
            .evictions
            .fetch_add(evicted_mem.len() as u64, Ordering::Relaxed);
        let mut gone: Vec<String> = Vec::new();
        match &self.disk {
            Some(disk) => {
                let evicted_disk = disk.store(hex, &object);
                let memory = self.memory.read();
                gone.extend(evicted_disk.into_iter().filter(|k| !memory.contains(k)));
                gone.extend(evicted_mem.into_iter().filter(|k| !disk.contains(k)));
            }
            None => gone = evicted_mem,
        }
        let mut index = self.index.lock();
        for k in gone {
            index.remove(&k);
        }
    }

    /// Counts `n` bytes of a fill in the memory budget (stored objects are evicted to make
    /// room); false when fills already hold half of it.
    fn reserve_fill(&self, n: usize) -> bool {
        let Some(evicted) = self.memory.write().reserve(n) else {
            self.stats.fills_not_stored.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        if !evicted.is_empty() {
            self.stats
                .evictions
                .fetch_add(evicted.len() as u64, Ordering::Relaxed);
            let disk = self.disk.as_ref();
            let mut index = self.index.lock();
            for k in evicted {
                if !disk.is_some_and(|d| d.contains(&k)) {
                    index.remove(&k);
                }
            }
        }
        true
    }

    fn release_fill(&self, n: usize) {
        if n > 0 {
            self.memory.write().release(n);
        }
    }

    /// Bytes held by fills in progress (counted in the memory budget).
    pub fn filling_bytes(&self) -> usize {
        self.memory.read().reserved_bytes()
    }

    /// Removes every tier's copy of the given keys; returns how many objects were removed.
    fn remove_keys(&self, keys: &[String]) -> usize {
        let mut removed = 0;
        for k in keys {
            // The in-progress slot first: a fill finishing now either loses its slot (and
            // stores nothing) or has committed already (and is removed just below).
            let mut hit = self.partial.write().remove(k).is_some();
            hit |= self.memory.write().remove(k);
            if let Some(disk) = &self.disk {
                hit |= disk.remove(k);
            }
            self.index.lock().remove(k);
            removed += usize::from(hit);
        }
        removed
    }

    /// Purges every variant of one key URL (`http://host/path?q`).
    pub fn purge_url(&self, url: &str) -> usize {
        let keys = {
            let index = self.index.lock();
            self.log_purge(Purge::Url(url.to_string()));
            index.keys_for_url(url)
        };
        self.remove_keys(&keys)
    }

    /// Purges every object whose key URL starts with `prefix`.
    pub fn purge_prefix(&self, prefix: &str) -> usize {
        let keys = {
            let index = self.index.lock();
            self.log_purge(Purge::Prefix(prefix.to_string()));
            index.keys_for_prefix(prefix)
        };
        self.remove_keys(&keys)
    }

    /// Purges every object carrying `tag`.
    pub fn purge_tag(&self, tag: &str) -> usize {
        let keys = {
            let index = self.index.lock();
            self.log_purge(Purge::Tag(tag.to_string()));
            index.keys_for_tag(tag)
        };
        self.remove_keys(&keys)
    }

    /// Purges every object carrying `tag` on one host (a site's own tags never reach
    /// another site sharing the edge).
    pub fn purge_tag_on_host(&self, tag: &str, host: &str) -> usize {
        let keys = {
            let index = self.index.lock();
            // Objects not recovered yet lose their copy whatever their host: a purge is
            // never missed, at worst one more miss.
            self.log_purge(Purge::Tag(tag.to_string()));
            index.keys_for_tag_on_host(tag, host)
        };
        self.remove_keys(&keys)
    }

    /// How many stored variants a key URL has (0: not cached).
    pub fn variants_of(&self, url: &str) -> usize {
        self.index.lock().keys_for_url(url).len()
    }

    /// Purges everything.
    pub fn purge_all(&self) -> usize {
        let mut keys = {
            let index = self.index.lock();
            self.log_purge(Purge::All);
            index.all_keys()
        };
        keys.extend(self.memory.read().keys());
        keys.sort();
        keys.dedup();
        self.remove_keys(&keys)
    }

    pub fn compression(&self) -> &CompressionPolicy {
        &self.settings.compression
    }

    /// Waits for queued disk writes (tests and shutdown).
    pub fn flush(&self) {
        if let Some(d) = &self.disk {
            d.flush();
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.memory.read().used_bytes()
    }
    pub fn memory_objects(&self) -> usize {
        self.memory.read().len()
    }
    pub fn disk_bytes(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.used_bytes())
    }
    pub fn disk_objects(&self) -> usize {
        self.disk.as_ref().map_or(0, |d| d.len())
    }
    pub fn disk_evictions(&self) -> u64 {
        self.disk
            .as_ref()
            .map_or(0, |d| d.evictions.load(Ordering::Relaxed))
    }

    /// A hit on a complete object: the representation this client prefers.
    fn hit_from_object(
        &self,
        hex: &str,
        object: Arc<StoredObject>,
        accepted: Option<&Accepted>,
    ) -> (CacheMeta, HitHandler) {
        self.maybe_encode(hex, &object);
        let (header, body) = object.select(accepted);
        let meta = object.meta.to_meta_with(header);
        let body = body.clone();
        (meta, Box::new(CompleteHit::new(object, body)))
    }

    async fn load_from_disk(&'static self, hex: &str) -> Option<Arc<StoredObject>> {
        let disk = self.disk.as_ref()?;
        if !disk.contains(hex) {
            return None;
        }
        let owned = hex.to_string();
        let loaded = tokio::task::spawn_blocking(move || disk.load(&owned)).await;
        match loaded {
            // Purged since the restart, before the recovery read it: gone.
            Ok(Ok(Some(object))) if self.purged_while_recovering(&object.url, &object.tags) => {
                self.remove_keys(&[hex.to_string()]);
                None
            }
            Ok(Ok(Some(mut object))) => {
                self.prepare(&mut object);
                let object = Arc::new(object);
                let evicted = self.memory.write().insert(hex.to_string(), object.clone());
                self.stats
                    .evictions
                    .fetch_add(evicted.len() as u64, Ordering::Relaxed);
                self.stats.disk_hits.fetch_add(1, Ordering::Relaxed);
                Some(object)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                log::warn!("disk cache: unreadable object {hex}: {e}; dropping it");
                self.remove_keys(&[hex.to_string()]);
                None
            }
            Err(_) => None,
        }
    }
}

/// Is this hit handler a complete stored object (not a fill being followed)?
pub fn is_complete_hit(handler: &HitHandler) -> bool {
    handler.as_any().is::<CompleteHit>()
}

#[async_trait]
impl Storage for TieredStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let hex = key.combined();
        let partial = self.partial.read().get(&hex).cloned();
        if let Some(p) = partial {
            return Ok(Some((p.meta.to_meta(), Box::new(PartialHit::new(p)))));
        }
        let accepted = key.extensions.get::<Accepted>();
        let found = self.memory.read().get(&hex);
        if let Some(object) = found {
            return Ok(Some(self.hit_from_object(&hex, object, accepted)));
        }
        Ok(self
            .load_from_disk(&hex)
            .await
            .map(|o| self.hit_from_object(&hex, o, accepted)))
    }

    async fn lookup_streaming_write(
        &'static self,
        key: &CacheKey,
        tag: Option<&[u8]>,
        trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(id) = tag
            .and_then(|t| U64WriteId::try_from(t).ok())
            .map(u64::from)
        else {
            return self.lookup(key, trace).await;
        };
        let hex = key.combined();
        let partial = self
            .partial
            .read()
            .get(&hex)
            .filter(|p| p.id == id)
            .cloned();
        Ok(partial.map(|p| (p.meta.to_meta(), Box::new(PartialHit::new(p)) as HitHandler)))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let hex = key.combined();
        let id = self.next_write_id.fetch_add(1, Ordering::Relaxed);
        let url = key.primary_key_str().unwrap_or_default().to_string();
        let partial = Arc::new(PartialObject::new(
            id,
            MetaParts::from_meta(meta),
            url,
            self.tags_of(meta),
            // A pass-through reader may lag this far behind before it is dropped.
            self.settings.max_object_bytes.max(8 << 20),
        ));
        self.partial.write().insert(hex.clone(), partial.clone());
        Ok(Box::new(TieredMissHandler {
            storage: self,
            hex,
            partial,
            write_id: U64WriteId::from(id),
            written: 0,
            reserved: 0,
            finished: false,
            discarding: false,
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _kind: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let hex = target.key().combined();
        Ok(if self.remove_keys(&[hex]) > 0 {
            PurgeOutcome::Purged(None)
        } else {
            PurgeOutcome::NotFound
        })
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let hex = key.combined();
        let current = self.memory.read().get(&hex);
        let current = match current {
            Some(o) => Some(o),
            None => self.load_from_disk(&hex).await,
        };
        let Some(current) = current else {
            return Ok(false);
        };
        // The meta pingora hands back carries the header of the representation it served.
        let mut parts = MetaParts::from_meta(meta);
        parts.header = rebase_header(&parts.header, &current.meta.header);
        let mut updated = current.with_meta(parts);
        self.prepare(&mut updated);
        let updated = Arc::new(updated);
        let evicted = self.memory.write().replace(&hex, updated.clone());
        self.stats
            .evictions
            .fetch_add(evicted.map_or(0, |e| e.len()) as u64, Ordering::Relaxed);
        if let Some(disk) = &self.disk {
            disk.store(&hex, &updated);
        }
        Ok(true)
    }

    fn support_streaming_partial_write(&self) -> bool {
        true
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

struct TieredMissHandler {
    storage: &'static TieredStorage,
    hex: String,
    partial: Arc<PartialObject>,
    write_id: U64WriteId,
    written: usize,
    /// Bytes of this fill counted in the memory budget.
    reserved: usize,
    finished: bool,
    discarding: bool,
}

impl TieredMissHandler {
    /// Stops storing: the clients already following this write (the writer's own among
    /// them) still get every byte; nobody new joins; nothing is kept.
    fn stop_storing(&mut self) {
        self.discarding = true;
        self.release_slot();
        self.partial.pass_through();
        self.storage
            .release_fill(std::mem::take(&mut self.reserved));
    }

    /// Removes this writer's in-progress slot (if it still owns it).
    fn release_slot(&self) {
        let mut partial = self.storage.partial.write();
        if partial
            .get(&self.hex)
            .is_some_and(|p| p.id == self.partial.id)
        {
            partial.remove(&self.hex);
        }
    }
}

#[async_trait]
impl HandleMiss for TieredMissHandler {
    /// Past `max_object_size` the writer stops storing but keeps passing data to the readers
    /// already following it, so their responses complete.
    async fn write_body(&mut self, data: Bytes, eof: bool) -> Result<()> {
        if self.discarding {
            self.partial.push(data, eof);
            return Ok(());
        }
        // Counted as it arrives, Content-Length or chunked alike.
        self.written += data.len();
        // Too large to store, or the memory budget's share for fills is spent.
        if self.written > self.storage.settings.max_object_bytes
            || !self.storage.reserve_fill(data.len())
        {
            self.stop_storing();
            self.partial.push(data, eof);
            return Ok(());
        }
        self.reserved += data.len();
        self.partial.push(data, eof);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<MissFinishType> {
        self.finished = true;
        if self.discarding {
            self.partial.complete();
            return Ok(MissFinishType::Created(0));
        }
        self.partial.complete();
        // The body leaves the fills' count; the commit counts it as a stored object.
        self.storage
            .release_fill(std::mem::take(&mut self.reserved));
        let body = self.partial.concat();
        let size = body.len();
        // The length is known now: hits are sent with Content-Length instead of chunked.
        let mut meta = self.partial.meta.clone();
        let _ = meta
            .header
            .insert_header(http::header::CONTENT_LENGTH, size.to_string());
        let mut object = StoredObject::new(
            meta,
            body,
            self.partial.url.clone(),
            self.partial.tags.clone(),
        );
        self.storage.prepare(&mut object);
        let object = Arc::new(object);
        // Only the writer that still owns the slot commits (a purge may have removed it). The
        // object is committed before the slot is freed, under the slot's lock: a lookup finds
        // one or the other, never neither (which sent a second request to the origin), and a
        // purge, which frees the slot first, either stops the commit or removes what it stored.
        let owns = {
            let mut partial = self.storage.partial.write();
            let owns = partial
                .get(&self.hex)
                .is_some_and(|p| p.id == self.partial.id);
            if owns {
                self.storage.commit(&self.hex, object.clone());
                partial.remove(&self.hex);
            }
            owns
        };
        if owns {
            self.storage.maybe_encode(&self.hex, &object);
        }
        Ok(MissFinishType::Created(size))
    }

    fn streaming_write_tag(&self) -> Option<&[u8]> {
        Some(self.write_id.as_bytes())
    }
}

impl Drop for TieredMissHandler {
    fn drop(&mut self) {
        self.storage
            .release_fill(std::mem::take(&mut self.reserved));
        if !self.finished {
            self.partial.fail();
            let mut partial = self.storage.partial.write();
            if partial
                .get(&self.hex)
                .is_some_and(|p| p.id == self.partial.id)
            {
                partial.remove(&self.hex);
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_encoding;
