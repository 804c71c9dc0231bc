//! Login protection: failed logins counted per address and per username, lockouts that grow
//! (while the right password from an address that never failed still works), XML-RPC
//! `system.multicall` refused, author enumeration blocked.
//!
//! A failed WordPress login answers 200 with the form again; a success is a 302 that sets
//! `wordpress_logged_in_*`. Counters and lockouts live in the shared store; a lockout is a
//! held key, so store pressure never ends one early.

mod config;
pub use config::LoginConfig;

use crate::GuardConfig;
use crate::guard::{Guard, LocalResponse, RequestFacts, ResponseFacts, Verdict};
use crate::limits::client_key;
use crate::pages;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

pub struct LoginGuard {
    site: Arc<str>,
    store: Arc<dyn Store>,
    config: LoginConfig,
    /// Where a lockout is journaled.
    journal: Option<peakguard_journal::Recorder>,
}

/// Keys of one site's login state in the store.
struct Keys {
    site: Arc<str>,
    client: String,
    failures: String,
    level: String,
    locked: String,
    user: Option<String>,
}

impl Keys {
    fn new(site: &Arc<str>, client: &str, user: Option<&str>) -> Self {
        Keys {
            site: site.clone(),
            client: client.to_owned(),
            failures: format!("login-failures:{site}:{client}"),
            level: format!("login-level:{site}:{client}"),
            locked: format!("login-locked:{site}:{client}"),
            user: user.map(|u| format!("login-user:{site}:{u}")),
        }
    }
}

fn is_login_post(req: &RequestFacts<'_>) -> bool {
    req.method == http::Method::POST && matches!(&*req.path(), "/wp-login.php" | "/xmlrpc.php")
}

/// A POST to `wp-login.php` that tries a password (not "lost password", "register"…).
pub(crate) fn is_password_attempt(req: &RequestFacts<'_>) -> bool {
    req.method == http::Method::POST
        && req.path() == "/wp-login.php"
        && req.query().is_none_or(|q| {
            !q.split('&').any(|p| {
                p.split_once('=')
                    .is_some_and(|(n, v)| n == "action" && v != "login")
            })
        })
}

/// The username of a login form body (`log=`), lower-cased (WordPress logins are
/// case-insensitive).
fn form_username(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "log")
        .map(|(_, v)| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
}

/// The username of an XML-RPC call: its first string parameter that is not a number (the
/// blog id some methods take first). Every method that takes a password takes the username
/// just before it.
fn xmlrpc_username(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split("<string>")
        .skip(1)
        .filter_map(|rest| rest.split("</string>").next())
        .map(|v| v.trim())
        .find(|v| !v.is_empty() && !v.bytes().all(|b| b.is_ascii_digit()))
        .map(|v| {
            v.replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .to_lowercase()
        })
}

/// WordPress answers a wrong XML-RPC password with fault 403 ("Incorrect username or
/// password.") in a 200 response.
fn is_xmlrpc_login_fault(body: &[u8]) -> bool {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    contains(
        &compact,
        b"<name>faultCode</name><value><int>403</int></value>",
    )
}

fn has_logged_in_cookie(req: &RequestFacts<'_>) -> bool {
    req.cookies()
        .any(|(name, _)| name.starts_with("wordpress_logged_in_"))
}

/// `/?author=2`: WordPress redirects it to `/author/<login name>/`.
fn is_author_query(req: &RequestFacts<'_>) -> bool {
    req.query_pairs()
        .any(|(n, v)| n == "author" && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// The REST user list, which names every author.
fn is_rest_users(req: &RequestFacts<'_>) -> bool {
    let users = |p: &str| p == "/wp/v2/users" || p.starts_with("/wp/v2/users/");
    if let Some(rest) = req.path().strip_prefix("/wp-json") {
        return users(rest.trim_end_matches('/')) || users(rest);
    }
    req.query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .any(|(n, v)| n == "rest_route" && users(v.trim_end_matches('/')))
    })
}

fn refused(reason: &'static str) -> Verdict {
    Verdict::Respond {
        reason: reason.into(),
        response: LocalResponse::page(403, pages::denied()),
    }
}

fn locked_out(left: Duration, reason: String) -> Verdict {
    let retry = left.as_secs_f64().ceil().max(1.0) as u64;
    Verdict::Respond {
        reason: reason.into(),
        response: LocalResponse::page(429, pages::login_locked(retry))
            .with_header("retry-after", retry.to_string()),
    }
}

/// In the chain when login protection is on (the WordPress profile's default).
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "login",
    table: "login",
    build: |b| {
        Ok(
            LoginGuard::from_config(
                &b.site.name,
                &LoginConfig::of_site(b.site),
                b.shield.store.clone(),
                b.shield.journal.read().clone(),
            )
                .map(|g| Arc::new(g) as Arc<dyn Guard>),
        )
    },
    check: Some(config::check),
};

impl LoginGuard {
    /// `None` when login protection is off.
    pub fn from_config(
        site: &str,
        config: &LoginConfig,
        store: Arc<dyn Store>,
        journal: Option<peakguard_journal::Recorder>,
    ) -> Option<Self> {
        config.enabled.then(|| LoginGuard {
            site: site.into(),
            store,
            config: config.clone(),
            journal,
        })
    }

    fn keys(&self, req: &RequestFacts<'_>) -> Keys {
        let user = req.body.and_then(|b| {
            if req.path() == "/xmlrpc.php" {
                xmlrpc_username(b)
            } else {
                form_username(b)
            }
        });
        Keys::new(&self.site, &client_key(req.client.ip), user.as_deref())
    }
}

/// Is this address locked out?
async fn check_lockout(store: Arc<dyn Store>, keys: Keys) -> Result<Verdict, StoreError> {
    Ok(match store.ttl(&keys.locked).await? {
        Some(left) => locked_out(left, "locked out after failed logins".into()),
        None => Verdict::Pass,
    })
}

/// A username under attack may only be tried from addresses that never failed.
async fn check_username(
    store: Arc<dyn Store>,
    keys: Keys,
    limit: u64,
    window: Duration,
) -> Result<Verdict, StoreError> {
    let Some(user) = &keys.user else {
        return Ok(Verdict::Pass);
    };
    if store.get(user).await? < limit {
        return Ok(Verdict::Pass);
    }
    let failed_before = store.get(&keys.failures).await? > 0 || store.get(&keys.level).await? > 0;
    Ok(if failed_before {
        locked_out(
            window,
            "this username is under attack and this address has failed before".into(),
        )
    } else {
        Verdict::Pass
    })
}

/// Counts a failed login; locks the address out when it has failed too often.
async fn count_failure(
    store: Arc<dyn Store>,
    keys: Keys,
    config: LoginConfig,
    journal: Option<peakguard_journal::Recorder>,
) -> Result<Verdict, StoreError> {
    let window = config.window.0;
    if let Some(user) = &keys.user {
        store.incr(user, 1, window).await?;
    }
    let failures = store.incr(&keys.failures, 1, window).await?;
    if failures < config.max_failures {
        return Ok(Verdict::note(format!(
            "failed login {failures} of {}",
            config.max_failures
        )));
    }
    let level = store.incr(&keys.level, 1, DAY).await?;
    let doubling = 2u32.saturating_pow(level.saturating_sub(1).min(30) as u32);
    let lockout = config
        .lockout
        .0
        .saturating_mul(doubling)
        .min(config.max_lockout.0);
    store.hold(&keys.locked, level, lockout).await?;
    store.remove(&keys.failures).await?;
    log::info!(
        "login protection: {} locked out for {}s after {failures} failed logins (lockout {level} today)",
        keys.locked,
        lockout.as_secs()
    );
    if let Some(journal) = journal {
        journal.record(peakguard_journal::Event {
            who: "shield".into(),
            what: "login lockout".into(),
            site: Some(keys.site.to_string()),
            detail: format!(
                "{} locked out after {failures} failed logins (lockout {level} today)",
                keys.client
            ),
            result: format!("locked {}s", lockout.as_secs()),
        });
    }
    Ok(Verdict::note(format!(
        "failed login {failures} of {}: locked out for {}s",
        config.max_failures,
        lockout.as_secs()
    )))
}

/// Runs a store conversation; a store that cannot answer lets the request through.
fn ask(
    work: impl std::future::Future<Output = Result<Verdict, StoreError>> + Send + 'static,
) -> Verdict {
    Verdict::Ask(Box::pin(async move {
        work.await.unwrap_or_else(|e| {
            log::warn!("login protection: {e}; the request passes");
            Verdict::Pass
        })
    }))
}

impl Guard for LoginGuard {
    fn name(&self) -> &'static str {
        "login"
    }

    fn on_request(&self, req: &RequestFacts<'_>) -> Verdict {
        if self.config.block_author_enumeration {
            // The path first: most requests are neither, and need no cookie scan.
            let why = if is_author_query(req) {
                Some("author enumeration (?author=N)")
            } else if is_rest_users(req) {
                Some("author enumeration (REST user list)")
            } else {
                None
            };
            if let Some(why) = why
                && !has_logged_in_cookie(req)
            {
                return refused(why);
            }
        }
        if !is_login_post(req) {
            return Verdict::Pass;
        }
        ask(check_lockout(self.store.clone(), self.keys(req)))
    }

    fn wants_body(&self, req: &RequestFacts<'_>) -> bool {
        is_login_post(req)
    }

    fn before_origin(&self, req: &RequestFacts<'_>) -> Verdict {
        if !is_login_post(req) {
            return Verdict::Pass;
        }
        if self.config.block_multicall
            && req.path() == "/xmlrpc.php"
            && req.body.is_some_and(|b| contains(b, b"system.multicall"))
        {
            return refused("XML-RPC system.multicall");
        }
        ask(check_username(
            self.store.clone(),
            self.keys(req),
            self.config.username_failures,
            self.config.window.0,
        ))
    }

    fn on_response(&self, req: &RequestFacts<'_>, resp: &ResponseFacts<'_>) -> Verdict {
        if !is_password_attempt(req) {
            return Verdict::Pass;
        }
        let keys = self.keys(req);
        let logged_in = resp
            .headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(b"wordpress_logged_in_"));
        if (300..400).contains(&resp.status) && logged_in {
            let store = self.store.clone();
            return ask(async move {
                store.remove(&keys.failures).await?;
                Ok(Verdict::Pass)
            });
        }
        if resp.status == 200 {
            return ask(count_failure(
                self.store.clone(),
                keys,
                self.config.clone(),
                self.journal.clone(),
            ));
        }
        Verdict::Pass
    }

    fn wants_response_body(&self, req: &RequestFacts<'_>, resp: &ResponseFacts<'_>) -> bool {
        Self::xmlrpc_call(req) && resp.status == 200
    }

    /// A failed XML-RPC login counts like a failed form login.
    fn on_response_body(
        &self,
        req: &RequestFacts<'_>,
        _resp: &ResponseFacts<'_>,
        body: &[u8],
    ) -> Verdict {
        if !is_xmlrpc_login_fault(body) {
            return Verdict::Pass;
        }
        ask(count_failure(
            self.store.clone(),
            self.keys(req),
            self.config.clone(),
            self.journal.clone(),
        ))
    }
}

impl LoginGuard {
    fn xmlrpc_call(req: &RequestFacts<'_>) -> bool {
        req.method == http::Method::POST && req.path() == "/xmlrpc.php"
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests;
