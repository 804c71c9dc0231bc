//! SIGHUP: re-read the configuration file and swap the sites, trusted proxies, maintenance
//! policy and scoped admin tokens in place. Connections stay open; requests in flight finish with the old sites.
//! Listeners and cache sizes need a restart (or a zero-downtime upgrade). It also saves the
//! shield's in-process store every minute (and `crate::finish` at shutdown).

use crate::state::EdgeState;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;

pub struct Reloader {
    pub state: Arc<EdgeState>,
}

/// How often the shield's store is saved (and at shutdown).
const SHIELD_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

impl Reloader {
    async fn save_shield(&self) {
        let state = self.state.clone();
        match tokio::task::spawn_blocking(move || state.save_shield()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => log::warn!(
                "shield: cannot save {}: {e}",
                self.state.shield_state_file.display()
            ),
            Err(e) => log::warn!("shield: the save task failed: {e}"),
        }
    }

    /// Runs a reload on the blocking pool: compiling a site's WAF rules takes a second or
    /// two, which must not hold up the requests of this runtime thread.
    async fn reload(&self) {
        let state = self.state.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || reload(&state)).await {
            log::error!("SIGHUP: the reload task failed: {e}");
        }
    }
}

/// Re-reads the configuration and swaps what may change; on any error the running
/// configuration stays and the log says why.
fn reload(state: &EdgeState) {
    let Some(path) = &state.config_path else {
        log::warn!("SIGHUP: no configuration file to reload (started with --origin)");
        return;
    };
    let config = match (state.read_config)(path) {
        Ok(c) => c,
        Err(e) => {
            log::error!("SIGHUP: keeping the running configuration: {e}");
            return;
        }
    };
    let tokens = match crate::scoped_tokens(&config) {
        Ok(t) => t,
        Err(e) => {
            log::error!("SIGHUP: keeping the running configuration: {e}");
            return;
        }
    };
    match crate::live_from(&config, &state.shield) {
        Ok(live) => {
            state.live.store(Arc::new(live));
            *state.scoped_tokens.write() = tokens;
            log::info!("SIGHUP: reloaded {}", path.display());
        }
        Err(e) => log::error!("SIGHUP: keeping the running configuration: {e}"),
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
        let mut save_every = tokio::time::interval(SHIELD_SAVE_INTERVAL);
        save_every.tick().await;
        loop {
            tokio::select! {
                _ = hup.recv() => self.reload().await,
                _ = save_every.tick() => self.save_shield().await,
                // What must survive a restart is saved by `crate::finish` once the server
                // has stopped: pingora drops this task right after the signal.
                _ = shutdown.changed() => return,
            }
        }
    }
}
