//! Traffic limits: a request budget per client and per kind of request (pages, login,
//! XML-RPC, REST, search, admin-ajax), counted in the shared store over a sliding window
//! (this window's count plus the previous window's, weighted by how much of it still
//! overlaps). A client over budget is answered 429 with `Retry-After`; the "limited" mark is
//! a held key, so store pressure never frees a limited client early.

use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use crate::pages;
use crate::store::{Store, StoreError};
use ipnet::IpNet;
mod config;

pub use config::{Budget, LimitsConfig};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Pages = 0,
    Login = 1,
    Xmlrpc = 2,
    Rest = 3,
    Search = 4,
    Ajax = 5,
}

impl Bucket {
    pub fn label(self) -> &'static str {
        match self {
            Bucket::Pages => "pages",
            Bucket::Login => "login",
            Bucket::Xmlrpc => "xmlrpc",
            Bucket::Rest => "rest",
            Bucket::Search => "search",
            Bucket::Ajax => "ajax",
        }
    }
}

/// Files a page pulls in: they count against no budget (a page view loads dozens).
const STATIC_EXTENSIONS: &[&str] = &[
    "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico", "bmp",
    "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg", "pdf", "zip", "txt",
];

/// The query names `name` with a value.
fn has_param(req: &RequestFacts<'_>, name: &str) -> bool {
    req.query_pairs().any(|(n, v)| n == name && !v.is_empty())
}

/// The bucket of a request, `None` for static files.
pub fn bucket_of(req: &RequestFacts<'_>) -> Option<Bucket> {
    let path = req.path();
    let path = &*path;
    match path {
        "/wp-login.php" => return Some(Bucket::Login),
        "/xmlrpc.php" => return Some(Bucket::Xmlrpc),
        "/wp-admin/admin-ajax.php" => return Some(Bucket::Ajax),
        _ => {}
    }
    if path.starts_with("/wp-json/") || path == "/wp-json" || has_param(req, "rest_route") {
        return Some(Bucket::Rest);
    }
    if has_param(req, "s") {
        return Some(Bucket::Search);
    }
    let file = path.rsplit('/').next().unwrap_or("");
    if let Some((_, ext)) = file.rsplit_once('.')
        && STATIC_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    {
        return None;
    }
    Some(Bucket::Pages)
}

/// The client a budget belongs to: an IPv4 address, or an IPv6 /64 (one subscriber's
/// network: rotating addresses inside it buys nothing).
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

pub struct LimitsGuard {
    site: Arc<str>,
    store: Arc<dyn Store>,
    allow: Vec<IpNet>,
    budgets: [Budget; 6],
    dry_run: bool,
}

/// When a store error was last logged (seconds since the epoch): at most one line a minute.
static LAST_STORE_WARNING: AtomicU64 = AtomicU64::new(0);

fn warn_store(e: &StoreError) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_STORE_WARNING.load(Relaxed);
    if now >= last + 60
        && LAST_STORE_WARNING
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_ok()
    {
        log::warn!("traffic limits: {e}; requests pass unlimited until the store answers");
    }
}

struct Check {
    store: Arc<dyn Store>,
    bucket: Bucket,
    budget: Budget,
    dry_run: bool,
    /// `site:bucket:client`.
    subject: String,
}

impl Check {
    async fn run(self) -> Verdict {
        match self.decide().await {
            Ok(verdict) => verdict,
            Err(e) => {
                // Fail open: a store that cannot answer must not take the site down.
                warn_store(&e);
                Verdict::Pass
            }
        }
    }

    async fn decide(&self) -> Result<Verdict, StoreError> {
        let limited_key = format!("limited:{}", self.subject);
        if let Some(left) = self.store.ttl(&limited_key).await? {
            return Ok(self.limited(left));
        }
        let per_ms = (self.budget.per.as_millis() as u64).max(1);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let window = now_ms / per_ms;
        let into = (now_ms % per_ms) as f64 / per_ms as f64;
        let count_key = |w: u64| format!("count:{}:{w}", self.subject);
        let current = self
            .store
            .incr(&count_key(window), 1, self.budget.per * 2)
            .await?;
        let previous = self.store.get(&count_key(window.saturating_sub(1))).await?;
        let estimate = previous as f64 * (1.0 - into) + current as f64;
        if estimate <= self.budget.requests as f64 {
            return Ok(Verdict::Pass);
        }
        // Limited until this window ends (at least a second).
        let left = Duration::from_millis(per_ms - now_ms % per_ms).max(Duration::from_secs(1));
        if !self.dry_run {
            // Best effort: if the store is full the next request is counted again.
            if let Err(e) = self.store.hold(&limited_key, 1, left).await {
                warn_store(&e);
            }
        }
        Ok(self.limited(left))
    }

    fn limited(&self, left: Duration) -> Verdict {
        let reason = format!(
            "over the {} budget ({}/{}s)",
            self.bucket.label(),
            self.budget.requests,
            self.budget.per.as_secs()
        );
        if self.dry_run {
            return Verdict::DryRun {
                reason: format!("answer 429, {reason}").into(),
            };
        }
        let retry = left.as_secs_f64().ceil().max(1.0) as u64;
        Verdict::Respond {
            reason: reason.into(),
            response: LocalResponse::page(429, pages::too_many(retry))
                .with_header("retry-after", retry.to_string()),
        }
    }
}

/// In the chain when the site has a budget on.
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "limits",
    table: "limits",
    build: |b| {
        let config: LimitsConfig = b.table()?;
        Ok(
            LimitsGuard::from_config(&b.site.name, &config, b.shield.store.clone())
                .map(|g| Arc::new(g) as Arc<dyn Guard>),
        )
    },
    check: Some(config::check),
};

impl LimitsGuard {
    /// `None` when the limits are off.
    pub fn from_config(site: &str, c: &LimitsConfig, store: Arc<dyn Store>) -> Option<Self> {
        let budgets = [c.pages, c.login, c.xmlrpc, c.rest, c.search, c.ajax];
        if !c.enabled || budgets.iter().all(Budget::is_off) {
            return None;
        }
        Some(LimitsGuard {
            site: site.into(),
            store,
            allow: c.allow.clone(),
            budgets,
            dry_run: c.dry_run,
        })
    }
}

impl Guard for LimitsGuard {
    fn name(&self) -> &'static str {
        "limits"
    }

    fn on_request(&self, req: &RequestFacts<'_>) -> Verdict {
        let Some(bucket) = bucket_of(req) else {
            return Verdict::Pass;
        };
        let budget = self.budgets[bucket as usize];
        if budget.is_off() || self.allow.iter().any(|n| n.contains(&req.client.ip)) {
            return Verdict::Pass;
        }
        let check = Check {
            store: self.store.clone(),
            bucket,
            budget,
            dry_run: self.dry_run,
            subject: format!(
                "{}:{}:{}",
                self.site,
                bucket.label(),
                client_key(req.client.ip)
            ),
        };
        Verdict::Ask(Box::pin(check.run()))
    }
}

#[cfg(test)]
mod tests;
