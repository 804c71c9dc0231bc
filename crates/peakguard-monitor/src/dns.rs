//! `kind = "dns"`: the addresses a name resolves to, asked of a named resolver or of the
//! system's (`/etc/resolv.conf`, `/etc/hosts`), against the ones expected, and the record's
//! TTL — what a migration watches: the TTL lowered a day before, then the new address
//! everywhere after the switch.
//!
//! ```toml
//! [[probe]]
//! name = "shop-dns"
//! kind = "dns"
//! query = "shop.example.com"
//! resolver = "9.9.9.9"            # default: the system's
//! record = "A"                    # or "AAAA"
//! expect = ["203.0.113.7"]        # the answer, in any order; empty: any answer passes
//! max_ttl = "5m"                  # fail while the TTL is longer
//! ```
//!
//! Values for alert rules: `addresses` (how many), `ttl` (seconds, the smallest of the
//! answer's records), `expected` (1 when the answer is `expect`).

use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::ProbeResult;
use crate::sources::Sources;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use peakguard_config::{ProbeConfig, Seconds};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

pub(crate) struct Dns;
pub(crate) static PROBE: Registered<Dns> = Registered::NEW;

/// A `dns` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsSettings {
    /// The name to resolve.
    query: String,
    /// `"A"` (default) or `"AAAA"`.
    #[serde(default)]
    record: Record,
    /// The resolver to ask (`"9.9.9.9"`, `"[2620:fe::fe]:53"`, `"127.0.0.1:5353"`); default:
    /// the system's.
    resolver: Option<String>,
    /// The addresses the answer must be (in any order); empty: any answer passes.
    #[serde(default)]
    expect: Vec<IpAddr>,
    /// Fail while the record's TTL is longer.
    max_ttl: Option<Seconds>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Record {
    #[default]
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
}

impl Record {
    fn record_type(self) -> RecordType {
        match self {
            Record::A => RecordType::A,
            Record::Aaaa => RecordType::AAAA,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Record::A => "A",
            Record::Aaaa => "AAAA",
        }
    }
}

impl Probe for Dns {
    type Settings = DnsSettings;
    const KIND: &'static str = "dns";
    const VALUES: &'static [&'static str] =
        &["success", "duration", "addresses", "ttl", "expected"];

    fn check(s: &DnsSettings) -> Problems {
        check(s)
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: DnsSettings,
        _memory: &'a mut Memory,
        _sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(run(probe, settings))
    }
}

/// The resolver's address: an IP (port 53) or an IP and port.
fn resolver_addr(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

fn check(s: &DnsSettings) -> Problems {
    let mut problems = Vec::new();
    if s.query.trim().is_empty() || s.query.contains(char::is_whitespace) {
        problems.push((
            "query".into(),
            format!("{:?} is not a name such as \"shop.example.com\"", s.query),
        ));
    }
    if let Some(r) = &s.resolver
        && resolver_addr(r).is_none()
    {
        problems.push((
            "resolver".into(),
            format!("{r:?} is not an address such as \"9.9.9.9\" or \"127.0.0.1:5353\""),
        ));
    }
    for ip in &s.expect {
        if ip.is_ipv4() != (s.record == Record::A) {
            problems.push((
                "expect".into(),
                format!("{ip} cannot be the answer to an {} query", s.record.name()),
            ));
        }
    }
    problems
}

fn resolver(s: &DnsSettings) -> Result<TokioResolver, String> {
    let mut builder = match s.resolver.as_deref().and_then(resolver_addr) {
        Some(addr) => {
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut server.connections {
                c.port = addr.port();
            }
            let mut b = Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                TokioRuntimeProvider::default(),
            );
            // What that server says, not this machine's hosts file.
            b.options_mut().use_hosts_file = ResolveHosts::Never;
            b
        }
        None => Resolver::builder_tokio()
            .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?,
    };
    builder.options_mut().cache_size = 0;
    builder
        .build()
        .map_err(|e| format!("cannot make a resolver: {e}"))
}

async fn run(probe: &ProbeConfig, s: DnsSettings) -> ProbeResult {
    let resolver = match resolver(&s) {
        Ok(r) => r,
        Err(e) => return ProbeResult::failed(probe, e),
    };
    let asked = s.resolver.as_deref().unwrap_or("the system's resolver");
    // A named server is asked for the name as given (no search domains).
    let name = match (&s.resolver, s.query.ends_with('.')) {
        (Some(_), false) => format!("{}.", s.query),
        _ => s.query.clone(),
    };
    let lookup = match resolver.lookup(name.as_str(), s.record.record_type()).await {
        Ok(l) => l,
        Err(e) => {
            return ProbeResult::failed(
                probe,
                format!("no {} record for {} from {asked}: {e}", s.record.name(), s.query),
            )
            .with("addresses", 0.0);
        }
    };
    let mut found = BTreeSet::new();
    let mut ttl: Option<u32> = None;
    for record in lookup.answers() {
        let ip = match &record.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        found.insert(ip);
        ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
    }
    let listed: Vec<String> = found.iter().map(IpAddr::to_string).collect();
    let expected: BTreeSet<IpAddr> = s.expect.iter().copied().collect();
    let matches = expected.is_empty() || expected == found;
    let mut problems = Vec::new();
    if found.is_empty() {
        problems.push(format!("no {} address for {}", s.record.name(), s.query));
    }
    if !matches {
        let want: Vec<String> = expected.iter().map(IpAddr::to_string).collect();
        problems.push(format!(
            "{} resolves to [{}], expected [{}]",
            s.query,
            listed.join(", "),
            want.join(", ")
        ));
    }
    if let (Some(max), Some(t)) = (s.max_ttl, ttl)
        && u64::from(t) > max.0.as_secs()
    {
        problems.push(format!(
            "TTL {t} s is longer than max_ttl ({} s)",
            max.0.as_secs()
        ));
    }
    let message = if problems.is_empty() {
        format!(
            "{} → [{}] (TTL {} s) from {asked}",
            s.query,
            listed.join(", "),
            ttl.unwrap_or(0)
        )
    } else {
        format!("{} (from {asked})", problems.join("; "))
    };
    let mut result = ProbeResult::new(probe, problems.is_empty(), message)
        .with("addresses", found.len() as f64)
        .with("expected", f64::from(u8::from(matches && !found.is_empty())));
    if let Some(t) = ttl {
        result = result.with("ttl", f64::from(t));
    }
    result
}
