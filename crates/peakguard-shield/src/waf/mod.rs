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

mod pool;
pub mod stats;

pub use pool::{Overloaded, WafPool};
pub use stats::WafStats;

use crate::guard::{Guard, LocalResponse, RequestFacts, ResponseFacts, Verdict};
use crate::issued::{SessionCookies, any_issued};
use crate::store::Store;
use peakguard_config::{WafConfig, WafFailure, WafMode};
use peakguard_waf::{Exception, Excluded, Inspection, Plugin, RuleSet, Settings, Waf};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// The log target of which rule set each site runs (shown by default, as the audit trail
/// is: an operator must see what protects the site).
pub const LOG_TARGET: &str = "peakguard_waf";

/// CRS 3.3's WordPress exclusions that relax the rules for editors (REST post and media
/// editing, the customizer, wp-admin screens): kept out of the visitor set.
const EDITOR_EXCLUSIONS_V3: &str =
    "SecRuleRemoveById 9002140-9002160 9002400-9002401 9002520-9002830";

/// The same in CRS 4's wordpress-rule-exclusions plugin: comment moderation in wp-admin
/// (9507121-9507122), the block editor's REST saves (9507140-9507150), the customizer and
/// widgets (9507180-9507181, 9507183-9507186), users, content, menus, media and the theme
/// and plugin editors, options, Site Health and plugin management (9507520-9507999). The
/// visitor set keeps the login and password-reset forms, comments, cron, cookies, general
/// search arguments, installation and the admin's script loaders.
const EDITOR_EXCLUSIONS_V4: &str = "SecRuleRemoveById 9507121-9507122 9507140-9507150 9507180-9507181 9507183-9507186 9507520-9507899 9507910-9507999";

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

/// Which rule set a site's WAF runs, with what (`/status`, `peakguard waf status`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WafStatus {
    pub site: String,
    /// The CRS release (`4.28.0`).
    pub crs: String,
    /// Where it was found (`…/crs/current`) and what that is (`…/crs/4.28.0`).
    pub crs_dir: String,
    pub crs_real_dir: String,
    /// How it was found: the site's crs_dir, peakguard's installed copy, Debian's.
    pub found: String,
    pub plugins: Vec<String>,
    pub paranoia: u8,
    pub inspect_responses: bool,
    /// What an operator should know (CRS 3.3 in use, the WordPress plugin missing).
    pub warnings: Vec<String>,
}

/// A site's two compiled rule sets.
pub struct SiteWafs {
    pub visitor: Arc<Waf>,
    pub editor: Arc<Waf>,
    /// What they were built from (rebuilt when it changes: the configuration, the rule
    /// set `current` points at, a plugin reinstalled).
    pub built_from: String,
    pub status: WafStatus,
}

/// What a site's rule sets are made of, found but not compiled yet.
pub struct Plan {
    crs: RuleSet,
    plugins: Vec<Plugin>,
    wordpress: bool,
    /// The WordPress plugin was wanted and found (CRS 4).
    wordpress_plugin: bool,
    warnings: Vec<String>,
    /// Identifies the build: equal keys, same rules.
    pub key: String,
}

impl Plan {
    /// What a site built from this plan runs.
    pub fn describe(&self, site: &str, config: &WafConfig) -> WafStatus {
        WafStatus {
            site: site.to_string(),
            crs: self.crs.version.to_string(),
            crs_dir: self.crs.dir.display().to_string(),
            crs_real_dir: self.crs.real_dir.display().to_string(),
            found: self.crs.found.to_string(),
            plugins: self.plugins.iter().map(|p| p.name.clone()).collect(),
            paranoia: config.paranoia,
            inspect_responses: config.inspect_responses,
            warnings: self.warnings.clone(),
        }
    }
}

fn modified(path: &std::path::Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(String::new, |d| d.as_nanos().to_string())
}

/// Finds the rule set and plugins a site's `[site.waf]` names (cheap: no compilation).
/// `wordpress`: the WordPress exclusions are on (`wordpress`, or the profile's default).
/// `crs`: this rule set instead of the one the site would find (a release being installed).
pub fn plan(
    config: &WafConfig,
    wordpress: bool,
    crs_home: &std::path::Path,
    crs: Option<RuleSet>,
) -> Result<Plan, String> {
    let crs = match crs {
        Some(crs) => crs,
        None => RuleSet::locate(config.crs_dir.as_deref(), crs_home).map_err(|e| e.to_string())?,
    };
    let mut plugins = Vec::new();
    let mut warnings = Vec::new();
    let mut wordpress_plugin = false;
    if crs.version.is_v4() {
        for name in &config.plugins {
            let p = Plugin::find(name, crs_home, &crs.dir).map_err(|e| e.to_string())?;
            if !plugins.iter().any(|q: &Plugin| q.name == p.name) {
                plugins.push(p);
            }
        }
        let named = |plugins: &[Plugin]| {
            plugins
                .iter()
                .any(|p| p.name == peakguard_waf::plugin::WORDPRESS)
        };
        if wordpress && !named(&plugins) {
            match Plugin::find(peakguard_waf::plugin::WORDPRESS, crs_home, &crs.dir) {
                // First: as CRS loads plugins, the application's exclusions before others.
                Ok(p) => plugins.insert(0, p),
                Err(e) => warnings.push(format!(
                    "{e} (releases: {}); without it CRS 4 refuses much of what WordPress editors do",
                    peakguard_waf::plugin::WORDPRESS_RELEASES
                )),
            }
        }
        // The editors' part of the plugin is split off only when WordPress is on.
        wordpress_plugin = wordpress && named(&plugins);
    } else {
        if !config.plugins.is_empty() {
            return Err(format!(
                "plugins: CRS {} ({}) has no plugins; CRS 4 does (peakguard waf crs install FILE)",
                crs.version, crs.found
            ));
        }
        warnings.push(format!(
            "CRS {} ({}): the detection and false-positive figures in BENCHMARKS.md are for CRS 4; install a CRS 4 release with `peakguard waf crs install FILE` ({})",
            crs.version,
            crs.found,
            peakguard_waf::crs::RELEASES
        ));
    }
    let mut key = format!(
        "{config:?}|{wordpress}|{}|{}|{}",
        crs.real_dir.display(),
        crs.version,
        modified(&crs.real_dir.join("rules"))
    );
    for p in &plugins {
        for phase in 0..3 {
            if let Some(f) = p.file(phase) {
                key.push_str(&format!("|{}:{}", f.display(), modified(f)));
            }
        }
    }
    Ok(Plan {
        crs,
        plugins,
        wordpress,
        wordpress_plugin,
        warnings,
        key,
    })
}

/// Whether a site's WAF has the WordPress exclusions: `[site.waf] wordpress`, else on for
/// the `wordpress` profile.
pub fn wordpress_on(site: &peakguard_config::SiteConfig) -> bool {
    site.waf
        .as_ref()
        .and_then(|w| w.wordpress)
        .unwrap_or(site.profile == peakguard_config::Profile::Wordpress)
}

fn settings(config: &WafConfig, plan: &Plan, editor: bool) -> Settings {
    let mut s = Settings::new(plan.crs.clone());
    s.plugins = plan.plugins.clone();
    s.paranoia = config.paranoia;
    s.executing_paranoia = config.executing_paranoia;
    s.threshold = config.threshold;
    s.outbound_threshold = config.outbound_threshold;
    s.early_blocking = config.early_blocking;
    s.allowed_methods = config.allowed_methods.clone();
    s.allowed_content_types = config.allowed_content_types.clone();
    s.setup = config
        .crs_setup
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    s.body_limit = config.body_limit.0 as usize;
    s.wordpress = plan.wordpress;
    s.responses = config.inspect_responses;
    s.exceptions = config
        .exceptions
        .iter()
        .filter_map(|e| {
            let excluded = match (&e.rule, &e.tag) {
                (Some(rule), _) => Excluded::Rule(*rule),
                (None, Some(tag)) => Excluded::Tag(tag.clone()),
                (None, None) => return None,
            };
            Some(Exception {
                excluded,
                path: e.path.clone(),
                argument: e.argument.clone(),
            })
        })
        .collect();
    if plan.wordpress {
        if editor {
            s.extra_before = EDITOR_EXTRA.to_string();
        } else if plan.crs.version.is_v4() {
            if plan.wordpress_plugin {
                s.extra_after = EDITOR_EXCLUSIONS_V4.to_string();
            }
        } else {
            s.extra_after = EDITOR_EXCLUSIONS_V3.to_string();
        }
    }
    s
}

/// Compiles a site's rule sets (a second or two: at start and on reload, off the request
/// path).
pub fn build(site: &str, config: &WafConfig, plan: Plan) -> Result<SiteWafs, String> {
    let visitor = Waf::build(settings(config, &plan, false)).map_err(|e| e.to_string())?;
    let editor = Waf::build(settings(config, &plan, true)).map_err(|e| e.to_string())?;
    let status = plan.describe(site, config);
    Ok(SiteWafs {
        visitor: Arc::new(visitor),
        editor: Arc::new(editor),
        built_from: plan.key,
        status,
    })
}

fn request_phase() -> String {
    "request".to_string()
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
    /// `blocked` or `detected` (detect mode, or a response: already sent).
    pub action: String,
    /// What was inspected: `request`, or the origin's `response` (`inspect_responses`).
    #[serde(default = "request_phase")]
    pub phase: String,
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
                    .filter(|n| peakguard_config::waf::valid_argument(n))
            });
            let e = peakguard_config::WafException {
                rule: Some(r.id),
                tag: None,
                path: peakguard_config::waf::valid_path(&path).then(|| path.clone()),
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
        Owned {
            client: req.client.ip,
            method: req.method.as_str().to_string(),
            uri: req.path_and_query.to_string(),
            headers: owned_headers(req.headers),
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
            uri: &self.uri,
            version: "1.1",
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
        let id = new_incident_id();
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
