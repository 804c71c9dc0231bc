//! Open connections per client, decided when a connection is accepted — before TLS and
//! before any request, so that connections that never send one (a slow-loris flood) count
//! too. A client already holding `limit` connections has its next one closed at once.
//!
//! Who holds how many: the kernel knows, and the edge asks it about once a second
//! ([`AcceptGate::counted`], from its socket table); connections accepted since that count
//! are added on top, so a burst between two counts is held to the limit as well. The gate
//! is one per process (the listeners are shared by every site): its limit is the largest
//! `limits.connections` of the sites, and it is off when any site has no such limit.
//! Clients are keyed like the traffic limits (an IPv6 client by its /64); allow-listed
//! addresses and trusted proxies are exempt. Bounded: at most [`MAX_CLIENTS`] clients are
//! counted between two counts of the kernel; past that, new clients pass uncounted until the
//! next count.

use crate::GuardConfig;
use crate::limits::client_key;
use ipnet::IpNet;
use parking_lot::{Mutex, RwLock};
use peakguard_config::Config;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub const MAX_CLIENTS: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateSettings {
    /// Connections per client at most; 0 = off.
    pub limit: usize,
    /// Never limited: every site's `limits.allow` and `server.trusted_proxies`.
    pub exempt: Vec<IpNet>,
}

impl GateSettings {
    /// The gate a configuration asks for.
    pub fn from_config(config: &Config) -> Self {
        let mut limit = 0usize;
        for site in &config.sites {
            let l = crate::limits::LimitsConfig::of_site(site);
            if !l.enabled || l.connections == 0 {
                // One site without a limit: the shared listeners cannot refuse anyone.
                return GateSettings::default();
            }
            limit = limit.max(l.connections);
        }
        let mut exempt = config.server.trusted_proxies.clone();
        for site in &config.sites {
            exempt.extend(crate::limits::LimitsConfig::of_site(site).allow);
        }
        GateSettings { limit, exempt }
    }
}

#[derive(Default)]
struct Counts {
    /// Open connections per client at the kernel's last count.
    kernel: HashMap<String, u32>,
    /// Accepted while that count was being taken (it may or may not include them).
    pending: HashMap<String, u32>,
    /// Accepted since.
    accepted: HashMap<String, u32>,
    /// Clients whose refusal was logged lately (forgotten every [`LOG_EVERY`] counts).
    logged: HashSet<String>,
    counts_taken: u64,
}

/// A client refused again and again is logged about once a minute.
const LOG_EVERY: u64 = 60;

#[derive(Default)]
pub struct AcceptGate {
    settings: RwLock<GateSettings>,
    counts: Mutex<Counts>,
    refused: AtomicU64,
}

impl AcceptGate {
    pub fn configure(&self, settings: GateSettings) {
        if *self.settings.read() != settings {
            log::info!(
                "connections: {}",
                match settings.limit {
                    0 => "no limit per client".to_string(),
                    n => format!("at most {n} open connections per client"),
                }
            );
        }
        *self.settings.write() = settings;
    }

    /// Connections per client at most; 0 = off.
    pub fn limit(&self) -> usize {
        self.settings.read().limit
    }

    /// How many times the kernel's count came in.
    pub fn counts_taken(&self) -> u64 {
        self.counts.lock().counts_taken
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }

    pub fn render_metrics(&self, out: &mut String) {
        use peakguard_prometheus::{Exposition, Kind};
        let mut e = Exposition::new(out);
        e.single(
            "peakguard_connections_limit",
            Kind::Gauge,
            "Open connections per client at most (0: no limit).",
            self.limit(),
        );
        e.single(
            "peakguard_connections_refused_total",
            Kind::Counter,
            "Connections closed at accept: their client held its limit.",
            self.refused(),
        );
    }

    /// May a new connection from `ip` be accepted? Counts it when it may.
    pub fn admit(&self, ip: IpAddr) -> bool {
        let (limit, exempt) = {
            let s = self.settings.read();
            (
                s.limit,
                s.limit == 0 || s.exempt.iter().any(|n| n.contains(&ip)),
            )
        };
        if exempt {
            return true;
        }
        let key = client_key(ip);
        let mut c = self.counts.lock();
        let open = [&c.kernel, &c.pending, &c.accepted]
            .iter()
            .map(|m| m.get(&key).copied().unwrap_or(0) as usize)
            .sum::<usize>();
        if open >= limit {
            self.refused.fetch_add(1, Relaxed);
            if c.logged.len() < MAX_CLIENTS && c.logged.insert(key.clone()) {
                log::warn!(
                    "connections: {key} holds {open} open connections (limit {limit}); new ones are closed"
                );
            }
            return false;
        }
        if c.accepted.len() < MAX_CLIENTS || c.accepted.contains_key(&key) {
            *c.accepted.entry(key).or_default() += 1;
        }
        true
    }

    /// A count of the kernel's sockets is about to be taken: what was accepted so far will
    /// be in it.
    pub fn counting(&self) {
        let mut c = self.counts.lock();
        let accepted = std::mem::take(&mut c.accepted);
        for (k, n) in accepted {
            *c.pending.entry(k).or_default() += n;
        }
    }

    /// The kernel's count of open connections per client address, taken after
    /// [`AcceptGate::counting`].
    pub fn counted(&self, per_address: impl IntoIterator<Item = IpAddr>) {
        let mut kernel: HashMap<String, u32> = HashMap::new();
        for ip in per_address {
            *kernel.entry(client_key(ip)).or_default() += 1;
        }
        let mut c = self.counts.lock();
        c.kernel = kernel;
        c.pending.clear();
        c.counts_taken += 1;
        if c.counts_taken.is_multiple_of(LOG_EVERY) {
            c.logged.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn gate(limit: usize, exempt: &[&str]) -> AcceptGate {
        let g = AcceptGate::default();
        g.configure(GateSettings {
            limit,
            exempt: exempt.iter().map(|n| n.parse().unwrap()).collect(),
        });
        g
    }

    #[test]
    fn a_client_may_open_so_many_connections_then_new_ones_are_refused() {
        let g = gate(2, &["203.0.113.0/24"]);
        assert!(g.admit(ip("198.51.100.1")));
        assert!(g.admit(ip("198.51.100.1")));
        assert!(!g.admit(ip("198.51.100.1")), "a third before any count");
        assert!(g.admit(ip("198.51.100.2")), "another client has its own");
        for _ in 0..5 {
            assert!(g.admit(ip("203.0.113.9")), "exempt");
        }
        // IPv6 clients are counted by their /64.
        assert!(g.admit(ip("2001:db8::1")));
        assert!(g.admit(ip("2001:db8::2")));
        assert!(!g.admit(ip("2001:db8::3")));
        assert_eq!(g.refused(), 2);
    }

    #[test]
    fn the_kernels_count_replaces_the_guess_so_closed_connections_free_their_slot() {
        let g = gate(2, &[]);
        assert!(g.admit(ip("198.51.100.1")));
        assert!(g.admit(ip("198.51.100.1")));
        g.counting();
        // Accepted while the count is taken: counted on top of what it finds.
        assert!(!g.admit(ip("198.51.100.1")));
        // The kernel says both are still open.
        g.counted([ip("198.51.100.1"), ip("198.51.100.1")]);
        assert!(!g.admit(ip("198.51.100.1")));
        // Both closed: the next count finds none.
        g.counting();
        g.counted([]);
        assert!(g.admit(ip("198.51.100.1")));
        assert!(g.admit(ip("198.51.100.1")));
        assert!(!g.admit(ip("198.51.100.1")));
        // A connection that never sent a byte is open all the same: the kernel counts it.
        g.counting();
        g.counted([ip("198.51.100.1"); 3]);
        assert!(!g.admit(ip("198.51.100.1")));
    }

    #[test]
    fn off_when_any_site_has_no_connection_limit() {
        let toml = |b_limits: &str| {
            format!(
                "[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n[site.shield.limits]\nenabled = true\nconnections = 8\nallow = [\"192.0.2.0/24\"]\n[[site]]\nname = \"b\"\nhosts = [\"b.test\"]\norigin = \"http://127.0.0.1:1\"\n{b_limits}"
            )
        };
        let tables = crate::config_tables();
        let extensions = peakguard_config::Extensions {
            guard_tables: &tables,
            ..Default::default()
        };
        let parse = |t: &str| peakguard_config::parse_with(t, "t", &extensions).expect("valid");
        assert_eq!(GateSettings::from_config(&parse(&toml(""))).limit, 0);
        let both = GateSettings::from_config(&parse(&toml(
            "[site.shield.limits]\nenabled = true\nconnections = 16\n",
        )));
        assert_eq!(both.limit, 16, "the largest of the sites");
        assert!(both.exempt.iter().any(|n| n.contains(&ip("192.0.2.7"))));
        let g = AcceptGate::default();
        g.configure(GateSettings::default());
        for _ in 0..100 {
            assert!(g.admit(ip("198.51.100.1")), "off");
        }
    }
}
