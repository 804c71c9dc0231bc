//! What a site's WAF is built from: which rule set and plugins (`plan`, cheap), the two
//! compiled rule sets — the editors' and the visitors' — (`build`), and what `/status`
//! shows of them.

use peakguard_config::WafConfig;
use peakguard_waf::{Exception, Excluded, Plugin, RuleSet, Settings, Waf};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// CRS 3.3's WordPress exclusions that relax the rules for editors (REST post and media
/// editing, the customizer, wp-admin screens): kept out of the visitor set.
pub(super) const EDITOR_EXCLUSIONS_V3: &str =
    "SecRuleRemoveById 9002140-9002160 9002400-9002401 9002520-9002830";

/// The same in CRS 4's wordpress-rule-exclusions plugin: comment moderation in wp-admin
/// (9507121-9507122), the block editor's REST saves (9507140-9507150), the customizer and
/// widgets (9507180-9507181, 9507183-9507186), users, content, menus, media and the theme
/// and plugin editors, options, Site Health and plugin management (9507520-9507999). The
/// visitor set keeps the login and password-reset forms, comments, cron, cookies, general
/// search arguments, installation and the admin's script loaders.
pub(super) const EDITOR_EXCLUSIONS_V4: &str = "SecRuleRemoveById 9507121-9507122 9507140-9507150 9507180-9507181 9507183-9507186 9507520-9507899 9507910-9507999";

/// What WordPress editors do that CRS 3.3's WordPress exclusions do not cover, for the
/// editor set only (a login session the origin issued): the theme and plugin file editor
/// (PHP in `newcontent`), saving and previewing the customizer (`customize_changeset_data`,
/// `customized`), the block editor's REST saves (site editor styles, templates, template
/// parts, navigation, widgets, reusable blocks, and the batch endpoint that carries them:
/// HTML, CSS and JSON in the body), media details (`changes[caption]`, `changes[alt]`…),
/// and the admin's search boxes (`s`: "Insert Headers and Footers" is a plugin's name, not
/// SQL). An editor with these rights can change the site's code anyway; the front end and
/// every visitor keep the full rules.
pub(super) const EDITOR_EXTRA: &str = r#"SecRule REQUEST_FILENAME "@rx /wp-admin/(?:admin-ajax|theme-editor|plugin-editor)\.php$" "id:1910001,phase:2,pass,nolog,t:none,chain"
SecRule ARGS:action "@rx ^(?:edit-theme-plugin-file|update)$" "t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:newcontent"
SecRule REQUEST_FILENAME "@endsWith /wp-admin/admin-ajax.php" "id:1910002,phase:2,pass,nolog,t:none,chain"
SecRule ARGS:action "@streq customize_save" "t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:customize_changeset_data,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:customized"
SecRule REQUEST_FILENAME "@rx /wp-json/(?:wp/v[0-9]+/(?:global-styles|templates|template-parts|navigation|widgets|sidebars|blocks|menu-items)|batch/v[0-9]+)(?:/|$)" "id:1910003,phase:1,pass,nolog,t:none,ctl:ruleRemoveByTag=attack-xss,ctl:ruleRemoveByTag=attack-sqli,ctl:ruleRemoveByTag=attack-rce,ctl:ruleRemoveByTag=attack-injection-php"
SecRule ARGS_GET:rest_route "@rx ^/(?:wp/v[0-9]+/(?:global-styles|templates|template-parts|navigation|widgets|sidebars|blocks|menu-items)|batch/v[0-9]+)(?:/|$)" "id:1910004,phase:1,pass,nolog,t:none,ctl:ruleRemoveByTag=attack-xss,ctl:ruleRemoveByTag=attack-sqli,ctl:ruleRemoveByTag=attack-rce,ctl:ruleRemoveByTag=attack-injection-php"
SecRule ARGS:wp_customize "@streq on" "id:1910005,phase:2,pass,nolog,t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:customized,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:customize_changeset_data"
SecRule REQUEST_FILENAME "@endsWith /wp-admin/admin-ajax.php" "id:1910006,phase:2,pass,nolog,t:none,chain"
SecRule ARGS:action "@streq save-attachment" "t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:changes[caption],ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:changes[alt],ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:changes[description],ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:changes[title]"
SecRule REQUEST_FILENAME "@contains /wp-admin/" "id:1910007,phase:2,pass,nolog,t:none,ctl:ruleRemoveTargetByTag=attack-sqli;ARGS:s"
"#;

/// Which rule set a site's WAF runs, with what (`/status`, `peakguard waf status`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WafStatus {
    pub site: String,
    /// The CRS release (`4.28.0`).
    pub crs: String,
    /// Where it was found (`…/crs/current`) and what that is (`…/crs/4.28.0`).
    pub crs_dir: String,
    pub crs_real_dir: String,
    /// How it was found: the site's crs_dir, peakguard's installed copy, Debian's.
    pub found: String,
    pub plugins: Vec<String>,
    pub paranoia: u8,
    pub inspect_responses: bool,
    /// What an operator should know (CRS 3.3 in use, the WordPress plugin missing).
    pub warnings: Vec<String>,
}

/// A site's two compiled rule sets.
pub struct SiteWafs {
    pub visitor: Arc<Waf>,
    pub editor: Arc<Waf>,
    /// What they were built from (rebuilt when it changes: the configuration, the rule
    /// set `current` points at, a plugin reinstalled).
    pub built_from: String,
    pub status: WafStatus,
}

/// What a site's rule sets are made of, found but not compiled yet.
pub struct Plan {
    pub(super) crs: RuleSet,
    pub(super) plugins: Vec<Plugin>,
    pub(super) wordpress: bool,
    /// The WordPress plugin was wanted and found (CRS 4).
    pub(super) wordpress_plugin: bool,
    pub(super) warnings: Vec<String>,
    /// Identifies the build: equal keys, same rules.
    pub key: String,
}

impl Plan {
    /// What a site built from this plan runs.
    pub fn describe(&self, site: &str, config: &WafConfig) -> WafStatus {
        WafStatus {
            site: site.to_string(),
            crs: self.crs.version.to_string(),
            crs_dir: self.crs.dir.display().to_string(),
            crs_real_dir: self.crs.real_dir.display().to_string(),
            found: self.crs.found.to_string(),
            plugins: self.plugins.iter().map(|p| p.name.clone()).collect(),
            paranoia: config.paranoia,
            inspect_responses: config.inspect_responses,
            warnings: self.warnings.clone(),
        }
    }
}

fn modified(path: &std::path::Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(String::new, |d| d.as_nanos().to_string())
}

/// Finds the rule set and plugins a site's `[site.waf]` names (cheap: no compilation).
/// `wordpress`: the WordPress exclusions are on (`wordpress`, or the profile's default).
/// `crs`: this rule set instead of the one the site would find (a release being installed).
pub fn plan(
    config: &WafConfig,
    wordpress: bool,
    crs_home: &std::path::Path,
    crs: Option<RuleSet>,
) -> Result<Plan, String> {
    let crs = match crs {
        Some(crs) => crs,
        None => RuleSet::locate(config.crs_dir.as_deref(), crs_home).map_err(|e| e.to_string())?,
    };
    let mut plugins = Vec::new();
    let mut warnings = Vec::new();
    let mut wordpress_plugin = false;
    if crs.version.is_v4() {
        for name in &config.plugins {
            let p = Plugin::find(name, crs_home, &crs.dir).map_err(|e| e.to_string())?;
            if !plugins.iter().any(|q: &Plugin| q.name == p.name) {
                plugins.push(p);
            }
        }
        let named = |plugins: &[Plugin]| {
            plugins
                .iter()
                .any(|p| p.name == peakguard_waf::plugin::WORDPRESS)
        };
        if wordpress && !named(&plugins) {
            match Plugin::find(peakguard_waf::plugin::WORDPRESS, crs_home, &crs.dir) {
                // First: as CRS loads plugins, the application's exclusions before others.
                Ok(p) => plugins.insert(0, p),
                Err(e) => warnings.push(format!(
                    "{e} (releases: {}); without it CRS 4 refuses much of what WordPress editors do",
                    peakguard_waf::plugin::WORDPRESS_RELEASES
                )),
            }
        }
        // The editors' part of the plugin is split off only when WordPress is on.
        wordpress_plugin = wordpress && named(&plugins);
    } else {
        if !config.plugins.is_empty() {
            return Err(format!(
                "plugins: CRS {} ({}) has no plugins; CRS 4 does (peakguard waf crs install FILE)",
                crs.version, crs.found
            ));
        }
        warnings.push(format!(
            "CRS {} ({}): the detection and false-positive figures in BENCHMARKS.md are for CRS 4; install a CRS 4 release with `peakguard waf crs install FILE` ({})",
            crs.version,
            crs.found,
            peakguard_waf::crs::RELEASES
        ));
    }
    let mut key = format!(
        "{config:?}|{wordpress}|{}|{}|{}",
        crs.real_dir.display(),
        crs.version,
        modified(&crs.real_dir.join("rules"))
    );
    for p in &plugins {
        for phase in 0..3 {
            if let Some(f) = p.file(phase) {
                key.push_str(&format!("|{}:{}", f.display(), modified(f)));
            }
        }
    }
    Ok(Plan {
        crs,
        plugins,
        wordpress,
        wordpress_plugin,
        warnings,
        key,
    })
}

/// Whether a site's WAF has the WordPress exclusions: `[site.waf] wordpress`, else on for
/// the `wordpress` profile.
pub fn wordpress_on(site: &peakguard_config::SiteConfig) -> bool {
    site.waf
        .as_ref()
        .and_then(|w| w.wordpress)
        .unwrap_or(site.profile == peakguard_config::Profile::Wordpress)
}

pub(super) fn settings(config: &WafConfig, plan: &Plan, editor: bool) -> Settings {
    let mut s = Settings::new(plan.crs.clone());
    s.plugins = plan.plugins.clone();
    s.paranoia = config.paranoia;
    s.executing_paranoia = config.executing_paranoia;
    s.threshold = config.threshold;
    s.outbound_threshold = config.outbound_threshold;
    s.early_blocking = config.early_blocking;
    s.allowed_methods = config.allowed_methods.clone();
    s.allowed_content_types = config.allowed_content_types.clone();
    s.setup = config
        .crs_setup
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    s.body_limit = config.body_limit.0 as usize;
    s.wordpress = plan.wordpress;
    s.responses = config.inspect_responses;
    s.exceptions = config
        .exceptions
        .iter()
        .filter_map(|e| {
            let excluded = match (&e.rule, &e.tag) {
                (Some(rule), _) => Excluded::Rule(*rule),
                (None, Some(tag)) => Excluded::Tag(tag.clone()),
                (None, None) => return None,
            };
            Some(Exception {
                excluded,
                path: e.path.clone(),
                argument: e.argument.clone(),
            })
        })
        .collect();
    if plan.wordpress {
        if editor {
            s.extra_before = EDITOR_EXTRA.to_string();
        } else if plan.crs.version.is_v4() {
            if plan.wordpress_plugin {
                s.extra_after = EDITOR_EXCLUSIONS_V4.to_string();
            }
        } else {
            s.extra_after = EDITOR_EXCLUSIONS_V3.to_string();
        }
    }
    s
}

/// Compiles a site's rule sets (a second or two: at start and on reload, off the request
/// path).
pub fn build(site: &str, config: &WafConfig, plan: Plan) -> Result<SiteWafs, String> {
    let visitor = Waf::build(settings(config, &plan, false)).map_err(|e| e.to_string())?;
    let editor = Waf::build(settings(config, &plan, true)).map_err(|e| e.to_string())?;
    let status = plan.describe(site, config);
    Ok(SiteWafs {
        visitor: Arc::new(visitor),
        editor: Arc::new(editor),
        built_from: plan.key,
        status,
    })
}
