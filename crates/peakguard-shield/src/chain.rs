//! An ordered list of guards and what it decided. Each guard's verdicts are counted in one
//! labelled counter (`peakguard_guard_verdicts_total{guard,verdict}`); the guards that acted
//! on a request are kept in a [`Trail`] for its access-log line.

use crate::guard::{Guard, LocalResponse, Phase, RequestFacts, ResponseFacts, Verdict};
use parking_lot::Mutex;
use peakguard_prometheus::{Exposition, Kind};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const VERDICTS: [&str; 5] = ["pass", "respond", "wait", "dry_run", "note"];

/// One guard's verdict counts.
#[derive(Default)]
pub struct GuardCounters {
    counts: [AtomicU64; VERDICTS.len()],
}

impl GuardCounters {
    /// A ticket that got its slot at once counts as a pass: nothing waited.
    fn count(&self, verdict: &Verdict) {
        let i = match verdict {
            Verdict::Pass => 0,
            Verdict::Wait { ticket, .. } if ticket.immediate() => 0,
            Verdict::Respond { .. } => 1,
            Verdict::Wait { .. } => 2,
            Verdict::DryRun { .. } => 3,
            Verdict::Note { .. } => 4,
            Verdict::Ask(_) => 0,
        };
        self.counts[i].fetch_add(1, Relaxed);
    }

    pub fn get(&self, verdict: &str) -> u64 {
        VERDICTS
            .iter()
            .position(|v| *v == verdict)
            .map_or(0, |i| self.counts[i].load(Relaxed))
    }
}

/// Counters by guard name. They outlive the chains (a reload builds new chains and keeps
/// counting in the same counters). Bounded: one entry per guard kind.
#[derive(Default)]
pub struct GuardRegistry {
    counters: Mutex<BTreeMap<&'static str, Arc<GuardCounters>>>,
}

impl GuardRegistry {
    pub fn counters(&self, guard: &'static str) -> Arc<GuardCounters> {
        self.counters.lock().entry(guard).or_default().clone()
    }

    /// The exposition text of `peakguard_guard_verdicts_total`.
    pub fn render(&self, out: &mut String) {
        let mut e = Exposition::new(out);
        let mut family = e.family(
            "peakguard_guard_verdicts_total",
            Kind::Counter,
            "Verdicts of each shield guard (pass, respond, wait, dry_run, note).",
        );
        for (name, c) in self.counters.lock().iter() {
            for (i, verdict) in VERDICTS.iter().enumerate() {
                family.sample(
                    &[("guard", name), ("verdict", verdict)],
                    c.counts[i].load(Relaxed),
                );
            }
        }
    }
}

/// Which guards acted on a request, and why (`"maintenance: on"`), for the access log; and
/// the fields guards asked to add to its response. Allocates only when a guard acts.
#[derive(Debug, Default, Clone)]
pub struct Trail {
    text: Option<String>,
    /// Fields to add to the response (a waiting-room pass's `Set-Cookie`).
    pub headers: Vec<(&'static str, String)>,
}

impl Trail {
    fn push(&mut self, guard: &str, reason: &str) {
        let s = self.text.get_or_insert_with(String::new);
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(guard);
        if !reason.is_empty() {
            s.push_str(": ");
            s.push_str(reason);
        }
    }

    /// Adds what happened after a guard's verdict (a wait's outcome).
    pub fn note(&mut self, guard: &str, what: &str) {
        self.push(guard, what);
    }

    pub fn as_str(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

/// What the chain decided for one phase.
pub enum Decision {
    Pass,
    Respond {
        guard: &'static str,
        response: LocalResponse,
    },
    Wait {
        guard: &'static str,
        ticket: Box<dyn crate::guard::Turn>,
    },
}

/// The ordered guards of one site. Built from the configuration, swapped whole on reload.
#[derive(Default, Clone)]
pub struct GuardChain {
    guards: Vec<(Arc<dyn Guard>, Arc<GuardCounters>)>,
}

impl std::fmt::Debug for GuardChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl GuardChain {
    pub fn push(&mut self, guard: Arc<dyn Guard>, registry: &GuardRegistry) {
        let counters = registry.counters(guard.name());
        self.guards.push((guard, counters));
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.guards.iter().map(|(g, _)| g.name()).collect()
    }

    /// Whether a guard must see the request's body before the origin phase.
    pub fn wants_body(&self, req: &RequestFacts<'_>) -> bool {
        self.guards.iter().any(|(g, _)| g.wants_body(req))
    }

    /// Whether a guard must see the origin's response body.
    pub fn wants_response_body(&self, req: &RequestFacts<'_>, resp: &ResponseFacts<'_>) -> bool {
        self.guards
            .iter()
            .any(|(g, _)| g.wants_response_body(req, resp))
    }

    /// Shows the origin's response body to the guards that asked for it. The response has
    /// gone out, so nothing can be refused: what is left to do (a store update) is returned
    /// as futures for the caller to run in the background, each counting its own answer.
    pub fn run_response_body(
        &self,
        req: &RequestFacts<'_>,
        resp: &ResponseFacts<'_>,
        body: &[u8],
    ) -> Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
        let mut later: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
            Vec::new();
        for (guard, counters) in &self.guards {
            if !guard.wants_response_body(req, resp) {
                continue;
            }
            match guard.on_response_body(req, resp, body) {
                Verdict::Ask(answer) => {
                    let counters = counters.clone();
                    later.push(Box::pin(async move {
                        let v = answer.await;
                        counters.count(&v);
                    }));
                }
                v => counters.count(&v),
            }
        }
        later
    }

    /// Asks each guard in order until one responds or makes the request wait.
    pub async fn run(
        &self,
        phase: Phase,
        req: &RequestFacts<'_>,
        resp: Option<&ResponseFacts<'_>>,
        trail: &mut Trail,
    ) -> Decision {
        for (guard, counters) in &self.guards {
            let mut verdict = match (phase, resp) {
                (Phase::Request, _) => guard.on_request(req),
                (Phase::Origin, _) => guard.before_origin(req),
                (Phase::Response, Some(resp)) => guard.on_response(req, resp),
                (Phase::Response, None) => Verdict::Pass,
            };
            if let Verdict::Ask(answer) = verdict {
                verdict = match answer.await {
                    Verdict::Ask(_) => Verdict::Pass,
                    answered => answered,
                };
            }
            counters.count(&verdict);
            match verdict {
                Verdict::Pass | Verdict::Ask(_) => {}
                Verdict::DryRun { reason } => trail.push(guard.name(), &dry_run(&reason)),
                Verdict::Note { reason, headers } => {
                    trail.push(guard.name(), &reason);
                    trail.headers.extend(headers);
                }
                Verdict::Respond { reason, response } => {
                    trail.push(guard.name(), &reason);
                    return Decision::Respond {
                        guard: guard.name(),
                        response,
                    };
                }
                Verdict::Wait {
                    reason,
                    ticket,
                    headers,
                } => {
                    trail.headers.extend(headers);
                    if !ticket.immediate() {
                        trail.push(guard.name(), &format!("queued in lane {reason}"));
                    }
                    return Decision::Wait {
                        guard: guard.name(),
                        ticket,
                    };
                }
            }
        }
        Decision::Pass
    }
}

fn dry_run(reason: &str) -> String {
    format!("dry-run, would {reason}")
}
