//! `peakguard monitor` (the monitor alone, with its own admin listener), `peakguard alerts`
//! (a running monitor's alerts and silences), and the monitor plugged into `serve`'s admin API.

use crate::admin_client;
use crate::cli::{AlertsAction, AlertsArgs, MonitorArgs};
use anyhow::{Context, Result, bail};
use peakguard_monitor::Monitor;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long a stopping monitor waits for its thread.
pub const MONITOR_STOP_WAIT: Duration = Duration::from_secs(5);

/// Starts the monitor for `serve`, paused (None without `[[probe]]`): [`begin_in_serve`]
/// lets it run once the edge exists.
pub fn start_for_serve(config: &peakguard_config::Config) -> Result<Option<Arc<Monitor>>> {
    Monitor::start_paused(config, format!("http://{}", config.admin.listen))
        .context("starting the monitor")
}

/// Gives the monitor the edge's counters and the backup daemon's state, then begins its
/// probes once the edge's first listener accepts a connection (at most 30 s later; then
/// they begin anyway), so the first runs do not find the edge still starting.
pub fn begin_in_serve(
    monitor: &Arc<Monitor>,
    config: &peakguard_config::Config,
    edge: Arc<peakguard_edge::state::EdgeState>,
    backups: Option<Arc<peakguard_backup::BackupDaemon>>,
) -> Result<()> {
    let edge_source: peakguard_monitor::sources::EdgeSource = Arc::new(move || {
        let edge = edge.clone();
        Box::pin(async move {
            let mut counters = edge.metrics.health();
            counters.room_waiting = edge
                .shield
                .room_statuses()
                .await
                .iter()
                .map(|r| r.waiting)
                .sum();
            counters
        })
    });
    let backup_source = backups
        .map(|b| Arc::new(move || b.freshness()) as peakguard_monitor::sources::BackupSource);
    monitor.set_sources(peakguard_monitor::Sources {
        edge: Some(edge_source),
        backup: backup_source,
    });
    let first = config
        .server
        .listen
        .iter()
        .chain(&config.server.tls_listen)
        .next()
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .map(|mut a| {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            a
        });
    let m = monitor.clone();
    std::thread::Builder::new()
        .name("monitor-begin".into())
        .spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while let Some(addr) = first {
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                    || std::time::Instant::now() >= deadline
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            m.begin();
        })
        .context("a thread to begin the monitor")?;
    Ok(())
}

pub fn run_monitor(args: MonitorArgs) -> Result<ExitCode> {
    let Some(mut config) = super::load_config(args.config.as_deref())? else {
        bail!(
            "no configuration: give --config FILE or create ./peakguard.toml with [[probe]] entries"
        );
    };
    if let Some(a) = args.admin_listen {
        config.admin.listen = a;
    }
    if config.probes.is_empty() {
        bail!(
            "the configuration has no [[probe]]: nothing to monitor. Add one, e.g.\n\n[[probe]]\nname = \"home\"\nkind = \"http\"\nurl = \"https://shop.example.com/\"\n"
        );
    }
    let token = peakguard_edge::admin_token(&config).context("the admin token")?;
    let scoped = peakguard_edge::scoped_tokens(&config).context("[[admin.tokens]]")?;
    let monitor = Monitor::start(&config, format!("http://{}", config.admin.listen))
        .context("starting the monitor")?
        .context("no probes")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime for the admin listener")?;
    let listen = config.admin.listen.clone();
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (admin.listen or --admin-listen)"))?;
        eprintln!(
            "peakguard: monitoring {} probe(s), {} alert rule(s), {} notifier(s); API on {} (token in {})",
            config.probes.len(),
            config.alerts.len(),
            config.notifiers.len(),
            listener.local_addr().map_or(listen.clone(), |a| a.to_string()),
            if config.admin.token.is_empty() {
                config.admin.token_file.display().to_string()
            } else {
                "the configuration".into()
            }
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(peakguard_admin::server::serve(
            listener,
            token,
            scoped,
            vec![monitor.clone() as Arc<dyn peakguard_admin::AdminExtension>],
            peakguard_journal::Journal::new(&config.journal.file),
            stop_rx,
        ));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("peakguard: stopping the monitor");
        let _ = stop_tx.send(true);
        let _ = server.await;
        anyhow::Ok(())
    });
    if !monitor.stop(MONITOR_STOP_WAIT) {
        log::warn!("the monitor's thread had not ended after {MONITOR_STOP_WAIT:?}");
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

fn when(unix: &serde_json::Value) -> String {
    unix.as_u64()
        .map(|s| {
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(s))
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

pub fn alerts(args: AlertsArgs) -> Result<ExitCode> {
    let client = super::admin(&args.admin)?;
    match args.action {
        AlertsAction::List => {
            let json = args.json;
            let v = client.get("/alerts")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
            if alerts.is_empty() {
                println!("no alert pending or firing");
            } else {
                println!(
                    "{:<8}  {:<20}  {:<16}  {:<9}  {:<20}  summary",
                    "state", "alert", "probe", "severity", "since"
                );
                for a in &alerts {
                    let l = &a["labels"];
                    let state = a["state"].as_str().unwrap_or("?");
                    let silenced = a["silenced_by"]
                        .as_str()
                        .map(|s| format!(" (silenced: {s})"))
                        .unwrap_or_default();
                    println!(
                        "{:<8}  {:<20}  {:<16}  {:<9}  {:<20}  {}{silenced}",
                        state,
                        l["alertname"].as_str().unwrap_or(""),
                        l["probe"].as_str().unwrap_or(""),
                        l["severity"].as_str().unwrap_or(""),
                        when(if a["fired_at"].is_null() {
                            &a["active_since"]
                        } else {
                            &a["fired_at"]
                        }),
                        a["annotations"]["summary"].as_str().unwrap_or(""),
                    );
                }
            }
            if v["maintenance"] == true {
                println!("maintenance is ON: alerts it explains are silenced");
            }
            let silences = v["silences"].as_array().cloned().unwrap_or_default();
            if !silences.is_empty() {
                println!("\nsilences:");
                for s in &silences {
                    let m: Vec<String> = s["matchers"]
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                                .collect()
                        })
                        .unwrap_or_default();
                    println!(
                        "  {}  {}  until {}  {}",
                        s["id"].as_str().unwrap_or(""),
                        m.join(","),
                        when(&s["ends_at"]),
                        s["comment"].as_str().unwrap_or("")
                    );
                }
            }
            let notifiers = v["notifiers"].as_array().cloned().unwrap_or_default();
            if !notifiers.is_empty() {
                println!("\nnotifiers:");
                for n in &notifiers {
                    println!(
                        "  {:<16} {:<12} sent {}  failed {}  dropped {}{}",
                        n["name"].as_str().unwrap_or(""),
                        n["kind"].as_str().unwrap_or(""),
                        n["sent"],
                        n["failed"],
                        n["dropped"],
                        if n["failing"] == true {
                            format!("  FAILING: {}", n["last_error"].as_str().unwrap_or(""))
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
        AlertsAction::Silence => {
            let (matchers, duration, comment) = (args.matchers, args.duration, args.comment);
            if matchers.is_empty() {
                bail!(
                    "say what to silence: --match label=value (e.g. --match probe=home --match alertname=SiteDown)"
                );
            }
            for m in &matchers {
                if !m.contains('=') || m.contains(',') {
                    bail!(
                        "--match {m:?}: write label=value, one per --match (e.g. --match probe=home)"
                    );
                }
            }
            humantime::parse_duration(&duration)
                .with_context(|| format!("--for {duration:?}: write e.g. 2h, 30m or 1d"))?;
            let q = format!(
                "match={}&for={}&comment={}",
                admin_client::enc(&matchers.join(",")),
                admin_client::enc(&duration),
                admin_client::enc(&comment)
            );
            let s = client.post(&format!("/alerts/silence?{q}"))?;
            println!(
                "silence {} until {} ({})",
                s["id"].as_str().unwrap_or(""),
                when(&s["ends_at"]),
                matchers.join(", ")
            );
        }
        AlertsAction::Unsilence => {
            let Some(id) = args.id else {
                bail!(
                    "say which silence: peakguard alerts unsilence ID (the ids are in `peakguard alerts list`)"
                );
            };
            client.post(&format!("/alerts/unsilence?id={}", admin_client::enc(&id)))?;
            println!("silence {id} ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}
