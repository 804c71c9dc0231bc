//! peakguard's shield: decisions about a request, with no network or file I/O of its own.
//!
//! Owns: the [`Guard`] extension point and its ordered [`GuardChain`] per site; who the
//! client is (trusted-proxy rules for `X-Forwarded-For`); the guards themselves — deny
//! lists, body sizes, the HTTPS redirect, maintenance, traffic limits per client, login
//! protection, the waiting room, origin admission (a concurrency limit with priority lanes),
//! the issued-cookie registry; the decision to accept a connection (open connections per
//! client, from counts the edge reads from the kernel); the branded pages they answer with;
//! the store behind shared counters; and the state that outlives a reload ([`Shield`]: the
//! maintenance switch, each site's admission and room, the verdict counters); the WAF guard
//! and the threads its inspections run on (the engine itself, libmodsecurity, is in
//! peakguard-waf; its incidents go to an [`waf::IncidentLog`] the edge provides).
//! Must not touch: sockets, files, the cache, pingora types; the edge acts on what the
//! shield decides.
#![forbid(unsafe_code)]

pub mod admission;
pub mod body;
pub mod chain;
pub mod client;
pub mod connections;
pub mod deny;
pub mod guard;
pub mod issued;
pub mod limits;
pub mod login;
pub mod maintenance;
pub mod pages;
pub mod redirect;
pub mod room;
pub mod store;
pub mod waf;

pub use admission::{Admission, AdmissionSnapshot, Admitted, Lane, Permit, Refused, Ticket};
pub use chain::{Decision, GuardChain, GuardRegistry, Trail};
pub use client::{ClientInfo, client_info};
pub use guard::{Guard, LocalResponse, Phase, RequestFacts, ResponseFacts, Verdict};
pub use maintenance::{MaintenanceGuard, MaintenancePolicy, MaintenanceState, MaintenanceSwitch};

use parking_lot::Mutex;
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
    /// Per site name. Bounded by the site names configured over the process's life.
    admissions: Mutex<BTreeMap<String, Admission>>,
    /// Per site name, like the admissions.
    rooms: Mutex<BTreeMap<String, Arc<room::Room>>>,
    /// The waiting room's cookie keys (the edge loads them from the key file and rotates
    /// them).
    pub room_keys: Arc<parking_lot::RwLock<room::RoomKeys>>,
    /// Open connections per client, asked by the edge's listeners at accept.
    pub accept_gate: Arc<connections::AcceptGate>,
    /// Each site's compiled WAF rule sets (rebuilt when its `[site.waf]` changes).
    wafs: Mutex<BTreeMap<String, Arc<waf::SiteWafs>>>,
    /// Each site's WAF counters (kept across reloads).
    waf_stats: Mutex<BTreeMap<String, Arc<waf::WafStats>>>,
    /// The threads inspections run on (made with the first WAF).
    waf_pool: Mutex<Option<Arc<waf::WafPool>>>,
    /// Where incidents go (the edge's WAF log).
    pub incident_log: parking_lot::RwLock<Option<Arc<dyn waf::IncidentLog>>>,
    /// Warnings already logged (each once in the process's life: CRS 3.3 in use, the
    /// WordPress plugin missing). Bounded by the sites configured.
    waf_warned: Mutex<std::collections::BTreeSet<String>>,
}

/// The parts of the configuration every site's chain shares.
pub struct Shared {
    pub maintenance_policy: MaintenancePolicy,
    pub default_retry_after: u64,
    /// Waiting-room templates by site name (read by the edge).
    pub room_templates: BTreeMap<String, Arc<str>>,
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
            admissions: Mutex::default(),
            rooms: Mutex::default(),
            room_keys: Arc::new(parking_lot::RwLock::new(room::RoomKeys {
                current: rand::random::<[u8; 32]>().to_vec(),
                previous: None,
            })),
            accept_gate: Arc::default(),
            wafs: Mutex::default(),
            waf_stats: Mutex::default(),
            waf_pool: Mutex::default(),
            incident_log: parking_lot::RwLock::new(None),
            waf_warned: Mutex::default(),
        }
    }

    /// Compiles the WAF rule sets of a site with `[site.waf]` (unless they were built from
    /// the same settings, rule set and plugins already) and makes the inspection pool; call
    /// before [`Shield::chain_for`], at start and on reload — off the async runtime: a
    /// build takes a second or two. The error names what is wrong (no CRS installed, a
    /// plugin missing, rules the engine refuses); the running rules stay as they were.
    pub fn prepare_waf(
        &self,
        site: &SiteConfig,
        settings: &peakguard_config::WafSettings,
    ) -> Result<(), String> {
        let Some(config) = site
            .waf
            .as_ref()
            .filter(|w| w.mode != peakguard_config::WafMode::Off)
        else {
            self.wafs.lock().remove(&site.name);
            return Ok(());
        };
        let plan = waf::plan(config, waf::wordpress_on(site), &settings.crs_home, None)?;
        if self
            .wafs
            .lock()
            .get(&site.name)
            .is_some_and(|w| w.built_from == plan.key)
        {
            return Ok(());
        }
        let built = waf::build(&site.name, config, plan)?;
        let s = &built.status;
        log::info!(
            target: waf::LOG_TARGET,
            "site {}: WAF on CRS {} ({}: {}){}, paranoia {}{}",
            s.site,
            s.crs,
            s.found,
            s.crs_real_dir,
            if s.plugins.is_empty() {
                String::new()
            } else {
                format!(", plugins {}", s.plugins.join(", "))
            },
            s.paranoia,
            if s.inspect_responses {
                ", responses inspected"
            } else {
                ""
            },
        );
        for warning in &s.warnings {
            if self
                .waf_warned
                .lock()
                .insert(format!("{}|{warning}", s.site))
            {
                log::warn!(target: waf::LOG_TARGET, "site {}: WAF: {warning}", s.site);
            }
        }
        self.wafs.lock().insert(site.name.clone(), Arc::new(built));
        let mut pool = self.waf_pool.lock();
        if pool.is_none() {
            *pool = Some(Arc::new(waf::WafPool::new(
                settings.workers,
                settings.queue,
            )));
        }
        Ok(())
    }

    /// The guards of one site, in the order they are asked. This is the one place a new
    /// guard is wired in.
    pub fn chain_for(&self, site: &SiteConfig, shared: &Shared) -> GuardChain {
        let mut chain = GuardChain::default();
        if let Some(deny) = deny::DenyGuard::from_config(&site.shield.deny) {
            chain.push(Arc::new(deny), &self.registry);
        }
        chain.push(
            Arc::new(body::BodySizeGuard(body::BodyLimits::from_config(
                &site.shield.body,
            ))),
            &self.registry,
        );
        if site.https_redirect {
            chain.push(Arc::new(redirect::HttpsRedirectGuard), &self.registry);
        }
        chain.push(
            Arc::new(MaintenanceGuard {
                switch: self.maintenance.clone(),
                policy: shared.maintenance_policy.clone(),
                default_retry_after: shared.default_retry_after,
            }),
            &self.registry,
        );
        if let Some(limits) =
            limits::LimitsGuard::from_config(&site.name, &site.shield.limits, self.store.clone())
        {
            chain.push(Arc::new(limits), &self.registry);
        }
        if let Some(login) =
            login::LoginGuard::from_config(&site.name, &site.shield.login, self.store.clone())
        {
            chain.push(Arc::new(login), &self.registry);
        }
        if let Some(guard) = self.waf_guard(site) {
            chain.push(Arc::new(guard), &self.registry);
        }
        let a = &site.shield.admission;
        let admission = a.enabled.then(|| self.admission_for(&site.name, a));
        let w = &site.shield.waiting_room;
        if w.enabled {
            chain.push(
                Arc::new(room::RoomGuard {
                    room: self.room_for(&site.name, w),
                    keys: self.room_keys.clone(),
                    admission: admission.clone(),
                    queue_timeout: a.queue_timeout.0,
                    sessions: issued::SessionCookies::new(&a.session_cookies),
                    template: shared.room_templates.get(&site.name).cloned(),
                }),
                &self.registry,
            );
        }
        if let Some(admission) = admission {
            chain.push(
                Arc::new(admission::AdmissionGuard {
                    admission,
                    rules: admission::LaneRules::from_config(a).with_room_pass(w.enabled.then(
                        || room::PassCheck {
                            keys: self.room_keys.clone(),
                            site: site.name.clone(),
                        },
                    )),
                    timeout: a.queue_timeout.0,
                    store: self.store.clone(),
                }),
                &self.registry,
            );
        }
        // Session cookies are remembered whatever the admission setting, so that turning it
        // on later knows the sessions already issued.
        chain.push(
            Arc::new(issued::IssuedCookiesGuard {
                store: self.store.clone(),
                names: issued::SessionCookies::new(&a.session_cookies),
            }),
            &self.registry,
        );
        chain
    }

    /// The site's WAF guard, when `[site.waf]` is on and [`Shield::prepare_waf`] built it.
    fn waf_guard(&self, site: &SiteConfig) -> Option<waf::WafGuard> {
        let config = site.waf.as_ref()?;
        if config.mode == peakguard_config::WafMode::Off {
            return None;
        }
        let Some(wafs) = self.wafs.lock().get(&site.name).cloned() else {
            log::error!(
                "site {}: its WAF was not prepared; no WAF for it",
                site.name
            );
            return None;
        };
        let pool = self.waf_pool.lock().clone()?;
        let stats = self
            .waf_stats
            .lock()
            .entry(site.name.clone())
            .or_default()
            .clone();
        Some(waf::WafGuard {
            site: site.name.clone(),
            mode: config.mode,
            on_error: config.on_error,
            threshold: config.threshold,
            outbound_threshold: config.outbound_threshold,
            inspect_responses: config.inspect_responses,
            body_limit: config.body_limit.0 as usize,
            wafs,
            pool,
            store: self.store.clone(),
            stats,
            log: self.incident_log.read().clone(),
        })
    }

    /// Which rule set each named site's WAF runs (`/status`, `peakguard waf status`).
    pub fn waf_statuses<'a>(&self, sites: impl Iterator<Item = &'a str>) -> Vec<waf::WafStatus> {
        let wafs = self.wafs.lock();
        sites
            .filter_map(|name| wafs.get(name).map(|w| w.status.clone()))
            .collect()
    }

    /// The site's admission, created once and reconfigured on reload.
    fn admission_for(&self, site: &str, c: &peakguard_config::AdmissionConfig) -> Admission {
        let adaptive = c.adaptive.then_some((c.min_limit, c.max_limit));
        let mut map = self.admissions.lock();
        let a = map
            .entry(site.to_string())
            .or_insert_with(|| Admission::new(site, c.limit, c.queue_size))
            .clone();
        a.configure(c.limit, c.queue_size, adaptive);
        a
    }

    /// The site's waiting room, created once and reconfigured on reload.
    fn room_for(
        &self,
        site: &str,
        config: &peakguard_config::WaitingRoomConfig,
    ) -> Arc<room::Room> {
        let mut map = self.rooms.lock();
        match map.get(site) {
            Some(r) => {
                r.reconfigure(config);
                r.clone()
            }
            None => {
                let r = Arc::new(room::Room::new(site, config, self.store.clone()));
                map.insert(site.to_string(), r.clone());
                r
            }
        }
    }

    pub fn rooms(&self) -> Vec<Arc<room::Room>> {
        self.rooms.lock().values().cloned().collect()
    }

    pub fn admission_snapshots(&self) -> Vec<AdmissionSnapshot> {
        self.admissions
            .lock()
            .values()
            .map(Admission::snapshot)
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
        let waf_stats: Vec<(String, Arc<waf::WafStats>)> = self
            .waf_stats
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        waf::stats::render(&waf_stats, out);
        self.accept_gate.render_metrics(out);
    }
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
