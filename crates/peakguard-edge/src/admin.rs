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
use peakguard_admin::api::{BoxFuture, Call, Own, Reply, Tokens, answer};
use peakguard_shield::MaintenanceState;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

pub struct AdminApp {
    pub state: Arc<EdgeState>,
}

pub use peakguard_admin::AdminExtension;

fn json_reply(status: StatusCode, value: serde_json::Value) -> Reply {
    Reply::json(status.as_u16(), value)
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

impl AdminApp {
    fn purge(&self, q: &HashMap<String, String>) -> Reply {
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

    fn maintenance(&self, method: &str, q: &HashMap<String, String>) -> Reply {
        if method == "POST" {
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

    async fn status(&self) -> serde_json::Map<String, serde_json::Value> {
        let s = self.state.cache.snapshot();
        let m = &self.state.metrics;
        let live = self.state.live();
        let status = json!({
                "uptime_secs": self.state.started.elapsed().as_secs(),
                "maintenance": self.state.shield.maintenance.read().on,
                "requests": m.total_requests(),
                "origin_errors": m.origin_errors(),
                "cache": {
                    "memory_bytes": s.memory_bytes, "memory_objects": s.memory_objects,
                    "disk_bytes": s.disk_bytes, "disk_objects": s.disk_objects,
                },
                "shield": self.shield_status().await,
                "waf": self
                    .state
                    .shield
                    .waf_statuses(live.sites.all().map(|s| s.name.as_str())),
        });
        match status {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
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

impl AdminApp {
    /// The edge's own endpoints.
    async fn own(&self, call: &Call) -> Option<Reply> {
        let q = &call.query;
        Some(match (call.method.as_str(), call.path.as_str()) {
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
            ("POST", "/purge") => self.purge(q),
            (method @ ("GET" | "POST"), "/maintenance") => self.maintenance(method, q),
            ("GET", "/shield") => json_reply(StatusCode::OK, self.shield_status().await),
            ("GET", "/stats") => {
                let (code, value) = crate::admin_stats::handle(&self.state, q).await;
                json_reply(code, value)
            }
            (m, p) => {
                let (code, value) = crate::admin_room::handle(&self.state, m, p, q).await?;
                json_reply(code, value)
            }
        })
    }
}

impl Own for AdminApp {
    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(async move {
            let mut body = self.state.metrics.render(
                &self.state.cache.snapshot(),
                self.state.shield.maintenance.read().on,
            );
            self.state.shield.render_metrics(&mut body).await;
            body
        })
    }

    fn status(&self) -> BoxFuture<'_, serde_json::Map<String, serde_json::Value>> {
        Box::pin(self.status())
    }

    fn handle<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Option<Reply>> {
        Box::pin(self.own(call))
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let call = Call::new(
            req.method.as_str(),
            req.uri.path(),
            req.uri.query(),
            authorization,
        );
        let caller = authorization.and_then(|a| {
            Tokens {
                admin: &self.state.admin_token,
                scoped: &self.state.scoped_tokens.read(),
            }
            .caller(a)
        });
        let reply = answer(
            &call,
            caller,
            Some(self),
            &self.state.extensions,
            Some(&self.state.journal),
        )
        .await;
        Response::builder()
            .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", reply.content_type)
            .header("content-length", reply.body.len())
            .header("cache-control", "no-store")
            .body(reply.body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
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
