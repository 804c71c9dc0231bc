//! The `peakguard` binary: parses the command line, wires the crates, prints results.
//! Thin by design: every capability lives in a library crate.
#![forbid(unsafe_code)]

mod admin_client;
mod backup_cmd;
mod cli;
mod demo;
mod journal_cmd;
mod monitor_cmd;
mod probe_cmd;
mod rehearse;
mod report_cmd;
mod shield_cmd;
mod term_progress;
mod waf_cmd;
mod wordpress_cmd;

use anyhow::{Context, Result, bail};
use clap::Parser;
use cli::{Cli, Command, ConfigCommand, MaintenanceAction};
use peakguard_config::{Config, Profile};
use std::process::ExitCode;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long a stopping `serve` waits for a backup run in progress.
const BACKUP_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Demo(_)) && !cli.verbose;
    let level = if cli.verbose {
        "info"
    } else if quiet {
        "error"
    } else {
        "warn"
    };
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    if !quiet {
        // Every admin API call, with the name of the token that made it (an audit trail).
        logger.filter_module(peakguard_admin::api::AUDIT, log::LevelFilter::Info);
        // Which rule set each site's WAF runs, at start and on every change.
        logger.filter_module(peakguard_shield::waf::LOG_TARGET, log::LevelFilter::Info);
    }
    logger
        // pingora warns once that it has no header-compression dictionary; headers are
        // stored uncompressed, which is fine for us.
        .filter_module("pingora_cache::meta", log::LevelFilter::Error)
        // opendal (S3/SFTP bunkers) warns on every "not found", which is how rustic asks
        // whether a repository exists yet; real failures come back to us as errors.
        .filter_module("opendal::services", log::LevelFilter::Error)
        // rustic's checker logs each finding with a stack trace; `check` prints them
        // itself, one line each (the trace with --verbose).
        .filter_module(
            "rustic_core::commands::check",
            if cli.verbose {
                log::LevelFilter::Info
            } else {
                log::LevelFilter::Off
            },
        )
        .init();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("peakguard: error: {e:#}");
            ExitCode::from(2)
        }
    };
    peakguard_backup::close_remote_sessions();
    code
}

/// Reads a configuration file, with the tables the shield's guards own and the probe kinds
/// the monitor registers.
fn read_config(path: &std::path::Path) -> Result<Config, peakguard_config::ConfigError> {
    extensions_of(|e| peakguard_config::load_with(path, e))
}

/// Calls `with` on the configuration's extensions (the guards' tables, the probe kinds).
pub(crate) fn extensions_of<T>(with: impl FnOnce(&peakguard_config::Extensions<'_>) -> T) -> T {
    let guard_tables = peakguard_shield::config_tables();
    with(&peakguard_config::Extensions {
        guard_tables: &guard_tables,
        ..peakguard_monitor::extensions()
    })
}

fn load_config(path: Option<&std::path::Path>) -> Result<Option<Config>> {
    match path {
        Some(p) => Ok(Some(read_config(p)?)),
        None => {
            let default = std::path::Path::new("peakguard.toml");
            if default.exists() {
                Ok(Some(read_config(default)?))
            } else {
                Ok(None)
            }
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let path = args.config.clone();
            let mut config = match (&path, &args.origin) {
                (Some(p), _) => read_config(p)?,
                (None, Some(origin)) => {
                    let profile = if args.profile.as_deref() == Some("http") {
                        Profile::Http
                    } else {
                        Profile::Wordpress
                    };
                    let listen = args
                        .listen
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "0.0.0.0:8080".into());
                    let text = format!(
                        "[server]\nlisten = [{listen:?}]\n[[site]]\norigin = {origin:?}\nprofile = {:?}\n",
                        if profile == Profile::Http {
                            "http"
                        } else {
                            "wordpress"
                        }
                    );
                    extensions_of(|e| peakguard_config::parse_with(&text, "command line", e))
                        .context("the --listen/--origin values are not valid")?
                }
                (None, None) => bail!(
                    "give a configuration file (--config peakguard.toml) or an origin (--origin http://127.0.0.1:80)"
                ),
            };
            if path.is_some() && !args.listen.is_empty() {
                config.server.listen = args.listen.clone();
            }
            if let Some(dir) = &args.cache_dir {
                config.cache.disk_path = dir.clone();
            }
            if let Some(a) = &args.admin_listen {
                config.admin.listen = a.clone();
            }
            let backups = peakguard_backup::BackupDaemon::start(&config)?;
            let mut extensions: Vec<std::sync::Arc<dyn peakguard_edge::admin::AdminExtension>> =
                Vec::new();
            if let Some(b) = &backups {
                extensions.push(b.clone());
            }
            let monitor = match monitor_cmd::start_for_serve(&config) {
                Ok(m) => m,
                Err(e) => {
                    if let Some(b) = &backups {
                        b.stop(BACKUP_STOP_WAIT);
                    }
                    return Err(e);
                }
            };
            if let Some(m) = &monitor {
                extensions.push(m.clone());
            }
            let (server, state) = peakguard_edge::build_server(peakguard_edge::ServeOptions {
                config: config.clone(),
                config_path: path,
                read_config: std::sync::Arc::new(read_config),
                upgrade: args.upgrade,
                extensions,
            })?;
            if let Some(m) = &monitor {
                monitor_cmd::begin_in_serve(m, &config, state.clone(), backups.clone())?;
            }
            eprintln!(
                "peakguard: serving {} site(s) on {} (admin on {}, token in {})",
                config.sites.len(),
                config.server.listen.join(", "),
                config.admin.listen,
                if config.admin.token.is_empty() {
                    config.admin.token_file.display().to_string()
                } else {
                    "the configuration".into()
                },
            );
            peakguard_edge::run(server, &state, move || {
                // The edge has stopped (shutdown or upgrade): the monitor stops, backups end
                // between runs.
                if let Some(m) = monitor
                    && !m.stop(monitor_cmd::MONITOR_STOP_WAIT)
                {
                    log::warn!(
                        "the monitor's thread had not ended after {:?}",
                        monitor_cmd::MONITOR_STOP_WAIT
                    );
                }
                if let Some(b) = backups
                    && !b.stop(BACKUP_STOP_WAIT)
                {
                    log::warn!(
                        "a backup run was still going after {}s; it is cut off (nothing half-written is kept)",
                        BACKUP_STOP_WAIT.as_secs()
                    );
                }
            });
        }
        Command::Purge(args) => {
            let client = admin(&args.admin)?;
            let query = if let Some(u) = &args.url {
                format!("url={}", admin_client::enc(u))
            } else if let Some(p) = &args.prefix {
                format!("prefix={}", admin_client::enc(p))
            } else if let Some(t) = &args.tag {
                format!("tag={}", admin_client::enc(t))
            } else if args.all {
                "all=1".to_string()
            } else {
                bail!("say what to purge: --url URL, --prefix URL, --tag TAG or --all");
            };
            let v = client.post(&format!("/purge?{query}"))?;
            println!("purged {} object(s)", v["purged"]);
            Ok(ExitCode::SUCCESS)
        }
        Command::Maintenance(args) => {
            let client = admin(&args.admin)?;
            let v = match args.action {
                MaintenanceAction::Status => client.get("/maintenance")?,
                MaintenanceAction::Off => client.post("/maintenance?state=off")?,
                MaintenanceAction::On => {
                    let mut q = "state=on".to_string();
                    if let Some(m) = &args.message {
                        q.push_str(&format!("&message={}", admin_client::enc(m)));
                    }
                    if let Some(r) = &args.retry_after {
                        let d = humantime::parse_duration(r).with_context(|| {
                            format!("--retry-after {r:?}: write e.g. 15m or 90s")
                        })?;
                        q.push_str(&format!("&retry_after={}", d.as_secs()));
                    }
                    client.post(&format!("/maintenance?{q}"))?
                }
            };
            println!(
                "maintenance is {}{}",
                if v["on"] == true { "ON" } else { "off" },
                v["message"]
                    .as_str()
                    .filter(|m| !m.is_empty())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Shield(args) => {
            shield_cmd::shield(&admin(&args.admin)?, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::WaitingRoom(args) => {
            shield_cmd::waiting_room(&admin(&args.admin)?, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => {
            let client = admin(&args)?;
            println!("{}", serde_json::to_string_pretty(&client.get("/status")?)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => match read_config(&file) {
            Ok(c) => {
                println!("{}: ok ({} site(s))", file.display(), c.sites.len());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
        },
        Command::Probe(args) => probe_cmd::run(args),
        Command::Journal(args) => journal_cmd::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Monitor(args) => monitor_cmd::run_monitor(args),
        Command::Alerts(args) => monitor_cmd::alerts(args),
        Command::Waf(args) => match args.action {
            cli::WafAction::Explain { incident, config } => {
                waf_cmd::explain(config.as_deref(), &incident)
            }
            cli::WafAction::Status { admin } => waf_cmd::status(&admin),
            cli::WafAction::Crs(cli::CrsAction::Install {
                source,
                verify,
                config,
            }) => waf_cmd::install_crs(config.as_deref(), &source, &verify),
            cli::WafAction::Crs(cli::CrsAction::Rollback { config }) => {
                waf_cmd::rollback(config.as_deref())
            }
            cli::WafAction::Plugin(cli::PluginAction::Install {
                source,
                verify,
                config,
            }) => waf_cmd::install_plugin(config.as_deref(), &source, &verify),
        },
        Command::Wordpress(args) => wordpress_cmd::run(args),
        Command::Demo(args) => {
            demo::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rehearse(args) => rehearse::run(*args),
        Command::Backup(command) => backup_cmd::run(command),
    }
}

/// The admin API of a running edge, as the arguments and the configuration name it.
fn admin(args: &cli::AdminArgs) -> Result<admin_client::AdminClient> {
    admin_client::AdminClient::from_args(args, load_config(args.config.as_deref())?.as_ref())
}
