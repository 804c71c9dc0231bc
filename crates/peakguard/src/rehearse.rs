//! `peakguard rehearse`: reads flags and the scenario, runs the rehearsal on one core with a
//! live progress line, prints the summary, writes JSON and HTML; `compare` prints the change.

use crate::cli::{RehearseArgs, RehearseCommand, RehearseRunArgs};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use peakguard_rehearse::classes::{ClassSpec, Kind};
use peakguard_rehearse::client::{Client, Target};
use peakguard_rehearse::profile::Profile;
use peakguard_rehearse::report::{Report, compare};
use peakguard_rehearse::run::{Limits, Plan, Progress, run as run_plan};
use peakguard_rehearse::scenario::Scenario;
use peakguard_rehearse::targets::{Page, Pages, discover};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn duration(text: &str, what: &str) -> Result<Duration> {
    humantime::parse_duration(text)
        .with_context(|| format!("{what} {text:?}: write e.g. 30s, 2m, 500ms"))
}

fn read_report(path: &std::path::Path) -> Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a `peakguard rehearse --json` report",
            path.display()
        )
    })
}

fn mix(text: &str) -> Result<Vec<ClassSpec>> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (kind, weight) = part.split_once('=').unwrap_or((part, "1"));
            let kind = match kind.trim() {
                "anonymous" => Kind::Anonymous,
                "campaign" => Kind::Campaign,
                other => bail!("--mix: {other:?} is not a class for the command line (anonymous, campaign; shopper and logged_in need a scenario file)"),
            };
            let weight: f64 = weight.trim().parse().with_context(|| format!("--mix: weight {weight:?} is not a number"))?;
            Ok(ClassSpec::simple(kind, weight))
        })
        .collect()
}

pub fn run(args: RehearseArgs) -> Result<ExitCode> {
    if let Some(RehearseCommand::Compare { before, after }) = args.command {
        print!("{}", compare(&read_report(&before)?, &read_report(&after)?));
        return Ok(ExitCode::SUCCESS);
    }
    let a: RehearseRunArgs = args.run;
    let sc = match &a.scenario {
        Some(p) => Scenario::load(&p.display().to_string())?,
        None => Scenario::default(),
    };
    let target = a
        .target
        .clone()
        .or(sc.target.clone())
        .context("give --target URL (or `target` in the scenario)")?;
    let mut resolve = sc.resolve.clone();
    resolve.extend(a.resolve.iter().cloned());
    let (profile, profile_text) = match (
        a.profile.as_ref().or(sc.profile.as_ref()),
        a.rate.or(sc.rate),
    ) {
        (Some(p), _) => (Profile::parse(p)?, p.clone()),
        (None, Some(rate)) => {
            let d = a
                .duration
                .clone()
                .or(sc.duration.clone())
                .unwrap_or_else(|| "30s".into());
            (
                Profile::constant(rate, duration(&d, "--duration")?),
                format!("{rate}/s for {d}"),
            )
        }
        (None, None) => {
            bail!("give a load: --rate N [--duration 1m] or --profile \"ramp 0-200 30s, hold 1m\"")
        }
    };
    let timeout = duration(
        &a.timeout
            .clone()
            .or(sc.timeout.clone())
            .unwrap_or_else(|| "10s".into()),
        "--timeout",
    )?;
    let warm_after = a
        .warm_after
        .clone()
        .or(sc.warm_after.clone())
        .map(|w| duration(&w, "--warm-after"))
        .transpose()?;
    let concurrency = a
        .concurrency
        .or(sc.concurrency)
        .unwrap_or(256)
        .clamp(1, 100_000);
    let expected = profile.expected_requests();
    let max_requests = a
        .max_requests
        .or(sc.max_requests)
        .unwrap_or((expected * 1.1) as u64 + 1000);
    let http2 = a.http2 || sc.http2.unwrap_or(false);
    let insecure = a.insecure || sc.insecure.unwrap_or(false);
    let raw = a.raw || sc.raw.unwrap_or(false);
    let classes = match &a.mix {
        Some(m) => mix(m)?,
        None if !sc.classes.is_empty() => sc.classes.clone(),
        None => vec![ClassSpec::simple(Kind::Anonymous, 1.0)],
    };
    let urls = a
        .urls
        .as_ref()
        .map(|p| p.display().to_string())
        .or(sc.urls.clone());
    let sitemap = a.sitemap || sc.sitemap.unwrap_or(false);
    let max_urls = a.max_urls.or(sc.max_urls).unwrap_or(100);

    // One core: the whole rehearsal runs on one thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let client = Arc::new(Client::new(
            Target::new(&target, &resolve, http2, insecure)?,
            timeout,
        )?);
        let pages = match (&urls, sitemap) {
            (Some(file), _) => Pages::load(file)?,
            (None, true) => {
                let p = discover(&client, max_urls).await?;
                if !a.quiet {
                    eprintln!("sitemap: {} URLs", p.all().len());
                }
                p
            }
            (None, false) => Pages::new(vec![Page {
                path: "/".into(),
                weight: 1.0,
                group: "home".into(),
            }])?,
        };
        let bar = if a.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(profile.duration().as_secs().max(1))
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos:>4}/{len}s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let b = bar.clone();
        let progress: Arc<dyn Fn(&Progress) + Send + Sync> = Arc::new(move |p: &Progress| {
            b.set_position(p.elapsed.as_secs().min(p.total.as_secs()));
            b.set_message(format!(
                "rate {:>7.1}/s (target {:>7.1}) p99 {:>8.1} ms errors {} in flight {} waiting {} in a waiting room {}",
                p.rate, p.target_rate, p.p99_ms, p.errors, p.in_flight, p.waiting, p.in_room
            ));
        });
        let plan = Plan {
            client,
            profile,
            profile_text,
            pages,
            classes,
            limits: Limits {
                concurrency,
                // Waiting requests are small (about 1 KB each): hold a whole stall's worth.
                backlog: concurrency.saturating_mul(10).max(10_000),
                max_requests,
                timeout,
            },
            raw,
            warm_after,
        };
        let report = run_plan(plan, progress).await;
        bar.finish_and_clear();
        anyhow::Ok(report?)
    })?;
    print!("{}", report.text());
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("JSON report: {}", path.display());
    }
    if let Some(path) = &a.html {
        std::fs::write(path, peakguard_rehearse::html::render(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("HTML report: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
