//! The deny list: addresses, networks and `User-Agent` fragments refused with 403 before
//! anything else is asked.

use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use crate::pages;
use ipnet::IpNet;
use peakguard_config::DenyConfig;

/// In the chain when the site has a deny list.
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "deny",
    build: |b| {
        Ok(DenyGuard::from_config(&b.site.shield.deny)
            .map(|g| std::sync::Arc::new(g) as std::sync::Arc<dyn Guard>))
    },
    check: None,
};

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
