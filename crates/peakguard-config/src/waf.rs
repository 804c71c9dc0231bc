//! `[site.waf]`: the OWASP Core Rule Set in front of a site (issue P8), and the process-wide
//! `[waf]` settings (the inspection pool, the WAF log).

use crate::units::ByteSize;
use serde::Deserialize;
use std::path::PathBuf;

/// What the WAF does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WafMode {
    /// A request the rules score at the threshold is answered 403.
    #[default]
    Block,
    /// Inspected, logged and counted; nothing refused (try the rules on real traffic first).
    Detect,
    /// Not inspected.
    Off,
}

/// What happens when the engine cannot answer (overloaded, failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WafFailure {
    /// The request goes on uninspected (counted): the site stays up.
    #[default]
    Open,
    /// The request is answered 503 (counted).
    Closed,
}

/// A rule switched off, everywhere or for one path and/or one argument.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafException {
    /// The CRS rule id (`peakguard waf explain INCIDENT` names it).
    pub rule: u32,
    /// Only on this request path (`/wp-admin/post.php`).
    pub path: Option<String>,
    /// Only for this argument (`content`, `changes[caption]`).
    pub argument: Option<String>,
    /// Why (shown nowhere but here, for the next reader).
    pub comment: Option<String>,
}

/// `[site.waf]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WafConfig {
    pub mode: WafMode,
    /// CRS paranoia level, 1–4 (higher catches more and refuses more that is legitimate).
    pub paranoia: u8,
    /// The inbound anomaly score that blocks (CRS: a CRITICAL match is 5).
    pub threshold: u32,
    /// Body bytes inspected (at most 64 KiB); a larger body passes uninspected and is
    /// counted.
    pub body_limit: ByteSize,
    /// The CRS WordPress exclusions. Those that relax the rules for editors (posts, theme
    /// and plugin editor, customizer, menus) apply only to sessions the origin issued
    /// through the edge.
    pub wordpress: bool,
    pub on_error: WafFailure,
    /// Debian's `modsecurity-crs`.
    pub crs_dir: PathBuf,
    #[serde(default)]
    pub exceptions: Vec<WafException>,
}

impl Default for WafConfig {
    fn default() -> Self {
        WafConfig {
            mode: WafMode::Block,
            paranoia: 1,
            threshold: 5,
            body_limit: ByteSize(64 * 1024),
            wordpress: true,
            on_error: WafFailure::Open,
            crs_dir: PathBuf::from("/usr/share/modsecurity-crs"),
            exceptions: Vec::new(),
        }
    }
}

/// `[waf]`: what every site's WAF shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WafSettings {
    /// Threads that run inspections (0: one per core).
    pub workers: usize,
    /// Inspections waiting for a thread; past it the engine counts as overloaded
    /// (`on_error`).
    pub queue: usize,
    /// The WAF log (JSON lines: incident id, rules, score, argument). Empty: `waf.jsonl` in
    /// the state directory.
    pub log: PathBuf,
}

impl Default for WafSettings {
    fn default() -> Self {
        WafSettings {
            workers: 0,
            queue: 256,
            log: PathBuf::new(),
        }
    }
}

/// The largest body the edge reads for a guard.
pub const MAX_WAF_BODY: u64 = 64 * 1024;

/// Checks one site's `[site.waf]`.
pub fn validate_waf(i: usize, waf: &WafConfig, p: &mut impl FnMut(String, String)) {
    let key = |k: &str| format!("site[{i}].waf.{k}");
    if !(1..=4).contains(&waf.paranoia) {
        p(key("paranoia"), format!("{}: give 1 to 4", waf.paranoia));
    }
    if waf.threshold == 0 {
        p(
            key("threshold"),
            "0 would block everything: the CRS default is 5".into(),
        );
    }
    if waf.body_limit.0 > MAX_WAF_BODY {
        p(
            key("body_limit"),
            format!(
                "{} bytes: the edge reads at most 64KiB of a body before the origin sees it",
                waf.body_limit.0
            ),
        );
    }
    for (j, e) in waf.exceptions.iter().enumerate() {
        let k = |f: &str| format!("site[{i}].waf.exceptions[{j}].{f}");
        if e.rule == 0 {
            p(
                k("rule"),
                "a rule id (see `peakguard waf explain INCIDENT`)".into(),
            );
        }
        if let Some(path) = &e.path
            && !(path.starts_with('/')
                && path.len() <= 500
                && path
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !"\"'\\".contains(c)))
        {
            p(
                k("path"),
                format!(
                    "{path:?}: a request path such as \"/wp-admin/post.php\" (no quotes or spaces)"
                ),
            );
        }
        if let Some(arg) = &e.argument
            && !(!arg.is_empty()
                && arg.len() <= 200
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-[].".contains(c)))
        {
            p(
                k("argument"),
                format!("{arg:?}: an argument name such as \"content\" or \"changes[caption]\""),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    fn problems(text: &str) -> String {
        match crate::parse(text, "t") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn waf_settings_are_checked_with_key_and_line() {
        let ok = "[[site]]\norigin = \"http://127.0.0.1:8081\"\n[site.waf]\nmode = \"detect\"\nparanoia = 2\nexceptions = [ { rule = 942100, path = \"/wp-admin/post.php\", argument = \"content\" } ]\n";
        assert_eq!(problems(ok), "");
        let c = crate::parse(ok, "t").expect("valid");
        let waf = c.sites[0].waf.as_ref().expect("waf");
        assert_eq!(waf.exceptions[0].rule, 942100);
        assert_eq!(waf.threshold, 5);
        let bad = "[[site]]\norigin = \"http://127.0.0.1:8081\"\n[site.waf]\nparanoia = 7\nexceptions = [ { rule = 942100, argument = \"con tent\" } ]\n";
        let e = problems(bad);
        assert!(
            e.contains("site[0].waf.paranoia") && e.contains("line 4"),
            "{e}"
        );
        assert!(e.contains("site[0].waf.exceptions[0].argument"), "{e}");
        let mode = "[[site]]\norigin = \"http://127.0.0.1:8081\"\n[site.waf]\nmode = \"learn\"\n";
        assert!(problems(mode).contains("block"), "{}", problems(mode));
    }
}
