//! What the proxy, the admin API and the reload task share: the cache, the sites with their
//! guard chains (swapped on reload), the shield's lasting state (maintenance switch, origin
//! admission, verdict counters), metrics and the access log.

use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::sites::SiteTable;
use arc_swap::ArcSwap;
use ipnet::IpNet;
use peakguard_cache::CacheEngine;
use peakguard_shield::{MaintenanceState, Shield};
use std::path::PathBuf;
use std::sync::Arc;

/// The parts of the configuration that a reload may change.
pub struct Live {
    pub sites: SiteTable,
    /// `[[campaign]]`, read by `/stats?campaign=NAME`.
    pub campaigns: Vec<peakguard_stats::campaign::Campaign>,
    pub trusted_proxies: Vec<IpNet>,
    pub clients: ClientLimits,
}

/// What a client's request may look like before a site is even chosen.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Each read of a body, and the wait for the next request on a kept-alive connection.
    pub timeout: std::time::Duration,
}

pub struct EdgeState {
    pub cache: &'static CacheEngine,
    pub live: ArcSwap<Live>,
    pub shield: Shield,
    pub maintenance_file: PathBuf,
    /// Where the shield's in-process store is saved across restarts.
    pub shield_state_file: PathBuf,
    /// The waiting room's cookie keys.
    pub room_key_file: PathBuf,
    pub metrics: Metrics,
    pub access_log: Option<AccessLog>,
    pub admin_token: String,
    /// `[[admin.tokens]]`, resolved: (name, token, permissions). Replaced by a SIGHUP reload
    /// (a token added for the WordPress plugin works without a restart).
    pub scoped_tokens: parking_lot::RwLock<Vec<crate::ScopedTokenValue>>,
    pub config_path: Option<PathBuf>,
    /// Reads `config_path` on SIGHUP.
    pub read_config: crate::ConfigReader,
    pub started: std::time::Instant,
    /// Endpoints, metrics and status served for other parts (the backup daemon).
    pub extensions: Vec<Arc<dyn crate::admin::AdminExtension>>,
    /// Where the admin API's interventions are appended.
    pub journal: peakguard_journal::Journal,
    /// Per-request statistics (`[stats]`; `None` when off).
    pub stats: Option<peakguard_stats::Stats>,
}

impl EdgeState {
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Sets maintenance mode and writes it to the state file (so it survives a restart).
    pub fn set_maintenance(&self, state: MaintenanceState) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&state).map_err(std::io::Error::other)?;
        peakguard_config::private_fs::write_private(&self.maintenance_file, text.as_bytes())
            .map_err(std::io::Error::other)?;
        *self.shield.maintenance.write() = state;
        Ok(())
    }

    /// Saves the shield's in-process store (lockouts, budgets, issued sessions), 0600, by
    /// an atomic rename. Blocking: call it off the runtime.
    pub fn save_shield(&self) -> std::io::Result<usize> {
        let Some(memory) = &self.shield.memory else {
            return Ok(0);
        };
        let saved = memory.save();
        let text = serde_json::to_vec(&saved).map_err(std::io::Error::other)?;
        peakguard_config::private_fs::write_private(&self.shield_state_file, &text)
            .map_err(std::io::Error::other)?;
        Ok(saved.len())
    }

    /// Puts back what [`EdgeState::save_shield`] saved (nothing when there is no file; a
    /// damaged file is reported and ignored).
    pub fn restore_shield(&self) {
        let Some(memory) = &self.shield.memory else {
            return;
        };
        let path = &self.shield_state_file;
        let Ok(bytes) = std::fs::read(path) else {
            return;
        };
        match serde_json::from_slice(&bytes) {
            Ok(saved) => {
                let n = memory.restore(saved);
                log::info!("shield: restored {n} entries from {}", path.display());
            }
            Err(e) => log::warn!(
                "shield: ignoring {} ({e}); lockouts and known sessions start empty",
                path.display()
            ),
        }
    }

    /// Reads the maintenance flag left by a previous run (off when there is none).
    pub fn load_maintenance(path: &std::path::Path) -> MaintenanceState {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
}
