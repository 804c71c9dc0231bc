//! peakguard's shield: decisions about a request, with no network or file I/O of its own.
//!
//! Owns: the [`Guard`] extension point and its ordered [`GuardChain`] per site; who the
//! client is (trusted-proxy rules for `X-Forwarded-For`); the guards themselves — deny
//! lists, body sizes, the HTTPS redirect, maintenance, traffic limits per client, login
//! protection, scanner probes, the waiting room, origin admission (a concurrency limit with
//! priority lanes), the issued-cookie registry; the decision to accept a connection (open connections per
//! client, from counts the edge reads from the kernel); the branded pages they answer with;
//! the store behind shared counters; and the state that outlives a reload ([`Shield`]: the
//! maintenance switch, each site's admission and room, the verdict counters); the WAF guard
//! and the threads its inspections run on (the engine itself, libmodsecurity, is in
//! peakguard-waf; its incidents go to an [`waf::IncidentLog`] the edge provides).
//! Must not touch: sockets, files, the cache, pingora types; the edge acts on what the
//! shield decides.
#![forbid(unsafe_code)]

pub mod chain;
pub mod client;
pub mod connections;
pub mod guard;
pub mod pages;
pub mod registry;
pub mod store;

/// Declares each guard's module and [`GUARDS`], the order a request meets them in.
macro_rules! guards {
    ($($guard:ident),* $(,)?) => {
        $(pub mod $guard;)*
        /// The guards, in the order a request meets them (each module's `GUARD`): cheap
        /// refusals first (deny, body size, the redirect, maintenance, budgets, login,
        /// scanners), then the WAF, the waiting room and origin admission (which makes the
        /// request wait: nothing after it may refuse), then the issued-cookie registry
        /// (which only remembers).
        pub const GUARDS: &[registry::GuardEntry] = &[$($guard::GUARD),*];
    };
}

// A new guard: its file in this folder, and its name on a line of this list.
guards![
    deny,
    body,
    redirect,
    maintenance,
    limits,
    login,
    scanners,
    waf,
    room,
    admission,
    issued,
];

pub use admission::{
    Admission, AdmissionConfig, AdmissionSnapshot, Admitted, Lane, Permit, Refused, Ticket,
};
pub use chain::{Decision, GuardChain, GuardRegistry, Trail};
pub use client::{ClientInfo, client_info};
pub use guard::{Guard, LocalResponse, Phase, RequestFacts, ResponseFacts, Verdict};
pub use login::LoginConfig;
pub use maintenance::{MaintenanceGuard, MaintenancePolicy, MaintenanceState, MaintenanceSwitch};
pub use registry::{Build, GuardConfig, GuardEntry, config_tables};
pub use room::WaitingRoomConfig;

use peakguard_config::SiteConfig;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The shield's state that outlives reloads: chains are rebuilt from each configuration,
/// these are kept (a reload must not forget who is at the origin or reset the counters).
pub struct Shield {
    pub registry: GuardRegistry,
    pub maintenance: MaintenanceSwitch,
    /// Counters and held keys the guards share (budgets, lockouts, issued sessions).
    pub store: Arc<dyn store::Store>,
    /// The same store when it is the in-process one: the edge saves and restores it across
    /// restarts.
    pub memory: Option<Arc<store::MemoryStore>>,
    /// What each guard keeps per site across reloads (admissions, rooms, compiled WAF rules
    /// and counters), and per process (the WAF's threads).
    pub slots: registry::Slots,
    /// The waiting room's cookie keys (the edge loads them from the key file and rotates
    /// them).
    pub room_keys: Arc<parking_lot::RwLock<room::RoomKeys>>,
    /// Open connections per client, asked by the edge's listeners at accept.
    pub accept_gate: Arc<connections::AcceptGate>,
    /// Where WAF incidents go (the edge's WAF log).
    pub incident_log: parking_lot::RwLock<Option<Arc<dyn waf::IncidentLog>>>,
    /// Where what a guard does by itself is journaled (a lockout); set by the edge before
    /// the chains are built.
    pub journal: parking_lot::RwLock<Option<peakguard_journal::Recorder>>,
}

/// The parts of the configuration every site's chain shares.
pub struct Shared {
    pub maintenance_policy: MaintenancePolicy,
    pub default_retry_after: u64,
    /// Waiting-room templates by site name (read by the edge).
    pub room_templates: BTreeMap<String, Arc<str>>,
    /// `[waf]`: where CRS releases are installed, the inspection pool's size.
    pub waf: peakguard_config::WafSettings,
}

/// A guard that could not be made for a site (its WAF rules do not compile, say).
#[derive(Debug, thiserror::Error)]
#[error("site {site:?}: the {guard} guard cannot start: {message}")]
pub struct ChainError {
    pub site: String,
    pub guard: &'static str,
    pub message: String,
}

impl Shield {
    /// The embedded default: an in-process store of `store_entries` entries.
    pub fn new(maintenance: MaintenanceState, store_entries: usize) -> Self {
        let memory = Arc::new(store::MemoryStore::new(store_entries));
        Shield {
            registry: GuardRegistry::default(),
            maintenance: Arc::new(parking_lot::RwLock::new(maintenance)),
            store: memory.clone(),
            memory: Some(memory),
            slots: registry::Slots::default(),
            room_keys: Arc::new(parking_lot::RwLock::new(room::RoomKeys {
                current: rand::random::<[u8; 32]>().to_vec(),
                previous: None,
            })),
            accept_gate: Arc::default(),
            incident_log: parking_lot::RwLock::new(None),
            journal: parking_lot::RwLock::new(None),
        }
    }

    /// The guards of one site, in the order of [`GUARDS`]. Call it off the async
    /// runtime, at start and on reload: the WAF compiles its rules here (a second or two).
    pub fn chain_for(&self, site: &SiteConfig, shared: &Shared) -> Result<GuardChain, ChainError> {
        let guards =
            registry::build_all(self, site, shared).map_err(|(guard, message)| ChainError {
                site: site.name.clone(),
                guard,
                message,
            })?;
        let mut chain = GuardChain::default();
        for guard in guards {
            chain.push(guard, &self.registry);
        }
        Ok(chain)
    }

    /// Which rule set each named site's WAF runs (`/status`, `peakguard waf status`).
    pub fn waf_statuses<'a>(&self, sites: impl Iterator<Item = &'a str>) -> Vec<waf::WafStatus> {
        sites
            .filter_map(|name| {
                let compiled = self.slots.get::<waf::CompiledWafs>(name)?;
                compiled.0.lock().as_ref().map(|w| w.status.clone())
            })
            .collect()
    }

    pub fn rooms(&self) -> Vec<Arc<room::Room>> {
        self.slots
            .all::<room::Room>()
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    pub fn admission_snapshots(&self) -> Vec<AdmissionSnapshot> {
        self.slots
            .all::<Admission>()
            .iter()
            .map(|(_, a)| a.snapshot())
            .collect()
    }

    /// Every waiting room's state (a room whose store cannot answer is left out).
    pub async fn room_statuses(&self) -> Vec<room::RoomStatus> {
        let mut out = Vec::new();
        for r in self.rooms() {
            match r.status().await {
                Ok(s) => out.push(s),
                Err(e) => log::warn!("waiting room {}: {e}", r.site()),
            }
        }
        out
    }

    /// The shield's part of `/metrics`.
    pub async fn render_metrics(&self, out: &mut String) {
        self.registry.render(out);
        admission::render_metrics(&self.admission_snapshots(), out);
        room::render_metrics(&self.room_statuses().await, out);
        waf::stats::render(&self.slots.all::<waf::WafStats>(), out);
        self.accept_gate.render_metrics(out);
    }
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
