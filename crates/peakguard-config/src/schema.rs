//! The configuration schema and its embedded defaults.
//!
//! Every field has a default so that an empty file (or no file at all, with `--origin`) is a
//! working configuration.

use crate::units::{ByteSize, Seconds};
use ipnet::IpNet;
use serde::Deserialize;
use std::path::PathBuf;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
    /// What every site's shield shares (`[shield]`).
    #[serde(default)]
    pub shield: crate::shield::ShieldSettings,
    /// One entry per site (`[[site]]`), chosen by the request's host.
    #[serde(default, rename = "site")]
    pub sites: Vec<SiteConfig>,
    /// What every site's WAF shares (`[waf]`).
    #[serde(default)]
    pub waf: crate::waf::WafSettings,
    /// What the monitor checks (`[[probe]]`).
    #[serde(default, rename = "probe")]
    pub probes: Vec<crate::monitor::ProbeConfig>,
    /// How the running monitor keeps results and groups notifications (`[monitor]`).
    #[serde(default)]
    pub monitor: crate::alerts::MonitorSettings,
    /// Conditions on probe results that fire alerts (`[[alert]]`).
    #[serde(default, rename = "alert")]
    pub alerts: Vec<crate::alerts::AlertRule>,
    /// Where alerts go (`[[notifier]]`).
    #[serde(default, rename = "notifier")]
    pub notifiers: Vec<crate::alerts::NotifierConfig>,
    /// The journal of interventions (`[journal]`).
    #[serde(default)]
    pub journal: JournalConfig,
    /// The statistics the console and the report show (`[stats]`).
    #[serde(default)]
    pub stats: StatsConfig,
    /// Marketing campaigns whose visits, conversions and revenue are followed
    /// (`[[campaign]]`).
    #[serde(default, rename = "campaign")]
    pub campaigns: Vec<CampaignConfig>,
}

/// `[[campaign]]`: a name, a window, the `utm_*` values it covers (an empty one matches
/// any; at least one is given), and optionally what it cost.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignConfig {
    pub name: String,
    /// When it starts and ends: `2026-11-27T00:00:00Z` (RFC 3339).
    pub start: String,
    pub end: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    /// What it cost (in `currency`): gives the cost per acquisition.
    pub cost: Option<f64>,
    /// ISO 4217 (`EUR`).
    pub currency: String,
}

impl CampaignConfig {
    /// Unix seconds of `start` and `end`, or what is wrong with them.
    pub fn window(&self) -> Result<(i64, i64), String> {
        let at = |key: &str, text: &str| -> Result<i64, String> {
            humantime::parse_rfc3339_weak(text)
                .map_err(|e| format!("{key} {text:?}: {e}; write e.g. \"2026-11-27T00:00:00Z\""))?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .map_err(|_| format!("{key} {text:?} is before 1970"))
        };
        let (start, end) = (at("start", &self.start)?, at("end", &self.end)?);
        if end <= start {
            return Err(format!(
                "end {:?} must be after start {:?}",
                self.end, self.start
            ));
        }
        Ok((start, end))
    }
}

/// `[stats]`: per-request statistics, counted off the request path into time series on
/// disk (minutes and hours), read by the admin API's `/stats`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    pub enabled: bool,
    /// Empty: `stats/` in the state directory.
    pub dir: PathBuf,
    /// How long minutes are kept (at least 1 hour).
    pub keep_minutes: Seconds,
    /// How long hours are kept (at least as long as minutes).
    pub keep_hours: Seconds,
    /// How often the minute and hour being counted are saved: at most this much is lost in a
    /// crash (1 s – 1 min).
    pub save_every: Seconds,
    /// Path prefixes whose successful GET is a conversion (WooCommerce's order confirmation
    /// by default).
    pub goals: Vec<String>,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            enabled: true,
            dir: PathBuf::new(),
            keep_minutes: Seconds::secs(14 * 86_400),
            keep_hours: Seconds::secs(400 * 86_400),
            save_every: Seconds::secs(10),
            goals: vec!["/checkout/order-received/".into()],
        }
    }
}

/// `[journal]`: where every intervention is appended (hash-chained; `peakguard journal`
/// reads and verifies it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Empty: `journal.jsonl` in the state directory.
    pub file: PathBuf,
}

/// The listeners and process-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Plain HTTP listeners (`"0.0.0.0:8080"`).
    pub listen: Vec<String>,
    /// TLS listeners; certificates come from the sites' `tls_cert`/`tls_key`.
    pub tls_listen: Vec<String>,
    /// Worker threads for the proxy (0 = one per core).
    pub threads: usize,
    /// Proxies whose `X-Forwarded-For`/`-Proto` we trust (CIDRs).
    pub trusted_proxies: Vec<IpNet>,
    /// How long in-flight requests may finish after a shutdown or upgrade signal.
    pub graceful_shutdown_timeout: Seconds,
    /// Delay between the shutdown signal and closing listeners (lets a load balancer notice).
    pub grace_period: Seconds,
    /// Unix socket on which a new binary takes over the listening sockets (`serve --upgrade`).
    pub upgrade_sock: PathBuf,
    /// PID file (written when serving).
    pub pid_file: PathBuf,
    /// JSON-lines access log: a path, `"-"` for standard output, or `""` for none.
    pub access_log: String,
    /// Per-connection write buffer toward clients: a response header and a body that fit
    /// leave in one syscall (16 KiB holds a compressed page). Memory cost: up to this much
    /// per open client connection, idle or not.
    pub write_buffer: ByteSize,
    /// Per-connection read buffer from clients. Pingora's default (64 KiB) is zero-filled at
    /// accept, so every open connection, idle or not, keeps it resident; a request's header
    /// is parsed into its own growing buffer, so a small one only means more reads for a
    /// large request. 0 = unbuffered.
    pub read_buffer: ByteSize,
    /// A request whose header (request line and fields) is larger is refused with 431.
    pub max_request_header_size: ByteSize,
    /// A request with more header fields is refused with 431.
    pub max_request_headers: usize,
    /// How long a client may take to send each part of a request body (and, between
    /// requests, to start the next one). Pingora gives the first request's header 60 s.
    pub client_timeout: Seconds,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec!["0.0.0.0:8080".into()],
            tls_listen: Vec::new(),
            threads: 0,
            trusted_proxies: Vec::new(),
            graceful_shutdown_timeout: Seconds::secs(10),
            grace_period: Seconds::secs(0),
            // Empty: the runtime directory (see dirs.rs), filled in by `parse`.
            upgrade_sock: PathBuf::new(),
            pid_file: PathBuf::new(),
            access_log: String::new(),
            // Measured (bench/edge-ab.sh): 64 KiB + 64 KiB cost 96 KiB per idle connection
            // after a 60 KB response, 16 KiB + 4 KiB cost 37 KiB, with hits for browsers
            // unchanged (a compressed page and its header still leave in one write).
            write_buffer: ByteSize(16 << 10),
            read_buffer: ByteSize(4 << 10),
            max_request_header_size: ByteSize(64 << 10),
            max_request_headers: 100,
            client_timeout: Seconds::secs(60),
        }
    }
}

/// The admin API (purge, maintenance, metrics, status).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Loopback by default; never expose it without TLS in front.
    pub listen: String,
    /// Bearer token. When empty, `token_file` is read; when both are empty a random token is
    /// generated at start and written to `token_file`'s default location.
    pub token: crate::Secret,
    pub token_file: PathBuf,
    /// `listen` may be an address other machines reach (off: loopback only).
    pub allow_remote: bool,
    /// More tokens, each with a name and only some rights (`[[admin.tokens]]`): the
    /// WordPress plugin gets one that can purge and nothing else.
    pub tokens: Vec<ScopedToken>,
}

/// What a scoped admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminPermission {
    /// `POST /purge`.
    Purge,
    /// `POST /maintenance` (on, off).
    Maintenance,
    /// Every `GET`: status, metrics, maintenance state, shield, probes, alerts, backups.
    Read,
    /// Everything the admin token may do.
    All,
}

/// `[[admin.tokens]]`: a named token with some rights; each call is logged with its name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopedToken {
    pub name: String,
    #[serde(default)]
    pub token: crate::Secret,
    /// A file holding the token (0600), instead of `token`.
    pub token_file: Option<PathBuf>,
    pub permissions: Vec<AdminPermission>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:9080".into(),
            token: crate::Secret::default(),
            // Empty: the state directory (see dirs.rs).
            token_file: PathBuf::new(),
            allow_remote: false,
            tokens: Vec::new(),
        }
    }
}

/// Cache storage, shared by all sites.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Memory tier size.
    pub memory_size: ByteSize,
    /// Disk tier directory; empty disables the disk tier.
    pub disk_path: PathBuf,
    /// Disk tier size.
    pub disk_size: ByteSize,
    /// Largest single object that is cached.
    pub max_object_size: ByteSize,
    /// How long concurrent misses wait for the one origin fetch before going themselves.
    pub coalesce_wait: Seconds,
    /// After the origin fails for a page, serve its stale copy this long without asking the
    /// origin again (one retry per page per period instead of one per request). 0 = off.
    pub origin_error_backoff: Seconds,
    /// Compressed representations of stored responses (`[cache.compression]`).
    pub compression: CompressionConfig,
}

/// Stored responses of these types get gzip and brotli representations, made once in the
/// background; a hit sends the stored bytes the client's `Accept-Encoding` prefers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionConfig {
    /// Off: responses are stored and served in the coding the origin sent.
    pub enabled: bool,
    /// Media types (`"text/html"`, or `"text/*"` for a whole type) that are compressed.
    pub types: Vec<String>,
    /// Smaller bodies are not worth compressing.
    pub min_size: ByteSize,
    /// gzip level, 1 (fast) to 9 (small).
    pub gzip_level: u32,
    /// brotli quality, 0 (fast) to 11 (small). Each object is compressed once.
    pub brotli_level: u32,
    /// Background encoder threads (0 = one per two cores, at least one).
    pub workers: usize,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            enabled: true,
            types: DEFAULT_COMPRESSIBLE_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect(),
            min_size: ByteSize(512),
            gzip_level: 6,
            brotli_level: 5,
            workers: 0,
        }
    }
}

/// Text, markup, scripts, data, SVG and uncompressed fonts. Images, video, audio, archives,
/// PDFs and WOFF/WOFF2 fonts are already compressed and are not listed.
pub const DEFAULT_COMPRESSIBLE_TYPES: &[&str] = &[
    "text/*",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/wasm",
    "application/vnd.ms-fontobject",
    "image/svg+xml",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "font/ttf",
    "font/otf",
];

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory_size: ByteSize(256 << 20),
            // Absent from the file: the cache directory (see dirs.rs); "" switches it off.
            disk_path: PathBuf::new(),
            disk_size: ByteSize(2 << 30),
            max_object_size: ByteSize(64 << 20),
            coalesce_wait: Seconds::secs(10),
            origin_error_backoff: Seconds::secs(5),
            compression: CompressionConfig::default(),
        }
    }
}

/// Maintenance mode: who still gets through, and where the flag is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// The flag survives restarts in this file.
    pub state_file: PathBuf,
    /// Clients (CIDRs) that still see the site.
    pub allow: Vec<IpNet>,
    /// A cookie `name=value` that lets admins through (empty = none).
    pub bypass_cookie: String,
    /// Default `Retry-After` when `maintenance on` gives none.
    pub retry_after: Seconds,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            // Empty: the state directory (see dirs.rs).
            state_file: PathBuf::new(),
            allow: vec!["127.0.0.1/32".parse().expect("static CIDR")],
            bypass_cookie: String::new(),
            retry_after: Seconds::secs(600),
        }
    }
}

/// How a site's responses are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// WordPress/WooCommerce rules on top of the RFC 9111 core (the default).
    #[default]
    Wordpress,
    /// A plain, strictly conformant RFC 9111 shared cache.
    Http,
}

/// One site behind the edge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    pub name: String,
    /// Host names this site answers (no port). `"*"` matches any host.
    pub hosts: Vec<String>,
    /// The origin: `http://127.0.0.1:80`.
    pub origin: String,
    pub profile: Profile,
    /// Freshness for WordPress pages that send no caching headers (wordpress profile only).
    pub default_ttl: Seconds,
    /// How long a stale copy is served when the origin fails.
    pub stale_if_error: Seconds,
    /// How long a stale copy is served while one background refresh runs.
    pub stale_while_revalidate: Seconds,
    /// Query parameters dropped from the cache key (a trailing `*` matches a prefix).
    pub tracking_params: Vec<String>,
    /// Also drop them from the request sent to the origin (default: keep them).
    pub strip_tracking_params_upstream: bool,
    /// Cookies whose presence bypasses the cache (a trailing `*` matches a prefix).
    pub bypass_cookies: Vec<String>,
    /// Path prefixes that are never cached.
    pub bypass_paths: Vec<String>,
    /// Query `name=value` pairs that bypass the cache (`preview=true`).
    pub bypass_query: Vec<String>,
    /// Store responses that carry `Set-Cookie` (the cookie is never stored).
    pub cache_set_cookie: bool,
    /// Response headers carrying purge tags.
    pub tag_headers: Vec<String>,
    pub connect_timeout: Seconds,
    pub read_timeout: Seconds,
    /// TLS certificate chain and key (PEM) for this site's hosts (SNI).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Redirect plain HTTP to HTTPS.
    pub https_redirect: bool,
    /// Snapshots of the site's files and database (`[site.backup]`).
    pub backup: Option<crate::backup::BackupConfig>,
    /// Request policies protecting the origin (`[site.shield]`).
    pub shield: crate::shield::ShieldConfig,
    /// The OWASP Core Rule Set in front of the site (`[site.waf]`; absent: no WAF).
    pub waf: Option<crate::waf::WafConfig>,
    /// The site's WordPress and its companion plugin (`[site.wordpress]`).
    pub wordpress: Option<crate::wordpress::WordpressConfig>,
}

pub const DEFAULT_TRACKING_PARAMS: &[&str] = &[
    "utm_*", "gclid", "fbclid", "msclkid", "mc_cid", "mc_eid", "_ga", "ref",
];
pub const DEFAULT_BYPASS_COOKIES: &[&str] = &[
    "wordpress_logged_in_*",
    "wp-postpass_*",
    "comment_author_*",
    "woocommerce_items_in_cart",
    "woocommerce_cart_hash",
    "wp_woocommerce_session_*",
];
pub const DEFAULT_BYPASS_PATHS: &[&str] = &[
    "/wp-admin/",
    "/wp-login.php",
    "/xmlrpc.php",
    "/wp-cron.php",
    "/cart/",
    "/checkout/",
    "/my-account/",
];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            name: "default".into(),
            hosts: vec!["*".into()],
            origin: "http://127.0.0.1:80".into(),
            profile: Profile::Wordpress,
            default_ttl: Seconds::secs(300),
            stale_if_error: Seconds::secs(24 * 3600),
            stale_while_revalidate: Seconds::secs(60),
            tracking_params: strings(DEFAULT_TRACKING_PARAMS),
            strip_tracking_params_upstream: false,
            bypass_cookies: strings(DEFAULT_BYPASS_COOKIES),
            bypass_paths: strings(DEFAULT_BYPASS_PATHS),
            bypass_query: vec!["preview=true".into()],
            cache_set_cookie: false,
            tag_headers: vec!["Cache-Tag".into(), "X-Cache-Tags".into()],
            connect_timeout: Seconds::secs(2),
            read_timeout: Seconds::secs(30),
            tls_cert: None,
            tls_key: None,
            https_redirect: false,
            backup: None,
            shield: crate::shield::ShieldConfig::default(),
            waf: None,
            wordpress: None,
        }
    }
}

impl SiteConfig {
    /// A site with the given origin and the profile's defaults (the quick start).
    pub fn quick(origin: &str, profile: Profile) -> Self {
        let mut site = SiteConfig {
            origin: origin.to_string(),
            ..SiteConfig::default()
        };
        site.apply_profile(profile);
        site
    }

    /// The `http` profile has no default TTL and no WordPress rules (its guards read the
    /// profile too: no origin admission, no WordPress login protection, unless given).
    pub fn apply_profile(&mut self, profile: Profile) {
        self.profile = profile;
        if profile == Profile::Http {
            self.default_ttl = Seconds::secs(0);
            self.tracking_params.clear();
            self.bypass_cookies.clear();
            self.bypass_paths.clear();
            self.bypass_query.clear();
            self.stale_if_error = Seconds::secs(0);
            self.stale_while_revalidate = Seconds::secs(0);
        }
    }
}
