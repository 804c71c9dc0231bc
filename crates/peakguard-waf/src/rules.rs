//! The SecLang a site's WAF is built from: our base directives (request body limits, JSON
//! and XML body processors), the CRS setup values the TOML sets (paranoia, threshold, the
//! WordPress exclusions), the CRS request rules as Debian installs them, and the TOML's
//! exceptions turned into `SecRuleRemoveById` / `SecRuleUpdateTargetById` (everywhere) or a
//! `ctl:` rule limited to a path (before the CRS, so it acts before the rule it removes).

use std::path::PathBuf;

/// Rule ids we generate for path-limited exceptions (a range the CRS leaves to users).
pub const FIRST_EXCEPTION_ID: u32 = 1_900_000;

/// One exception: a rule switched off, for one argument and/or one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub rule: u32,
    /// The request path (exact, as WordPress routes it: `/wp-admin/post.php`).
    pub path: Option<String>,
    /// The argument's name (`content`, `changes[caption]`).
    pub argument: Option<String>,
}

/// What a site's WAF is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Debian's `modsecurity-crs` (`rules/` inside).
    pub crs_dir: PathBuf,
    pub paranoia: u8,
    /// The CRS inbound anomaly score that blocks (CRITICAL 5, ERROR 4, WARNING 3, NOTICE 2).
    pub threshold: u32,
    /// Body bytes inspected; the rest passes uninspected.
    pub body_limit: usize,
    /// The CRS WordPress exclusions (rule 900130).
    pub wordpress: bool,
    pub exceptions: Vec<Exception>,
    /// More SecLang before the CRS, after the setup (rules that must act before the CRS's
    /// own: the shield's editor exclusions).
    pub extra_before: String,
    /// More SecLang after the CRS (the shield removes the editors' WordPress exclusions
    /// from the visitors' rule set here).
    pub extra_after: String,
}

impl Settings {
    pub fn new(crs_dir: impl Into<PathBuf>) -> Settings {
        Settings {
            crs_dir: crs_dir.into(),
            paranoia: 1,
            threshold: 5,
            body_limit: 128 * 1024,
            wordpress: true,
            exceptions: Vec::new(),
            extra_before: String::new(),
            extra_after: String::new(),
        }
    }
}

/// A name SecLang can carry between quotes and after `ARGS:` without escaping.
pub fn valid_argument(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-[].".contains(c))
}

/// A path SecLang can carry: absolute, printable, no quote, no space.
pub fn valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 500
        && path
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\'' && c != '\\')
}

/// Directives before the CRS: the engine, bodies, the setup values, path-limited
/// exceptions.
pub fn before_crs(s: &Settings) -> String {
    let mut out = format!(
        r#"SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit {limit}
SecRequestBodyNoFilesLimit {limit}
SecRequestBodyLimitAction ProcessPartial
SecResponseBodyAccess Off
SecAuditEngine Off
SecArgumentSeparator &
SecCookieFormat 0
SecRule REQUEST_HEADERS:Content-Type "@rx ^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecDefaultAction "phase:1,log,auditlog,pass"
SecDefaultAction "phase:2,log,auditlog,pass"
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={pl}"
SecAction "id:900110,phase:1,nolog,pass,t:none,setvar:tx.inbound_anomaly_score_threshold={threshold},setvar:tx.outbound_anomaly_score_threshold=4"
SecAction "id:900130,phase:1,nolog,pass,t:none,setvar:tx.crs_exclusions_wordpress={wp}"
SecAction "id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version=334"
"#,
        limit = s.body_limit.max(1),
        pl = s.paranoia.clamp(1, 4),
        threshold = s.threshold.max(1),
        wp = u8::from(s.wordpress),
    );
    if !s.extra_before.is_empty() {
        out.push_str(&s.extra_before);
        out.push('\n');
    }
    let path_limited = s.exceptions.iter().filter(|e| e.path.is_some());
    for (id, e) in (FIRST_EXCEPTION_ID..).zip(path_limited) {
        let path = e.path.as_deref().unwrap_or("/");
        let ctl = match &e.argument {
            Some(arg) => format!("ctl:ruleRemoveTargetById={};ARGS:{arg}", e.rule),
            None => format!("ctl:ruleRemoveById={}", e.rule),
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
        match &e.argument {
            Some(arg) => out.push_str(&format!(
                "SecRuleUpdateTargetById {} \"!ARGS:{arg}\"\n",
                e.rule
            )),
            None => out.push_str(&format!("SecRuleRemoveById {}\n", e.rule)),
        }
    }
    out
}

/// The CRS request rule files, in order (response rules are not used: responses are not
/// inspected).
pub fn crs_files(s: &Settings) -> std::io::Result<Vec<PathBuf>> {
    let dir = s.crs_dir.join("rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("REQUEST-") && n.ends_with(".conf"))
        })
        .collect();
    files.sort();
    Ok(files)
}
