//! How a site's WAF guard is made: its rule sets compiled (unless they were built from the
//! same settings, rule set and plugins already), the pool made with the first WAF, what it
//! runs logged (and warnings given once in the process's life).

use super::{LOG_TARGET, SiteWafs, WafGuard, WafPool, WafStats, build, plan, wordpress_on};
use crate::guard::Guard;
use crate::registry::{Build, GuardEntry};
use parking_lot::Mutex;
use peakguard_config::WafMode;
use std::collections::BTreeSet;
use std::sync::Arc;

/// In the chain when `[site.waf]` is on. Building compiles the rules (a second or two):
/// the error names what is wrong (no CRS installed, a plugin missing, rules the engine
/// refuses), and the running rules stay as they were.
pub const GUARD: GuardEntry = GuardEntry {
    name: "waf",
    table: "waf",
    build: build_guard,
    check: None,
};

/// The site's compiled rule sets (kept across reloads; `None` while its WAF is off).
#[derive(Default)]
pub struct CompiledWafs(pub Mutex<Option<Arc<SiteWafs>>>);

/// Warnings already logged (each once in the process's life: CRS 3.3 in use, the WordPress
/// plugin missing). Bounded by the sites configured.
#[derive(Default)]
struct Warned(Mutex<BTreeSet<String>>);

fn build_guard(b: &Build<'_>) -> Result<Option<Arc<dyn Guard>>, String> {
    let site = b.site;
    let Some(config) = site.waf.as_ref().filter(|w| w.mode != WafMode::Off) else {
        if let Some(compiled) = b.shield.slots.get::<CompiledWafs>(&site.name) {
            *compiled.0.lock() = None;
        }
        return Ok(None);
    };
    let settings = &b.shared.waf;
    let compiled = b.slot(CompiledWafs::default);
    let plan = plan(config, wordpress_on(site), &settings.crs_home, None)?;
    let current = compiled.0.lock().clone();
    let wafs = match current {
        Some(w) if w.built_from == plan.key => w,
        _ => {
            let built = Arc::new(build(&site.name, config, plan)?);
            announce(b, &built);
            *compiled.0.lock() = Some(built.clone());
            built
        }
    };
    let pool = b.process_slot(|| WafPool::new(settings.workers, settings.queue));
    Ok(Some(Arc::new(WafGuard {
        site: site.name.clone(),
        mode: config.mode,
        on_error: config.on_error,
        threshold: config.threshold,
        outbound_threshold: config.outbound_threshold,
        inspect_responses: config.inspect_responses,
        body_limit: config.body_limit.0 as usize,
        wafs,
        pool,
        store: b.shield.store.clone(),
        stats: b.slot(WafStats::default),
        log: b.shield.incident_log.read().clone(),
    })))
}

/// Logs which rule set the site now runs, and its warnings once.
fn announce(b: &Build<'_>, built: &SiteWafs) {
    let s = &built.status;
    log::info!(
        target: LOG_TARGET,
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
    let warned = b.process_slot(Warned::default);
    for warning in &s.warnings {
        if warned.0.lock().insert(format!("{}|{warning}", s.site)) {
            log::warn!(target: LOG_TARGET, "site {}: WAF: {warning}", s.site);
        }
    }
}
