//! Which lane a request waits in: buyers before browsers, people before bots, and sessions
//! the origin never issued after everyone.

use crate::guard::RequestFacts;
use crate::issued::SessionCookies;
use super::AdmissionConfig;

/// Lanes in the order they are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Payment callbacks, and the checkout of a session the origin issued.
    Checkout = 0,
    /// Carts and logged-in users (sessions the origin issued), and visitors the waiting room
    /// let in (a signed pass): once in, nobody queues behind browsers mid-purchase.
    Session = 1,
    /// Anonymous visitors whose page was not in the cache.
    Anonymous = 2,
    /// Crawlers, bots and scripts, and session cookies the origin never issued.
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

    fn matches(&self, req: &RequestFacts<'_>) -> bool {
        req.query_pairs()
            .any(|(n, v)| n == self.name && self.value.as_deref().is_none_or(|want| want == v))
    }
}

/// What a request's lane depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Decided from the request alone.
    Lane(Lane),
    /// It carries session cookies (`name=value`): its lane depends on whether the origin
    /// issued one of them ([`LaneRules::resolve`]).
    Session {
        cookies: Vec<String>,
        checkout: bool,
        /// It also holds a waiting-room pass.
        pass: bool,
    },
}

/// The classification rules of `[site.shield.admission]`.
#[derive(Debug, Clone)]
pub struct LaneRules {
    callback_paths: Vec<String>,
    callback_query: Vec<QueryMatch>,
    checkout_paths: Vec<String>,
    checkout_query: Vec<QueryMatch>,
    pub sessions: SessionCookies,
    /// Lowercase fragments.
    bot_agents: Vec<String>,
    /// The site's waiting room, when it has one: its passes are checked.
    room_pass: Option<crate::room::PassCheck>,
}

fn queries(list: &[String]) -> Vec<QueryMatch> {
    list.iter().map(|q| QueryMatch::parse(q)).collect()
}

impl LaneRules {
    pub fn from_config(c: &AdmissionConfig) -> Self {
        LaneRules {
            callback_paths: crate::guard::rule_paths(&c.callback_paths),
            callback_query: queries(&c.callback_query),
            checkout_paths: crate::guard::rule_paths(&c.checkout_paths),
            checkout_query: queries(&c.checkout_query),
            sessions: SessionCookies::new(&c.session_cookies),
            bot_agents: c
                .bot_agents
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
            room_pass: None,
        }
    }

    pub fn with_room_pass(mut self, pass: Option<crate::room::PassCheck>) -> Self {
        self.room_pass = pass;
        self
    }

    /// Payment callbacks come first whoever sends them; a request with session cookies
    /// waits for [`LaneRules::resolve`]; the rest by `User-Agent`.
    pub fn classify(&self, req: &RequestFacts<'_>) -> Claim {
        let path = req.path();
        let matches = |paths: &[String], qs: &[QueryMatch]| {
            paths.iter().any(|p| path.starts_with(p.as_str())) || qs.iter().any(|q| q.matches(req))
        };
        if matches(&self.callback_paths, &self.callback_query) {
            return Claim::Lane(Lane::Checkout);
        }
        let pass = self.room_pass.as_ref().is_some_and(|p| p.holds(req));
        let cookies = self.sessions.in_request(req);
        if !cookies.is_empty() {
            return Claim::Session {
                cookies,
                checkout: matches(&self.checkout_paths, &self.checkout_query),
                pass,
            };
        }
        if pass {
            return Claim::Lane(Lane::Session);
        }
        if let Some(agent) = req.header("user-agent") {
            let agent = agent.to_ascii_lowercase();
            if self.bot_agents.iter().any(|b| agent.contains(b.as_str())) {
                return Claim::Lane(Lane::Bot);
            }
        }
        Claim::Lane(Lane::Anonymous)
    }

    /// The lane of a session: its checkout first, its other pages before anonymous visitors
    /// — if the origin issued its cookie. A cookie the origin never issued through this
    /// edge (forged, or from before the edge started) still reaches the origin, last —
    /// unless its visitor was let in by the waiting room.
    pub fn resolve(checkout: bool, issued: bool, pass: bool) -> Lane {
        match (issued, checkout) {
            (true, true) => Lane::Checkout,
            (true, false) => Lane::Session,
            (false, _) if pass => Lane::Session,
            (false, _) => Lane::Bot,
        }
    }
}
