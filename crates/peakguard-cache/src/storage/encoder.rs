//! Background encoders: a small pool of OS threads that make the gzip and brotli
//! representations of stored objects (or the identity one of a body the origin sent
//! compressed), so a hit only ever sends bytes. The queue is bounded: when it is full the
//! job is dropped (counted) and the object stays as it is; its next hit queues it again.

use super::TieredStorage;
use super::object::{Representation, StoredObject};
use crate::encoding::{Coding, CompressionPolicy, decode, encode};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Jobs waiting beyond the ones being encoded.
const QUEUE: usize = 1024;

pub(super) struct EncodeJob {
    pub hex: String,
    pub object: Arc<StoredObject>,
}

/// Starts `workers` encoder threads for `storage`; returns the queue's sending end.
pub(super) fn start(
    storage: &'static TieredStorage,
    workers: usize,
) -> std::io::Result<SyncSender<EncodeJob>> {
    let (tx, rx) = sync_channel::<EncodeJob>(QUEUE);
    let rx = Arc::new(parking_lot::Mutex::new(rx));
    for i in 0..workers.max(1) {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("peakguard-encoder-{i}"))
            .spawn(move || run(storage, &rx))?;
    }
    Ok(tx)
}

fn run(storage: &'static TieredStorage, rx: &parking_lot::Mutex<Receiver<EncodeJob>>) {
    loop {
        // One worker waits on the queue at a time; the others wait for the lock.
        let job = match rx.lock().recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let started = std::time::Instant::now();
        let encoded = representations(
            &job.object,
            &storage.settings.compression,
            storage.settings.max_object_bytes,
        );
        storage.stats.encode_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        match encoded {
            Ok(encoded) => storage.attach_encodings(&job.hex, &job.object, encoded),
            Err(e) => {
                storage.stats.encode_failed.fetch_add(1, Ordering::Relaxed);
                log::warn!("cache: cannot encode {}: {e}", job.object.url);
            }
        }
    }
}

/// Tries to queue an encoding of `object`; false when the queue was full.
pub(super) fn submit(tx: &SyncSender<EncodeJob>, hex: &str, object: &Arc<StoredObject>) -> bool {
    let job = EncodeJob {
        hex: hex.to_string(),
        object: object.clone(),
    };
    match tx.try_send(job) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
    }
}

/// The other codings of an object's body. A compressed coding that does not come out at
/// least 5 % smaller than identity is not kept (served identity, it costs nothing).
pub fn representations(
    object: &StoredObject,
    policy: &CompressionPolicy,
    max_decoded: usize,
) -> std::io::Result<Vec<Representation>> {
    let base = object.base_coding();
    let header = &object.meta.header;
    let identity: Bytes = match base {
        Coding::Identity => object.body.clone(),
        Coding::Gzip | Coding::Brotli => Bytes::from(decode(base, &object.body, max_decoded)?),
        Coding::Other => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    if base != Coding::Identity {
        out.push(Representation::new(
            header,
            Coding::Identity,
            identity.clone(),
        ));
    }
    for coding in [Coding::Brotli, Coding::Gzip] {
        if coding == base {
            continue;
        }
        let body = encode(coding, &identity, policy.level(coding))?;
        if body.len() * 100 <= identity.len() * 95 {
            out.push(Representation::new(header, coding, Bytes::from(body)));
        }
    }
    Ok(out)
}
