//! The admission guard: every request bound for the origin takes a ticket in its lane. A
//! request with session cookies first asks the store whether the origin issued one.

use crate::GuardConfig;
use super::lanes::Claim;
use super::{Admission, AdmissionConfig, Lane, LaneRules};
use crate::guard::{Guard, RequestFacts, Verdict};
use crate::issued;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// In the chain when `[site.shield.admission]` is on (the WordPress profile's default).
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "admission",
    table: "admission",
    build: |b| {
        let Some(admission) = site_admission(b) else {
            return Ok(None);
        };
        let a = &AdmissionConfig::of_site(b.site);
        let adaptive = a.adaptive.then_some((a.min_limit, a.max_limit));
        admission.configure(a.limit, a.queue_size, adaptive);
        let room_on = crate::room::WaitingRoomConfig::of_site(b.site).enabled;
        Ok(Some(Arc::new(AdmissionGuard {
            admission,
            rules: LaneRules::from_config(a).with_room_pass(room_on.then(|| {
                crate::room::PassCheck {
                    keys: b.shield.room_keys.clone(),
                    site: b.site.name.clone(),
                }
            })),
            timeout: a.queue_timeout.0,
            store: b.shield.store.clone(),
        })))
    },
    check: Some(super::config::check),
};

/// The site's admission when it is on: made once, kept across reloads (a reload must not
/// forget who is at the origin); its guard reconfigures it.
pub fn site_admission(b: &crate::registry::Build<'_>) -> Option<Admission> {
    let a = AdmissionConfig::of_site(b.site);
    a.enabled.then(|| {
        b.slot(|| Admission::new(&b.site.name, a.limit, a.queue_size))
            .as_ref()
            .clone()
    })
}

pub struct AdmissionGuard {
    pub admission: Admission,
    pub rules: LaneRules,
    pub timeout: Duration,
    pub store: Arc<dyn Store>,
}

fn wait(admission: &Admission, lane: Lane, timeout: Duration, why: &str) -> Verdict {
    Verdict::Wait {
        reason: format!("{}{why}", lane.label()).into(),
        ticket: Box::new(admission.ticket(lane, timeout)),
        headers: Vec::new(),
    }
}

impl Guard for AdmissionGuard {
    fn name(&self) -> &'static str {
        "admission"
    }

    fn before_origin(&self, req: &RequestFacts<'_>) -> Verdict {
        match self.rules.classify(req) {
            Claim::Lane(lane) => wait(&self.admission, lane, self.timeout, ""),
            Claim::Session {
                cookies,
                checkout,
                pass,
            } => {
                let (store, admission, timeout) =
                    (self.store.clone(), self.admission.clone(), self.timeout);
                Verdict::Ask(Box::pin(async move {
                    let issued = issued::any_issued(store.as_ref(), &cookies)
                        .await
                        .unwrap_or_else(|e| {
                            log::warn!("admission: {e}; the session counts as unknown");
                            false
                        });
                    let lane = LaneRules::resolve(checkout, issued, pass);
                    let why = match (issued, pass) {
                        (true, _) => "",
                        (false, true) => " (let in by the waiting room)",
                        (false, false) => " (a session cookie the origin did not issue)",
                    };
                    wait(&admission, lane, timeout, why)
                }))
            }
        }
    }
}
