//! `kind = "mariadb"`: connect, `SELECT 1`, and, with `max_lag`, the replica's lag
//! (`SHOW SLAVE STATUS`: `Seconds_Behind_Master`; not a replica, or replication stopped,
//! fails).

use crate::result::ProbeResult;
use mysql_async::prelude::Queryable;
use peakguard_config::ProbeConfig;
use std::time::Instant;

crate::probe::built_in_probe!("mariadb", |probe, _memory, _sources| run(probe));

pub(crate) async fn run(probe: &ProbeConfig) -> ProbeResult {
    let started = Instant::now();
    let mut conn = match crate::db::connect(probe).await {
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
        && let Some(max) = probe.max_time
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
        && let Some(max_lag) = probe.max_lag
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
