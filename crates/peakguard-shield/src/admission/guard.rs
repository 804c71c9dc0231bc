//! The admission guard: every request bound for the origin takes a ticket in its lane.

use super::{Admission, LaneRules};
use crate::guard::{Guard, RequestFacts, Verdict};
use std::time::Duration;

pub struct AdmissionGuard {
    pub admission: Admission,
    pub rules: LaneRules,
    pub timeout: Duration,
}

impl Guard for AdmissionGuard {
    fn name(&self) -> &'static str {
        "admission"
    }

    fn before_origin(&self, req: &RequestFacts<'_>) -> Verdict {
        let lane = self.rules.classify(req);
        Verdict::Wait {
            reason: lane.label().into(),
            ticket: self.admission.ticket(lane, self.timeout),
        }
    }
}
