//! An incident: a request (or an origin response) the rules scored at the threshold — what
//! the WAF log records, `peakguard waf explain` shows, and the exceptions that would let it
//! through.

use serde::{Deserialize, Serialize};

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

pub(super) fn new_incident_id() -> String {
    hex::encode(rand::random::<[u8; 6]>())
}
