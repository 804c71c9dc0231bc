//! `peakguard waf explain INCIDENT`: why the WAF blocked a request, from the WAF log, and the
//! `[site.waf]` exceptions that would let such a request through.

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
        "incident {} on site {:?}, {when}: {} {} {} from {}",
        i.id, i.site, i.action, i.method, i.uri, i.client
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
        let mut parts = vec![format!("rule = {}", e.rule)];
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
