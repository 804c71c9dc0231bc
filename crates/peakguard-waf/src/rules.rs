//! The SecLang a site's WAF is built from, in CRS 4's order:
//!
//! 1. our base directives (request body limits, JSON and XML body processors) and the CRS
//!    setup values the TOML sets (what `crs-setup.conf` would hold: paranoia levels,
//!    thresholds, early blocking, allowed methods and content types, `crs_setup`), then
//!    the caller's rules that must act first (the shield's editor exclusions) and the
//!    path-limited exceptions (`ctl:` rules, so they act before the rules they remove);
//! 2. every plugin's `-config.conf`, then every plugin's `-before.conf`;
//! 3. the CRS rules (`REQUEST-*`, and `RESPONSE-*` in the response set);
//! 4. every plugin's `-after.conf`, then exceptions that hold everywhere.
//!
//! One difference of libmodsecurity 3 is undone: ModSecurity 2, which the CRS is written
//! and tested against, leaves `REQUEST_BODY` empty when the XML or JSON processor parsed
//! the body (the CRS then inspects the parsed values, `XML:/*` and `ARGS`); version 3 fills
//! it always, so rules meant for unparsed bodies also match XML element and attribute names
//! (`<java.lang.Runtime>` as a tag is not an attack). Rule 200003 takes `REQUEST_BODY` out
//! of the CRS's targets for a body its processor parsed without error; a body that failed
//! to parse keeps it.
//!
//! CRS 3.3 has no plugins: its WordPress exclusions are rule 900130's switch. Names, paths
//! and values come checked (peakguard-config's `waf.rs` says what SecLang can carry).

use crate::crs::RuleSet;
use crate::plugin::Plugin;
use std::path::PathBuf;

/// Rule ids we generate for path-limited exceptions (a range the CRS leaves to users).
pub const FIRST_EXCEPTION_ID: u32 = 1_900_000;

/// What an exception switches off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Excluded {
    /// One rule, by id.
    Rule(u32),
    /// Every rule with this tag (`attack-sqli`, `paranoia-level/2`).
    Tag(String),
}

/// One exception: a rule (or tag) switched off, for one argument and/or one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub excluded: Excluded,
    /// The request path (exact, as WordPress routes it: `/wp-admin/post.php`).
    pub path: Option<String>,
    /// The argument's name (`content`, `changes[caption]`).
    pub argument: Option<String>,
}

/// What a site's WAF is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    pub crs: RuleSet,
    /// CRS 4 plugins, loaded in this order within each of their phases.
    pub plugins: Vec<Plugin>,
    /// The blocking paranoia level (1–4): rules up to it add to the score that blocks.
    pub paranoia: u8,
    /// The executing (CRS 4: detection) paranoia level: rules above `paranoia` up to this
    /// one run and are logged, never block. `None`: the same as `paranoia`.
    pub executing_paranoia: Option<u8>,
    /// The inbound anomaly score that blocks (CRITICAL 5, ERROR 4, WARNING 3, NOTICE 2).
    pub threshold: u32,
    /// The outbound (response) anomaly score that counts as a finding.
    pub outbound_threshold: u32,
    /// CRS 4: block at the end of phase 1 when the headers alone reach the threshold.
    pub early_blocking: bool,
    /// `tx.allowed_methods`; `None`: the rule set's default.
    pub allowed_methods: Option<Vec<String>>,
    /// `tx.allowed_request_content_type`; `None`: the rule set's default.
    pub allowed_content_types: Option<Vec<String>>,
    /// More setup values: `tx.NAME=VALUE` (checked against the rule set at build).
    pub setup: Vec<(String, String)>,
    /// Body bytes inspected; the rest passes uninspected.
    pub body_limit: usize,
    /// CRS 3.3's built-in WordPress exclusions (rule 900130); CRS 4 uses the plugin.
    pub wordpress: bool,
    /// Also compile the response rules (`RESPONSE-*`) into a set of their own, for
    /// [`crate::Waf::inspect_response`].
    pub responses: bool,
    pub exceptions: Vec<Exception>,
    /// More SecLang before the CRS, after the setup (rules that must act before the CRS's
    /// own: the shield's editor exclusions).
    pub extra_before: String,
    /// More SecLang after the CRS (the shield removes the editors' WordPress exclusions
    /// from the visitors' rule set here).
    pub extra_after: String,
}

impl Settings {
    pub fn new(crs: RuleSet) -> Settings {
        Settings {
            crs,
            plugins: Vec::new(),
            paranoia: 1,
            executing_paranoia: None,
            threshold: 5,
            outbound_threshold: 4,
            early_blocking: false,
            allowed_methods: None,
            allowed_content_types: None,
            setup: Vec::new(),
            body_limit: 128 * 1024,
            wordpress: true,
            responses: false,
            exceptions: Vec::new(),
            extra_before: String::new(),
            extra_after: String::new(),
        }
    }
}

/// The setup values as `tx` variables, in the release's names.
fn setup_vars(s: &Settings) -> Vec<(String, String)> {
    let v4 = s.crs.version.is_v4();
    let pl = s.paranoia.clamp(1, 4);
    let exec = s.executing_paranoia.unwrap_or(pl).clamp(pl, 4);
    let mut vars = vec![
        (
            if v4 {
                "blocking_paranoia_level"
            } else {
                "paranoia_level"
            }
            .to_string(),
            pl.to_string(),
        ),
        (
            if v4 {
                "detection_paranoia_level"
            } else {
                "executing_paranoia_level"
            }
            .to_string(),
            exec.to_string(),
        ),
        (
            "inbound_anomaly_score_threshold".into(),
            s.threshold.max(1).to_string(),
        ),
        (
            "outbound_anomaly_score_threshold".into(),
            s.outbound_threshold.max(1).to_string(),
        ),
    ];
    if v4 {
        vars.push((
            "early_blocking".into(),
            u8::from(s.early_blocking).to_string(),
        ));
    } else {
        vars.push((
            "crs_exclusions_wordpress".into(),
            u8::from(s.wordpress).to_string(),
        ));
    }
    if let Some(methods) = &s.allowed_methods {
        vars.push(("allowed_methods".into(), methods.join(" ")));
    }
    if let Some(types) = &s.allowed_content_types {
        // CRS 4 writes each type between bars (`|text/xml| |application/json|`); 3.3 joins
        // them with one.
        let list = if v4 {
            types
                .iter()
                .map(|t| format!("|{t}|"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            types.join("|")
        };
        vars.push(("allowed_request_content_type".into(), list));
    }
    vars.extend(s.setup.iter().cloned());
    vars
}

/// Directives before the CRS: the engine, bodies, the setup values, path-limited
/// exceptions. `responses`: the response body is read (the response set).
pub fn before_crs(s: &Settings, responses: bool) -> String {
    let mut out = format!(
        r#"SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit {limit}
SecRequestBodyNoFilesLimit {limit}
SecRequestBodyLimitAction ProcessPartial
SecResponseBodyAccess {response_body}
SecResponseBodyMimeType text/plain text/html text/xml application/json
SecResponseBodyLimit {limit}
SecResponseBodyLimitAction ProcessPartial
SecAuditEngine Off
SecArgumentSeparator &
SecCookieFormat 0
SecRule REQUEST_HEADERS:Content-Type "@rx ^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_PROCESSOR "@rx ^(?:XML|JSON)$" "id:200003,phase:2,t:none,pass,nolog,chain"
  SecRule REQBODY_ERROR "@eq 0" "t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;REQUEST_BODY"
SecDefaultAction "phase:1,log,auditlog,pass"
SecDefaultAction "phase:2,log,auditlog,pass"
SecDefaultAction "phase:3,log,auditlog,pass"
SecDefaultAction "phase:4,log,auditlog,pass"
"#,
        limit = s.body_limit.max(1),
        response_body = if responses { "On" } else { "Off" },
    );
    let setvars: Vec<String> = setup_vars(s)
        .iter()
        .map(|(name, value)| format!("setvar:'tx.{name}={value}'"))
        .collect();
    out.push_str(&format!(
        "SecAction \"id:900000,phase:1,nolog,pass,t:none,{}\"\n",
        setvars.join(",")
    ));
    out.push_str(&format!(
        "SecAction \"id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version={}\"\n",
        s.crs.setup_version()
    ));
    if !s.extra_before.is_empty() {
        out.push_str(&s.extra_before);
        out.push('\n');
    }
    let path_limited = s.exceptions.iter().filter(|e| e.path.is_some());
    for (id, e) in (FIRST_EXCEPTION_ID..).zip(path_limited) {
        let path = e.path.as_deref().unwrap_or("/");
        let ctl = match (&e.excluded, &e.argument) {
            (Excluded::Rule(rule), Some(arg)) => {
                format!("ctl:ruleRemoveTargetById={rule};ARGS:{arg}")
            }
            (Excluded::Rule(rule), None) => format!("ctl:ruleRemoveById={rule}"),
            (Excluded::Tag(tag), Some(arg)) => {
                format!("ctl:ruleRemoveTargetByTag={tag};ARGS:{arg}")
            }
            (Excluded::Tag(tag), None) => format!("ctl:ruleRemoveByTag={tag}"),
        };
        out.push_str(&format!(
            "SecRule REQUEST_FILENAME \"@streq {path}\" \"id:{id},phase:1,pass,nolog,t:none,{ctl}\"\n"
        ));
    }
    out
}

/// Directives after the CRS: exceptions that hold everywhere.
pub fn after_crs(s: &Settings) -> String {
    let mut out = String::new();
    if !s.extra_after.is_empty() {
        out.push_str(&s.extra_after);
        out.push('\n');
    }
    for e in s.exceptions.iter().filter(|e| e.path.is_none()) {
        let line = match (&e.excluded, &e.argument) {
            (Excluded::Rule(rule), Some(arg)) => {
                format!("SecRuleUpdateTargetById {rule} \"!ARGS:{arg}\"")
            }
            (Excluded::Rule(rule), None) => format!("SecRuleRemoveById {rule}"),
            (Excluded::Tag(tag), Some(arg)) => {
                format!("SecRuleUpdateTargetByTag \"{tag}\" \"!ARGS:{arg}\"")
            }
            (Excluded::Tag(tag), None) => format!("SecRuleRemoveByTag \"{tag}\""),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// One piece of the compiled rules, in load order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    File(PathBuf),
}

/// Everything a rule set is compiled from, in order. The response set (`responses`) holds
/// the CRS's initialisation and its response rules, not its request rules (the request
/// was inspected on its way in).
pub fn pieces(s: &Settings, responses: bool) -> std::io::Result<Vec<Piece>> {
    let mut out = vec![Piece::Text(before_crs(s, responses))];
    let plugin_files = |phase: usize| {
        s.plugins
            .iter()
            .filter_map(move |p| p.file(phase).map(|f| Piece::File(f.to_path_buf())))
    };
    out.extend(plugin_files(0));
    out.extend(plugin_files(1));
    let files = s.crs.rule_files(responses)?;
    let keep = |f: &PathBuf| {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        !responses || name.starts_with("RESPONSE-") || name.starts_with("REQUEST-901-")
    };
    out.extend(files.into_iter().filter(keep).map(Piece::File));
    out.extend(plugin_files(2));
    let after = after_crs(s);
    if !after.is_empty() {
        out.push(Piece::Text(after));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crs::{CrsVersion, Found};

    fn settings(version: &str) -> Settings {
        let crs = RuleSet {
            dir: "/nonexistent".into(),
            real_dir: "/nonexistent".into(),
            version: CrsVersion::parse(version).expect("version"),
            found: Found::Site,
        };
        Settings::new(crs)
    }

    #[test]
    fn setup_values_use_the_release_s_names() {
        let mut s = settings("4.28.0");
        s.paranoia = 2;
        s.executing_paranoia = Some(3);
        s.early_blocking = true;
        s.allowed_methods = Some(vec!["GET".into(), "POST".into(), "PUT".into()]);
        s.allowed_content_types = Some(vec!["application/json".into(), "text/xml".into()]);
        s.setup = vec![("arg_length".into(), "400".into())];
        let text = before_crs(&s, false);
        for want in [
            "setvar:'tx.blocking_paranoia_level=2'",
            "setvar:'tx.detection_paranoia_level=3'",
            "setvar:'tx.early_blocking=1'",
            "setvar:'tx.allowed_methods=GET POST PUT'",
            "setvar:'tx.allowed_request_content_type=|application/json| |text/xml|'",
            "setvar:'tx.arg_length=400'",
            "tx.crs_setup_version=4280",
            "SecResponseBodyAccess Off",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        assert!(!text.contains("crs_exclusions_wordpress"));

        let mut old = settings("3.3.4");
        old.allowed_content_types = Some(vec!["application/json".into(), "text/xml".into()]);
        let text = before_crs(&old, true);
        for want in [
            "setvar:'tx.paranoia_level=1'",
            "setvar:'tx.executing_paranoia_level=1'",
            "setvar:'tx.crs_exclusions_wordpress=1'",
            "setvar:'tx.allowed_request_content_type=application/json|text/xml'",
            "tx.crs_setup_version=334",
            "SecResponseBodyAccess On",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
    }

    #[test]
    fn exceptions_by_rule_or_tag_everywhere_or_on_a_path() {
        let mut s = settings("4.28.0");
        s.exceptions = vec![
            Exception {
                excluded: Excluded::Tag("attack-sqli".into()),
                path: Some("/wp-admin/post.php".into()),
                argument: Some("content".into()),
            },
            Exception {
                excluded: Excluded::Tag("paranoia-level/2".into()),
                path: None,
                argument: None,
            },
            Exception {
                excluded: Excluded::Rule(942100),
                path: None,
                argument: Some("q".into()),
            },
        ];
        let before = before_crs(&s, false);
        assert!(
            before.contains("ctl:ruleRemoveTargetByTag=attack-sqli;ARGS:content"),
            "{before}"
        );
        let after = after_crs(&s);
        assert!(
            after.contains("SecRuleRemoveByTag \"paranoia-level/2\""),
            "{after}"
        );
        assert!(
            after.contains("SecRuleUpdateTargetById 942100 \"!ARGS:q\""),
            "{after}"
        );
    }
}
