//! `kind = "backup"`: the age of a site's last good snapshot and how far its bunker is
//! behind, from the backup daemon that runs beside the monitor in `serve`.

use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::ProbeResult;
use crate::sources::Sources;
use peakguard_config::{ProbeConfig, Seconds};
use serde::Deserialize;
use std::time::{Duration, SystemTime};

pub(crate) struct Backup;
pub(crate) static PROBE: Registered<Backup> = Registered::NEW;

/// A `backup` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackupSettings {
    /// The `[[site]]` whose backups are watched.
    site: Option<String>,
    /// Fail when the last good snapshot is older (default: twice the site's `every`).
    max_age: Option<Seconds>,
    /// Fail when the bunker is further behind (default: `max_age`).
    max_bunker_lag: Option<Seconds>,
}

impl Probe for Backup {
    type Settings = BackupSettings;
    const KIND: &'static str = "backup";
    const VALUES: &'static [&'static str] = &["success", "duration", "age", "bunker_lag"];

    fn check(s: &BackupSettings) -> Problems {
        match s.site {
            Some(_) => Vec::new(),
            None => vec![(
                "site".into(),
                "a backup probe needs `site = \"NAME\"` (a [[site]] with [site.backup])".into(),
            )],
        }
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: BackupSettings,
        _memory: &'a mut Memory,
        sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(std::future::ready(run(probe, &settings, sources)))
    }
}

fn run(probe: &ProbeConfig, s: &BackupSettings, sources: &Sources) -> ProbeResult {
    let Some(source) = &sources.backup else {
        return ProbeResult::failed(
            probe,
            "no backup daemon here: backup probes run inside `peakguard serve`, beside the site's [site.backup]".into(),
        );
    };
    let site = s.site.as_deref().unwrap_or_default();
    let all = source();
    let Some(f) = all.iter().find(|f| f.site == site) else {
        let known: Vec<&str> = all.iter().map(|f| f.site.as_str()).collect();
        return ProbeResult::failed(
            probe,
            format!(
                "no backups are configured for site {site:?} (sites with [site.backup]: {known:?})"
            ),
        );
    };
    let max_age = s
        .max_age
        .map_or(Duration::from_secs(f.every_secs.max(60) * 2), |d| d.0);
    let max_lag = s.max_bunker_lag.map_or(max_age, |d| d.0);
    let now = crate::result::unix(SystemTime::now()) as i64;
    let Some(last) = f.last_ok_unix else {
        return ProbeResult::failed(
            probe,
            format!(
                "no good snapshot yet{}",
                f.last_error
                    .as_deref()
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ),
        );
    };
    let age = (now - last).max(0) as u64;
    let mut result = ProbeResult::new(probe, true, String::new()).with("age", age as f64);
    let mut problems = Vec::new();
    if age > max_age.as_secs() {
        problems.push(format!(
            "the last good snapshot is {} old (max_age {}){}",
            crate::humantime_short(Duration::from_secs(age)),
            crate::humantime_short(max_age),
            f.last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        ));
    }
    if let Some(lag) = f.bunker_lag_secs {
        let lag = lag.max(0) as u64;
        result = result.with("bunker_lag", lag as f64);
        if lag > max_lag.as_secs() {
            problems.push(format!(
                "the bunker is {} behind (max_bunker_lag {}){}",
                crate::humantime_short(Duration::from_secs(lag)),
                crate::humantime_short(max_lag),
                f.bunker_error
                    .as_deref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            ));
        }
    }
    if problems.is_empty() {
        result.message = format!(
            "last good snapshot {} ago{}",
            crate::humantime_short(Duration::from_secs(age)),
            f.bunker_lag_secs
                .map(|l| if l <= 0 {
                    ", bunker in sync".to_string()
                } else {
                    format!(
                        ", bunker {} behind",
                        crate::humantime_short(Duration::from_secs(l as u64))
                    )
                })
                .unwrap_or_default()
        );
    } else {
        result.success = false;
        result.message = problems.join("; ");
    }
    result
}
