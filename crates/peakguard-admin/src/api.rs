//! The admin API itself, whatever listener carries it: who called (one bearer token
//! comparison, in constant time), what a call may do, the audit line, `/healthz`,
//! `/metrics` and `/status` gathered from every part, `GET /token`, and each call routed to
//! the part that owns it — the process's own endpoints first ([`Own`]: the edge's purge,
//! maintenance, shield and waiting-room switches), then the [`AdminExtension`]s' (the backup
//! daemon, the monitor). The edge's admin listener (a Pingora service, so a zero-downtime
//! upgrade hands it over with the others) and [`crate::server::serve`] (where no edge runs)
//! only carry calls to [`answer`] and its replies back.

use crate::AdminExtension;
use peakguard_config::AdminPermission;
use peakguard_journal::{Event, Journal};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// A boxed future of a part's answer.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The log target of the admin API's calls (the binary shows it at info by default): each
/// call with the name of the token that made it.
pub const AUDIT: &str = "peakguard_audit";

/// One call to the admin API.
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    /// The `Authorization` header's value, if it has one that is text.
    pub authorization: Option<String>,
}

impl Call {
    /// A call from its method, path, query string and `Authorization` value.
    pub fn new(method: &str, path: &str, query: Option<&str>, authorization: Option<&str>) -> Call {
        Call {
            method: method.to_string(),
            path: path.to_string(),
            query: url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
            authorization: authorization.map(str::to_string),
        }
    }
}

/// An answer: status, content type, body.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, value: Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: format!("{value}\n").into_bytes(),
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            body,
        }
    }
}

/// Who called: the admin token, or a scoped token's name and rights.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub permissions: Vec<AdminPermission>,
}

/// The tokens a listener accepts: the admin token (every right) and `[[admin.tokens]]`
/// (name, value, rights).
pub struct Tokens<'a> {
    pub admin: &'a str,
    pub scoped: &'a [(String, String, Vec<AdminPermission>)],
}

impl Tokens<'_> {
    /// The caller an `Authorization` value names; every token is compared in constant time.
    pub fn caller(&self, authorization: &str) -> Option<Caller> {
        let bearer = |token: &str| {
            bool::from(
                authorization
                    .as_bytes()
                    .ct_eq(format!("Bearer {token}").as_bytes()),
            )
        };
        if bearer(self.admin) {
            return Some(Caller {
                name: "admin".into(),
                permissions: vec![AdminPermission::All],
            });
        }
        self.scoped
            .iter()
            .find(|(_, token, _)| bearer(token))
            .map(|(name, _, permissions)| Caller {
                name: name.clone(),
                permissions: permissions.clone(),
            })
    }
}

/// The process's own endpoints, asked before the extensions (the edge's).
pub trait Own: Send + Sync {
    /// Its Prometheus text, first in `/metrics`.
    fn metrics(&self) -> BoxFuture<'_, String>;
    /// Its fields of `/status` (the extensions' go under their names beside them).
    fn status(&self) -> BoxFuture<'_, serde_json::Map<String, Value>>;
    /// Answers a call that is its own.
    fn handle<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Option<Reply>>;
}

/// The right a call needs: `POST /purge` purge, `POST /maintenance` maintenance, any other
/// `GET` read, anything else (waiting-room switches, silences, backups on demand) all.
/// `GET /token` (who am I) needs only a valid token: `None`.
fn needed(method: &str, path: &str) -> Option<AdminPermission> {
    Some(match (method, path) {
        ("GET", "/token") => return None,
        ("POST", "/purge") => AdminPermission::Purge,
        ("POST", "/maintenance") => AdminPermission::Maintenance,
        ("GET", _) => AdminPermission::Read,
        _ => AdminPermission::All,
    })
}

/// Answers one call: `/healthz` without a token; else the caller (`None`: no valid token;
/// the listener finds it with [`Tokens::caller`]) and its rights, then `/metrics`,
/// `/status`, `/token`, the process's own endpoints and the extensions'. A call that may
/// change something (any method but `GET`) that got past the token and rights checks is
/// appended to `journal` — who, what, the site, the parameters (secrets redacted) and the
/// answer's status — before the answer goes back.
pub async fn answer(
    call: &Call,
    caller: Option<Caller>,
    own: Option<&dyn Own>,
    parts: &[Arc<dyn AdminExtension>],
    journal: Option<&Journal>,
) -> Reply {
    let who = caller.as_ref().map(|c| c.name.clone());
    let reply = route(call, caller, own, parts).await;
    if let (Some(journal), Some(who)) = (journal, who)
        && call.method != "GET"
        && !matches!(reply.status, 401 | 403)
    {
        let event = journal_event(call, who, &reply);
        let journal = journal.clone();
        match tokio::task::spawn_blocking(move || journal.append(event)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => log::error!(target: AUDIT, "{e}"),
            Err(e) => log::error!(target: AUDIT, "the journal's writer stopped: {e}"),
        }
    }
    reply
}

/// The journal's line for a call: its parameters in order, secrets redacted; its result the
/// status, and the error an error answer gave.
fn journal_event(call: &Call, who: String, reply: &Reply) -> Event {
    let mut pairs: Vec<(&String, &String)> = call.query.iter().collect();
    pairs.sort();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let detail = peakguard_config::redact::query(&format!("?{query}"))
        .trim_start_matches('?')
        .to_string();
    let error = (reply.status >= 400)
        .then(|| serde_json::from_slice::<Value>(&reply.body).ok())
        .flatten()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
    Event {
        who,
        what: format!("{} {}", call.method, call.path),
        site: call
            .query
            .get("site")
            .or_else(|| call.query.get("host"))
            .cloned(),
        detail,
        result: match error {
            Some(e) => format!("{}: {e}", reply.status),
            None => reply.status.to_string(),
        },
    }
}

async fn route(
    call: &Call,
    caller: Option<Caller>,
    own: Option<&dyn Own>,
    parts: &[Arc<dyn AdminExtension>],
) -> Reply {
    let (method, path) = (call.method.as_str(), call.path.as_str());
    if path == "/healthz" {
        return Reply::text(200, "text/plain", b"ok\n".to_vec());
    }
    let Some(caller) = caller else {
        return Reply::json(
            401,
            json!({"error": "missing or wrong bearer token (Authorization: Bearer TOKEN; see admin.token / admin.token_file)"}),
        );
    };
    if let Some(need) = needed(method, path)
        && !caller
            .permissions
            .iter()
            .any(|p| *p == AdminPermission::All || *p == need)
    {
        log::warn!(
            target: AUDIT,
            "admin {method} {path} refused to token {:?} (it may {:?}, this needs {need:?})",
            caller.name,
            caller.permissions
        );
        return Reply::json(
            403,
            json!({"error": format!("token {:?} may not do this (it has {:?}; {method} {path} needs {need:?})", caller.name, caller.permissions)}),
        );
    }
    if path == "/metrics" {
        log::debug!(target: AUDIT, "admin {method} {path} by {:?}", caller.name);
    } else {
        log::info!(target: AUDIT, "admin {method} {path} by {:?}", caller.name);
    }
    match (method, path) {
        ("GET", "/metrics") => {
            let mut body = match own {
                Some(own) => own.metrics().await,
                None => String::new(),
            };
            for part in parts {
                body.push_str(&part.metrics());
            }
            return Reply::text(200, "text/plain; version=0.0.4", body.into_bytes());
        }
        ("GET", "/status") => {
            let mut status = match own {
                Some(own) => own.status().await,
                None => serde_json::Map::new(),
            };
            for part in parts {
                status.insert(part.name().to_string(), part.status());
            }
            return Reply::json(200, Value::Object(status));
        }
        ("GET", "/token") => {
            return Reply::json(
                200,
                json!({"name": caller.name, "permissions": caller.permissions, "version": env!("CARGO_PKG_VERSION")}),
            );
        }
        _ => {}
    }
    if let Some(own) = own
        && let Some(reply) = own.handle(call).await
    {
        return reply;
    }
    match parts
        .iter()
        .find_map(|p| p.handle(method, path, &call.query))
    {
        Some((status, value)) => Reply::json(status, value),
        None => Reply::json(
            404,
            json!({"error": format!("no such admin endpoint: {method} {path} (see /status for what this process serves)")}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Part;
    impl AdminExtension for Part {
        fn name(&self) -> &str {
            "part"
        }
        fn handle(
            &self,
            method: &str,
            path: &str,
            _query: &HashMap<String, String>,
        ) -> Option<(u16, Value)> {
            (method == "POST" && path == "/part").then(|| (200, json!({"done": true})))
        }
        fn metrics(&self) -> String {
            "part_up 1\n".into()
        }
        fn status(&self) -> Value {
            json!({"ok": true})
        }
    }

    fn call(method: &str, path: &str, token: &str) -> Reply {
        let scoped = [(
            "reader".to_string(),
            "read-token-0123456".to_string(),
            vec![AdminPermission::Read],
        )];
        let tokens = Tokens {
            admin: "admin-token-0123456",
            scoped: &scoped,
        };
        let parts: Vec<Arc<dyn AdminExtension>> = vec![Arc::new(Part)];
        let call = Call::new(method, path, None, Some(&format!("Bearer {token}")));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(answer(
                &call,
                call.authorization.as_deref().and_then(|a| tokens.caller(a)),
                None,
                &parts,
                None,
            ))
    }

    #[test]
    fn tokens_rights_and_parts_decide_each_answer() {
        assert_eq!(call("GET", "/healthz", "").status, 200);
        assert_eq!(call("GET", "/status", "wrong").status, 401);
        let status = call("GET", "/status", "read-token-0123456");
        assert_eq!(status.status, 200);
        assert_eq!(
            String::from_utf8_lossy(&status.body),
            "{\"part\":{\"ok\":true}}\n"
        );
        let metrics = call("GET", "/metrics", "admin-token-0123456");
        assert_eq!(metrics.body, b"part_up 1\n");
        assert_eq!(call("POST", "/part", "read-token-0123456").status, 403);
        assert_eq!(call("POST", "/part", "admin-token-0123456").status, 200);
        assert_eq!(call("GET", "/nothing", "admin-token-0123456").status, 404);
        let who = call("GET", "/token", "read-token-0123456");
        assert!(String::from_utf8_lossy(&who.body).contains("\"reader\""));
    }

    #[test]
    fn a_changing_call_that_got_through_is_journaled_with_its_secrets_redacted() {
        let dir = tempfile::tempdir().expect("dir");
        let journal = Journal::new(dir.path().join("journal.jsonl"));
        let tokens = Tokens {
            admin: "admin-token-0123456",
            scoped: &[],
        };
        let parts: Vec<Arc<dyn AdminExtension>> = vec![Arc::new(Part)];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for (method, path, query, token) in [
            (
                "POST",
                "/part",
                "site=shop&token=s3cret",
                "admin-token-0123456",
            ),
            ("GET", "/status", "", "admin-token-0123456"),
            ("POST", "/part", "", "wrong-token-0000000"),
            ("POST", "/nothing", "", "admin-token-0123456"),
        ] {
            let call = Call::new(method, path, Some(query), Some(&format!("Bearer {token}")));
            let caller = call.authorization.as_deref().and_then(|a| tokens.caller(a));
            rt.block_on(answer(&call, caller, None, &parts, Some(&journal)));
        }
        let entries = peakguard_journal::read(journal.path()).expect("read");
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0].who, "admin");
        assert_eq!(entries[0].what, "POST /part");
        assert_eq!(entries[0].site.as_deref(), Some("shop"));
        assert_eq!(entries[0].detail, "site=shop&token=***");
        assert_eq!(entries[0].result, "200");
        assert!(
            entries[1].result.starts_with("404: no such admin endpoint"),
            "{entries:?}"
        );
        assert_eq!(peakguard_journal::verify(journal.path()), Ok(2));
    }
}
