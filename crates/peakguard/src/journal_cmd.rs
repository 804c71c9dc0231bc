//! `peakguard journal`: the journal's entries, filtered, as a table or JSON; `--verify`
//! checks its chain.

use crate::cli::JournalArgs;
use anyhow::{Context, Result, bail};
use std::process::ExitCode;
use std::time::SystemTime;

pub fn run(args: JournalArgs) -> Result<ExitCode> {
    let config = match super::load_config(args.config.as_deref())? {
        Some(config) => config,
        None => peakguard_config::defaults(),
    };
    let path = &config.journal.file;
    if args.verify {
        return Ok(match peakguard_journal::verify(path) {
            Ok(lines) => {
                println!("{}: {lines} entries, intact", path.display());
                ExitCode::SUCCESS
            }
            Err(problem) => {
                eprintln!("{}: {problem}", path.display());
                ExitCode::from(1)
            }
        });
    }
    let since = args.since.as_deref().map(since).transpose()?;
    let entries = peakguard_journal::read(path).context("reading the journal")?;
    let shown: Vec<_> = entries
        .iter()
        .filter(|e| args.site.is_none() || e.site == args.site)
        .filter(|e| since.is_none_or(|t| humantime::parse_rfc3339(&e.at).is_ok_and(|at| at >= t)))
        .collect();
    if args.json {
        for e in shown {
            println!("{}", e.line());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if shown.is_empty() {
        println!("no entries in {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    for e in shown {
        println!(
            "{:>5}  {}  {:<12} {:<22} {:<10} {}{}",
            e.seq,
            e.at,
            e.who,
            e.what,
            e.site.as_deref().unwrap_or("-"),
            e.result,
            if e.detail.is_empty() {
                String::new()
            } else {
                format!("  ({})", e.detail)
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `12h` ago, or the time given.
fn since(text: &str) -> Result<SystemTime> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(SystemTime::UNIX_EPOCH));
    }
    match humantime::parse_rfc3339_weak(text) {
        Ok(t) => Ok(t),
        Err(_) => bail!(
            "--since {text:?}: give a duration such as 12h or 7days, or a time such as 2026-12-07T08:00:00Z"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let hour_ago = since("1h").expect("duration");
        let elapsed = SystemTime::now()
            .duration_since(hour_ago)
            .expect("in the past");
        assert!(elapsed >= Duration::from_secs(3600) && elapsed < Duration::from_secs(3700));
        assert!(since("2026-12-07T08:00:00Z").is_ok());
        assert!(since("yesterday").is_err());
    }
}
