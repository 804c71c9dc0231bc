//! The scenario file (TOML): everything the command line can say, kept next to the campaign.
//!
//! ```toml
//! target = "https://shop.example.com"
//! resolve = ["shop.example.com:443:203.0.113.10"]   # rehearse the new server before the DNS switch
//! profile = "ramp 0-200 30s, hold 2m, drop"          # or: rate = 50, duration = "1m"
//! concurrency = 500
//! sitemap = true                                     # or: urls = "key-pages.txt"
//! max_urls = 200
//! # raw = true                                       # no browser headers (see `--raw`)
//! warm_after = "30s"                                 # also each class once the cache is warm
//!
//! [[class]]
//! kind = "anonymous"
//! weight = 70
//! # Every class sends a browser's headers (Accept-Encoding: gzip, deflate, br, ...);
//! # its own table overrides them, an empty value removes one:
//! headers = { "Accept-Language" = "de-DE,de;q=0.9" }
//! [[class]]
//! kind = "campaign"
//! weight = 20
//! params = "utm_source=facebook&utm_campaign=spring"
//! [[class]]
//! kind = "shopper"
//! weight = 8
//! add_to_cart = ["/?add-to-cart=12", "/?add-to-cart=15"]
//! cart = "/cart/"
//! checkout = "/checkout/"
//! [[class]]
//! kind = "logged_in"
//! weight = 2
//! username = "editor"
//! password = "..."
//! ```

use crate::classes::ClassSpec;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub target: Option<String>,
    #[serde(default)]
    pub resolve: Vec<String>,
    pub profile: Option<String>,
    pub rate: Option<f64>,
    pub duration: Option<String>,
    pub concurrency: Option<usize>,
    pub max_requests: Option<u64>,
    pub timeout: Option<String>,
    pub http2: Option<bool>,
    pub insecure: Option<bool>,
    pub urls: Option<String>,
    pub sitemap: Option<bool>,
    pub max_urls: Option<usize>,
    /// No browser headers (see `--raw`).
    pub raw: Option<bool>,
    /// Also report each class from this time on (see `--warm-after`).
    pub warm_after: Option<String>,
    #[serde(default, rename = "class")]
    pub classes: Vec<ClassSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {0}: {1}")]
    Read(String, std::io::Error),
    #[error("scenario {0}: {1}")]
    Parse(String, String),
}

impl Scenario {
    pub fn load(path: &str) -> Result<Self, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ScenarioError::Read(path.into(), e))?;
        toml::from_str(&text).map_err(|e| ScenarioError::Parse(path.into(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("scenario.rs");
        let example: String = doc
            .lines()
            .filter_map(|l| l.strip_prefix("//! "))
            .skip_while(|l| !l.starts_with("target"))
            .take_while(|l| !l.starts_with("```"))
            .collect::<Vec<_>>()
            .join("\n");
        let s: Scenario = toml::from_str(&example).expect("example parses");
        assert_eq!(s.classes.len(), 4);
        assert_eq!(s.classes[2].add_to_cart.len(), 2);
        assert_eq!(s.resolve.len(), 1);
        for c in &s.classes {
            c.check().expect("example classes are complete");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Scenario>("targte = \"x\"").is_err());
    }
}
