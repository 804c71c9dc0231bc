//! peakguard's edge: the request path on Pingora.
//!
//! Owns: listeners (plain and TLS, HTTP/1.1 and HTTP/2), site routing by host, the pingora
//! `ProxyHttp` hooks ([`proxy::EdgeProxy`]), the origin connection settings, the admin API
//! (purge, maintenance, metrics, status), the access log, reload on SIGHUP, graceful
//! shutdown/upgrade, and the coding of responses on their way out (which ones, by the
//! cache crate's policy and the client's `Accept-Encoding`; stored codings are the cache
//! crate's); and [`harness`], the edge run in-process for tests. Must not touch: caching
//! policy and pingora_cache types (the cache crate's), request policy such as who passes
//! maintenance (the shield's).
#![forbid(unsafe_code)]

pub mod access_log;
pub mod admin;
pub mod admin_room;
pub mod admin_stats;
pub mod coding;
pub mod connection_gate;
pub mod harness;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod room_keys;
pub mod sites;
pub mod state;
pub mod tls;
mod waf_log;

use arc_swap::ArcSwap;
use peakguard_cache::{CacheEngine, CompressionPolicy, EngineTiming, StorageSettings};
use peakguard_config::Config;
use peakguard_config::private_fs::{
    PrivateError, ensure_private_dir, ensure_private_parent, read_private, write_private,
};
use peakguard_shield::{GuardConfig, Shield};
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::Server;
use pingora::server::configuration::{Opt, ServerConf};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error(transparent)]
    Site(#[from] sites::SiteError),
    #[error(
        "cannot open the cache storage under {path}: {source} (check cache.disk_path and its permissions)"
    )]
    Cache {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the access log {path}: {source}")]
    AccessLog {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the WAF log {path} ([waf] log): {source}")]
    WafLog {
        path: String,
        source: std::io::Error,
    },
    #[error("admin token: {0}")]
    Token(String),
    #[error("journal: cannot start its writer: {0}")]
    Journal(std::io::Error),
    #[error("statistics ([stats] dir): {0}")]
    Stats(#[from] peakguard_stats::StatsError),
    #[error("the in-process test harness: {0}")]
    Harness(String),
    #[error("TLS listener {addr}: {reason}")]
    Tls { addr: String, reason: String },
    #[error(
        "no site configured: add a [[site]] with an origin, or run `peakguard serve --origin URL`"
    )]
    NoSite,
    #[error("waiting room of site {site:?}: cannot read its template {path}: {source}")]
    RoomTemplate {
        site: String,
        path: String,
        source: std::io::Error,
    },
    #[error("waiting room keys {path}: {source}")]
    RoomKeys {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Private(#[from] PrivateError),
}

/// How to start serving.
pub struct ServeOptions {
    pub config: Config,
    /// Re-read on SIGHUP when set, with `read_config`.
    pub config_path: Option<PathBuf>,
    /// How the file is read on SIGHUP (the binary's reader: it knows the guards' tables and
    /// the monitor's probe kinds).
    pub read_config: ConfigReader,
    /// Take the listening sockets over from a running instance (zero-downtime upgrade).
    pub upgrade: bool,
    /// Served through the admin API (the backup daemon).
    pub extensions: Vec<Arc<dyn admin::AdminExtension>>,
}

/// Reads a configuration file with everything the binary registers.
pub type ConfigReader =
    Arc<dyn Fn(&std::path::Path) -> Result<Config, peakguard_config::ConfigError> + Send + Sync>;

/// Resolves the admin token: configured, else the token file, else a new random one written
/// to the token file (mode 0600).
pub fn admin_token(config: &Config) -> Result<String, EdgeError> {
    if !config.admin.token.is_empty() {
        return Ok(config.admin.token.expose().to_string());
    }
    let path = &config.admin.token_file;
    ensure_private_parent(path)?;
    if let Some(t) = read_private(path)? {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let mut bytes = [0u8; 24];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| EdgeError::Token(format!("cannot read /dev/urandom: {e}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, token.as_bytes())?;
    Ok(token)
}

/// `[[admin.tokens]]` with their values read (a `token_file` must be private, 0600).
/// A scoped token resolved: name, value, permissions.
pub type ScopedTokenValue = (String, String, Vec<peakguard_config::AdminPermission>);

pub fn scoped_tokens(config: &Config) -> Result<Vec<ScopedTokenValue>, EdgeError> {
    let mut out = Vec::new();
    for t in &config.admin.tokens {
        let value = t.value().map_err(EdgeError::Token)?;
        out.push((t.name.clone(), value, t.permissions.clone()));
    }
    Ok(out)
}

/// The directories the edge keeps things in, made private (created 0700) or refused when
/// another user could have planted something there: the pid file's and upgrade socket's,
/// the state files', the disk cache, and — when a site has a WAF — the installed rule sets
/// (a rule set someone else can write could switch the WAF off).
fn secure_places(config: &Config) -> Result<(), EdgeError> {
    for file in [
        &config.server.pid_file,
        &config.server.upgrade_sock,
        &config.maintenance.state_file,
        &config.shield.state_file,
        &config.shield.room_key_file,
    ] {
        ensure_private_parent(file)?;
    }
    if !config.cache.disk_path.as_os_str().is_empty() {
        ensure_private_dir(&config.cache.disk_path)?;
    }
    let waf = config.sites.iter().any(|s| {
        s.waf
            .as_ref()
            .is_some_and(|w| w.mode != peakguard_config::WafMode::Off)
    });
    if waf {
        ensure_private_dir(&config.waf.crs_home)?;
    }
    Ok(())
}

/// The reloadable part of the configuration: the sites and their guard chains (the shield's
/// lasting state is kept, only reconfigured).
pub fn live_from(config: &Config, shield: &Shield) -> Result<state::Live, EdgeError> {
    let mut room_templates = std::collections::BTreeMap::new();
    for site in &config.sites {
        let room = &peakguard_shield::WaitingRoomConfig::of_site(site);
        if room.enabled && !room.template.as_os_str().is_empty() {
            let text = std::fs::read_to_string(&room.template).map_err(|source| {
                EdgeError::RoomTemplate {
                    site: site.name.clone(),
                    path: room.template.display().to_string(),
                    source,
                }
            })?;
            room_templates.insert(site.name.clone(), std::sync::Arc::<str>::from(text));
        }
    }
    let sites = sites::SiteTable::from_config(config, shield, room_templates)?;
    shield
        .accept_gate
        .configure(peakguard_shield::connections::GateSettings::from_config(
            config,
        ));
    Ok(state::Live {
        sites,
        campaigns: config.campaigns.iter().filter_map(campaign_of).collect(),
        trusted_proxies: config.server.trusted_proxies.clone(),
        clients: state::ClientLimits {
            max_header_bytes: config.server.max_request_header_size.0 as usize,
            max_headers: config.server.max_request_headers,
            timeout: config.server.client_timeout.0,
        },
    })
}

/// A checked `[[campaign]]` as the statistics read it (`None` when its window is wrong:
/// the configuration's check says so).
pub fn campaign_of(
    c: &peakguard_config::CampaignConfig,
) -> Option<peakguard_stats::campaign::Campaign> {
    let (from, to) = c.window().ok()?;
    Some(peakguard_stats::campaign::Campaign {
        name: c.name.clone(),
        from,
        to,
        source: c.utm_source.to_lowercase(),
        medium: c.utm_medium.to_lowercase(),
        campaign: c.utm_campaign.to_lowercase(),
        cost_cents: c.cost.map(|v| (v * 100.0).round() as u64),
        currency: c.currency.to_ascii_uppercase(),
    })
}

/// Builds the shared state: opens the cache (indexing the disk tier), reads the maintenance
/// flag, opens the access log.
pub fn build_state(
    config: &Config,
    config_path: Option<PathBuf>,
    read_config: ConfigReader,
    extensions: Vec<Arc<dyn admin::AdminExtension>>,
) -> Result<Arc<state::EdgeState>, EdgeError> {
    if config.sites.is_empty() {
        return Err(EdgeError::NoSite);
    }
    secure_places(config)?;
    let mut tag_headers: Vec<String> = config
        .sites
        .iter()
        .flat_map(|s| s.tag_headers.iter().map(|h| h.to_ascii_lowercase()))
        .collect();
    tag_headers.sort();
    tag_headers.dedup();
    let disk = (!config.cache.disk_path.as_os_str().is_empty())
        .then(|| (config.cache.disk_path.clone(), config.cache.disk_size.0));
    let settings = StorageSettings {
        memory_bytes: config.cache.memory_size.0 as usize,
        disk,
        max_object_bytes: config.cache.max_object_size.0 as usize,
        tag_headers,
        compression: CompressionPolicy::from_config(&config.cache.compression),
        encoder_threads: match config.cache.compression.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        },
    };
    let cache = CacheEngine::open(
        settings,
        EngineTiming {
            coalesce_wait: config.cache.coalesce_wait.0,
            origin_error_backoff: config.cache.origin_error_backoff.0,
        },
    )
    .map_err(|source| EdgeError::Cache {
        path: config.cache.disk_path.display().to_string(),
        source,
    })?;
    let access_log =
        match config.server.access_log.as_str() {
            "" => None,
            target => Some(access_log::AccessLog::open(target).map_err(|source| {
                EdgeError::AccessLog {
                    path: target.into(),
                    source,
                }
            })?),
        };
    let maintenance_file = config.maintenance.state_file.clone();
    let shield = Shield::new(
        state::EdgeState::load_maintenance(&maintenance_file),
        config.shield.store_entries,
    );
    // What the guards do by themselves (a lockout) is journaled, never waited for.
    let recorder =
        peakguard_journal::Recorder::start(peakguard_journal::Journal::new(&config.journal.file))
            .map_err(EdgeError::Journal)?;
    *shield.journal.write() = Some(recorder);
    // The configuration fills in the defaults (peakguard_config::dirs).
    let shield_state_file = config.shield.state_file.clone();
    let room_key_file = config.shield.room_key_file.clone();
    if config
        .sites
        .iter()
        .any(|s| peakguard_shield::WaitingRoomConfig::of_site(s).enabled)
    {
        let keys =
            room_keys::load_or_create(&room_key_file).map_err(|source| EdgeError::RoomKeys {
                path: room_key_file.display().to_string(),
                source,
            })?;
        *shield.room_keys.write() = keys;
    }
    if config.sites.iter().any(|s| s.waf.is_some()) {
        let log = waf_log::WafLog::open(&config.waf.log).map_err(|source| EdgeError::WafLog {
            path: config.waf.log.display().to_string(),
            source,
        })?;
        *shield.incident_log.write() = Some(Arc::new(log));
    }
    let stats = if config.stats.enabled {
        let retention = peakguard_stats::Retention {
            minutes: config.stats.keep_minutes.0,
            hours: config.stats.keep_hours.0,
        };
        let store = peakguard_stats::Store::open(&config.stats.dir, retention)?;
        Some(peakguard_stats::Stats::start(
            store,
            peakguard_stats::Settings {
                retention,
                save_every: config.stats.save_every.0,
                threads: server_conf(config).threads,
                goals: config.stats.goals.clone(),
            },
        )?)
    } else {
        None
    };
    let state = Arc::new(state::EdgeState {
        cache,
        live: ArcSwap::from_pointee(live_from(config, &shield)?),
        shield,
        maintenance_file,
        shield_state_file,
        room_key_file,
        metrics: metrics::Metrics::default(),
        access_log,
        admin_token: admin_token(config)?,
        scoped_tokens: parking_lot::RwLock::new(scoped_tokens(config)?),
        config_path,
        read_config,
        started: std::time::Instant::now(),
        extensions,
        journal: peakguard_journal::Journal::new(&config.journal.file),
        stats,
    });
    state.restore_shield();
    Ok(state)
}

/// Serves until a shutdown or upgrade signal has been handled, then [`finish`]es and exits.
/// Runs the server until shutdown or upgrade, then [`finish`], then `after` (the binary
/// stops what it runs beside the edge: the backup daemon), then exits.
pub fn run(server: Server, state: &state::EdgeState, after: impl FnOnce()) -> ! {
    server.run(pingora::server::RunArgs::default());
    finish(state);
    after();
    std::process::exit(0)
}

/// After the server has stopped (shutdown or upgrade): queued disk-cache writes reach the
/// disk, and the shield's store (lockouts, budgets, issued sessions) is saved, so that the
/// next start finds them. Pingora drops its runtimes' tasks right after the shutdown signal,
/// so this cannot run in a background service.
pub fn finish(state: &state::EdgeState) {
    state.cache.storage.flush();
    if let Some(stats) = &state.stats {
        // Saves the minute and hour being counted, and lets the next process take over.
        stats.stop();
    }
    match state.save_shield() {
        Ok(n) => log::info!(
            "shield: saved {n} entries to {}",
            state.shield_state_file.display()
        ),
        Err(e) => log::warn!(
            "shield: cannot save {}: {e}",
            state.shield_state_file.display()
        ),
    }
}

fn server_conf(config: &Config) -> ServerConf {
    let s = &config.server;
    ServerConf {
        threads: if s.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            s.threads
        },
        grace_period_seconds: Some(s.grace_period.0.as_secs()),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout.0.as_secs()),
        upgrade_sock: s.upgrade_sock.display().to_string(),
        pid_file: s.pid_file.display().to_string(),
        ..ServerConf::default()
    }
}

/// Client-side socket buffers. Pingora's default write buffer (1,460 bytes) sends a response
/// header and its body in two syscalls (and wakes the client twice); a buffer that holds a
/// typical compressed page sends both at once. Pingora's default read buffer (64 KiB) is
/// zero-filled for every connection; a request header is parsed into its own growing
/// buffer, so 4 KiB costs nothing but an extra read for a very large request. Both stay
/// allocated while a connection is idle (see BENCHMARKS.md, idle connections).
fn l4_buffers(config: &Config) -> L4BufferSettings {
    L4BufferSettings::default()
        .write(config.server.write_buffer.0 as usize)
        .read(config.server.read_buffer.0 as usize)
}

/// Builds the pingora server with the proxy, admin and reload services. Call
/// `run_forever()` on the result.
pub fn build_server(opts: ServeOptions) -> Result<(Server, Arc<state::EdgeState>), EdgeError> {
    let config = opts.config;
    let state = build_state(&config, opts.config_path, opts.read_config, opts.extensions)?;
    let pid = std::process::id().to_string();
    let _ = std::fs::write(&config.server.pid_file, pid);
    let opt = Opt {
        upgrade: opts.upgrade,
        daemon: false,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(&config));
    server.bootstrap();
    let gate_filter: Arc<dyn pingora_core::listeners::ConnectionFilter> = Arc::new(
        connection_gate::GateFilter(state.shield.accept_gate.clone()),
    );

    if !config.server.listen.is_empty() {
        let mut plain = pingora::proxy::http_proxy_service_with_name(
            &server.configuration,
            proxy::EdgeProxy {
                state: state.clone(),
                tls: false,
            },
            "peakguard edge (http)",
        );
        for addr in &config.server.listen {
            plain.add_listener(ListenerConfig::tcp(addr.as_str()).l4_buffer(l4_buffers(&config)));
        }
        plain.set_connection_filter(gate_filter.clone());
        server.add_service(plain);
    }
    if !config.server.tls_listen.is_empty() {
        let mut tls = pingora::proxy::http_proxy_service_with_name(
            &server.configuration,
            proxy::EdgeProxy {
                state: state.clone(),
                tls: true,
            },
            "peakguard edge (https)",
        );
        for addr in &config.server.tls_listen {
            tls.add_listener(
                ListenerConfig::tcp(addr.as_str())
                    .tls(tls::settings(&config, addr)?)
                    .l4_buffer(l4_buffers(&config)),
            );
        }
        tls.set_connection_filter(gate_filter.clone());
        server.add_service(tls);
    }
    server.add_service(pingora::services::background::background_service(
        "peakguard connections",
        connection_gate::KernelCount {
            gate: state.shield.accept_gate.clone(),
            ports: connection_gate::listen_ports(
                config.server.listen.iter().chain(&config.server.tls_listen),
            ),
        },
    ));
    let mut admin = pingora::services::listening::Service::new(
        "peakguard admin".into(),
        admin::AdminApp {
            state: state.clone(),
        },
    );
    admin.add_tcp(&config.admin.listen);
    server.add_service(admin);
    server.add_service(pingora::services::background::background_service(
        "peakguard reload",
        reload::Reloader {
            state: state.clone(),
        },
    ));
    Ok((server, state))
}
