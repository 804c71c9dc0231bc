//! `peakguard wordpress install|uninstall|plugin`: the companion plugin into a site and out,
//! and the check that its tokens work against the running edge.

use crate::cli::{WordpressAction, WordpressArgs};
use anyhow::{Context, Result};
use std::process::ExitCode;

pub fn run(args: WordpressArgs) -> Result<ExitCode> {
    match args.action {
        WordpressAction::Plugin => {
            print!("{}", peakguard_wordpress::plugin());
            Ok(ExitCode::SUCCESS)
        }
        WordpressAction::Install { config, site } => {
            let config = required_config(config.as_deref())?;
            let target = peakguard_wordpress::resolve(&config, site.as_deref())?;
            let text = peakguard_wordpress::plugin_with_settings(&target.settings);
            let done = peakguard_wordpress::install(&target.mu_plugins, &text, &target.web_group)?;
            println!(
                "{} {} (peakguard {}, site {:?}, 0640 group {})",
                if done.replaced {
                    "updated"
                } else {
                    "installed"
                },
                done.path.display(),
                env!("CARGO_PKG_VERSION"),
                target.settings.site,
                target.web_group
            );
            if done.replaced {
                println!(
                    "PHP's opcache may run the previous copy for opcache.revalidate_freq seconds (2 by default); with opcache.validate_timestamps=0, reload PHP-FPM"
                );
            }
            let mut reachable = check_token(
                &target.settings.admin_url,
                &target.purge_token_name,
                &target.settings.purge_token,
            );
            match (
                &target.admin_bar_token_name,
                &target.settings.admin_bar_token,
            ) {
                (Some(name), Some(token)) => {
                    reachable &= check_token(&target.settings.admin_url, name, token);
                }
                _ => println!(
                    "admin bar: purges only (no [[admin.tokens]] entry with [\"maintenance\", \"read\"] for its cache status and maintenance switch)"
                ),
            }
            if reachable {
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "the plugin is installed; until the edge answers, edits are kept and purged when it does (WordPress shows a notice meanwhile)"
                );
                Ok(ExitCode::from(2))
            }
        }
        WordpressAction::Uninstall { config, site } => {
            let config = required_config(config.as_deref())?;
            let target = peakguard_wordpress::resolve(&config, site.as_deref())?;
            if peakguard_wordpress::uninstall(&target.mu_plugins)? {
                println!(
                    "removed {}",
                    target
                        .mu_plugins
                        .join(peakguard_wordpress::PLUGIN_FILE)
                        .display()
                );
            } else {
                println!(
                    "no peakguard plugin in {} (nothing to remove)",
                    target.mu_plugins.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn required_config(path: Option<&std::path::Path>) -> Result<peakguard_config::Config> {
    super::load_config(path)?.context(
        "no configuration: pass --config FILE (or run where peakguard.toml is); it names the site, its WordPress directory and the plugin's tokens",
    )
}

/// Asks the admin API who the token is, as the plugin will (`GET /token`); prints the
/// result. False when the edge cannot be reached or refuses the token.
fn check_token(base: &str, name: &str, token: &str) -> bool {
    let url = format!("{base}/token");
    let answer = ureq::get(&url)
        .timeout(std::time::Duration::from_secs(5))
        .set("Authorization", &format!("Bearer {token}"))
        .call();
    match answer {
        Ok(r) => {
            let who: serde_json::Value = r.into_json().unwrap_or_default();
            println!(
                "admin API {base}: token {name:?} accepted (permissions {}, edge {})",
                who["permissions"],
                who["version"].as_str().unwrap_or("?")
            );
            true
        }
        Err(ureq::Error::Status(401, _)) => {
            println!(
                "admin API {base}: token {name:?} refused (401): the running edge has not loaded it yet — reload it (kill -HUP its pid) after adding the token"
            );
            false
        }
        Err(ureq::Error::Status(code, _)) => {
            println!("admin API {base}: token {name:?} got HTTP {code}");
            false
        }
        Err(e) => {
            println!(
                "admin API {base}: unreachable ({e}); is `peakguard serve` running, and is [site.wordpress] admin_url how PHP reaches it?"
            );
            false
        }
    }
}
