//! Which lane a request waits in: buyers before browsers, people before bots.

use crate::guard::RequestFacts;
use peakguard_config::AdmissionConfig;

/// Lanes in the order they are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Checkout and payment callbacks: a sale in progress.
    Checkout = 0,
    /// Carts, accounts and logged-in users.
    Session = 1,
    /// Anonymous visitors whose page was not in the cache.
    Anonymous = 2,
    /// Crawlers, bots and scripts.
    Bot = 3,
}

impl Lane {
    pub const ALL: [Lane; 4] = [Lane::Checkout, Lane::Session, Lane::Anonymous, Lane::Bot];

    pub fn label(self) -> &'static str {
        match self {
            Lane::Checkout => "checkout",
            Lane::Session => "session",
            Lane::Anonymous => "anonymous",
            Lane::Bot => "bot",
        }
    }
}

/// A query entry: a parameter name, or `name=value`.
#[derive(Debug, Clone)]
struct QueryMatch {
    name: String,
    value: Option<String>,
}

impl QueryMatch {
    fn parse(entry: &str) -> Self {
        match entry.split_once('=') {
            Some((n, v)) => QueryMatch {
                name: n.to_string(),
                value: Some(v.to_string()),
            },
            None => QueryMatch {
                name: entry.to_string(),
                value: None,
            },
        }
    }

    fn matches(&self, query: &str) -> bool {
        query.split('&').any(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            n == self.name && self.value.as_deref().is_none_or(|want| want == v)
        })
    }
}

/// The classification rules of `[site.shield.admission]`.
#[derive(Debug, Clone)]
pub struct LaneRules {
    checkout_paths: Vec<String>,
    checkout_query: Vec<QueryMatch>,
    cart_paths: Vec<String>,
    cart_query: Vec<QueryMatch>,
    /// `(name or prefix, is_prefix)`.
    session_cookies: Vec<(String, bool)>,
    /// Lowercase fragments.
    bot_agents: Vec<String>,
}

impl LaneRules {
    pub fn from_config(c: &AdmissionConfig) -> Self {
        LaneRules {
            checkout_paths: c.checkout_paths.clone(),
            checkout_query: c
                .checkout_query
                .iter()
                .map(|q| QueryMatch::parse(q))
                .collect(),
            cart_paths: c.cart_paths.clone(),
            cart_query: c.cart_query.iter().map(|q| QueryMatch::parse(q)).collect(),
            session_cookies: c
                .session_cookies
                .iter()
                .map(|n| match n.strip_suffix('*') {
                    Some(prefix) => (prefix.to_string(), true),
                    None => (n.clone(), false),
                })
                .collect(),
            bot_agents: c
                .bot_agents
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
        }
    }

    pub fn classify(&self, req: &RequestFacts<'_>) -> Lane {
        let path = req.path();
        let query = req.query().unwrap_or("");
        if self
            .checkout_paths
            .iter()
            .any(|p| path.starts_with(p.as_str()))
            || self.checkout_query.iter().any(|q| q.matches(query))
        {
            return Lane::Checkout;
        }
        let session_cookie = req.cookies().any(|(name, _)| {
            self.session_cookies.iter().any(|(want, prefix)| {
                if *prefix {
                    name.starts_with(want.as_str())
                } else {
                    name == want
                }
            })
        });
        if session_cookie
            || self.cart_paths.iter().any(|p| path.starts_with(p.as_str()))
            || self.cart_query.iter().any(|q| q.matches(query))
        {
            return Lane::Session;
        }
        if let Some(agent) = req.header("user-agent") {
            let agent = agent.to_ascii_lowercase();
            if self.bot_agents.iter().any(|b| agent.contains(b.as_str())) {
                return Lane::Bot;
            }
        }
        Lane::Anonymous
    }
}
