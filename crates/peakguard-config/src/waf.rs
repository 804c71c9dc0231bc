//! `[site.waf]`: the OWASP Core Rule Set in front of a site (issues P8, P10), and the
//! process-wide `[waf]` settings (the inspection pool, the WAF log, where rule sets are
//! installed).

use crate::units::ByteSize;
use serde::Deserialize;
use std::collections::BTreeMap;
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

/// A rule (or every rule with a tag) switched off, everywhere or for one path and/or one
/// argument.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafException {
    /// The CRS rule id (`peakguard waf explain INCIDENT` names it).
    pub rule: Option<u32>,
    /// A rule tag instead (`attack-sqli`, `paranoia-level/2`).
    pub tag: Option<String>,
    /// Only on this request path (`/wp-admin/post.php`).
    pub path: Option<String>,
    /// Only for this argument (`content`, `changes[caption]`).
    pub argument: Option<String>,
    /// Why (shown nowhere but here, for the next reader).
    pub comment: Option<String>,
}

/// A `crs_setup` value: a number or a string, as the CRS setup file writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SetupValue {
    Number(i64),
    Text(String),
}

impl std::fmt::Display for SetupValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupValue::Number(n) => write!(f, "{n}"),
            SetupValue::Text(t) => f.write_str(t),
        }
    }
}

/// `[site.waf]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WafConfig {
    pub mode: WafMode,
    /// CRS (blocking) paranoia level, 1–4 (higher catches more and refuses more that is
    /// legitimate).
    pub paranoia: u8,
    /// Rules up to this level run and are logged without blocking (CRS 4's
    /// `detection_paranoia_level`, 3.3's `executing_paranoia_level`); at least `paranoia`.
    pub executing_paranoia: Option<u8>,
    /// The inbound anomaly score that blocks (CRS: a CRITICAL match is 5).
    pub threshold: u32,
    /// The outbound (response) anomaly score that counts as a finding (CRS default 4).
    pub outbound_threshold: u32,
    /// CRS 4: refuse at the end of the headers when they alone reach the threshold.
    pub early_blocking: bool,
    /// The methods the CRS allows (`tx.allowed_methods`; default GET HEAD POST OPTIONS:
    /// add PUT, PATCH, DELETE for REST API clients such as WooCommerce's).
    pub allowed_methods: Option<Vec<String>>,
    /// The request content types the CRS allows (`tx.allowed_request_content_type`).
    pub allowed_content_types: Option<Vec<String>>,
    /// More CRS setup values, `tx.NAME = VALUE` as in `crs-setup.conf`
    /// (`{ arg_length = 400, max_num_args = 255 }`); checked against the rule set at start.
    pub crs_setup: BTreeMap<String, SetupValue>,
    /// Body bytes inspected (at most 64 KiB); a larger body passes uninspected and is
    /// counted.
    pub body_limit: ByteSize,
    /// The WordPress exclusions (CRS 4: the wordpress-rule-exclusions plugin; 3.3: its
    /// built-in ones). Those that relax the rules for editors (posts, theme and plugin
    /// editor, customizer, menus) apply only to sessions the origin issued through the
    /// edge. Default: on for the `wordpress` profile.
    pub wordpress: Option<bool>,
    /// More CRS 4 plugins, by name (installed by `peakguard waf plugin install`, or in
    /// the rule set's `plugins/`) or by directory.
    pub plugins: Vec<String>,
    /// Inspect origin responses with the CRS's response rules (data leaks, web shells).
    /// Cache hits are never inspected. Findings are logged and counted: the response is
    /// already on its way.
    pub inspect_responses: bool,
    pub on_error: WafFailure,
    /// A Core Rule Set tree for this site. Absent: peakguard's installed copy
    /// (`[waf] crs_home`/current), else Debian's `modsecurity-crs`.
    pub crs_dir: Option<PathBuf>,
    #[serde(default)]
    pub exceptions: Vec<WafException>,
}

impl Default for WafConfig {
    fn default() -> Self {
        WafConfig {
            mode: WafMode::Block,
            paranoia: 1,
            executing_paranoia: None,
            threshold: 5,
            outbound_threshold: 4,
            early_blocking: false,
            allowed_methods: None,
            allowed_content_types: None,
            crs_setup: BTreeMap::new(),
            body_limit: ByteSize(64 * 1024),
            wordpress: None,
            plugins: Vec::new(),
            inspect_responses: false,
            on_error: WafFailure::Open,
            crs_dir: None,
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
    /// Where `peakguard waf crs install` keeps rule sets (`4.28.0/`, `current`,
    /// `previous`) and plugins (`plugins/NAME/`). Empty: `crs` in the state directory.
    pub crs_home: PathBuf,
}

impl Default for WafSettings {
    fn default() -> Self {
        WafSettings {
            workers: 0,
            queue: 256,
            log: PathBuf::new(),
            crs_home: PathBuf::new(),
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
    if let Some(exec) = waf.executing_paranoia
        && !(waf.paranoia..=4).contains(&exec)
    {
        p(
            key("executing_paranoia"),
            format!("{exec}: give {} to 4 (at least paranoia)", waf.paranoia),
        );
    }
    if waf.threshold == 0 {
        p(
            key("threshold"),
            "0 would block everything: the CRS default is 5".into(),
        );
    }
    if waf.outbound_threshold == 0 {
        p(
            key("outbound_threshold"),
            "0 would flag every response: the CRS default is 4".into(),
        );
    }
    let list = |name: &str,
                items: &Option<Vec<String>>,
                example: &str,
                p: &mut dyn FnMut(String, String)| {
        let Some(items) = items else { return };
        if items.is_empty() {
            p(
                key(name),
                format!(
                    "an empty list refuses everything: give some, as {example}, or leave it out"
                ),
            );
        }
        for item in items {
            if !valid_list_item(item) {
                p(
                    key(name),
                    format!("{item:?}: no spaces, quotes, backslashes or '|' (as {example})"),
                );
            }
        }
    };
    list(
        "allowed_methods",
        &waf.allowed_methods,
        "[\"GET\", \"POST\"]",
        p,
    );
    list(
        "allowed_content_types",
        &waf.allowed_content_types,
        "[\"application/json\"]",
        p,
    );
    for (name, value) in &waf.crs_setup {
        let value = value.to_string();
        if !valid_setting(name, &value) {
            p(
                format!("site[{i}].waf.crs_setup.{name}"),
                format!(
                    "{value:?}: a CRS setup variable's name (letters, digits, _) and a value without quotes, backslashes or control characters"
                ),
            );
        }
    }
    for (j, plugin) in waf.plugins.iter().enumerate() {
        let ok = if plugin.starts_with('/') {
            !plugin.contains('+')
        } else {
            !plugin.is_empty()
                && plugin.len() <= 100
                && plugin
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !ok {
            p(
                format!("site[{i}].waf.plugins[{j}]"),
                format!(
                    "{plugin:?}: a plugin's name (\"fake-bot-plugin\") or an absolute directory without '+'"
                ),
            );
        }
    }
    if let Some(dir) = &waf.crs_dir
        && dir.to_string_lossy().contains('+')
    {
        p(
            key("crs_dir"),
            format!(
                "{}: libmodsecurity 3 cannot load files from a path with a '+'",
                dir.display()
            ),
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
        match (&e.rule, &e.tag) {
            (Some(0), _) => p(
                k("rule"),
                "a rule id (see `peakguard waf explain INCIDENT`)".into(),
            ),
            (None, None) => p(
                k("rule"),
                "give a rule id (rule = 942100) or a tag (tag = \"attack-sqli\")".into(),
            ),
            (Some(_), Some(_)) => p(
                k("tag"),
                "give a rule or a tag, not both (one exception each)".into(),
            ),
            (None, Some(tag)) if !valid_tag(tag) => p(
                k("tag"),
                format!("{tag:?}: a rule tag such as \"attack-sqli\" or \"paranoia-level/2\""),
            ),
            _ => {}
        }
        if let Some(path) = &e.path
            && !valid_path(path)
        {
            p(
                k("path"),
                format!(
                    "{path:?}: a request path such as \"/wp-admin/post.php\" (no quotes or spaces)"
                ),
            );
        }
        if let Some(arg) = &e.argument
            && !valid_argument(arg)
        {
            p(
                k("argument"),
                format!("{arg:?}: an argument name such as \"content\" or \"changes[caption]\""),
            );
        }
    }
}

/// An argument name SecLang can carry between quotes and after `ARGS:` without escaping.
pub fn valid_argument(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-[].".contains(c))
}

/// A request path SecLang can carry: absolute, printable, no quote, no space.
pub fn valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 500
        && path
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\'' && c != '\\')
}

/// A rule tag (`attack-sqli`, `paranoia-level/2`, `OWASP_CRS`).
pub fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 100
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.".contains(c))
}

/// A CRS setup variable's name and a value `setvar:'tx.NAME=VALUE'` can carry.
pub fn valid_setting(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && value.len() <= 2000
        && value
            .chars()
            .all(|c| !c.is_control() && !"'\"\\".contains(c))
}

/// A method or content type of the allowed lists.
pub fn valid_list_item(item: &str) -> bool {
    !item.is_empty()
        && item.len() <= 100
        && item
            .chars()
            .all(|c| c.is_ascii_graphic() && !"'\"\\|".contains(c))
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
        assert_eq!(waf.exceptions[0].rule, Some(942100));
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

    #[test]
    fn crs4_settings_plugins_and_tag_exceptions_are_checked_with_key_and_line() {
        let ok = "[[site]]\norigin = \"http://127.0.0.1:8081\"\n[site.waf]\nparanoia = 2\nexecuting_paranoia = 3\noutbound_threshold = 4\nearly_blocking = true\nallowed_methods = [\"GET\", \"POST\", \"DELETE\"]\nallowed_content_types = [\"application/json\"]\ncrs_setup = { arg_length = 400, restricted_extensions = \".bak/ .sql/\" }\nplugins = [\"fake-bot\", \"/etc/peakguard/crs-plugins/shop\"]\ninspect_responses = true\nexceptions = [ { tag = \"paranoia-level/2\" }, { tag = \"attack-sqli\", path = \"/wp-json/shop/v1/q\", argument = \"q\" } ]\n";
        assert_eq!(problems(ok), "");
        let c = crate::parse(ok, "t").expect("valid");
        let waf = c.sites[0].waf.as_ref().expect("waf");
        assert_eq!(waf.crs_setup["arg_length"].to_string(), "400");
        assert_eq!(waf.exceptions[0].tag.as_deref(), Some("paranoia-level/2"));
        assert!(waf.crs_dir.is_none() && waf.wordpress.is_none());

        let bad = "[[site]]\norigin = \"http://127.0.0.1:8081\"\n[site.waf]\nparanoia = 2\nexecuting_paranoia = 1\nallowed_methods = [\"GET POST\"]\ncrs_setup = { arg_length = \"4'00\" }\nplugins = [\"../x\"]\nexceptions = [ { rule = 942100, tag = \"attack-sqli\" }, { argument = \"q\" }, { tag = \"a b\" } ]\n";
        let e = problems(bad);
        for want in [
            "site[0].waf.executing_paranoia",
            "site[0].waf.allowed_methods",
            "site[0].waf.crs_setup.arg_length",
            "site[0].waf.plugins[0]",
            "site[0].waf.exceptions[0].tag",
            "site[0].waf.exceptions[1].rule",
            "site[0].waf.exceptions[2].tag",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
        assert!(e.contains("line 5"), "{e}");
    }
}
