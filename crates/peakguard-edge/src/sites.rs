//! The sites behind the edge, found by host.

use peakguard_cache::SiteRules;
use peakguard_config::{Config, SiteConfig};
use peakguard_shield::{GuardChain, GuardConfig, Shield};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where a site's origin is and how to reach it.
#[derive(Debug, Clone)]
pub struct Origin {
    pub addr: SocketAddr,
    pub tls: bool,
    pub sni: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

#[derive(Debug)]
pub struct Site {
    pub name: String,
    pub rules: SiteRules,
    pub origin: Origin,
    /// The shield's guards for this site, in order (HTTPS redirect, maintenance, admission).
    pub guards: GuardChain,
    /// `Retry-After` of the busy page (origin admission refused a request).
    pub busy_retry_after: Duration,
    /// How large a request body may be, held while it streams to the origin.
    pub body_limits: peakguard_shield::body::BodyLimits,
    /// An origin 5xx on a page becomes the branded 503 (the `wordpress` profile); the `http`
    /// profile forwards the origin's own status and body, as a standard cache does.
    pub branded_errors: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(
        "site {site:?}: origin {origin:?} cannot be resolved to an address: {reason} (use an IP:port or a name this machine resolves)"
    )]
    Origin {
        site: String,
        origin: String,
        reason: String,
    },
    #[error("site {site:?}: the WAF cannot start: {message}")]
    Waf { site: String, message: String },
    #[error(transparent)]
    Guard(peakguard_shield::ChainError),
}

/// Host → site, with an optional `*` fallback.
#[derive(Debug, Default)]
pub struct SiteTable {
    by_host: HashMap<String, Arc<Site>>,
    fallback: Option<Arc<Site>>,
}

impl SiteTable {
    pub fn from_config(
        config: &Config,
        shield: &Shield,
        room_templates: std::collections::BTreeMap<String, Arc<str>>,
    ) -> Result<Self, SiteError> {
        let mut table = SiteTable::default();
        let shared = peakguard_shield::Shared {
            maintenance_policy: peakguard_shield::MaintenancePolicy::new(
                config.maintenance.allow.clone(),
                &config.maintenance.bypass_cookie,
            ),
            default_retry_after: config.maintenance.retry_after.0.as_secs(),
            room_templates,
            waf: config.waf.clone(),
        };
        for sc in &config.sites {
            let guards = shield.chain_for(sc, &shared).map_err(|e| match e.guard {
                "waf" => SiteError::Waf {
                    site: e.site,
                    message: e.message,
                },
                _ => SiteError::Guard(e),
            })?;
            let site = Arc::new(Site {
                name: sc.name.clone(),
                rules: SiteRules::from_config(sc),
                origin: origin_of(sc)?,
                guards,
                busy_retry_after: peakguard_shield::AdmissionConfig::of_site(sc).retry_after.0,
                body_limits: peakguard_shield::body::BodyLimits::of_site(sc),
                branded_errors: sc.profile == peakguard_config::Profile::Wordpress,
            });
            for h in &sc.hosts {
                if h == "*" {
                    table.fallback = Some(site.clone());
                } else {
                    table.by_host.insert(h.to_ascii_lowercase(), site.clone());
                }
            }
        }
        Ok(table)
    }

    /// Every site once (a site with several hosts is listed once), by name.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Site>> {
        let mut sites: Vec<&Arc<Site>> = self.by_host.values().chain(&self.fallback).collect();
        sites.sort_by(|a, b| a.name.cmp(&b.name));
        sites.dedup_by(|a, b| Arc::ptr_eq(a, b));
        sites.into_iter()
    }

    /// The site for a host (port ignored, case-insensitive).
    pub fn find(&self, host: &str) -> Option<&Arc<Site>> {
        let bare = peakguard_cache::key::host_without_port(host).to_ascii_lowercase();
        self.by_host.get(&bare).or(self.fallback.as_ref())
    }
}

fn origin_of(sc: &SiteConfig) -> Result<Origin, SiteError> {
    let err = |reason: String| SiteError::Origin {
        site: sc.name.clone(),
        origin: sc.origin.clone(),
        reason,
    };
    let url = url::Url::parse(&sc.origin).map_err(|e| err(e.to_string()))?;
    let tls = url.scheme() == "https";
    let host = url
        .host_str()
        .ok_or_else(|| err("no host".into()))?
        .to_string();
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(bare, port))
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".into()))?;
    Ok(Origin {
        addr,
        tls,
        sni: host,
        connect_timeout: sc.connect_timeout.0,
        read_timeout: sc.read_timeout.0,
    })
}
