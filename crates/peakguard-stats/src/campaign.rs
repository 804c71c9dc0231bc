//! A campaign: a name, a window, which sources it covers (`utm_*` values; an empty one
//! matches any), and what it cost. Its figures are read from the records of its window:
//! visits, conversions and revenue of the sources it covers, and the cost per acquisition.

use crate::bucket::Bucket;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Campaign {
    pub name: String,
    /// Unix seconds; `to` is exclusive.
    pub from: i64,
    pub to: i64,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    /// What it cost, in cents of `currency`.
    pub cost_cents: Option<u64>,
    pub currency: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct CampaignFigures {
    pub name: String,
    pub from: i64,
    pub to: i64,
    /// Visits attributed to the campaign's sources.
    pub visits: u64,
    pub conversions: u64,
    /// conversions / visits.
    pub conversion_rate: Option<f64>,
    /// Confirmed orders' totals in cents, by currency.
    pub revenue_cents: BTreeMap<String, u64>,
    pub cost_cents: Option<u64>,
    /// cost / conversions, in cents of the cost's currency.
    pub cost_per_acquisition_cents: Option<u64>,
    pub currency: String,
    /// The sources counted (`source / medium / campaign`), by visits.
    pub sources: Vec<(String, u64)>,
}

impl Campaign {
    /// Does `key` (`source / medium / campaign`) belong to this campaign?
    pub fn covers(&self, key: &str) -> bool {
        let mut parts = key.splitn(3, " / ");
        let (s, m, c) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let fits = |want: &str, have: &str| want.is_empty() || want.eq_ignore_ascii_case(have);
        !(self.source.is_empty() && self.medium.is_empty() && self.campaign.is_empty())
            && fits(&self.source, s)
            && fits(&self.medium, m)
            && fits(&self.campaign, c)
    }

    /// The campaign's figures from the total of its window (all sites, or one).
    pub fn figures(&self, total: &Bucket) -> CampaignFigures {
        let sources: Vec<(String, u64)> = total
            .sources
            .ranked()
            .into_iter()
            .filter(|(k, _)| self.covers(k))
            .map(|(k, n)| (k.to_owned(), n))
            .collect();
        let visits = sources.iter().map(|(_, n)| n).sum();
        let conversions: u64 = total
            .conversions
            .ranked()
            .into_iter()
            .filter(|(k, _)| self.covers(k))
            .map(|(_, n)| n)
            .sum();
        let mut revenue_cents = BTreeMap::new();
        for (key, cents) in total.revenue.ranked() {
            let Some((source, currency)) = key.rsplit_once(" · ") else {
                continue;
            };
            if self.covers(source) {
                *revenue_cents.entry(currency.to_owned()).or_default() += cents;
            }
        }
        CampaignFigures {
            name: self.name.clone(),
            from: self.from,
            to: self.to,
            visits,
            conversions,
            conversion_rate: (visits > 0).then(|| conversions as f64 / visits as f64),
            revenue_cents,
            cost_cents: self.cost_cents,
            cost_per_acquisition_cents: self
                .cost_cents
                .filter(|_| conversions > 0)
                .map(|c| c / conversions),
            currency: self.currency.clone(),
            sources,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaign_counts_its_sources_conversions_revenue_and_cost() {
        let mut b = Bucket::default();
        b.sources.add("news / email / bf", 40, 100);
        b.sources.add("insta / social / bf", 60, 100);
        b.sources.add("google.com / organic / ", 500, 100);
        b.conversions.add("news / email / bf", 4, 100);
        b.conversions.add("insta / social / bf", 1, 100);
        b.conversions.add("(direct)", 9, 100);
        b.revenue.add("news / email / bf · EUR", 20_000, 100);
        b.revenue.add("(direct) · EUR", 99_900, 100);
        let c = Campaign {
            name: "Black Friday".into(),
            campaign: "BF".into(),
            cost_cents: Some(50_000),
            currency: "EUR".into(),
            ..Default::default()
        };
        let f = c.figures(&b);
        assert_eq!((f.visits, f.conversions), (100, 5));
        assert_eq!(f.conversion_rate, Some(0.05));
        assert_eq!(f.revenue_cents.get("EUR"), Some(&20_000));
        assert_eq!(f.cost_per_acquisition_cents, Some(10_000));
        let nothing = Campaign::default();
        assert!(
            !nothing.covers("news / email / bf"),
            "a campaign must say what it covers"
        );
    }
}
