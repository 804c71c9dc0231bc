//! Probe results as Prometheus text, with blackbox_exporter's names where one exists, so a
//! dashboard written for blackbox_exporter reads them unchanged (labelled by `probe`).

use crate::result::ProbeResult;
use peakguard_prometheus::{Exposition, Kind};

/// A sample's labels.
type Labels = Vec<(&'static str, String)>;

/// `labels` with one more.
fn with(mut labels: Labels, name: &'static str, value: &str) -> Labels {
    labels.push((name, value.to_string()));
    labels
}

/// One block per metric name (HELP, TYPE, then a sample per probe).
pub fn render(results: &[ProbeResult]) -> String {
    let mut out = String::new();
    let mut e = Exposition::new(&mut out);
    let mut family = |name: &str, help: &str, samples: Vec<(Labels, f64)>| {
        if samples.is_empty() {
            return;
        }
        let mut f = e.family(name, Kind::Gauge, help);
        for (labels, value) in samples {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            f.sample(&labels, value);
        }
    };
    let probe = |r: &ProbeResult| -> Labels {
        vec![("probe", r.name.clone()), ("kind", r.kind.to_string())]
    };
    family(
        "probe_success",
        "Whether the probe's last run succeeded.",
        results
            .iter()
            .map(|r| (probe(r), f64::from(u8::from(r.success))))
            .collect(),
    );
    family(
        "probe_duration_seconds",
        "How long the probe's last run took.",
        results
            .iter()
            .map(|r| (probe(r), r.duration.as_secs_f64()))
            .collect(),
    );
    let http: Vec<_> = results
        .iter()
        .filter_map(|r| r.http.as_ref().map(|h| (r, h)))
        .collect();
    family(
        "probe_http_status_code",
        "Response HTTP status code (0 when none came).",
        http.iter()
            .map(|(r, h)| (probe(r), f64::from(h.status)))
            .collect(),
    );
    family(
        "probe_http_duration_seconds",
        "Duration of an HTTP request by phase, summed over all redirects.",
        http.iter()
            .flat_map(|(r, h)| {
                h.phases
                    .iter()
                    .map(move |(phase, secs)| (with(probe(r), "phase", phase.as_str()), *secs))
            })
            .collect(),
    );
    family(
        "probe_http_redirects",
        "The number of redirects followed.",
        http.iter()
            .map(|(r, h)| (probe(r), f64::from(h.redirects)))
            .collect(),
    );
    family(
        "probe_http_content_length",
        "Body bytes of the final response.",
        http.iter()
            .map(|(r, h)| (probe(r), h.body_bytes as f64))
            .collect(),
    );
    let tls: Vec<_> = results
        .iter()
        .filter_map(|r| r.tls.as_ref().map(|t| (r, t)))
        .collect();
    family(
        "probe_ssl_earliest_cert_expiry",
        "Earliest notAfter of the certificate chain, seconds since the epoch.",
        tls.iter()
            .map(|(r, t)| (probe(r), t.earliest_expiry as f64))
            .collect(),
    );
    family(
        "peakguard_probe_tls_chain_valid",
        "Whether the chain is trusted and valid for the name (only when verified).",
        tls.iter()
            .filter_map(|(r, t)| t.chain_valid.map(|v| (probe(r), f64::from(u8::from(v)))))
            .collect(),
    );
    let disk: Vec<_> = results
        .iter()
        .filter_map(|r| r.disk.as_ref().map(|d| (r, d)))
        .collect();
    family(
        "peakguard_probe_disk_free_bytes",
        "Bytes free for unprivileged users on the probed filesystem.",
        disk.iter()
            .map(|(r, d)| (probe(r), d.free_bytes as f64))
            .collect(),
    );
    family(
        "peakguard_probe_disk_free_ratio",
        "Share of the probed filesystem free for unprivileged users (0-1).",
        disk.iter()
            .map(|(r, d)| (probe(r), d.free_percent / 100.0))
            .collect(),
    );
    family(
        "peakguard_probe_disk_free_inodes",
        "Inodes free on the probed filesystem.",
        disk.iter()
            .map(|(r, d)| (probe(r), d.free_inodes as f64))
            .collect(),
    );
    family(
        "probe_icmp_duration_seconds",
        "Duration of an ICMP echo by phase (blackbox_exporter's rtt).",
        results
            .iter()
            .filter_map(|r| {
                r.values
                    .get("rtt")
                    .map(|v| (with(probe(r), "phase", "rtt"), *v))
            })
            .collect(),
    );
    family(
        "peakguard_probe_value",
        "The values rules compare, for the kinds blackbox_exporter has no name for (mariadb query_time, wordpress security_overdue, backup age, edge p99…).",
        results
            .iter()
            .flat_map(|r| {
                r.values
                    .iter()
                    .map(move |(name, v)| (with(probe(r), "value", name), *v))
            })
            .collect(),
    );
    out
}
