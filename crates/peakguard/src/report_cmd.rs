//! `peakguard report`: the statistics and the journal of a range or a campaign, gathered by
//! peakguard-report, printed as a summary or JSON, or written as one HTML page.

use crate::cli::ReportArgs;
use anyhow::{Context, Result, bail};
use peakguard_stats::{Resolution, Retention, Store};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

fn unix(key: &str, text: &str) -> Result<i64> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .with_context(|| format!("{key} {text:?}: give a time such as 2026-11-27T00:00:00Z"))
}

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let config = super::load_config(args.config.as_deref())?
        .context("no configuration: pass --config FILE (or create ./peakguard.toml)")?;
    let now = peakguard_stats::now_unix();
    let campaign = match &args.campaign {
        Some(name) => {
            let c = config
                .campaigns
                .iter()
                .find(|c| &c.name == name)
                .with_context(|| {
                    let names: Vec<&str> =
                        config.campaigns.iter().map(|c| c.name.as_str()).collect();
                    format!("no [[campaign]] named {name:?} (there are: {names:?})")
                })?;
            Some(peakguard_edge::campaign_of(c).context("the campaign's start or end is wrong")?)
        }
        None => None,
    };
    let (from, to, title) = match (&campaign, &args.from, &args.last) {
        (Some(c), _, _) => (c.from, c.to, format!("Campaign {}", c.name)),
        (None, Some(from), _) => {
            let from = unix("--from", from)?;
            let to = match &args.to {
                Some(to) => unix("--to", to)?,
                None => now,
            };
            (from, to, "Report".to_owned())
        }
        (None, None, last) => {
            let last = last.as_deref().unwrap_or("24h");
            let d = humantime::parse_duration(last).with_context(|| {
                format!("--last {last:?}: give a duration such as 24h or 7days")
            })?;
            (now - d.as_secs() as i64, now, format!("The last {last}"))
        }
    };
    if to <= from {
        bail!("the range ends before it starts");
    }
    let res = Resolution::for_span(to - from);
    let keep = Retention {
        minutes: config.stats.keep_minutes.0,
        hours: config.stats.keep_hours.0,
    };
    let store = Store::open(&config.stats.dir, keep)?;
    let records = store.read_with_saved(res, res.start_of(from), to, args.site.as_deref())?;
    let journal = match peakguard_journal::read(&config.journal.file) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("warning: the journal is left out: {e}");
            Vec::new()
        }
    };
    let report = peakguard_report::build(&peakguard_report::Input {
        title: match &args.site {
            Some(site) => format!("{title} · {site}"),
            None => title,
        },
        site: args.site.clone(),
        from,
        to,
        resolution: res,
        records: &records,
        journal: &journal,
        campaign: campaign.as_ref(),
    });
    if let Some(path) = &args.html {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(peakguard_report::html(&report).as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        if !args.json {
            println!("wrote {}", path.display());
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let t = &report.total;
    println!("{} — {} to {}", report.title, report.from, report.to);
    println!("  {}", peakguard_report::verdict(&report));
    println!(
        "  requests {}  visitors {}  conversions {}  peak {:.1} req/s  hit ratio {}  5xx {}",
        t.requests,
        t.visitors,
        t.conversions,
        report.peak_requests_per_second,
        t.hit_ratio
            .map_or_else(|| "-".into(), |h| format!("{:.1} %", h * 100.0)),
        report.server_errors
    );
    if let Some(c) = &report.campaign {
        println!(
            "  campaign {}: {} visits, {} conversions, cost per acquisition {}",
            c.name,
            c.visits,
            c.conversions,
            c.cost_per_acquisition_cents.map_or_else(
                || "-".into(),
                |v| format!("{}.{:02} {}", v / 100, v % 100, c.currency)
            )
        );
    }
    println!(
        "  {} intervention(s) in the journal; --html FILE for the whole page, --json for the figures",
        report.interventions.len()
    );
    Ok(ExitCode::SUCCESS)
}
