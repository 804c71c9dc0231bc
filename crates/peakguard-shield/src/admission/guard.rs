//! The admission guard: every request bound for the origin takes a ticket in its lane. A
//! request with session cookies first asks the store whether the origin issued one.

use super::lanes::Claim;
use super::{Admission, Lane, LaneRules};
use crate::guard::{Guard, RequestFacts, Verdict};
use crate::issued;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

pub struct AdmissionGuard {
    pub admission: Admission,
    pub rules: LaneRules,
    pub timeout: Duration,
    pub store: Arc<dyn Store>,
}

fn wait(admission: &Admission, lane: Lane, timeout: Duration, why: &str) -> Verdict {
    Verdict::Wait {
        reason: format!("{}{why}", lane.label()).into(),
        ticket: admission.ticket(lane, timeout),
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
