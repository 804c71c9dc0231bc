//! `[[probe]]`: what the monitor checks, how often, and what counts as a failure.

use crate::units::{ByteSize, Seconds};
use serde::Deserialize;

/// What a probe checks. The kinds below are checked here; a kind the monitor registers
/// beyond them (`dns`) is `Registered` and checked by its probe ([`ProbeKindSpec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// An HTTP(S) request: status, body keyword, response time, per-phase timings.
    Http,
    /// A TCP connection to `address`.
    Tcp,
    /// Free space and inodes of the filesystem holding `path`.
    Disk,
    /// The TLS certificate of any `address`: days left, chain valid, name matches.
    Tls,
    /// An ICMP echo (ping) to `address`, where the process may open an ICMP socket.
    Icmp,
    /// A MariaDB/MySQL server: connect + `SELECT 1`, replication lag when `max_lag` is set.
    Mariadb,
    /// WordPress updates pending, from the update data WordPress keeps in its database.
    Wordpress,
    /// The age of a site's last good snapshot, local and in the bunker (inside `serve`).
    Backup,
    /// The edge's own health over the last interval (inside `serve`).
    Edge,
    /// A kind whose probe owns its keys and checks (peakguard-monitor's registry).
    Registered(String),
}

const BUILT_IN: [(&str, ProbeKind); 9] = [
    ("http", ProbeKind::Http),
    ("tcp", ProbeKind::Tcp),
    ("disk", ProbeKind::Disk),
    ("tls", ProbeKind::Tls),
    ("icmp", ProbeKind::Icmp),
    ("mariadb", ProbeKind::Mariadb),
    ("wordpress", ProbeKind::Wordpress),
    ("backup", ProbeKind::Backup),
    ("edge", ProbeKind::Edge),
];

impl ProbeKind {
    pub fn as_str(&self) -> &str {
        match self {
            ProbeKind::Registered(name) => name,
            built_in => BUILT_IN
                .iter()
                .find(|(_, k)| k == built_in)
                .map_or("", |(name, _)| name),
        }
    }

    /// The kind named `name` (a built-in one, or else one a probe registers).
    pub fn named(name: &str) -> ProbeKind {
        BUILT_IN.iter().find(|(n, _)| *n == name).map_or_else(
            || ProbeKind::Registered(name.to_string()),
            |(_, k)| k.clone(),
        )
    }
}

impl<'de> Deserialize<'de> for ProbeKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(ProbeKind::named(&name))
    }
}

/// A probe kind the monitor registers beyond the built-in ones: its name, the values it
/// reports (what `[[alert]] when` may compare) and the checks of its own keys.
#[derive(Clone, Copy)]
pub struct ProbeKindSpec {
    pub name: &'static str,
    pub values: &'static [&'static str],
    /// Problems of the probe's own keys ([`ProbeConfig::settings`]), as (key, message).
    pub check: fn(&ProbeConfig) -> Vec<(String, String)>,
}

/// One `[[probe]]`. Keys that do not belong to its kind are refused by the check.
#[derive(Debug, Clone, Deserialize)]
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

    // tcp, tls, icmp, mariadb, wordpress
    /// tcp, tls, mariadb, wordpress: `host:port` to connect to; icmp: a host or address.
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

    // mariadb, wordpress
    /// The server's Unix socket (instead of `address`).
    pub socket: Option<std::path::PathBuf>,
    pub user: Option<String>,
    #[serde(default)]
    pub password: crate::Secret,
    /// A file holding the password (0600; preferred over `password`).
    pub password_file: Option<std::path::PathBuf>,
    /// mariadb: the database to open (optional); wordpress: WordPress's database.
    pub database: Option<String>,
    /// mariadb: fail when this server is a replica more than this far behind (or not
    /// replicating); unset: replication is not checked.
    pub max_lag: Option<Seconds>,
    /// wordpress: the tables' prefix (`$table_prefix` in wp-config.php).
    pub table_prefix: Option<String>,
    /// wordpress: a security release pending longer than this fails the probe (the "apply
    /// after 24 h" practice); other pending updates only show in its values.
    pub security_delay: Option<Seconds>,

    // backup
    /// The `[[site]]` whose backups are watched.
    pub site: Option<String>,
    /// Fail when the last good snapshot is older (default: twice the site's `every`).
    pub max_age: Option<Seconds>,
    /// Fail when the bunker is further behind (default: `max_age`).
    pub max_bunker_lag: Option<Seconds>,

    // edge
    /// Fail when more than this share of origin requests failed (0-1) over the interval.
    pub max_origin_error_rate: Option<f64>,
    /// Fail when fewer than this share of cacheable requests were hits (0-1).
    pub min_hit_ratio: Option<f64>,
    /// Fail when more visitors than this wait in the waiting room(s).
    pub max_room_queue: Option<u64>,
    /// Fail when the 99th percentile of response times is longer.
    pub max_p99: Option<Seconds>,
    /// Ratios count only over a window with at least this many requests (default 20).
    pub min_requests: Option<u64>,

    /// Every other key: the own keys of a registered kind (a `dns` probe's `query`), read
    /// and checked by its probe; for a built-in kind, an unknown key.
    #[serde(flatten)]
    pub settings: toml::Table,
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

/// Checks one probe; `(key path, message)` as the rest of the validation. `kinds`: the kinds
/// registered beyond the built-in ones.
pub fn validate_probe(
    i: usize,
    probe: &ProbeConfig,
    kinds: &[ProbeKindSpec],
    problems: &mut Vec<(String, String)>,
) {
    let key = |k: &str| format!("probe[{i}].{k}");
    let mut p = |k: &str, m: String| problems.push((key(k), m));
    match &probe.kind {
        ProbeKind::Registered(name) => match kinds.iter().find(|k| k.name == name) {
            Some(spec) => {
                for (k, m) in (spec.check)(probe) {
                    p(&k, m);
                }
            }
            None => {
                let mut known: Vec<&str> = BUILT_IN
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(kinds.iter().map(|k| k.name))
                    .collect();
                known.sort_unstable();
                p(
                    "kind",
                    format!("unknown kind {name:?}; the kinds are: {}", known.join(", ")),
                );
            }
        },
        _ => {
            for k in probe.settings.keys() {
                p(
                    k,
                    format!("unknown key `{k}` for kind = \"{}\"", probe.kind.as_str()),
                );
            }
        }
    }
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
    let keys: [(&str, bool, &[&str]); 30] = [
        ("url", probe.url.is_some(), &["http"]),
        ("expect_status", !probe.expect_status.is_empty(), &["http"]),
        ("keyword", probe.keyword.is_some(), &["http"]),
        ("keyword_absent", probe.keyword_absent.is_some(), &["http"]),
        ("max_time", probe.max_time.is_some(), &["http", "mariadb"]),
        ("follow_redirects", probe.follow_redirects, &["http"]),
        ("host", probe.host.is_some(), &["http", "tls"]),
        ("resolve", probe.resolve.is_some(), &["http"]),
        ("tls_verify", !probe.tls_verify, &["http", "tls"]),
        (
            "address",
            probe.address.is_some(),
            &["tcp", "tls", "icmp", "mariadb", "wordpress"],
        ),
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
        ("socket", probe.socket.is_some(), &["mariadb", "wordpress"]),
        ("user", probe.user.is_some(), &["mariadb", "wordpress"]),
        (
            "password",
            !probe.password.is_empty(),
            &["mariadb", "wordpress"],
        ),
        (
            "password_file",
            probe.password_file.is_some(),
            &["mariadb", "wordpress"],
        ),
        (
            "database",
            probe.database.is_some(),
            &["mariadb", "wordpress"],
        ),
        ("max_lag", probe.max_lag.is_some(), &["mariadb"]),
        ("table_prefix", probe.table_prefix.is_some(), &["wordpress"]),
        (
            "security_delay",
            probe.security_delay.is_some(),
            &["wordpress"],
        ),
        ("site", probe.site.is_some(), &["backup"]),
        ("max_age", probe.max_age.is_some(), &["backup"]),
        (
            "max_bunker_lag",
            probe.max_bunker_lag.is_some(),
            &["backup"],
        ),
        (
            "max_origin_error_rate",
            probe.max_origin_error_rate.is_some(),
            &["edge"],
        ),
        ("min_hit_ratio", probe.min_hit_ratio.is_some(), &["edge"]),
        ("max_room_queue", probe.max_room_queue.is_some(), &["edge"]),
        ("max_p99", probe.max_p99.is_some(), &["edge"]),
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
        ProbeKind::Registered(_) => {}
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
        ProbeKind::Icmp => match probe.address.as_deref() {
            None => p(
                "address",
                "an icmp probe needs `address = \"203.0.113.7\"` (or a host name)".into(),
            ),
            Some(a) if a.parse::<std::net::SocketAddr>().is_ok() => p(
                "address",
                format!("{a:?}: ICMP has no port; give the host or address alone"),
            ),
            Some(_) => {}
        },
        ProbeKind::Mariadb | ProbeKind::Wordpress => {
            match (&probe.address, &probe.socket) {
                (None, None) => p(
                    "address",
                    format!(
                        "a {kind} probe needs `socket = \"/run/mysqld/mysqld.sock\"` or `address = \"127.0.0.1:3306\"`"
                    ),
                ),
                (Some(_), Some(_)) => p("socket", "give `socket` or `address`, not both".into()),
                (Some(a), None)
                    if a.rsplit_once(':')
                        .and_then(|(_, port)| port.parse::<u16>().ok())
                        .is_none() =>
                {
                    p("address", format!("{a:?} is not host:port"))
                }
                _ => {}
            }
            if probe.user.is_none() {
                p("user", format!("a {kind} probe needs `user = \"...\"`"));
            }
            if probe.kind == ProbeKind::Wordpress && probe.database.is_none() {
                p(
                    "database",
                    "a wordpress probe needs `database` (DB_NAME in wp-config.php)".into(),
                );
            }
            if let Some(prefix) = &probe.table_prefix
                && !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                p(
                    "table_prefix",
                    format!("{prefix:?}: a table prefix is letters, digits and _"),
                );
            }
        }
        ProbeKind::Backup => {
            if probe.site.is_none() {
                p(
                    "site",
                    "a backup probe needs `site = \"NAME\"` (a [[site]] with [site.backup])".into(),
                );
            }
        }
        ProbeKind::Edge => {
            for (k, v) in [
                ("max_origin_error_rate", probe.max_origin_error_rate),
                ("min_hit_ratio", probe.min_hit_ratio),
            ] {
                if let Some(v) = v
                    && !(0.0..=1.0).contains(&v)
                {
                    p(k, format!("{v} is not a share between 0 and 1"));
                }
            }
        }
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
