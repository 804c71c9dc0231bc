//! `[site.wordpress]`: where a site's WordPress lives and which scoped admin tokens its
//! companion plugin holds (issue P9). Read by `peakguard wordpress install`; the edge never
//! looks at it.

use crate::schema::{AdminPermission, Config, ScopedToken};
use serde::Deserialize;
use std::path::PathBuf;

/// `[site.wordpress]`. Every key has a default; the section may be left out when
/// `[site.backup] root` names the WordPress directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WordpressConfig {
    /// The WordPress directory (the one holding `wp-content`). Empty: `[site.backup] root`.
    pub root: PathBuf,
    /// Where must-use plugins are loaded from (`WPMU_PLUGIN_DIR`). Empty:
    /// `<root>/wp-content/mu-plugins`.
    pub mu_plugins: PathBuf,
    /// The admin API as PHP on the WordPress server reaches it. Empty: `http://` and
    /// `[admin] listen` (an unspecified address becomes loopback).
    pub admin_url: String,
    /// The `[[admin.tokens]]` entry the plugin purges with; its permissions must be exactly
    /// `["purge"]`. Empty: the only such entry.
    pub purge_token: String,
    /// The `[[admin.tokens]]` entry behind the admin bar's cache status and maintenance
    /// switch; its permissions must be `["maintenance", "read"]`. Empty: the only such entry,
    /// or none (the admin bar then offers the purges alone).
    pub admin_bar_token: String,
    /// The group PHP runs as: the installed plugin holds tokens, so it is written 0640 and
    /// given to this group.
    pub web_group: String,
}

impl Default for WordpressConfig {
    fn default() -> Self {
        WordpressConfig {
            root: PathBuf::new(),
            mu_plugins: PathBuf::new(),
            admin_url: String::new(),
            purge_token: String::new(),
            admin_bar_token: String::new(),
            web_group: "www-data".into(),
        }
    }
}

impl ScopedToken {
    /// The token's value: `token`, or the content of `token_file` (which must be private,
    /// 0600), trimmed. Errors name the token and say what is wrong.
    pub fn value(&self) -> Result<String, String> {
        match &self.token_file {
            Some(path) => crate::private_fs::read_private(path)
                .map_err(|e| format!("admin token {:?}: {e}", self.name))?
                .map(|v| v.trim().to_string())
                .filter(|v| v.len() >= 16)
                .ok_or_else(|| {
                    format!(
                        "admin token {:?}: {} is missing or holds fewer than 16 characters",
                        self.name,
                        path.display()
                    )
                }),
            None => Ok(self.token.expose().to_string()),
        }
    }
}

/// What the purge token must be allowed: purging, nothing else.
pub fn is_purge_only(t: &ScopedToken) -> bool {
    !t.permissions.is_empty() && t.permissions.iter().all(|p| *p == AdminPermission::Purge)
}

/// What the admin bar's token must be allowed: maintenance and read, nothing else.
pub fn is_admin_bar_scope(t: &ScopedToken) -> bool {
    t.permissions.contains(&AdminPermission::Maintenance)
        && t.permissions.contains(&AdminPermission::Read)
        && t.permissions
            .iter()
            .all(|p| matches!(p, AdminPermission::Maintenance | AdminPermission::Read))
}

/// The token named by `name`, or the only one `fits` when `name` is empty. `Ok(None)`: no
/// name and no fitting token; `Err`: why the named or found token cannot serve.
pub fn pick_token<'a>(
    config: &'a Config,
    name: &str,
    fits: fn(&ScopedToken) -> bool,
    what: &str,
) -> Result<Option<&'a ScopedToken>, String> {
    let tokens = &config.admin.tokens;
    if !name.is_empty() {
        let Some(t) = tokens.iter().find(|t| t.name == name) else {
            return Err(format!(
                "no [[admin.tokens]] entry is named {name:?} (names: {:?})",
                tokens.iter().map(|t| t.name.as_str()).collect::<Vec<_>>()
            ));
        };
        if !fits(t) {
            return Err(format!(
                "token {name:?} has permissions {:?}; {what}",
                t.permissions
            ));
        }
        return Ok(Some(t));
    }
    let fitting: Vec<_> = tokens.iter().filter(|t| fits(t)).collect();
    match fitting.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(format!(
            "several tokens could serve ({:?}); name one",
            many.iter().map(|t| t.name.as_str()).collect::<Vec<_>>()
        )),
    }
}

pub(crate) fn validate_wordpress(
    i: usize,
    wp: &WordpressConfig,
    config: &Config,
    p: &mut impl FnMut(String, String),
) {
    let key = |k: &str| format!("site[{i}].wordpress.{k}");
    if !wp.purge_token.is_empty()
        && let Err(m) = pick_token(
            config,
            &wp.purge_token,
            is_purge_only,
            "the plugin's purge token must have exactly [\"purge\"]",
        )
    {
        p(key("purge_token"), m);
    }
    if !wp.admin_bar_token.is_empty()
        && let Err(m) = pick_token(
            config,
            &wp.admin_bar_token,
            is_admin_bar_scope,
            "the admin bar's token must have exactly [\"maintenance\", \"read\"]",
        )
    {
        p(key("admin_bar_token"), m);
    }
    let is_url = wp.admin_url.starts_with("http://") || wp.admin_url.starts_with("https://");
    if !wp.admin_url.is_empty() && !is_url {
        p(
            key("admin_url"),
            format!(
                "{:?} is not an http:// or https:// URL (example: \"http://127.0.0.1:9080\")",
                wp.admin_url
            ),
        );
    }
    if wp.web_group.trim().is_empty() {
        p(
            key("web_group"),
            "name the group PHP runs as (Debian: \"www-data\")".into(),
        );
    }
}
