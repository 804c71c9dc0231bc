//! The deny list: addresses, networks and `User-Agent` fragments refused with 403 before
//! anything else is asked.

use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use crate::pages;
use ipnet::IpNet;
use peakguard_config::SiteConfig;
use serde::Deserialize;

/// In the chain when the site has a deny list (`[site.shield.deny]`, this guard's own table).
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "deny",
    table: "deny",
    build: |b| {
        let config: DenyConfig = b.table()?;
        Ok(DenyGuard::from_config(&config)
            .map(|g| std::sync::Arc::new(g) as std::sync::Arc<dyn Guard>))
    },
    check: Some(check),
};

/// `[site.shield.deny]`: clients refused with 403 before anything else.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenyConfig {
    /// Addresses and networks (CIDRs).
    pub ips: Vec<IpNet>,
    /// Case-insensitive `User-Agent` fragments (`"sqlmap"`, `"masscan"`).
    pub agents: Vec<String>,
    /// Count and log, refuse nobody.
    pub dry_run: bool,
}

fn check(_site: &SiteConfig, value: &toml::Value) -> Vec<(String, String)> {
    let config: DenyConfig = match crate::registry::checked_table(Some(value)) {
        Ok(c) => c,
        Err(problems) => return problems,
    };
    config
        .agents
        .iter()
        .enumerate()
        .filter(|(_, agent)| agent.trim().is_empty())
        .map(|(n, _)| {
            (
                format!("agents[{n}]"),
                "empty entry: it would match every client; remove it".to_string(),
            )
        })
        .collect()
}

pub struct DenyGuard {
    ips: Vec<IpNet>,
    /// Lowercase.
    agents: Vec<String>,
    dry_run: bool,
}

impl DenyGuard {
    /// `None` when the list is empty (no guard to ask).
    pub fn from_config(c: &DenyConfig) -> Option<Self> {
        if c.ips.is_empty() && c.agents.is_empty() {
            return None;
        }
        Some(DenyGuard {
            ips: c.ips.clone(),
            agents: c.agents.iter().map(|a| a.to_ascii_lowercase()).collect(),
            dry_run: c.dry_run,
        })
    }

    fn refuse(&self, reason: String) -> Verdict {
        if self.dry_run {
            return Verdict::DryRun {
                reason: format!("refuse ({reason})").into(),
            };
        }
        Verdict::Respond {
            reason: reason.into(),
            response: LocalResponse::page(403, pages::denied()).closing(),
        }
    }
}

impl Guard for DenyGuard {
    fn name(&self) -> &'static str {
        "deny"
    }

    fn on_request(&self, req: &RequestFacts<'_>) -> Verdict {
        if let Some(net) = self.ips.iter().find(|n| n.contains(&req.client.ip)) {
            return self.refuse(format!("address in {net}"));
        }
        if !self.agents.is_empty()
            && let Some(agent) = req.header("user-agent")
        {
            let agent = agent.to_ascii_lowercase();
            if let Some(hit) = self.agents.iter().find(|a| agent.contains(a.as_str())) {
                return self.refuse(format!("user-agent matches {hit:?}"));
            }
        }
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn its_table_is_checked_with_the_key() {
        let site = SiteConfig::quick("http://127.0.0.1:1", peakguard_config::Profile::Wordpress);
        let value: toml::Value = toml::from_str("agents = [\"sqlmap\", \" \"]").expect("toml");
        assert_eq!(
            check(&site, &value),
            [(
                "agents[1]".to_string(),
                "empty entry: it would match every client; remove it".to_string()
            )]
        );
        let value: toml::Value = toml::from_str("ips = [\"not-a-network\"]").expect("toml");
        assert_eq!(check(&site, &value).len(), 1);
    }
}
