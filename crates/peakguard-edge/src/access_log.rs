//! The JSON-lines access log, written by one thread behind a bounded queue: a slow disk drops
//! log lines (counted) instead of slowing requests.

use serde::Serialize;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

#[derive(Serialize)]
pub struct AccessRecord<'a> {
    pub time: String,
    pub client: String,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub cache: &'a str,
    pub bytes: u64,
    pub total_ms: f64,
    pub origin_ms: Option<f64>,
    pub site: &'a str,
    /// Which shield guards acted on the request, and why (`"maintenance: on"`); absent
    /// when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<&'a str>,
}

pub struct AccessLog {
    tx: SyncSender<String>,
    pub dropped: AtomicU64,
}

impl AccessLog {
    /// `target`: a file path (appended) or `-` for standard output.
    pub fn open(target: &str) -> std::io::Result<Self> {
        let mut out: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(target)?,
            )
        };
        let (tx, rx) = sync_channel::<String>(65_536);
        std::thread::Builder::new()
            .name("peakguard-access-log".into())
            .spawn(move || {
                let mut buf = std::io::BufWriter::new(&mut out);
                while let Ok(line) = rx.recv() {
                    let _ = buf.write_all(line.as_bytes());
                    while let Ok(more) = rx.try_recv() {
                        let _ = buf.write_all(more.as_bytes());
                    }
                    let _ = buf.flush();
                }
            })?;
        Ok(AccessLog {
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    pub fn write(&self, record: &AccessRecord<'_>) {
        let Ok(mut line) = serde_json::to_string(record) else {
            return;
        };
        line.push('\n');
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
