//! The plugin's text, and its settings block (PHP constants) for one site.

/// The file name in `mu-plugins`.
pub const PLUGIN_FILE: &str = "peakguard.php";

const TEMPLATE: &str = include_str!("../plugin/peakguard.php");
const SETTINGS_MARK: &str = "// peakguard:settings\n";

/// What the installed plugin is told.
#[derive(Clone)]
pub struct Settings {
    /// The `[[site]]` it was installed for (named in the file, for the next reader).
    pub site: String,
    pub admin_url: String,
    pub purge_token: String,
    /// Maintenance and read, for the admin bar; absent: the admin bar offers purges alone.
    pub admin_bar_token: Option<String>,
    /// The host the edge caches the site under; absent: the plugin uses the home URL's.
    pub host: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("site", &self.site)
            .field("admin_url", &self.admin_url)
            .field("purge_token", &"***")
            .field(
                "admin_bar_token",
                &self.admin_bar_token.as_ref().map(|_| "***"),
            )
            .field("host", &self.host)
            .finish()
    }
}

/// The plugin as shipped: settings come from wp-config.php (`peakguard wordpress plugin`).
pub fn plugin() -> String {
    TEMPLATE.replace("{{PEAKGUARD_VERSION}}", env!("CARGO_PKG_VERSION"))
}

/// A PHP single-quoted string holding `s` exactly.
fn php_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The plugin with its settings written in (constants from wp-config.php still win).
pub fn plugin_with_settings(settings: &Settings) -> String {
    let mut block = format!(
        "// Settings written by `peakguard wordpress install` for site {site}; the same \
         constants in wp-config.php take precedence.\n",
        site = php_string(&settings.site)
    );
    let mut define = |name: &str, value: &str| {
        block.push_str(&format!(
            "defined('{name}') || define('{name}', {});\n",
            php_string(value)
        ));
    };
    define("PEAKGUARD_ADMIN_URL", &settings.admin_url);
    define("PEAKGUARD_PURGE_TOKEN", &settings.purge_token);
    if let Some(t) = &settings.admin_bar_token {
        define("PEAKGUARD_ADMIN_BAR_TOKEN", t);
    }
    if let Some(h) = &settings.host {
        define("PEAKGUARD_HOST", h);
    }
    plugin().replacen(SETTINGS_MARK, &block, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_plugin_names_its_version_and_has_one_settings_mark() {
        let p = plugin();
        assert!(p.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))));
        assert!(!p.contains("{{PEAKGUARD_VERSION}}"));
        assert_eq!(p.matches(SETTINGS_MARK).count(), 1);
    }

    #[test]
    fn settings_are_php_strings_whatever_they_hold() {
        let s = Settings {
            site: "shop".into(),
            admin_url: "http://127.0.0.1:9080".into(),
            purge_token: "a'b\\c".into(),
            admin_bar_token: None,
            host: Some("shop.example".into()),
        };
        let text = plugin_with_settings(&s);
        assert!(text.contains(
            "defined('PEAKGUARD_PURGE_TOKEN') || define('PEAKGUARD_PURGE_TOKEN', 'a\\'b\\\\c');"
        ));
        assert!(text.contains("define('PEAKGUARD_HOST', 'shop.example')"));
        assert!(!text.contains("|| define('PEAKGUARD_ADMIN_BAR_TOKEN'"));
        assert!(!text.contains(SETTINGS_MARK));
        assert!(!format!("{s:?}").contains("a'b"), "Debug hides tokens");
    }
}
