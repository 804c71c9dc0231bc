//! Open connections per client. Pingora's connection filter sees a connection open but
//! never close, so connections are counted where they show themselves: each request names
//! its connection (the kernel's socket cookie, never reused), and a connection counts as
//! open while it sent a request within `window` (the client timeout: an idle connection is
//! closed by then). A client's new connection over the limit gets 429 and is closed.
//! Local to this edge (connections belong to one process), bounded: at most
//! [`MAX_CLIENTS`] clients are tracked; past that the least recently seen goes.

use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use crate::limits::client_key;
use crate::pages;
use ipnet::IpNet;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const MAX_CLIENTS: usize = 100_000;

struct Client {
    /// (connection, last request) — at most `limit + 1` entries.
    connections: Vec<(u64, Instant)>,
    seen: Instant,
}

pub struct ConnectionsGuard {
    limit: usize,
    window: Duration,
    allow: Vec<IpNet>,
    clients: Mutex<HashMap<String, Client>>,
}

impl ConnectionsGuard {
    pub fn new(limit: usize, window: Duration, allow: Vec<IpNet>) -> Self {
        ConnectionsGuard {
            limit,
            window,
            allow,
            clients: Mutex::default(),
        }
    }

    /// Counts `connection` for `client`; `false` when it is a new one over the limit.
    fn admit(&self, client: String, connection: u64, now: Instant) -> bool {
        let mut clients = self.clients.lock();
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let window = self.window;
            clients.retain(|_, c| now.duration_since(c.seen) < window);
            if clients.len() >= MAX_CLIENTS
                && let Some(oldest) = clients
                    .iter()
                    .min_by_key(|(_, c)| c.seen)
                    .map(|(k, _)| k.clone())
            {
                clients.remove(&oldest);
            }
        }
        let c = clients.entry(client).or_insert_with(|| Client {
            connections: Vec::new(),
            seen: now,
        });
        c.seen = now;
        let window = self.window;
        c.connections
            .retain(|(_, last)| now.duration_since(*last) < window);
        if let Some(entry) = c.connections.iter_mut().find(|(id, _)| *id == connection) {
            entry.1 = now;
            return true;
        }
        if c.connections.len() >= self.limit {
            return false;
        }
        c.connections.push((connection, now));
        true
    }
}

impl Guard for ConnectionsGuard {
    fn name(&self) -> &'static str {
        "connections"
    }

    fn on_request(&self, req: &RequestFacts<'_>) -> Verdict {
        let Some(connection) = req.connection else {
            return Verdict::Pass;
        };
        if self.allow.iter().any(|n| n.contains(&req.client.ip)) {
            return Verdict::Pass;
        }
        if self.admit(client_key(req.client.ip), connection, Instant::now()) {
            return Verdict::Pass;
        }
        let retry = self.window.as_secs().max(1);
        Verdict::Respond {
            reason: format!("more than {} open connections", self.limit).into(),
            response: LocalResponse::page(429, pages::too_many(retry))
                .with_header("retry-after", retry.to_string())
                .closing(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Req;

    fn on(g: &ConnectionsGuard, ip: &str, conn: u64) -> u16 {
        let mut r = Req::get("/").sent_by(ip);
        r.connection = Some(conn);
        match g.on_request(&r.facts()) {
            Verdict::Pass => 200,
            Verdict::Respond { response, .. } => response.status,
            _ => 0,
        }
    }

    #[test]
    fn a_client_may_hold_so_many_connections_and_reuse_them() {
        let g = ConnectionsGuard::new(2, Duration::from_secs(60), vec![]);
        assert_eq!(on(&g, "198.51.100.1", 1), 200);
        assert_eq!(on(&g, "198.51.100.1", 2), 200);
        assert_eq!(
            on(&g, "198.51.100.1", 1),
            200,
            "requests on an open one go on"
        );
        assert_eq!(on(&g, "198.51.100.1", 3), 429, "a third at once is refused");
        assert_eq!(on(&g, "198.51.100.2", 3), 200, "another client has its own");
        let allowed = ConnectionsGuard::new(
            1,
            Duration::from_secs(60),
            vec!["198.51.100.0/24".parse().unwrap()],
        );
        assert_eq!(on(&allowed, "198.51.100.1", 1), 200);
        assert_eq!(
            on(&allowed, "198.51.100.1", 2),
            200,
            "the allow list is exempt"
        );
    }

    #[test]
    fn connections_idle_past_the_window_no_longer_count() {
        let g = ConnectionsGuard::new(1, Duration::from_millis(1), vec![]);
        assert_eq!(on(&g, "198.51.100.1", 1), 200);
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        assert_eq!(
            on(&g, "198.51.100.1", 2),
            200,
            "the first one was closed by then"
        );
    }
}
