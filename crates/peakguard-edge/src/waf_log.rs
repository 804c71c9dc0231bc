//! The WAF log: one JSON line per incident (incident id, site, client, rules, score, the
//! argument's name — never a value), written by one thread behind a bounded queue like the
//! access log; a full queue drops the line (counted). The file is created 0600: it says who
//! tried what. `peakguard waf explain ID` reads it.

use peakguard_shield::waf::{Incident, IncidentLog};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};

pub struct WafLog {
    tx: SyncSender<String>,
    pub dropped: AtomicU64,
}

impl WafLog {
    pub fn open(path: &std::path::Path) -> std::io::Result<WafLog> {
        peakguard_config::private_fs::ensure_private_parent(path)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let (tx, rx) = sync_channel::<String>(8192);
        std::thread::Builder::new()
            .name("peakguard-waf-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                while let Ok(line) = rx.recv() {
                    let _ = out.write_all(line.as_bytes());
                    while let Ok(more) = rx.try_recv() {
                        let _ = out.write_all(more.as_bytes());
                    }
                    let _ = out.flush();
                }
            })?;
        Ok(WafLog {
            tx,
            dropped: AtomicU64::new(0),
        })
    }
}

impl IncidentLog for WafLog {
    fn record(&self, incident: Incident) {
        let mut line = serde_json::to_string(&incident).unwrap_or_default();
        line.push('\n');
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
