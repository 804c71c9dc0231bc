//! The daemon in the admin API: `GET /backups`, `POST /backup?site=NAME`, its status and
//! its metrics (through peakguard-prometheus).

use super::*;

/// One sample: its labels and value.
type Sample = (Vec<(&'static str, String)>, Value);

/// Prometheus text for one gauge or counter family (nothing when it has no sample).
fn family(out: &mut String, name: &str, kind: MetricKind, help: &str, samples: &[Sample]) {
    if samples.is_empty() {
        return;
    }
    let mut e = Exposition::new(out);
    let mut f = e.family(name, kind, help);
    for (labels, value) in samples {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.sample(&labels, *value);
    }
}

/// The daemon in the admin API: `GET /backups`, `POST /backup?site=NAME`, its metrics and
/// status.
impl AdminExtension for BackupDaemon {
    fn name(&self) -> &str {
        "backups"
    }

    /// Answers the daemon's admin endpoints (`GET /backups`, `POST /backup?site=NAME`).
    fn handle(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
    ) -> Option<(u16, serde_json::Value)> {
        match (method, path) {
            ("GET", "/backups") => Some((200, self.statuses())),
            ("POST", "/backup") => Some(self.trigger(query.get("site").map(String::as_str))),
            _ => None,
        }
    }

    /// Every site's status, for `/status`.
    fn status(&self) -> serde_json::Value {
        self.statuses()
    }

    /// Prometheus text for `/metrics`.
    fn metrics(&self) -> String {
        let now = now_unix();
        let mut runs: Vec<Sample> = Vec::new();
        let mut last_ok: Vec<Sample> = Vec::new();
        let mut age: Vec<Sample> = Vec::new();
        let mut duration: Vec<Sample> = Vec::new();
        let mut running: Vec<Sample> = Vec::new();
        let mut prunes: Vec<Sample> = Vec::new();
        let mut copies: Vec<Sample> = Vec::new();
        let mut missing: Vec<Sample> = Vec::new();
        let mut lag: Vec<Sample> = Vec::new();
        let mut bunker_ok: Vec<Sample> = Vec::new();
        for w in &self.sites {
            let s = w.status.lock().now();
            let site = || vec![("site", w.site.name.clone())];
            let with = |more: &[(&'static str, &str)]| {
                let mut labels = site();
                labels.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
                labels
            };
            for (result, n) in [
                ("ok", s.runs_ok),
                ("failed", s.runs_failed),
                ("skipped", s.runs_skipped),
            ] {
                runs.push((with(&[("result", result)]), n.into()));
            }
            if let Some(t) = s.last_ok_unix {
                last_ok.push((site(), t.into()));
                age.push((site(), (now - t).max(0).into()));
                duration.push((site(), s.last_duration_secs.into()));
            }
            running.push((site(), s.running.into()));
            let mut prune_counts = vec![
                ("main", "ok", s.prunes_ok),
                ("main", "failed", s.prunes_failed),
            ];
            if let Some(b) = &s.bunker {
                prune_counts.push(("bunker", "ok", b.prunes_ok));
                prune_counts.push(("bunker", "failed", b.prunes_failed));
                for (result, n) in [("ok", b.copies_ok), ("failed", b.copies_failed)] {
                    copies.push((with(&[("result", result)]), n.into()));
                }
                missing.push((site(), b.missing.into()));
                lag.push((site(), b.lag_secs.into()));
                if let Some(t) = b.last_ok_unix {
                    bunker_ok.push((site(), t.into()));
                }
            }
            for (repo, result, n) in prune_counts {
                prunes.push((with(&[("repository", repo), ("result", result)]), n.into()));
            }
        }
        let mut out = String::new();
        family(
            &mut out,
            "peakguard_backup_runs_total",
            MetricKind::Counter,
            "Backup runs by result (skipped: another peakguard command held the writer lock).",
            &runs,
        );
        family(
            &mut out,
            "peakguard_backup_last_success_timestamp_seconds",
            MetricKind::Gauge,
            "When the last successful snapshot finished (Unix time).",
            &last_ok,
        );
        family(
            &mut out,
            "peakguard_backup_last_snapshot_age_seconds",
            MetricKind::Gauge,
            "Seconds since the last successful snapshot.",
            &age,
        );
        family(
            &mut out,
            "peakguard_backup_last_duration_seconds",
            MetricKind::Gauge,
            "How long the last successful snapshot took.",
            &duration,
        );
        family(
            &mut out,
            "peakguard_backup_running",
            MetricKind::Gauge,
            "1 while a snapshot is being taken.",
            &running,
        );
        family(
            &mut out,
            "peakguard_backup_prunes_total",
            MetricKind::Counter,
            "Retention + prune runs by repository and result.",
            &prunes,
        );
        family(
            &mut out,
            "peakguard_bunker_copies_total",
            MetricKind::Counter,
            "Bunker copy runs by result.",
            &copies,
        );
        family(
            &mut out,
            "peakguard_bunker_missing_snapshots",
            MetricKind::Gauge,
            "Snapshots of the main repository not yet in the bunker.",
            &missing,
        );
        family(
            &mut out,
            "peakguard_bunker_lag_seconds",
            MetricKind::Gauge,
            "Age of the oldest snapshot not yet in the bunker (0 = up to date).",
            &lag,
        );
        family(
            &mut out,
            "peakguard_bunker_last_success_timestamp_seconds",
            MetricKind::Gauge,
            "When the last successful bunker copy finished (Unix time).",
            &bunker_ok,
        );
        out
    }
}
