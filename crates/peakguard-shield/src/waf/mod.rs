//! The WAF guard (issues P8, P10): the OWASP Core Rule Set (CRS 4 with its plugins, or
//! Debian's 3.3), evaluated by libmodsecurity (peakguard-waf) on a bounded pool of threads,
//! in the origin phase — so cache hits and static files, which cannot attack the site, pay
//! nothing; misses, bypasses and every request with a body are inspected (headers, query,
//! body up to `body_limit`). With `inspect_responses`, the origin's responses (never a
//! cache hit) go through the CRS's response rules once they have ended; a finding is
//! logged and counted (the response is already on its way).
//!
//! WordPress-aware: each site has two compiled rule sets. The editor set has every WordPress
//! exclusion (CRS 4: the wordpress-rule-exclusions plugin; 3.3: its built-in ones); the
//! visitor set keeps only those a visitor needs (login and password-reset forms, comments,
//! cron, the admin's script loaders, installation) and drops the ones that relax the rules
//! for editors (posts, REST editing, customizer, theme/plugin editor, menus, users,
//! options, plugins). A request gets the editor set only when it carries a
//! `wordpress_logged_in_*` cookie the origin really issued through the edge (the
//! issued-cookie registry): a made-up cookie earns nothing.

mod factory;
mod incident;
mod plan;
mod pool;
pub mod stats;

pub use factory::{CompiledWafs, GUARD};
pub use incident::{Incident, IncidentLog, IncidentRule, LOGGED_VALUE_CHARS, loggable_uri};
pub use plan::{Plan, SiteWafs, WafStatus, build, plan, wordpress_on};
pub use pool::{Overloaded, WafPool};
pub use stats::WafStats;

use crate::guard::{Guard, LocalResponse, RequestFacts, ResponseFacts, Verdict};
use crate::issued::{SessionCookies, any_issued};
use crate::store::Store;
use peakguard_config::{WafFailure, WafMode};
use peakguard_waf::{Inspection, Waf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// The log target of which rule set each site runs (shown by default, as the audit trail
/// is: an operator must see what protects the site).
pub const LOG_TARGET: &str = "peakguard_waf";

#[derive(Clone)]
pub struct WafGuard {
    pub site: String,
    pub mode: WafMode,
    pub on_error: WafFailure,
    pub threshold: u32,
    pub outbound_threshold: u32,
    pub inspect_responses: bool,
    pub body_limit: usize,
    pub wafs: Arc<SiteWafs>,
    pub pool: Arc<WafPool>,
    pub store: Arc<dyn Store>,
    pub stats: Arc<WafStats>,
    pub log: Option<Arc<dyn IncidentLog>>,
}

/// A request, owned, for the pool thread.
struct Owned {
    client: std::net::IpAddr,
    method: String,
    /// The request target as sent (what the rules inspect).
    target: String,
    /// `1.1`, `2.0`: as ModSecurity's connectors name it.
    version: &'static str,
    /// The path and query (what the WAF log shows).
    uri: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

fn owned_headers(headers: &http::HeaderMap) -> Vec<(Vec<u8>, Vec<u8>)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn borrowed(headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
    headers
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect()
}

impl Owned {
    fn of(req: &RequestFacts<'_>, with_body: bool) -> Owned {
        let mut headers = owned_headers(req.headers);
        // HTTP/2 names the host in `:authority`, not a Host field: the rules get it as Host
        // (as nginx hands them an HTTP/2 request), else every HTTP/2 request would be
        // "missing a Host header" (920280).
        if req.version >= http::Version::HTTP_2
            && !req.headers.contains_key(http::header::HOST)
            && !req.host.is_empty()
        {
            headers.insert(0, (b"host".to_vec(), req.host.as_bytes().to_vec()));
        }
        Owned {
            client: req.client.ip,
            method: req.method.as_str().to_string(),
            target: String::from_utf8_lossy(req.raw_target).into_owned(),
            version: match req.version {
                http::Version::HTTP_09 => "0.9",
                http::Version::HTTP_10 => "1.0",
                http::Version::HTTP_2 => "2.0",
                http::Version::HTTP_3 => "3.0",
                _ => "1.1",
            },
            uri: req.path_and_query.to_string(),
            headers,
            body: if with_body {
                req.body.map(<[u8]>::to_vec).unwrap_or_default()
            } else {
                Vec::new()
            },
        }
    }

    fn request(&self) -> peakguard_waf::Request<'_> {
        peakguard_waf::Request {
            client: self.client,
            client_port: 0,
            method: &self.method,
            uri: &self.target,
            version: self.version,
            headers: borrowed(&self.headers),
            body: &self.body,
        }
    }
}

/// A response the response rules can read: text, JSON or XML, with a body.
fn inspectable(resp: &ResponseFacts<'_>) -> bool {
    if matches!(resp.status, 100..=199 | 204 | 304) {
        return false;
    }
    resp.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .is_some_and(|t| t.starts_with("text/") || t.contains("json") || t.contains("xml"))
}

fn content_length(req: &RequestFacts<'_>) -> Option<u64> {
    req.header("content-length")
        .and_then(|v| v.trim().parse().ok())
}

fn has_body(req: &RequestFacts<'_>) -> bool {
    content_length(req).is_some_and(|n| n > 0) || req.headers.contains_key("transfer-encoding")
}

/// The page a blocked request gets.
pub fn blocked_page(incident: &str) -> bytes::Bytes {
    crate::pages::blocked(incident)
}

/// What an incident is about.
struct Seen<'a> {
    uri: &'a str,
    method: &'a str,
    client: &'a str,
    editor: bool,
}

impl WafGuard {
    /// Writes an incident to the WAF log and counts its families; gives its id and the
    /// access log's reason.
    fn record(
        &self,
        inspection: &Inspection,
        seen: &Seen<'_>,
        phase: &str,
        action: &str,
        threshold: u32,
    ) -> (String, String) {
        let rules: Vec<IncidentRule> = inspection
            .matched
            .iter()
            .map(|m| IncidentRule {
                id: m.id,
                family: stats::family(m.id).to_string(),
                message: m.message.chars().take(200).collect(),
                target: m.target.as_ref().map(|t| t.chars().take(100).collect()),
            })
            .collect();
        self.stats
            .count_families(&rules.iter().map(|r| r.id).collect::<Vec<_>>());
        let id = incident::new_incident_id();
        let incident = Incident {
            id: id.clone(),
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            site: self.site.clone(),
            client: seen.client.to_string(),
            method: seen.method.chars().take(20).collect(),
            uri: loggable_uri(seen.uri),
            action: action.to_string(),
            phase: phase.to_string(),
            score: inspection.score,
            threshold,
            editor: seen.editor,
            rules,
        };
        let ids: Vec<String> = incident.rules.iter().map(|r| r.id.to_string()).collect();
        let target = incident
            .rules
            .iter()
            .find_map(|r| r.target.clone())
            .map(|t| format!(" at {t}"))
            .unwrap_or_default();
        let of = if phase == "response" { " response" } else { "" };
        let reason = format!(
            "waf: {action}{of} incident {id} (rules {}; score {}{target})",
            ids.join(","),
            incident.score
        );
        if let Some(log) = &self.log {
            log.record(incident);
        }
        (id, reason)
    }

    fn decide(&self, inspection: Inspection, seen: &Seen<'_>) -> Verdict {
        if inspection.block.is_none() {
            self.stats.passed.fetch_add(1, Relaxed);
            return Verdict::Pass;
        }
        let blocking = self.mode == WafMode::Block;
        let action = if blocking { "blocked" } else { "detected" };
        let (id, reason) = self.record(&inspection, seen, "request", action, self.threshold);
        if blocking {
            self.stats.blocked.fetch_add(1, Relaxed);
            Verdict::Respond {
                reason: reason.into(),
                response: LocalResponse::page(403, blocked_page(&id))
                    .with_header("x-peakguard-incident", id),
            }
        } else {
            self.stats.detected.fetch_add(1, Relaxed);
            Verdict::DryRun {
                reason: reason.into(),
            }
        }
    }

    fn failed(&self, why: &str) -> Verdict {
        self.stats.errors.fetch_add(1, Relaxed);
        match self.on_error {
            WafFailure::Open => {
                Verdict::note(format!("waf: not inspected ({why}); on_error = open"))
            }
            WafFailure::Closed => Verdict::Respond {
                reason: format!("waf: not inspected ({why}); on_error = closed").into(),
                response: LocalResponse::page(503, crate::pages::unavailable(30))
                    .with_header("retry-after", "30"),
            },
        }
    }

    /// The editor set for a request with a login session the origin issued, else the
    /// visitor set.
    async fn rules_for(&self, sessions: &[String]) -> (Arc<Waf>, bool) {
        let editor = !sessions.is_empty()
            && any_issued(self.store.as_ref(), sessions)
                .await
                .unwrap_or(false);
        let waf = if editor {
            self.wafs.editor.clone()
        } else {
            self.wafs.visitor.clone()
        };
        (waf, editor)
    }

    /// Runs `inspect` on the pool, timing it.
    async fn on_pool(
        &self,
        inspect: impl FnOnce() -> Result<Option<Inspection>, peakguard_waf::WafError> + Send + 'static,
    ) -> Result<Option<Inspection>, &'static str> {
        let stats = self.stats.clone();
        let job = self.pool.submit(move || {
            let started = std::time::Instant::now();
            let result = inspect();
            stats
                .micros
                .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
            result
        });
        match job {
            Err(Overloaded) => {
                self.stats.overloaded.fetch_add(1, Relaxed);
                Err("the inspection queue is full")
            }
            Ok(answer) => match answer.await {
                Ok(Ok(inspection)) => Ok(inspection),
                Ok(Err(e)) => {
                    log::warn!("WAF on site {}: {e}", self.site);
                    Err("the engine failed")
                }
                Err(_) => Err("the inspection crashed"),
            },
        }
    }
}

fn sessions_of(req: &RequestFacts<'_>) -> Vec<String> {
    SessionCookies::new(&["wordpress_logged_in_*".to_string()]).in_request(req)
}

impl Guard for WafGuard {
    fn name(&self) -> &'static str {
        "waf"
    }

    fn wants_body(&self, req: &RequestFacts<'_>) -> bool {
        self.mode != WafMode::Off
            && content_length(req).is_some_and(|n| n > 0 && n <= self.body_limit as u64)
    }

    fn before_origin(&self, req: &RequestFacts<'_>) -> Verdict {
        if self.mode == WafMode::Off {
            return Verdict::Pass;
        }
        if has_body(req) && req.body.is_none() {
            self.stats.uninspected_bodies.fetch_add(1, Relaxed);
        }
        let owned = Owned::of(req, true);
        let sessions = sessions_of(req);
        let guard = self.clone();
        Verdict::Ask(Box::pin(async move {
            let (waf, editor) = guard.rules_for(&sessions).await;
            let uri = owned.uri.clone();
            let method = owned.method.clone();
            let client = owned.client.to_string();
            let answer = guard
                .on_pool(move || waf.inspect(&owned.request()).map(Some))
                .await;
            let seen = Seen {
                uri: &uri,
                method: &method,
                client: &client,
                editor,
            };
            match answer {
                Ok(Some(inspection)) => guard.decide(inspection, &seen),
                Ok(None) => Verdict::Pass,
                Err(why) => guard.failed(why),
            }
        }))
    }

    fn wants_response_body(&self, _req: &RequestFacts<'_>, resp: &ResponseFacts<'_>) -> bool {
        self.inspect_responses && self.mode != WafMode::Off && inspectable(resp)
    }

    /// The origin's response through the response rules. It has gone out already: a
    /// finding is logged and counted, never refused.
    fn on_response_body(
        &self,
        req: &RequestFacts<'_>,
        resp: &ResponseFacts<'_>,
        body: &[u8],
    ) -> Verdict {
        let owned = Owned::of(req, false);
        let status = resp.status;
        let headers = owned_headers(resp.headers);
        let body = body[..body.len().min(self.body_limit)].to_vec();
        let sessions = sessions_of(req);
        let guard = self.clone();
        Verdict::Ask(Box::pin(async move {
            let (waf, editor) = guard.rules_for(&sessions).await;
            let uri = owned.uri.clone();
            let method = owned.method.clone();
            let client = owned.client.to_string();
            let answer = guard
                .on_pool(move || {
                    waf.inspect_response(
                        &owned.request(),
                        &peakguard_waf::Response {
                            status,
                            headers: borrowed(&headers),
                            body: &body,
                        },
                    )
                })
                .await;
            match answer {
                Ok(Some(found)) if found.block.is_some() => {
                    guard.stats.responses_detected.fetch_add(1, Relaxed);
                    let seen = Seen {
                        uri: &uri,
                        method: &method,
                        client: &client,
                        editor,
                    };
                    let (_, reason) = guard.record(
                        &found,
                        &seen,
                        "response",
                        "detected",
                        guard.outbound_threshold,
                    );
                    Verdict::note(reason)
                }
                Ok(_) => {
                    guard.stats.responses_passed.fetch_add(1, Relaxed);
                    Verdict::Pass
                }
                Err(why) => {
                    guard.stats.responses_failed.fetch_add(1, Relaxed);
                    Verdict::note(format!("waf: response not inspected ({why})"))
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests;
