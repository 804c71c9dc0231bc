//! The running monitor (`serve` and `peakguard monitor`): every probe on its interval, the
//! alert engine ticking each second, the notifiers. It runs on its own OS thread with its own
//! small tokio runtime, so it never shares the edge's runtimes (pingora drops their tasks
//! at shutdown) and a slow probe never takes a proxy thread; [`Monitor::stop`] ends it.
//!
//! Shared state is behind short `parking_lot` locks, never held across an `.await`: the admin
//! API reads it from its own runtime without waiting on a probe.

use crate::alerts::{Engine, Silences};
use crate::notify::{Message, Notifier, NotifierStatus};
use crate::track::Track;
use parking_lot::Mutex;
use peakguard_config::{Config, ProbeConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// How often Alertmanager is reminded of what still fires.
const ALERTMANAGER_REMIND: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("notifier {name}: {message}")]
    Notifier { name: String, message: String },
    #[error("the monitor's thread: {0}")]
    Thread(String),
}

pub(crate) struct Inner {
    /// Where alerts firing and resolved are journaled.
    pub journal: Option<peakguard_journal::Recorder>,
    pub probes: Vec<ProbeConfig>,
    pub tracks: Vec<Mutex<Track>>,
    pub engine: Mutex<Engine>,
    pub silences: Mutex<Silences>,
    pub notifiers: Mutex<Vec<Arc<Notifier>>>,
    pub maintenance: AtomicBool,
    maintenance_file: PathBuf,
    /// Where probes keep what they remember (beside `[monitor] state_file`).
    state_dir: PathBuf,
    sources: parking_lot::RwLock<crate::sources::Sources>,
}

/// The running monitor.
pub struct Monitor {
    pub(crate) inner: Arc<Inner>,
    stop_tx: watch::Sender<bool>,
    go_tx: watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Monitor {
    /// Starts the probes, the alert engine and the notifiers; `None` when the configuration
    /// has no `[[probe]]`. `external_url` is where people find the status (the admin API).
    pub fn start(
        config: &Config,
        external_url: String,
    ) -> Result<Option<Arc<Monitor>>, MonitorError> {
        let monitor = Self::start_paused(config, external_url)?;
        if let Some(m) = &monitor {
            m.begin();
        }
        Ok(monitor)
    }

    /// As [`Monitor::start`], but the probes wait for [`Monitor::begin`] (`serve` begins
    /// them once the edge accepts connections, so the first runs do not find it starting).
    pub fn start_paused(
        config: &Config,
        external_url: String,
    ) -> Result<Option<Arc<Monitor>>, MonitorError> {
        if config.probes.is_empty() {
            return Ok(None);
        }
        let keep = config.monitor.history.clamp(1, 1000);
        let journal = peakguard_journal::Recorder::start(peakguard_journal::Journal::new(
            &config.journal.file,
        ))
        .map_err(|e| log::error!("monitor: alerts are not journaled: {e}"))
        .ok();
        let inner = Arc::new(Inner {
            journal,
            probes: config.probes.clone(),
            tracks: config
                .probes
                .iter()
                .map(|p| Mutex::new(Track::new(p, keep)))
                .collect(),
            engine: Mutex::new(Engine::new(config.alerts.clone(), config.monitor.clone())),
            silences: Mutex::new(Silences::load(config.monitor.state_file.clone())),
            notifiers: Mutex::new(Vec::new()),
            maintenance: AtomicBool::new(false),
            maintenance_file: config.maintenance.state_file.clone(),
            state_dir: config
                .monitor
                .state_file
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default(),
            sources: parking_lot::RwLock::new(crate::sources::Sources::default()),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let (go_tx, go_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), MonitorError>>(1);
        let notifier_configs = config.notifiers.clone();
        let thread_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("peakguard-monitor".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .max_blocking_threads(4)
                    .thread_name("peakguard-monitor-rt")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(MonitorError::Thread(e.to_string())));
                        return;
                    }
                };
                rt.block_on(run(
                    thread_inner,
                    notifier_configs,
                    external_url,
                    stop_rx,
                    go_rx,
                    ready_tx,
                ));
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|e| MonitorError::Thread(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => return Err(MonitorError::Thread("it ended before starting".into())),
        }
        Ok(Some(Arc::new(Monitor {
            inner,
            stop_tx,
            go_tx,
            thread: Mutex::new(Some(thread)),
        })))
    }

    /// What edge and backup probes read in-process (`serve` sets it before [`Monitor::begin`]).
    pub fn set_sources(&self, sources: crate::sources::Sources) {
        *self.inner.sources.write() = sources;
    }

    /// Lets the probes run (once; later calls change nothing).
    pub fn begin(&self) {
        let _ = self.go_tx.send(true);
    }

    /// Ends the probes and notifiers (a probe in flight is cut off); waits up to `wait`.
    /// `false` when the thread had not ended by then.
    pub fn stop(&self, wait: Duration) -> bool {
        let _ = self.stop_tx.send(true);
        let Some(handle) = self.thread.lock().take() else {
            return true;
        };
        let deadline = Instant::now() + wait;
        while !handle.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = handle.join();
        true
    }

    pub fn notifier_statuses(&self) -> Vec<NotifierStatus> {
        self.inner
            .notifiers
            .lock()
            .iter()
            .map(|n| n.status())
            .collect()
    }
}

async fn run(
    inner: Arc<Inner>,
    notifier_configs: Vec<peakguard_config::NotifierConfig>,
    external_url: String,
    mut stop: watch::Receiver<bool>,
    mut go: watch::Receiver<bool>,
    ready: std::sync::mpsc::SyncSender<Result<(), MonitorError>>,
) {
    let mut notifiers = Vec::new();
    for config in notifier_configs {
        let name = config.name.clone();
        match Notifier::start(config, external_url.clone(), stop.clone()) {
            Ok(n) => notifiers.push(Arc::new(n)),
            Err(e) => {
                let _ = ready.send(Err(MonitorError::Notifier {
                    name,
                    message: e.to_string(),
                }));
                return;
            }
        }
    }
    *inner.notifiers.lock() = notifiers;
    let _ = ready.send(Ok(()));
    tokio::select! {
        _ = go.wait_for(|go| *go) => {}
        _ = stop.wait_for(|stop| *stop) => return,
    }
    for i in 0..inner.probes.len() {
        tokio::spawn(probe_loop(inner.clone(), i, stop.clone()));
    }
    tick_loop(inner, stop).await;
}

/// Runs probe `i` every interval until stopped. A run that panics counts as a failure.
async fn probe_loop(inner: Arc<Inner>, i: usize, mut stop: watch::Receiver<bool>) {
    let probe = inner.probes[i].clone();
    // A probe that remembers (the wordpress probe's first sightings) keeps it in a file; the
    // file is only read and written by a probe that uses it.
    let fresh_memory = || {
        let name: String = probe
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        crate::Memory::kept_in(inner.state_dir.join(format!("monitor-probe-{name}.json")))
    };
    let mut memory = fresh_memory();
    loop {
        let sources = inner.sources.read().clone();
        let task = tokio::spawn({
            let probe = probe.clone();
            async move {
                let result = crate::run_with(&probe, &mut memory, &sources).await;
                (result, memory)
            }
        });
        let result = tokio::select! {
            r = task => match r {
                Ok((result, kept)) => {
                    memory = kept;
                    result
                }
                Err(e) => {
                    log::error!("probe {}: {e}", probe.name);
                    memory = fresh_memory();
                    crate::result::ProbeResult::failed(&probe, format!("the probe crashed: {e}"))
                }
            },
            _ = stop.changed() => return,
        };
        let down = inner.tracks[i].lock().record(&probe, result.clone());
        inner.engine.lock().observe(&probe, &result, down);
        tokio::select! {
            _ = tokio::time::sleep(probe.interval.0) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Each second: maintenance read, silences expired, the engine's tick, notifications queued.
async fn tick_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut last_reminder = Instant::now();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        let maintenance = maintenance_on(&inner.maintenance_file).await;
        inner.maintenance.store(maintenance, Ordering::Relaxed);
        let now = SystemTime::now();
        let (out, firing) = {
            let mut silences = inner.silences.lock();
            silences.expire(crate::result::unix(now));
            let mut engine = inner.engine.lock();
            let out = engine.tick(now, &silences, maintenance);
            (out, engine.firing())
        };
        let notifiers = inner.notifiers.lock().clone();
        for notice in &out.groups {
            for n in notifiers.iter().filter(|n| n.takes_groups()) {
                let alerts: Vec<_> = notice
                    .alerts
                    .iter()
                    .filter(|a| n.wanted_by(&a.notify))
                    .cloned()
                    .collect();
                if !alerts.is_empty() {
                    n.offer(Message::Group(crate::alerts::GroupNotice {
                        alerts,
                        ..notice.clone()
                    }));
                }
            }
        }
        if let Some(journal) = &inner.journal {
            for a in &out.changed {
                journal.record(journal_event(a));
            }
        }
        let remind = last_reminder.elapsed() >= ALERTMANAGER_REMIND;
        if !out.changed.is_empty() || (remind && !firing.is_empty()) {
            last_reminder = Instant::now();
            // What fires now and what was resolved since the last look.
            let mut push = firing;
            push.extend(
                out.changed
                    .into_iter()
                    .filter(|a| a.state == crate::alerts::AlertState::Resolved),
            );
            for n in notifiers.iter().filter(|n| !n.takes_groups()) {
                let alerts: Vec<_> = push
                    .iter()
                    .filter(|a| n.wanted_by(&a.notify))
                    .cloned()
                    .collect();
                if !alerts.is_empty() {
                    n.offer(Message::Push(alerts));
                }
            }
        }
    }
}

/// An alert that started firing or was resolved, as the journal keeps it.
fn journal_event(a: &crate::alerts::Alert) -> peakguard_journal::Event {
    let label = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
    let state = match a.state {
        crate::alerts::AlertState::Resolved => "resolved",
        _ => "firing",
    };
    peakguard_journal::Event {
        who: "monitor".into(),
        what: format!("alert {state}"),
        site: a.labels.get("site").cloned(),
        detail: format!(
            "{} on probe {}{}",
            a.name(),
            label("probe"),
            a.annotations
                .get("summary")
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ),
        result: state.into(),
    }
}

/// The edge's maintenance switch, from its state file (absent or unreadable: off).
async fn maintenance_on(path: &std::path::Path) -> bool {
    if path.as_os_str().is_empty() {
        return false;
    }
    match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("on").and_then(serde_json::Value::as_bool))
            .unwrap_or(false),
        Err(_) => false,
    }
}
