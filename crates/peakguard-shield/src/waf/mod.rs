//! The WAF guard (issue P8): the OWASP Core Rule Set, evaluated by libmodsecurity
//! (peakguard-waf) on a bounded pool of threads, in the origin phase — so cache hits and
//! static files, which cannot attack the site, pay nothing; misses, bypasses and every
//! request with a body are inspected (headers, query, body up to `body_limit`).
//!
//! WordPress-aware: each site has two compiled rule sets. The editor set has every CRS
//! WordPress exclusion; the visitor set keeps only those a visitor needs (login and
//! password-reset forms, comments, cron, the admin's script loaders, installation) and
//! drops the ones that relax the rules for editors (posts, REST editing, customizer,
//! theme/plugin editor, menus, options). A request gets the editor set only when it
//! carries a `wordpress_logged_in_*` cookie the origin really issued through the edge (the
//! issued-cookie registry): a made-up cookie earns nothing.

mod pool;
pub mod stats;

pub use pool::{Overloaded, WafPool};
pub use stats::WafStats;

use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use crate::issued::{SessionCookies, any_issued};
use crate::store::Store;
use peakguard_config::{WafConfig, WafFailure, WafMode};
use peakguard_waf::{Exception, Inspection, Settings, Waf};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// The CRS WordPress exclusions that relax the rules for editors (REST post and media
/// editing, the customizer, wp-admin screens): kept out of the visitor set.
const EDITOR_EXCLUSIONS: &str = "SecRuleRemoveById 9002140-9002160 9002400-9002401 9002520-9002830";

/// What WordPress editors do that CRS 3.3's WordPress exclusions do not cover, for the
/// editor set only (a login session the origin issued): the theme and plugin file editor
/// (PHP in `newcontent`), saving and previewing the customizer (`customize_changeset_data`,
/// `customized`), the block editor's REST saves (site editor styles, templates, template
/// parts, navigation, widgets, reusable blocks, and the batch endpoint that carries them:
/// HTML, CSS and JSON in the body), media details (`changes[caption]`, `changes[alt]`…),
/// and the admin's search boxes (`s`: "Insert Headers and Footers" is a plugin's name, not
/// SQL). An editor with these rights can change the site's code anyway; the front end and
/// every visitor keep the full rules.
const EDITOR_EXTRA: &str = r#"SecRule REQUEST_FILENAME "@rx /wp-admin/(?:admin-ajax|theme-editor|plugin-editor)\.php$" "id:1910001,phase:2,pass,nolog,t:none,chain"
SecRule ARGS:action "@rx ^(?:edit-theme-plugin-file|update)$" "t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:newcontent"
SecRule REQUEST_FILENAME "@endsWith /wp-admin/admin-ajax.php" "id:1910002,phase:2,pass,nolog,t:none,chain"
SecRule ARGS:action "@streq customize_save" "t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:customize_changeset_data,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:customized"
SecRule REQUEST_FILENAME "@rx /wp-json/(?:wp/v[0-9]+/(?:global-styles|templates|template-parts|navigation|widgets|sidebars|blocks|menu-items)|batch/v[0-9]+)(?:/|$)" "id:1910003,phase:1,pass,nolog,t:none,ctl:ruleRemoveByTag=attack-xss,ctl:ruleRemoveByTag=attack-sqli,ctl:ruleRemoveByTag=attack-rce,ctl:ruleRemoveByTag=attack-injection-php"
SecRule ARGS_GET:rest_route "@rx ^/(?:wp/v[0-9]+/(?:global-styles|templates|template-parts|navigation|widgets|sidebars|blocks|menu-items)|batch/v[0-9]+)(?:/|$)" "id:1910004,phase:1,pass,nolog,t:none,ctl:ruleRemoveByTag=attack-xss,ctl:ruleRemoveByTag=attack-sqli,ctl:ruleRemoveByTag=attack-rce,ctl:ruleRemoveByTag=attack-injection-php"
SecRule ARGS:wp_customize "@streq on" "id:1910005,phase:2,pass,nolog,t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:customized,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:customize_changeset_data"
SecRule REQUEST_FILENAME "@endsWith /wp-admin/admin-ajax.php" "id:1910006,phase:2,pass,nolog,t:none,chain"
SecRule ARGS:action "@streq save-attachment" "t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:changes[caption],ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:changes[alt],ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:changes[description],ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:changes[title]"
SecRule REQUEST_FILENAME "@contains /wp-admin/" "id:1910007,phase:2,pass,nolog,t:none,ctl:ruleRemoveTargetByTag=attack-sqli;ARGS:s"
"#;

/// A site's two compiled rule sets.
pub struct SiteWafs {
    pub visitor: Arc<Waf>,
    pub editor: Arc<Waf>,
    /// The configuration they were built from (rebuilt when it changes).
    pub built_from: String,
}

fn settings(config: &WafConfig, editor: bool) -> Settings {
    let mut s = Settings::new(&config.crs_dir);
    s.paranoia = config.paranoia;
    s.threshold = config.threshold;
    s.body_limit = config.body_limit.0 as usize;
    s.wordpress = config.wordpress;
    s.exceptions = config
        .exceptions
        .iter()
        .map(|e| Exception {
            rule: e.rule,
            path: e.path.clone(),
            argument: e.argument.clone(),
        })
        .collect();
    if config.wordpress {
        if editor {
            s.extra_before = EDITOR_EXTRA.to_string();
        } else {
            s.extra_after = EDITOR_EXCLUSIONS.to_string();
        }
    }
    s
}

/// Compiles a site's rule sets (a few hundred milliseconds: at start and on reload).
pub fn build(config: &WafConfig) -> Result<SiteWafs, String> {
    let visitor = Waf::build(settings(config, false)).map_err(|e| e.to_string())?;
    let editor = Waf::build(settings(config, true)).map_err(|e| e.to_string())?;
    Ok(SiteWafs {
        visitor: Arc::new(visitor),
        editor: Arc::new(editor),
        built_from: format!("{config:?}"),
    })
}

/// One rule in an incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncidentRule {
    pub id: u32,
    pub family: String,
    pub message: String,
    /// Where it matched: `ARGS:id`, `REQUEST_HEADERS:User-Agent`… (the name, never the value).
    pub target: Option<String>,
}

/// A request the rules scored at the threshold: what the WAF log records and `peakguard
/// waf explain` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub at: u64,
    pub site: String,
    pub client: String,
    pub method: String,
    /// The path and query, with secrets in the query redacted, at most 200 characters.
    pub uri: String,
    /// `blocked` or `detected` (detect mode).
    pub action: String,
    pub score: u32,
    pub threshold: u32,
    /// The editor rule set was used (an issued login session).
    pub editor: bool,
    pub rules: Vec<IncidentRule>,
}

impl Incident {
    /// The `[site.waf] exceptions` that would let a request like this one through: each
    /// rule, limited to the request's path and, where the rule matched an argument, to that
    /// argument.
    pub fn exceptions(&self) -> Vec<peakguard_config::WafException> {
        let path = self.uri.split('?').next().unwrap_or("/").to_string();
        let mut out: Vec<peakguard_config::WafException> = Vec::new();
        for r in &self.rules {
            let argument = r.target.as_deref().and_then(|t| {
                let (collection, name) = t.split_once(':')?;
                matches!(collection, "ARGS" | "ARGS_GET" | "ARGS_POST")
                    .then(|| name.to_string())
                    .filter(|n| peakguard_waf::rules::valid_argument(n))
            });
            let e = peakguard_config::WafException {
                rule: r.id,
                path: peakguard_waf::rules::valid_path(&path).then(|| path.clone()),
                argument,
                comment: None,
            };
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }
}

/// Where incidents go (the edge writes them to the WAF log).
pub trait IncidentLog: Send + Sync {
    fn record(&self, incident: Incident);
}

pub struct WafGuard {
    pub site: String,
    pub mode: WafMode,
    pub on_error: WafFailure,
    pub threshold: u32,
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
    uri: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
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

/// Longest query value kept in the WAF log (the start of a payload, never a whole one).
pub const LOGGED_VALUE_CHARS: usize = 12;

/// The path and query for the WAF log: secrets redacted, each query value cut to
/// [`LOGGED_VALUE_CHARS`] (`…` marks a cut), 200 characters at most.
pub fn loggable_uri(path_and_query: &str) -> String {
    let redacted = peakguard_config::redact::query(path_and_query);
    let (path, query) = match redacted.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (redacted.as_ref(), None),
    };
    let mut out = path.to_string();
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if v.chars().count() > LOGGED_VALUE_CHARS => {
                    format!(
                        "{k}={}…",
                        v.chars().take(LOGGED_VALUE_CHARS).collect::<String>()
                    )
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out.chars().take(200).collect()
}

fn new_incident_id() -> String {
    hex::encode(rand::random::<[u8; 6]>())
}

impl WafGuard {
    fn decide(
        &self,
        inspection: Inspection,
        owned_uri: &str,
        method: &str,
        client: &str,
        editor: bool,
    ) -> Verdict {
        if inspection.block.is_none() {
            self.stats.passed.fetch_add(1, Relaxed);
            return Verdict::Pass;
        }
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
        let id = new_incident_id();
        let blocking = self.mode == WafMode::Block;
        let incident = Incident {
            id: id.clone(),
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            site: self.site.clone(),
            client: client.to_string(),
            method: method.chars().take(20).collect(),
            uri: loggable_uri(owned_uri),
            action: if blocking { "blocked" } else { "detected" }.to_string(),
            score: inspection.score,
            threshold: self.threshold,
            editor,
            rules,
        };
        let ids: Vec<String> = incident.rules.iter().map(|r| r.id.to_string()).collect();
        let target = incident
            .rules
            .iter()
            .find_map(|r| r.target.clone())
            .map(|t| format!(" at {t}"))
            .unwrap_or_default();
        let reason = format!(
            "waf: {} incident {id} (rules {}; score {}{target})",
            incident.action,
            ids.join(","),
            incident.score
        );
        if let Some(log) = &self.log {
            log.record(incident);
        }
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
        let owned = Owned {
            client: req.client.ip,
            method: req.method.as_str().to_string(),
            uri: req.path_and_query.to_string(),
            headers: req
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            body: req.body.map(<[u8]>::to_vec).unwrap_or_default(),
        };
        let sessions = SessionCookies::new(&["wordpress_logged_in_*".to_string()]).in_request(req);
        let guard = WafGuard {
            site: self.site.clone(),
            mode: self.mode,
            on_error: self.on_error,
            threshold: self.threshold,
            body_limit: self.body_limit,
            wafs: self.wafs.clone(),
            pool: self.pool.clone(),
            store: self.store.clone(),
            stats: self.stats.clone(),
            log: self.log.clone(),
        };
        Verdict::Ask(Box::pin(async move {
            let editor = !sessions.is_empty()
                && any_issued(guard.store.as_ref(), &sessions)
                    .await
                    .unwrap_or(false);
            let waf = if editor {
                guard.wafs.editor.clone()
            } else {
                guard.wafs.visitor.clone()
            };
            let uri = owned.uri.clone();
            let method = owned.method.clone();
            let client = owned.client.to_string();
            let stats = guard.stats.clone();
            let job = guard.pool.submit(move || {
                let started = std::time::Instant::now();
                let result = waf.inspect(&peakguard_waf::Request {
                    client: owned.client,
                    client_port: 0,
                    method: &owned.method,
                    uri: &owned.uri,
                    version: "1.1",
                    headers: owned
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_slice(), v.as_slice()))
                        .collect(),
                    body: &owned.body,
                });
                stats
                    .micros
                    .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
                result
            });
            match job {
                Err(Overloaded) => {
                    guard.stats.overloaded.fetch_add(1, Relaxed);
                    guard.failed("the inspection queue is full")
                }
                Ok(answer) => match answer.await {
                    Ok(Ok(inspection)) => guard.decide(inspection, &uri, &method, &client, editor),
                    Ok(Err(e)) => {
                        log::warn!("WAF on site {}: {e}", guard.site);
                        guard.failed("the engine failed")
                    }
                    Err(_) => guard.failed("the inspection crashed"),
                },
            }
        }))
    }
}
