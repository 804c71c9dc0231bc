//! `[[probe]]`: what the monitor checks, how often, and what counts as a failure.

use crate::units::{ByteSize, Seconds};
use serde::Deserialize;

/// What a probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// An HTTP(S) request: status, body keyword, response time, per-phase timings.
    Http,
    /// A TCP connection to `address`.
    Tcp,
    /// Free space and inodes of the filesystem holding `path`.
    Disk,
    /// The TLS certificate of any `address`: days left, chain valid, name matches.
    Tls,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Disk => "disk",
            ProbeKind::Tls => "tls",
        }
    }
}

/// One `[[probe]]`. Keys that do not belong to its kind are refused by the check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Names the probe in metrics (`probe="..."`), the status API and alerts.
    pub name: String,
    pub kind: ProbeKind,
    /// How often it runs (continuous monitoring).
    #[serde(default = "default_interval")]
    pub interval: Seconds,
    /// How long one run may take before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// Failed runs in a row before the probe counts as down (one blip pages nobody).
    #[serde(default = "one")]
    pub failures_before_down: u32,
    /// Successful runs in a row before a down probe counts as up again.
    #[serde(default = "one")]
    pub successes_before_up: u32,

    // http
    /// `http://` or `https://` URL.
    pub url: Option<String>,
    /// Accepted statuses; empty: any 2xx or 3xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Text the body must contain.
    pub keyword: Option<String>,
    /// Text the body must not contain (`"Fatal error"`).
    pub keyword_absent: Option<String>,
    /// The longest acceptable response time (whole request, body included).
    pub max_time: Option<Seconds>,
    /// Follow redirects (at most 10); off: a 3xx is the answer.
    #[serde(default)]
    pub follow_redirects: bool,
    /// http: the `Host` header (and TLS server name) instead of the URL's host; tls: the
    /// name the certificate must be valid for (default: the address's host).
    pub host: Option<String>,
    /// Connect here instead of resolving the URL's host (`"203.0.113.7:443"`): test the new
    /// server before the DNS switch.
    pub resolve: Option<String>,
    /// Verify the server's certificate (chain and name) for `https://` and `kind = "tls"`.
    #[serde(default = "yes")]
    pub tls_verify: bool,

    // tcp, tls
    /// `host:port` to connect to.
    pub address: Option<String>,
    // tls
    /// Fail when the certificate (or one in its chain) expires within this many days.
    pub min_days: Option<f64>,

    // disk
    /// A path on the filesystem to watch.
    pub path: Option<String>,
    /// Fail below this many free bytes.
    pub min_free_bytes: Option<ByteSize>,
    /// Fail below this share of free space, in percent.
    pub min_free_percent: Option<f64>,
    /// Fail below this many free inodes.
    pub min_free_inodes: Option<u64>,
}

fn default_interval() -> Seconds {
    Seconds::secs(60)
}
fn default_timeout() -> Seconds {
    Seconds::secs(10)
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

/// Checks one probe; `(key path, message)` as the rest of the validation.
pub fn validate_probe(i: usize, probe: &ProbeConfig, problems: &mut Vec<(String, String)>) {
    let key = |k: &str| format!("probe[{i}].{k}");
    let mut p = |k: &str, m: String| problems.push((key(k), m));
    if probe.name.trim().is_empty() {
        p(
            "name",
            "a probe needs a name (used in metrics and alerts)".into(),
        );
    }
    if probe.timeout.0.is_zero() || probe.interval.0.is_zero() {
        p(
            "timeout",
            "interval and timeout must be longer than zero".into(),
        );
    }
    if probe.failures_before_down == 0 || probe.successes_before_up == 0 {
        p(
            "failures_before_down",
            "failures_before_down and successes_before_up start at 1".into(),
        );
    }
    // Each key and the kinds it belongs to.
    let keys: [(&str, bool, &[&str]); 15] = [
        ("url", probe.url.is_some(), &["http"]),
        ("expect_status", !probe.expect_status.is_empty(), &["http"]),
        ("keyword", probe.keyword.is_some(), &["http"]),
        ("keyword_absent", probe.keyword_absent.is_some(), &["http"]),
        ("max_time", probe.max_time.is_some(), &["http"]),
        ("follow_redirects", probe.follow_redirects, &["http"]),
        ("host", probe.host.is_some(), &["http", "tls"]),
        ("resolve", probe.resolve.is_some(), &["http"]),
        ("tls_verify", !probe.tls_verify, &["http", "tls"]),
        ("address", probe.address.is_some(), &["tcp", "tls"]),
        ("min_days", probe.min_days.is_some(), &["tls"]),
        ("path", probe.path.is_some(), &["disk"]),
        ("min_free_bytes", probe.min_free_bytes.is_some(), &["disk"]),
        (
            "min_free_percent",
            probe.min_free_percent.is_some(),
            &["disk"],
        ),
        (
            "min_free_inodes",
            probe.min_free_inodes.is_some(),
            &["disk"],
        ),
    ];
    let kind = probe.kind.as_str();
    for (k, given, owners) in keys {
        if given && !owners.contains(&kind) {
            let owners: Vec<String> = owners.iter().map(|o| format!("\"{o}\"")).collect();
            p(
                k,
                format!(
                    "`{k}` belongs to kind = {}, not \"{kind}\"",
                    owners.join(" or ")
                ),
            );
        }
    }
    match probe.kind {
        ProbeKind::Http => match probe.url.as_deref().map(url::Url::parse) {
            None => p("url", "an http probe needs `url = \"https://...\"`".into()),
            Some(Err(e)) => p("url", format!("not a URL ({e})")),
            Some(Ok(u)) if !matches!(u.scheme(), "http" | "https") || u.host().is_none() => p(
                "url",
                "the URL must be http:// or https:// with a host".into(),
            ),
            Some(Ok(_)) => {
                if let Some(r) = &probe.resolve
                    && r.parse::<std::net::SocketAddr>().is_err()
                {
                    p(
                        "resolve",
                        format!("{r:?} is not an address such as \"203.0.113.7:443\""),
                    );
                }
                for s in &probe.expect_status {
                    if !(100..=599).contains(s) {
                        p("expect_status", format!("{s} is not an HTTP status"));
                    }
                }
            }
        },
        ProbeKind::Tcp | ProbeKind::Tls => match probe.address.as_deref() {
            None => p(
                "address",
                format!("a {kind} probe needs `address = \"host:port\"`"),
            ),
            Some(a)
                if a.rsplit_once(':')
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .is_none() =>
            {
                p("address", format!("{a:?} is not host:port"))
            }
            Some(_) => {
                if let Some(d) = probe.min_days
                    && !(d >= 0.0 && d.is_finite())
                {
                    p("min_days", format!("{d} is not a number of days"));
                }
            }
        },
        ProbeKind::Disk => {
            if probe.path.is_none() {
                p("path", "a disk probe needs `path = \"/var/www\"`".into());
            }
            if let Some(pc) = probe.min_free_percent
                && !(0.0..=100.0).contains(&pc)
            {
                p(
                    "min_free_percent",
                    format!("{pc} is not a percentage (0-100)"),
                );
            }
        }
    }
}
