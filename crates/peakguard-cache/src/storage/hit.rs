//! Hit handlers: a complete object (seekable, zero-copy), and a partial object that is still
//! being written by the one origin fetch (readers follow the writer chunk by chunk).

use super::object::{MetaParts, StoredObject};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use pingora_cache::CacheKey;
use pingora_cache::storage::{HandleHit, Storage};
use pingora_cache::trace::SpanHandle;
use pingora_error::{Error, ErrorType, Result};
use std::any::Any;
use std::sync::Arc;
use tokio::sync::watch;

pub struct CompleteHit {
    object: Arc<StoredObject>,
    start: usize,
    end: usize,
    done: bool,
}

impl CompleteHit {
    pub fn new(object: Arc<StoredObject>) -> Self {
        let end = object.body.len();
        CompleteHit {
            object,
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
        Ok(Some(self.object.body.slice(self.start..self.end)))
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
        let len = self.object.body.len();
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
    chunks: usize,
    done: bool,
    failed: bool,
}

/// An object being written: chunks appended by the writer, followed by readers.
pub struct PartialObject {
    pub id: u64,
    pub meta: MetaParts,
    pub url: String,
    pub tags: Vec<String>,
    chunks: RwLock<Vec<Bytes>>,
    state: watch::Sender<WriteState>,
}

impl PartialObject {
    pub fn new(id: u64, meta: MetaParts, url: String, tags: Vec<String>) -> Self {
        let (state, _) = watch::channel(WriteState::default());
        PartialObject {
            id,
            meta,
            url,
            tags,
            chunks: RwLock::new(Vec::new()),
            state,
        }
    }

    pub fn push(&self, data: Bytes, eof: bool) {
        let chunks = {
            let mut c = self.chunks.write();
            if !data.is_empty() {
                c.push(data);
            }
            c.len()
        };
        self.state.send_modify(|s| {
            s.chunks = chunks;
            s.done |= eof;
        });
    }

    pub fn complete(&self) {
        self.state.send_modify(|s| s.done = true);
    }

    pub fn fail(&self) {
        self.state.send_modify(|s| s.failed = true);
    }

    /// The whole body in one buffer.
    pub fn concat(&self) -> Bytes {
        let chunks = self.chunks.read();
        if chunks.len() == 1 {
            return chunks[0].clone();
        }
        let mut out = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
        for c in chunks.iter() {
            out.extend_from_slice(c);
        }
        out.freeze()
    }
}

pub struct PartialHit {
    object: Arc<PartialObject>,
    state: watch::Receiver<WriteState>,
    next: usize,
}

impl PartialHit {
    pub fn new(object: Arc<PartialObject>) -> Self {
        let state = object.state.subscribe();
        PartialHit {
            object,
            state,
            next: 0,
        }
    }
}

#[async_trait]
impl HandleHit for PartialHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        loop {
            let state = *self.state.borrow_and_update();
            if self.next < state.chunks {
                let chunk = self.object.chunks.read()[self.next].clone();
                self.next += 1;
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
