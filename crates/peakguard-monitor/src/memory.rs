//! What a probe remembers between its runs: the edge's counters at the previous run (the
//! window the edge probe measures), and when each pending WordPress update was first seen
//! (kept in a 0600 file beside the monitor's state, so a restart does not reset the delay).
//! Bounded: at most [`MAX_REMEMBERED`] updates; the oldest are forgotten first.

use crate::sources::EdgeCounters;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const MAX_REMEMBERED: usize = 1000;

#[derive(Default)]
pub struct Memory {
    pub(crate) previous_edge: Option<EdgeCounters>,
    first_seen: Option<BTreeMap<String, u64>>,
    file: Option<PathBuf>,
}

#[derive(Default, Serialize, Deserialize)]
struct Saved {
    first_seen: BTreeMap<String, u64>,
}

impl Memory {
    /// A memory kept in `file` (read at the first use).
    pub fn kept_in(file: PathBuf) -> Memory {
        Memory {
            file: Some(file),
            ..Memory::default()
        }
    }

    /// Ages (seconds) of the pending `keys`; new ones start now, gone ones are forgotten.
    pub(crate) fn first_seen(
        &mut self,
        probe: &str,
        keys: impl Iterator<Item = String>,
        now: u64,
    ) -> BTreeMap<String, u64> {
        let file = self.file.clone();
        let seen = self.first_seen.get_or_insert_with(|| {
            file.as_deref()
                .and_then(|f| peakguard_config::private_fs::read_private(f).ok().flatten())
                .and_then(|t| serde_json::from_str::<Saved>(&t).ok())
                .map(|s| s.first_seen)
                .unwrap_or_default()
        });
        let keys: Vec<String> = keys.collect();
        let before = seen.clone();
        seen.retain(|k, _| keys.contains(k));
        for k in &keys {
            seen.entry(k.clone()).or_insert(now);
        }
        while seen.len() > MAX_REMEMBERED {
            let oldest = seen.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => seen.remove(&k),
                None => break,
            };
        }
        if *seen != before
            && let Some(file) = &self.file
        {
            let text = serde_json::to_string(&Saved {
                first_seen: seen.clone(),
            })
            .unwrap_or_default();
            let file = file.clone();
            let probe = probe.to_string();
            // Small and rare (when the pending set changes); off the runtime's threads.
            tokio::task::spawn_blocking(move || {
                if let Err(e) =
                    peakguard_config::private_fs::ensure_private_parent(&file).and_then(|()| {
                        peakguard_config::private_fs::write_private(&file, text.as_bytes())
                    })
                {
                    log::warn!(
                        "probe {probe}: cannot keep what it saw in {}: {e}",
                        file.display()
                    );
                }
            });
        }
        seen.iter()
            .map(|(k, t)| (k.clone(), now.saturating_sub(*t)))
            .collect()
    }
}
