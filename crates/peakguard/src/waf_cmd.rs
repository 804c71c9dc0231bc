//! `peakguard waf …`: `explain INCIDENT` (why the WAF blocked a request, from the WAF log,
//! and the `[site.waf]` exceptions that would let such a request through), `status`,
//! `crs install|rollback` and `plugin install` (peakguard-waf's install.rs does the work;
//! this prints).

use anyhow::{Context, Result, bail};
use peakguard_shield::waf::Incident;
use std::io::BufRead;
use std::process::ExitCode;

pub fn explain(config: Option<&std::path::Path>, id: &str) -> Result<ExitCode> {
    let config = match super::load_config(config)? {
        Some(c) => c,
        None => peakguard_config::defaults(),
    };
    let path = &config.waf.log;
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "cannot read the WAF log {} ([waf] log; is this the configuration `serve` runs with?)",
            path.display()
        )
    })?;
    let wanted = id.trim().to_ascii_lowercase();
    let mut found: Option<Incident> = None;
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { continue };
        if !line.contains(&wanted) {
            continue;
        }
        if let Ok(incident) = serde_json::from_str::<Incident>(&line)
            && incident.id == wanted
        {
            found = Some(incident);
        }
    }
    let Some(i) = found else {
        bail!(
            "no incident {id:?} in {} (the id is on the block page and in the X-Peakguard-Incident header)",
            path.display()
        );
    };
    let when = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(i.at),
    );
    println!(
        "incident {} on site {:?}, {when}: {} {} {} from {}{}",
        i.id,
        i.site,
        i.action,
        i.method,
        i.uri,
        i.client,
        if i.phase == "response" {
            " (the origin's response: already sent)"
        } else {
            ""
        }
    );
    println!(
        "anomaly score {} (threshold {}), {} rules",
        i.score,
        i.threshold,
        if i.editor {
            "editor (an issued login session)"
        } else {
            "visitor"
        }
    );
    for r in &i.rules {
        println!(
            "  {:<7} {:<17} {}{}",
            r.id,
            r.family,
            r.message,
            r.target
                .as_deref()
                .map(|t| format!("  (at {t})"))
                .unwrap_or_default()
        );
    }
    let exceptions = i.exceptions();
    if exceptions.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\nIf this request was legitimate, these exceptions in [site.waf] of site {:?} let such requests through (each rule only there):\n",
        i.site
    );
    println!("exceptions = [");
    for e in &exceptions {
        let mut parts: Vec<String> = e.rule.iter().map(|r| format!("rule = {r}")).collect();
        if let Some(p) = &e.path {
            parts.push(format!("path = {p:?}"));
        }
        if let Some(a) = &e.argument {
            parts.push(format!("argument = {a:?}"));
        }
        println!("  {{ {} }},", parts.join(", "));
    }
    println!("]");
    Ok(ExitCode::SUCCESS)
}

fn config_or_defaults(path: Option<&std::path::Path>) -> Result<peakguard_config::Config> {
    Ok(super::load_config(path)?.unwrap_or_else(peakguard_config::defaults))
}

fn verify_of(v: &crate::cli::VerifyArgs) -> peakguard_waf::install::Verify {
    peakguard_waf::install::Verify {
        sha256: v.sha256.clone(),
        signature: v.signature.clone(),
        keyring: v.keyring.clone(),
        unverified: v.unverified,
    }
}

/// The sites that run the rule set of `crs_home` (no crs_dir of their own), compiled with
/// `crs` and their settings.
fn sites_load_with(
    config: &peakguard_config::Config,
    crs: &peakguard_waf::RuleSet,
) -> std::result::Result<(), String> {
    for site in &config.sites {
        let Some(waf) = site
            .waf
            .as_ref()
            .filter(|w| w.mode != peakguard_config::WafMode::Off && w.crs_dir.is_none())
        else {
            continue;
        };
        let wordpress = peakguard_shield::waf::wordpress_on(site);
        let plan =
            peakguard_shield::waf::plan(waf, wordpress, &config.waf.crs_home, Some(crs.clone()))
                .map_err(|e| format!("site {:?}: {e}", site.name))?;
        peakguard_shield::waf::build(&site.name, waf, plan)
            .map_err(|e| format!("site {:?}: {e}", site.name))?;
        eprintln!("  site {:?}: loads", site.name);
    }
    Ok(())
}

fn reload_hint(config: &peakguard_config::Config) {
    println!(
        "A running edge takes it on SIGHUP: kill -HUP $(cat {})",
        config.server.pid_file.display()
    );
}

pub fn install_crs(
    config: Option<&std::path::Path>,
    source: &std::path::Path,
    verify: &crate::cli::VerifyArgs,
) -> Result<ExitCode> {
    let config = config_or_defaults(config)?;
    let home = &config.waf.crs_home;
    eprintln!(
        "installing {} into {} (verify, unpack, compile)…",
        source.display(),
        home.display()
    );
    let check = |crs: &peakguard_waf::RuleSet| sites_load_with(&config, crs);
    let (installed, checks) =
        peakguard_waf::install::install_crs(home, source, &verify_of(verify), &check)?;
    for c in &checks {
        println!("  {c}");
    }
    println!(
        "CRS {} installed in {}{} and current{}",
        installed.version,
        installed.dir.display(),
        if installed.checked_with.is_empty() {
            String::new()
        } else {
            format!(" (loads with {})", installed.checked_with.join(", "))
        },
        installed
            .previous
            .map(|p| format!("; {p} kept as previous (peakguard waf crs rollback)"))
            .unwrap_or_default()
    );
    for r in &installed.removed {
        println!("  removed the older release {r}");
    }
    if installed.version.is_v4()
        && !peakguard_waf::install::releases(home)
            .plugins
            .iter()
            .any(|p| p == peakguard_waf::plugin::WORDPRESS)
    {
        println!(
            "WordPress sites also need the {} plugin: peakguard waf plugin install FILE|DIR ({})",
            peakguard_waf::plugin::WORDPRESS,
            peakguard_waf::plugin::WORDPRESS_RELEASES
        );
    }
    reload_hint(&config);
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(config: Option<&std::path::Path>) -> Result<ExitCode> {
    let config = config_or_defaults(config)?;
    let (now, was) = peakguard_waf::install::rollback(&config.waf.crs_home)?;
    println!("CRS {now} is current again ({was} kept as previous)");
    reload_hint(&config);
    Ok(ExitCode::SUCCESS)
}

pub fn install_plugin(
    config: Option<&std::path::Path>,
    source: &std::path::Path,
    verify: &crate::cli::VerifyArgs,
) -> Result<ExitCode> {
    let config = config_or_defaults(config)?;
    let home = &config.waf.crs_home;
    let crs = peakguard_waf::RuleSet::locate(None, home).ok();
    let (plugin, checks) =
        peakguard_waf::install::install_plugin(home, source, &verify_of(verify), crs.as_ref())?;
    for c in &checks {
        println!("  {c}");
    }
    println!(
        "plugin {} installed in {}{}",
        plugin.name,
        plugin.dir.display(),
        crs.map(|c| format!(" (loads with CRS {})", c.version))
            .unwrap_or_default()
    );
    reload_hint(&config);
    Ok(ExitCode::SUCCESS)
}

pub fn status(admin: &crate::cli::AdminArgs) -> Result<ExitCode> {
    let config = config_or_defaults(admin.config.as_deref())?;
    let home = &config.waf.crs_home;
    let r = peakguard_waf::install::releases(home);
    let show =
        |v: Option<peakguard_waf::CrsVersion>| v.map_or("none".to_string(), |v| v.to_string());
    println!("installed in {}:", home.display());
    println!(
        "  current {}, previous {}, releases [{}], plugins [{}]",
        show(r.current),
        show(r.previous),
        r.all
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        r.plugins.join(", ")
    );
    let mut problems = false;
    for site in &config.sites {
        let Some(waf) = &site.waf else { continue };
        if waf.mode == peakguard_config::WafMode::Off {
            println!("site {:?}: WAF off", site.name);
            continue;
        }
        let wordpress = peakguard_shield::waf::wordpress_on(site);
        match peakguard_shield::waf::plan(waf, wordpress, home, None) {
            Ok(plan) => {
                let s = plan.describe(&site.name, waf);
                println!(
                    "site {:?}: CRS {} ({}: {}), plugins [{}], paranoia {}, mode {:?}{}",
                    s.site,
                    s.crs,
                    s.found,
                    s.crs_real_dir,
                    s.plugins.join(", "),
                    s.paranoia,
                    waf.mode,
                    if s.inspect_responses {
                        ", responses inspected"
                    } else {
                        ""
                    }
                );
                for w in &s.warnings {
                    println!("  warning: {w}");
                }
            }
            Err(e) => {
                problems = true;
                println!("site {:?}: {e}", site.name);
            }
        }
    }
    match super::admin(admin).and_then(|c| c.get("/status")) {
        Ok(status) => {
            let running = status["waf"].as_array().cloned().unwrap_or_default();
            if running.is_empty() {
                println!("the running edge has no WAF");
            }
            for s in running {
                println!(
                    "running: site {}: CRS {} ({}), plugins {}",
                    s["site"],
                    s["crs"].as_str().unwrap_or("?"),
                    s["crs_real_dir"].as_str().unwrap_or("?"),
                    s["plugins"]
                );
            }
        }
        Err(e) => println!("no running edge asked: {e}"),
    }
    Ok(if problems {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
