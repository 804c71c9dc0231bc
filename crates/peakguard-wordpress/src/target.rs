//! Where the plugin goes and what it is told, from a site's `[site.wordpress]` (or its
//! `[site.backup] root`) and the `[[admin.tokens]]`.

use crate::WordpressError;
use crate::plugin::Settings;
use peakguard_config::{Config, SiteConfig, is_admin_bar_scope, is_purge_only, pick_token};
use std::path::PathBuf;

/// One site's install: the directory, the settings, the group PHP runs as.
#[derive(Debug)]
pub struct Target {
    pub mu_plugins: PathBuf,
    pub settings: Settings,
    pub web_group: String,
    /// The scoped tokens' names (for the report).
    pub purge_token_name: String,
    pub admin_bar_token_name: Option<String>,
}

fn pick_site<'a>(config: &'a Config, name: Option<&str>) -> Result<&'a SiteConfig, WordpressError> {
    let names = || {
        config
            .sites
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
    };
    match name {
        Some(n) => config.sites.iter().find(|s| s.name == n).ok_or_else(|| {
            WordpressError::Config(format!("no [[site]] is named {n:?} (sites: {:?})", names()))
        }),
        None => match config.sites.as_slice() {
            [one] => Ok(one),
            [] => Err(WordpressError::Config(
                "the configuration has no [[site]]".into(),
            )),
            _ => Err(WordpressError::Config(format!(
                "several sites ({:?}): say which with --site NAME",
                names()
            ))),
        },
    }
}

/// The admin API as PHP reaches it: `[site.wordpress] admin_url`, else `[admin] listen`
/// with an unspecified address turned into loopback.
fn admin_url(config: &Config, configured: &str) -> String {
    if !configured.is_empty() {
        return configured.trim_end_matches('/').to_string();
    }
    let listen = &config.admin.listen;
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen.as_str(), "9080"));
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "[::]" => "[::1]",
        h => h,
    };
    format!("http://{host}:{port}")
}

/// A fresh random token, suggested in the error that asks for one.
fn suggested_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 24];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => "PUT-AT-LEAST-16-RANDOM-CHARACTERS-HERE".into(),
    }
}

/// The install of the plugin for `site` (the only site when `None`).
pub fn resolve(config: &Config, site: Option<&str>) -> Result<Target, WordpressError> {
    let site = pick_site(config, site)?;
    let wp = site.wordpress.clone().unwrap_or_default();
    let key = |k: &str| format!("[site.wordpress] {k} of site {:?}", site.name);
    let root = if !wp.root.as_os_str().is_empty() {
        Some(wp.root.clone())
    } else {
        site.backup.as_ref().map(|b| b.root.clone())
    };
    let mu_plugins = if !wp.mu_plugins.as_os_str().is_empty() {
        wp.mu_plugins.clone()
    } else {
        match root {
            Some(root) if !root.as_os_str().is_empty() => root.join("wp-content/mu-plugins"),
            _ => {
                return Err(WordpressError::Config(format!(
                    "where is this site's WordPress? Set {} (the directory holding wp-content) or {} (WPMU_PLUGIN_DIR)",
                    key("root"),
                    key("mu_plugins")
                )));
            }
        }
    };
    let purge = pick_token(
        config,
        &wp.purge_token,
        is_purge_only,
        "the plugin's purge token must have exactly [\"purge\"]",
    )
    .map_err(|m| WordpressError::Config(format!("{}: {m}", key("purge_token"))))?
    .ok_or_else(|| {
        WordpressError::Config(format!(
            "the plugin needs its own purge-only token (it never holds the admin token). Add to the configuration, then reload the edge (systemctl reload peakguard, or kill -HUP its pid):\n\n\
             [[admin.tokens]]\nname = \"wordpress\"\npermissions = [\"purge\"]\ntoken = \"{}\"\n\n\
             and, for the admin bar's cache status and maintenance switch (optional):\n\n\
             [[admin.tokens]]\nname = \"wordpress-admin-bar\"\npermissions = [\"maintenance\", \"read\"]\ntoken = \"{}\"",
            suggested_token(),
            suggested_token()
        ))
    })?;
    let bar = pick_token(
        config,
        &wp.admin_bar_token,
        is_admin_bar_scope,
        "the admin bar's token must have exactly [\"maintenance\", \"read\"]",
    )
    .map_err(|m| WordpressError::Config(format!("{}: {m}", key("admin_bar_token"))))?;
    let host = site
        .hosts
        .iter()
        .find(|h| h.as_str() != "*")
        .map(|h| h.to_ascii_lowercase());
    let settings = Settings {
        site: site.name.clone(),
        admin_url: admin_url(config, &wp.admin_url),
        purge_token: purge.value().map_err(WordpressError::Config)?,
        admin_bar_token: bar
            .map(|t| t.value())
            .transpose()
            .map_err(WordpressError::Config)?,
        host,
    };
    Ok(Target {
        mu_plugins,
        settings,
        web_group: wp.web_group.clone(),
        purge_token_name: purge.name.clone(),
        admin_bar_token_name: bar.map(|t| t.name.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        peakguard_config::parse(text, "test.toml").expect("valid test configuration")
    }

    #[test]
    fn a_site_without_a_purge_only_token_is_told_what_to_add() {
        let c = config(
            "[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://127.0.0.1:80\"\n[site.wordpress]\nroot = \"/srv/wp\"\n",
        );
        let e = resolve(&c, None).unwrap_err().to_string();
        assert!(
            e.contains("[[admin.tokens]]") && e.contains("permissions = [\"purge\"]"),
            "{e}"
        );
    }

    #[test]
    fn the_site_the_tokens_and_the_directory_are_found() {
        let c = config(
            "[admin]\nlisten = \"0.0.0.0:9081\"\nallow_remote = true\n\
             [[admin.tokens]]\nname = \"wp\"\npermissions = [\"purge\"]\ntoken = \"0123456789abcdef0\"\n\
             [[admin.tokens]]\nname = \"bar\"\npermissions = [\"read\", \"maintenance\"]\ntoken = \"fedcba98765432100\"\n\
             [[site]]\nname = \"shop\"\nhosts = [\"Shop.test\"]\norigin = \"http://127.0.0.1:80\"\n[site.wordpress]\nroot = \"/srv/wp\"\n\
             [[site]]\nname = \"blog\"\nhosts = [\"blog.test\"]\norigin = \"http://127.0.0.1:80\"\n",
        );
        assert!(
            resolve(&c, None)
                .unwrap_err()
                .to_string()
                .contains("--site")
        );
        let t = resolve(&c, Some("shop")).unwrap();
        assert_eq!(t.mu_plugins, PathBuf::from("/srv/wp/wp-content/mu-plugins"));
        assert_eq!(t.settings.admin_url, "http://127.0.0.1:9081");
        assert_eq!(t.settings.purge_token, "0123456789abcdef0");
        assert_eq!(
            t.settings.admin_bar_token.as_deref(),
            Some("fedcba98765432100")
        );
        assert_eq!(t.settings.host.as_deref(), Some("shop.test"));
        assert_eq!(t.web_group, "www-data");
        let e = resolve(&c, Some("blog")).unwrap_err().to_string();
        assert!(e.contains("root") && e.contains("mu_plugins"), "{e}");
    }

    #[test]
    fn a_named_token_with_more_rights_is_refused() {
        let c = config(
            "[[admin.tokens]]\nname = \"wide\"\npermissions = [\"purge\", \"maintenance\"]\ntoken = \"0123456789abcdef0\"\n\
             [[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\norigin = \"http://127.0.0.1:80\"\n[site.wordpress]\nroot = \"/srv/wp\"\n",
        );
        let e = resolve(&c, None).unwrap_err().to_string();
        assert!(e.contains("purge-only"), "{e}");
    }
}
