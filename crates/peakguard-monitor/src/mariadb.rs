//! `kind = "mariadb"`: connect, `SELECT 1`, and, with `max_lag`, the replica's lag
//! (`SHOW SLAVE STATUS`: `Seconds_Behind_Master`; not a replica, or replication stopped,
//! fails).

use crate::db::Connection;
use crate::memory::Memory;
use crate::probe::{Probe, Problems, Registered, RunFuture};
use crate::result::ProbeResult;
use crate::sources::Sources;
use mysql_async::prelude::Queryable;
use peakguard_config::{ProbeConfig, Seconds};
use serde::Deserialize;
use std::time::Instant;

pub(crate) struct Mariadb;
pub(crate) static PROBE: Registered<Mariadb> = Registered::NEW;

/// A `mariadb` probe's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MariadbSettings {
    #[serde(flatten)]
    connection: Connection,
    /// Fail when this server is a replica more than this far behind (or not replicating);
    /// unset: replication is not checked.
    max_lag: Option<Seconds>,
    /// The longest acceptable connect + `SELECT 1`.
    max_time: Option<Seconds>,
}

impl Probe for Mariadb {
    type Settings = MariadbSettings;
    const KIND: &'static str = "mariadb";
    const VALUES: &'static [&'static str] =
        &["success", "duration", "query_time", "replication_lag"];

    fn check(s: &MariadbSettings) -> Problems {
        s.connection.check(Self::KIND)
    }

    fn run<'a>(
        probe: &'a ProbeConfig,
        settings: MariadbSettings,
        _memory: &'a mut Memory,
        _sources: &'a Sources,
    ) -> RunFuture<'a> {
        Box::pin(run(probe, settings))
    }
}

async fn run(probe: &ProbeConfig, s: MariadbSettings) -> ProbeResult {
    let started = Instant::now();
    let mut conn = match crate::db::connect(&s.connection).await {
        Ok(c) => c,
        Err(e) => return ProbeResult::failed(probe, e),
    };
    let query_started = Instant::now();
    let one: Result<Option<u8>, _> = conn.query_first("SELECT 1").await;
    let query_time = query_started.elapsed();
    let total = started.elapsed();
    let mut result = match one {
        Ok(Some(1)) => ProbeResult::new(
            probe,
            true,
            format!(
                "SELECT 1 in {:.1}ms (connect + query {:.1}ms)",
                query_time.as_secs_f64() * 1000.0,
                total.as_secs_f64() * 1000.0
            ),
        ),
        Ok(other) => ProbeResult::failed(probe, format!("SELECT 1 answered {other:?}")),
        Err(e) => ProbeResult::failed(probe, format!("SELECT 1: {e}")),
    }
    .with("query_time", query_time.as_secs_f64());
    if result.success
        && let Some(max) = s.max_time
        && total > max.0
    {
        result.success = false;
        result.message = format!(
            "connect + SELECT 1 took {:.0}ms, over max_time {}",
            total.as_secs_f64() * 1000.0,
            crate::humantime_short(max.0)
        );
    }
    if result.success
        && let Some(max_lag) = s.max_lag
    {
        let row: Result<Option<mysql_async::Row>, _> = conn.query_first("SHOW SLAVE STATUS").await;
        match row {
            Err(e) => {
                result.success = false;
                let hint = if e.to_string().contains("1227") {
                    " (grant the probe's user SLAVE MONITOR, or REPLICATION CLIENT on MySQL)"
                } else {
                    ""
                };
                result.message = format!("SHOW SLAVE STATUS: {e}{hint}");
            }
            Ok(None) => {
                result.success = false;
                result.message =
                    "not a replica (SHOW SLAVE STATUS is empty) but max_lag is set".into();
            }
            Ok(Some(row)) => {
                let lag: Option<Option<u64>> =
                    row.get_opt("Seconds_Behind_Master").and_then(Result::ok);
                match lag.flatten() {
                    None => {
                        result.success = false;
                        result.message =
                            "replication is stopped (Seconds_Behind_Master is NULL)".into();
                    }
                    Some(lag) => {
                        result = result.with("replication_lag", lag as f64);
                        if lag > max_lag.0.as_secs() {
                            result.success = false;
                            result.message = format!(
                                "the replica is {lag}s behind, over max_lag {}",
                                crate::humantime_short(max_lag.0)
                            );
                        } else {
                            result.message.push_str(&format!(", replica {lag}s behind"));
                        }
                    }
                }
            }
        }
    }
    let _ = conn.disconnect().await;
    result
}
