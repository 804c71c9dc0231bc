//! `peakguard probe`: every probe once, a table or JSON, the exit code says if all passed.

use crate::cli::ProbeArgs;
use anyhow::{Context, Result, bail};
use std::process::ExitCode;

pub fn run(args: ProbeArgs) -> Result<ExitCode> {
    let config = match super::load_config(args.config.as_deref())? {
        Some(config) => config,
        None => bail!(
            "no configuration: give --config FILE or create ./peakguard.toml with [[probe]] entries"
        ),
    };
    let mut probes = config.probes;
    if probes.is_empty() {
        bail!(
            "the configuration has no [[probe]]: add one, e.g.\n\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"https://shop.example.com/\"\n"
        );
    }
    if !args.only.is_empty() {
        for name in &args.only {
            if !probes.iter().any(|p| &p.name == name) {
                let known: Vec<_> = probes.iter().map(|p| p.name.as_str()).collect();
                bail!("no probe named {name:?} (the configuration has {known:?})");
            }
        }
        probes.retain(|p| args.only.contains(&p.name));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("a runtime for the probes")?;
    let results = rt.block_on(peakguard_monitor::run_all(&probes));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        let width = results
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!(
            "{:<width$}  {:<4}  {:<4}  {:>9}  detail",
            "probe", "kind", "ok", "time"
        );
        for r in &results {
            println!(
                "{:<width$}  {:<4}  {:<4}  {:>7.0}ms  {}",
                r.name,
                r.kind,
                if r.success { "ok" } else { "FAIL" },
                r.duration.as_secs_f64() * 1000.0,
                r.message
            );
        }
    }
    let failed = results.iter().filter(|r| !r.success).count();
    if failed > 0 {
        eprintln!("{failed} of {} probes failed", results.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
