//! SIGHUP: re-read the configuration file and swap the sites, trusted proxies and maintenance
//! policy in place. Connections stay open; requests in flight finish with the old sites.
//! Listeners and cache sizes need a restart (or a zero-downtime upgrade). On shutdown it
//! flushes the disk tier's write queue.

use crate::state::EdgeState;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;

pub struct Reloader {
    pub state: Arc<EdgeState>,
}

impl Reloader {
    fn reload(&self) {
        let Some(path) = &self.state.config_path else {
            log::warn!("SIGHUP: no configuration file to reload (started with --origin)");
            return;
        };
        let config = match peakguard_config::load(path) {
            Ok(c) => c,
            Err(e) => {
                log::error!("SIGHUP: keeping the running configuration: {e}");
                return;
            }
        };
        match crate::live_from(&config, &self.state.shield) {
            Ok(live) => {
                self.state.live.store(Arc::new(live));
                log::info!("SIGHUP: reloaded {}", path.display());
            }
            Err(e) => log::error!("SIGHUP: keeping the running configuration: {e}"),
        }
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            log::error!("cannot listen for SIGHUP; reload is unavailable");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => self.reload(),
                _ = shutdown.changed() => {
                    // Queued disk-cache writes reach the disk before the process exits, so a
                    // restart finds every page it had.
                    let storage = self.state.cache.storage;
                    let _ = tokio::task::spawn_blocking(move || storage.flush()).await;
                    return;
                }
            }
        }
    }
}
