//! Hit handlers: a complete object (seekable, zero-copy), and a partial object that is still
//! being written by the one origin fetch (readers follow the writer chunk by chunk; the
//! writer's own client is one of them).

use super::object::{MetaParts, StoredObject};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use pingora_cache::CacheKey;
use pingora_cache::storage::{HandleHit, Storage};
use pingora_cache::trace::SpanHandle;
use pingora_error::{Error, ErrorType, Result};
use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::watch;

pub struct CompleteHit {
    /// Keeps the object (and its eviction weight) while the body is sent.
    object: Arc<StoredObject>,
    /// The representation being sent (a view of one of the object's bodies).
    body: Bytes,
    start: usize,
    end: usize,
    done: bool,
}

impl CompleteHit {
    pub fn new(object: Arc<StoredObject>, body: Bytes) -> Self {
        let end = body.len();
        CompleteHit {
            object,
            body,
            start: 0,
            end,
            done: false,
        }
    }
}

#[async_trait]
impl HandleHit for CompleteHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        if self.start == 0 && self.end == self.body.len() {
            return Ok(Some(self.body.clone()));
        }
        Ok(Some(self.body.slice(self.start..self.end)))
    }

    async fn finish(
        self: Box<Self>,
        _s: &'static (dyn Storage + Sync),
        _k: &CacheKey,
        _t: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let len = self.body.len();
        if start >= len {
            return Error::e_explain(
                ErrorType::InternalError,
                format!("seek start {start} beyond body length {len}"),
            );
        }
        self.start = start;
        self.end = end.map_or(len, |e| e.min(len));
        self.done = false;
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.object.weight()
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

#[derive(Clone, Copy, Default)]
struct WriteState {
    /// Chunks pushed so far (an index past the last one).
    chunks: usize,
    done: bool,
    failed: bool,
}

/// The chunks still held: `chunks[i]` is chunk number `first + i`.
#[derive(Default)]
struct Retained {
    first: usize,
    chunks: VecDeque<Bytes>,
    bytes: usize,
}

/// An object being written: chunks appended by the writer, followed by readers. Normally every
/// chunk is kept (the object is stored when the write finishes). Once the object turns out too
/// large to store, it switches to pass-through: a chunk is dropped as soon as every reader has
/// read it, so memory stays bounded while the clients already following it still get the
/// whole body. A reader that falls more than `max_lag` bytes behind is failed.
pub struct PartialObject {
    pub id: u64,
    pub meta: MetaParts,
    pub url: String,
    pub tags: Vec<String>,
    retained: RwLock<Retained>,
    state: watch::Sender<WriteState>,
    readers: Mutex<Vec<Weak<AtomicUsize>>>,
    pass_through: AtomicBool,
    max_lag: usize,
}

impl PartialObject {
    pub fn new(id: u64, meta: MetaParts, url: String, tags: Vec<String>, max_lag: usize) -> Self {
        let (state, _) = watch::channel(WriteState::default());
        PartialObject {
            id,
            meta,
            url,
            tags,
            retained: RwLock::new(Retained::default()),
            state,
            readers: Mutex::new(Vec::new()),
            pass_through: AtomicBool::new(false),
            max_lag,
        }
    }

    pub fn push(&self, data: Bytes, eof: bool) {
        let chunks = {
            let mut r = self.retained.write();
            if !data.is_empty() {
                r.bytes += data.len();
                r.chunks.push_back(data);
            }
            if self.pass_through.load(Ordering::Acquire) {
                self.drop_consumed(&mut r);
            }
            r.first + r.chunks.len()
        };
        self.state.send_modify(|s| {
            s.chunks = chunks;
            s.done |= eof;
        });
    }

    /// Stop retaining the body: keep only what a live reader has not read yet.
    pub fn pass_through(&self) {
        self.pass_through.store(true, Ordering::Release);
        let mut r = self.retained.write();
        self.drop_consumed(&mut r);
    }

    fn drop_consumed(&self, r: &mut Retained) {
        let mut readers = self.readers.lock();
        readers.retain(|w| w.strong_count() > 0);
        let positions: Vec<usize> = readers
            .iter()
            .filter_map(|w| w.upgrade())
            .map(|p| p.load(Ordering::Acquire))
            .collect();
        let keep_from = positions
            .iter()
            .copied()
            .min()
            .unwrap_or(r.first + r.chunks.len());
        while r.first < keep_from {
            let Some(c) = r.chunks.pop_front() else { break };
            r.bytes -= c.len();
            r.first += 1;
        }
        if r.bytes > self.max_lag {
            // The slowest reader is too far behind: fail the lagging readers, free the memory.
            let newest = r.first + r.chunks.len();
            for p in readers.iter().filter_map(|w| w.upgrade()) {
                if p.load(Ordering::Acquire) < newest.saturating_sub(1) {
                    p.store(usize::MAX, Ordering::Release);
                }
            }
            r.first = newest;
            r.chunks.clear();
            r.bytes = 0;
        }
    }

    pub fn complete(&self) {
        self.state.send_modify(|s| s.done = true);
    }

    pub fn fail(&self) {
        self.state.send_modify(|s| s.failed = true);
    }

    /// The whole body in one buffer (only meaningful while every chunk is retained).
    pub fn concat(&self) -> Bytes {
        let r = self.retained.read();
        if r.chunks.len() == 1 {
            return r.chunks[0].clone();
        }
        let mut out = BytesMut::with_capacity(r.bytes);
        for c in r.chunks.iter() {
            out.extend_from_slice(c);
        }
        out.freeze()
    }

    fn chunk(&self, index: usize) -> Option<Bytes> {
        let r = self.retained.read();
        index
            .checked_sub(r.first)
            .and_then(|i| r.chunks.get(i))
            .cloned()
    }
}

pub struct PartialHit {
    object: Arc<PartialObject>,
    state: watch::Receiver<WriteState>,
    /// The next chunk to read, shared with the object so it knows what may be dropped;
    /// `usize::MAX` when the object gave up on this reader.
    next: Arc<AtomicUsize>,
}

impl PartialHit {
    pub fn new(object: Arc<PartialObject>) -> Self {
        let state = object.state.subscribe();
        let first = object.retained.read().first;
        let next = Arc::new(AtomicUsize::new(first));
        object.readers.lock().push(Arc::downgrade(&next));
        PartialHit {
            object,
            state,
            next,
        }
    }
}

#[async_trait]
impl HandleHit for PartialHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        loop {
            let state = *self.state.borrow_and_update();
            let next = self.next.load(Ordering::Acquire);
            if next == usize::MAX {
                return Error::e_explain(
                    ErrorType::InternalError,
                    "reader fell too far behind a pass-through response",
                );
            }
            if next < state.chunks {
                let Some(chunk) = self.object.chunk(next) else {
                    return Error::e_explain(ErrorType::InternalError, "chunk no longer retained");
                };
                self.next.store(next + 1, Ordering::Release);
                return Ok(Some(chunk));
            }
            if state.failed {
                return Error::e_explain(
                    ErrorType::InternalError,
                    "the origin fetch this response followed failed",
                );
            }
            if state.done {
                return Ok(None);
            }
            if self.state.changed().await.is_err() {
                return Error::e_explain(ErrorType::InternalError, "cache writer went away");
            }
        }
    }

    async fn finish(
        self: Box<Self>,
        _s: &'static (dyn Storage + Sync),
        _k: &CacheKey,
        _t: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn should_count_access(&self) -> bool {
        false
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}
