//! The admin API, on its own listener (loopback by default), bearer token required:
//!
//! - `GET  /healthz` (no token) → `ok`
//! - `GET  /metrics` → Prometheus text
//! - `GET  /status` → JSON summary
//! - `POST /purge?url=URL` | `?prefix=URL` | `?tag=TAG` | `?all=1` → `{"purged": N}`
//! - `GET  /maintenance`, `POST /maintenance?state=on|off[&message=..][&retry_after=SECS]`
//! - `GET  /shield` → each site's guards, origin admission and waiting room
//! - the waiting room's switches (see `admin_room.rs`)
//!
//! - whatever the [`AdminExtension`]s add (the backup daemon: `GET /backups`,
//!   `POST /backup?site=NAME`), their metrics appended to `/metrics` and their status to
//!   `/status`.
//!
//! A purge URL without a scheme purges both `http://` and `https://` copies.

use crate::state::EdgeState;
use async_trait::async_trait;
use http::{Response, StatusCode};
use peakguard_config::AdminPermission;
use peakguard_shield::MaintenanceState;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub struct AdminApp {
    pub state: Arc<EdgeState>,
}

pub use peakguard_admin::AdminExtension;

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn json_reply(status: StatusCode, value: serde_json::Value) -> Response<Vec<u8>> {
    reply(
        status,
        "application/json",
        format!("{value}\n").into_bytes(),
    )
}

fn query_map(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Both schemes for a URL given without one.
fn with_schemes(url: &str) -> Vec<String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        vec![url.to_string()]
    } else {
        vec![format!("http://{url}"), format!("https://{url}")]
    }
}

/// The most tags one purge call may name.
const MAX_TAGS_PER_PURGE: usize = 1000;

/// The log target of the admin API's calls (the binary shows it at info by default): each
/// call with the name of the token that made it.
pub const AUDIT: &str = "peakguard_audit";

/// Who called: the admin token, or a scoped token's name and rights.
struct Caller {
    name: String,
    permissions: Vec<AdminPermission>,
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

impl AdminApp {
    fn caller(&self, session: &ServerSession) -> Option<Caller> {
        let given = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())?;
        let bearer =
            |token: &str| bool::from(given.as_bytes().ct_eq(format!("Bearer {token}").as_bytes()));
        if bearer(&self.state.admin_token) {
            return Some(Caller {
                name: "admin".into(),
                permissions: vec![AdminPermission::All],
            });
        }
        self.state
            .scoped_tokens
            .read()
            .iter()
            .find(|(_, token, _)| bearer(token))
            .map(|(name, _, permissions)| Caller {
                name: name.clone(),
                permissions: permissions.clone(),
            })
    }

    fn purge(&self, q: &HashMap<String, String>) -> Response<Vec<u8>> {
        let storage = self.state.cache.storage;
        let purged = if let Some(url) = q.get("url") {
            with_schemes(url)
                .iter()
                .map(|u| storage.purge_url(&normalize_url(u)))
                .sum::<usize>()
        } else if let Some(prefix) = q.get("prefix") {
            with_schemes(prefix)
                .iter()
                .map(|p| storage.purge_prefix(p))
                .sum()
        } else if let Some(tags) = q.get("tag").or(q.get("tags")) {
            // `tags=a,b,c`: one call for everything a change affects (the WordPress plugin
            // batches a request's purges); at most MAX_TAGS_PER_PURGE of them.
            let tags: Vec<&str> = tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            if tags.len() > MAX_TAGS_PER_PURGE {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("{} tags in one purge; at most {MAX_TAGS_PER_PURGE} (or purge ?all=1)", tags.len())}),
                );
            }
            tags.iter()
                .map(|t| match q.get("host") {
                    Some(host) => storage.purge_tag_on_host(t, host),
                    None => storage.purge_tag(t),
                })
                .sum()
        } else if q.get("all").is_some_and(|v| v == "1" || v == "true") {
            match q.get("host") {
                Some(host) => with_schemes(&format!("{}/", host.to_ascii_lowercase()))
                    .iter()
                    .chain(&with_schemes(&format!("{}:", host.to_ascii_lowercase())))
                    .map(|p| storage.purge_prefix(p))
                    .sum(),
                None => storage.purge_all(),
            }
        } else {
            return json_reply(
                StatusCode::BAD_REQUEST,
                json!({"error": "say what to purge: ?url=URL, ?prefix=URL, ?tag=TAG (or tags=A,B), or ?all=1 (each tag and all may be limited by &host=HOST)"}),
            );
        };
        log::info!("admin purge {q:?}: {purged} object(s)");
        json_reply(StatusCode::OK, json!({ "purged": purged }))
    }

    fn maintenance(&self, method: &http::Method, q: &HashMap<String, String>) -> Response<Vec<u8>> {
        if method == http::Method::POST {
            let on = match q.get("state").map(String::as_str) {
                Some("on") => true,
                Some("off") => false,
                other => {
                    return json_reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": format!("state must be `on` or `off`, got {other:?}")}),
                    );
                }
            };
            let retry_after_secs = match q.get("retry_after").map(|v| v.parse::<u64>()) {
                None => 0,
                Some(Ok(s)) => s,
                Some(Err(_)) => {
                    return json_reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "retry_after must be whole seconds"}),
                    );
                }
            };
            let state = MaintenanceState {
                on,
                message: q.get("message").cloned().unwrap_or_default(),
                retry_after_secs,
            };
            if let Err(e) = self.state.set_maintenance(state) {
                return json_reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": format!("cannot write {}: {e}", self.state.maintenance_file.display())}),
                );
            }
            log::info!("maintenance mode {}", if on { "on" } else { "off" });
        }
        let m = self.state.shield.maintenance.read().clone();
        json_reply(StatusCode::OK, serde_json::to_value(m).unwrap_or_default())
    }

    async fn status(&self) -> Response<Vec<u8>> {
        let s = self.state.cache.snapshot();
        let m = &self.state.metrics;
        let mut status = json!({
                "uptime_secs": self.state.started.elapsed().as_secs(),
                "maintenance": self.state.shield.maintenance.read().on,
                "requests": m.total_requests(),
                "origin_errors": m.origin_errors(),
                "cache": {
                    "memory_bytes": s.memory_bytes, "memory_objects": s.memory_objects,
                    "disk_bytes": s.disk_bytes, "disk_objects": s.disk_objects,
                },
        });
        status["shield"] = self.shield_status().await;
        let live = self.state.live();
        status["waf"] = json!(
            self.state
                .shield
                .waf_statuses(live.sites.all().map(|s| s.name.as_str()))
        );
        for ext in &self.state.extensions {
            status[ext.name()] = ext.status();
        }
        json_reply(StatusCode::OK, status)
    }

    /// Each site's guards in order, and each origin admission: limit, requests at the
    /// origin, waiters per lane.
    async fn shield_status(&self) -> serde_json::Value {
        let live = self.state.live();
        let sites: Vec<_> = live
            .sites
            .all()
            .map(|site| json!({"site": site.name, "guards": site.guards.names()}))
            .collect();
        let admission: Vec<_> = self
            .state
            .shield
            .admission_snapshots()
            .into_iter()
            .map(|a| {
                let lanes: serde_json::Map<_, _> = peakguard_shield::Lane::ALL
                    .iter()
                    .map(|l| (l.label().to_string(), json!(a.waiting[*l as usize])))
                    .collect();
                json!({
                    "site": a.site,
                    "limit": a.limit,
                    "adaptive": a.adaptive,
                    "in_flight": a.in_flight,
                    "peak_in_flight": a.peak_in_flight,
                    "waiting": lanes,
                    "timed_out": a.timed_out.iter().sum::<u64>(),
                    "lane_full": a.lane_full.iter().sum::<u64>(),
                })
            })
            .collect();
        let gate = &self.state.shield.accept_gate;
        json!({
            "sites": sites,
            "admission": admission,
            "waiting_rooms": self.state.shield.room_statuses().await,
            "connections": {
                "limit_per_client": gate.limit(),
                "refused": gate.refused(),
                "kernel_counts": gate.counts_taken(),
            },
        })
    }
}

/// Key URLs have a lower-case host and no default port (as the cache builds them).
fn normalize_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    format!(
        "{scheme}://{}{path}",
        peakguard_cache::key::normalize_host(host, scheme)
    )
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path().to_string();
        let method = req.method.clone();
        let q = query_map(req.uri.query());
        if path == "/healthz" {
            return reply(StatusCode::OK, "text/plain", b"ok\n".to_vec());
        }
        let Some(caller) = self.caller(session) else {
            return json_reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing or wrong bearer token (Authorization: Bearer TOKEN; see admin.token / admin.token_file)"}),
            );
        };
        if let Some(need) = needed(method.as_str(), &path)
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
            return json_reply(
                StatusCode::FORBIDDEN,
                json!({"error": format!("token {:?} may not do this (it has {:?}; {method} {path} needs {need:?})", caller.name, caller.permissions)}),
            );
        }
        if path == "/metrics" {
            log::debug!(target: AUDIT, "admin {method} {path} by {:?}", caller.name);
        } else {
            log::info!(target: AUDIT, "admin {method} {path} by {:?}", caller.name);
        }
        match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => {
                let mut body = self.state.metrics.render(
                    &self.state.cache.snapshot(),
                    self.state.shield.maintenance.read().on,
                );
                self.state.shield.render_metrics(&mut body).await;
                for ext in &self.state.extensions {
                    body.push_str(&ext.metrics());
                }
                reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    body.into_bytes(),
                )
            }
            ("GET", "/token") => json_reply(
                StatusCode::OK,
                json!({"name": caller.name, "permissions": caller.permissions, "version": env!("CARGO_PKG_VERSION")}),
            ),
            ("GET", "/cache") => match q.get("url") {
                Some(url) => {
                    let storage = self.state.cache.storage;
                    let variants: usize = with_schemes(url)
                        .iter()
                        .map(|u| storage.variants_of(&normalize_url(u)))
                        .sum();
                    json_reply(
                        StatusCode::OK,
                        json!({"url": url, "stored_variants": variants}),
                    )
                }
                None => json_reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "say which page: GET /cache?url=http://host/path"}),
                ),
            },
            ("GET", "/status") => self.status().await,
            ("POST", "/purge") => self.purge(&q),
            ("GET" | "POST", "/maintenance") => self.maintenance(&method, &q),
            ("GET", "/shield") => json_reply(StatusCode::OK, self.shield_status().await),
            (m, p) => {
                if let Some((code, value)) = crate::admin_room::handle(&self.state, m, p, &q).await
                {
                    return json_reply(code, value);
                }
                if let Some((code, value)) = self
                    .state
                    .extensions
                    .iter()
                    .find_map(|ext| ext.handle(m, p, &q))
                {
                    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
                    return json_reply(code, value);
                }
                json_reply(
                    StatusCode::NOT_FOUND,
                    json!({"error": format!("no such admin endpoint: {method} {path}")}),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_urls_are_normalized_like_keys() {
        assert_eq!(
            normalize_url("http://Shop.Test:80/a?b=1"),
            "http://shop.test/a?b=1"
        );
        assert_eq!(normalize_url("https://shop.test"), "https://shop.test/");
        assert_eq!(
            with_schemes("shop.test/x"),
            vec!["http://shop.test/x", "https://shop.test/x"]
        );
    }
}
