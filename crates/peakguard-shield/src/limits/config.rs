//! `[site.shield.limits]`, the limits guard's own table: request budgets per client and open
//! connections per client, with their checks.

use ipnet::IpNet;
use peakguard_config::SiteConfig;
use serde::{Deserialize, Deserializer, de};
use std::time::Duration;

/// A request budget: `"600/1m"` (600 requests per minute per client), or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub requests: u64,
    pub per: Duration,
}

impl Budget {
    pub const OFF: Budget = Budget {
        requests: 0,
        per: Duration::ZERO,
    };

    pub const fn new(requests: u64, per_secs: u64) -> Self {
        Budget {
            requests,
            per: Duration::from_secs(per_secs),
        }
    }

    pub fn is_off(&self) -> bool {
        self.requests == 0 || self.per.is_zero()
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t == "off" || t == "0" {
            return Ok(Budget::OFF);
        }
        let (n, per) = t.split_once('/').ok_or_else(|| {
            format!("invalid budget {text:?}: write requests/period such as \"600/1m\", or \"off\"")
        })?;
        let requests: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("invalid budget {text:?}: {n:?} is not a number of requests"))?;
        let per = humantime::parse_duration(per.trim()).map_err(|e| {
            format!("invalid budget {text:?}: {per:?} is not a period ({e}); write e.g. \"1m\"")
        })?;
        Ok(Budget { requests, per })
    }
}

impl<'de> Deserialize<'de> for Budget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Budget::parse(&text).map_err(de::Error::custom)
    }
}

/// Request budgets per client (its real address behind trusted proxies; an IPv6 client by
/// its /64). A client over a budget gets 429 with `Retry-After` until its window has room
/// again; a limited client stays limited even when the store is under pressure. Static
/// files (images, CSS, JS, fonts) count against no budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Off by default: behind a proxy or CDN, set `server.trusted_proxies` first, or every
    /// visitor shares the proxy's address and budget.
    pub enabled: bool,
    /// Count and log who would be limited, limit nobody.
    pub dry_run: bool,
    /// Clients (CIDRs) no budget applies to.
    pub allow: Vec<IpNet>,
    /// Pages (everything below that is not a static file).
    pub pages: Budget,
    /// `wp-login.php`.
    pub login: Budget,
    /// `xmlrpc.php`.
    pub xmlrpc: Budget,
    /// The REST API (`/wp-json/`, `?rest_route=`).
    pub rest: Budget,
    /// Searches (`?s=`): uncacheable and expensive.
    pub search: Budget,
    /// `wp-admin/admin-ajax.php`.
    pub ajax: Budget,
    /// Open connections per client, idle ones included; a new one over this is closed at
    /// accept. The listeners are shared by every site: the largest of the sites applies, and
    /// none when any site has no limit. 0 = no limit.
    pub connections: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            enabled: false,
            dry_run: false,
            allow: vec![
                "127.0.0.0/8".parse().expect("static CIDR"),
                "::1/128".parse().expect("static CIDR"),
            ],
            pages: Budget::new(600, 60),
            login: Budget::new(20, 60),
            xmlrpc: Budget::new(20, 60),
            rest: Budget::new(300, 60),
            search: Budget::new(30, 60),
            ajax: Budget::new(300, 60),
            connections: 64,
        }
    }
}


impl crate::GuardConfig for LimitsConfig {
    const TABLE: &'static str = "limits";
}

/// The table's problems: a budget's period must be between 1 s and 24 h.
pub(super) fn check(_site: &SiteConfig, value: &toml::Value) -> Vec<(String, String)> {
    let l: LimitsConfig = match crate::registry::checked_table(Some(value)) {
        Ok(c) => c,
        Err(problems) => return problems,
    };
    let mut problems = Vec::new();
    for (name, b) in [
        ("pages", l.pages),
        ("login", l.login),
        ("xmlrpc", l.xmlrpc),
        ("rest", l.rest),
        ("search", l.search),
        ("ajax", l.ajax),
    ] {
        if b.is_off() {
            continue;
        }
        let secs = b.per.as_secs_f64();
        if !(1.0..=86_400.0).contains(&secs) {
            problems.push((
                name.to_string(),
                format!(
                    "a budget's period must be between 1s and 24h, not {:?}",
                    b.per
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_and_their_periods_are_checked_with_the_key() {
        assert_eq!(Budget::parse("600/1m"), Ok(Budget::new(600, 60)));
        assert_eq!(Budget::parse("off"), Ok(Budget::OFF));
        assert!(Budget::parse("many").is_err());
        let site = SiteConfig::quick("http://127.0.0.1:1", peakguard_config::Profile::Wordpress);
        let value: toml::Value = toml::from_str("search = \"3/2d\"").expect("toml");
        let problems = check(&site, &value);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "search");
        let value: toml::Value = toml::from_str("pages = \"lots\"").expect("toml");
        assert!(check(&site, &value)[0].1.contains("invalid budget"));
    }
}
