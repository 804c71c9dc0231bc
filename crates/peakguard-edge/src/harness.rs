//! The edge in this process, for tests (as linkerd2-proxy's tests run the proxy): the same
//! [`crate::build_server`] the binary runs, on loopback ports checked free, with its state
//! under a directory the caller owns, stopped (and its state saved, as the binary does) when
//! the [`Harness`] is dropped. Tests reach it over HTTP at [`Harness::addr`] and read its
//! [`EdgeState`] directly.

use crate::state::EdgeState;
use crate::{EdgeError, ServeOptions};
use async_trait::async_trait;
use pingora::server::{RunArgs, ShutdownSignal, ShutdownSignalWatch};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running edge.
pub struct Harness {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The admin API's token.
    pub token: String,
    pub state: Arc<EdgeState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The harness's shutdown: when the [`Harness`] says so, not on a signal (several edges may
/// run in one test process).
struct Stop(parking_lot::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>);

#[async_trait]
impl ShutdownSignalWatch for Stop {
    async fn recv(&self) -> ShutdownSignal {
        let rx = self.0.lock().take();
        if let Some(rx) = rx {
            let _ = rx.await;
        }
        ShutdownSignal::FastShutdown
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

impl Harness {
    /// Starts an edge with `sites` (`[[site]]` sections and any other section; server and
    /// cache keys first, each list ended by `#END-SERVER` / `#END-CACHE`) in `dir`, and waits
    /// until it accepts connections (10 s at most). Its access log is `dir/access.log`.
    pub fn start(dir: &Path, sites: &str) -> Result<Harness, EdgeError> {
        let io = |e: std::io::Error| EdgeError::Harness(e.to_string());
        let addr = free_port().map_err(io)?;
        let admin = free_port().map_err(io)?;
        let token = "harness-token-0123456789".to_string();
        let d = dir.display();
        // `extra` may start with server keys ending in `#END-SERVER`, then cache keys ending
        // in `#END-CACHE` (as the binary's test harness reads it); the rest is appended.
        let (server_extra, rest) = sites.split_once("#END-SERVER\n").unwrap_or(("", sites));
        let (cache_extra, rest) = rest.split_once("#END-CACHE\n").unwrap_or(("", rest));
        let unless = |section: &str, text: String| {
            if rest.contains(section) {
                String::new()
            } else {
                text
            }
        };
        let maintenance = unless(
            "[maintenance]",
            format!("[maintenance]\nstate_file = \"{d}/maintenance.json\"\n"),
        );
        let waf = unless(
            "[waf]",
            format!("[waf]\nlog = \"{d}/waf.jsonl\"\ncrs_home = \"{d}/crs\"\n"),
        );
        let journal = unless(
            "[journal]",
            format!("[journal]\nfile = \"{d}/journal.jsonl\"\n"),
        );
        let stats = unless("[stats]", format!("[stats]\ndir = \"{d}/stats\"\n"));
        let text = format!(
            "[server]\nlisten = [\"{addr}\"]\nthreads = 2\npid_file = \"{d}/edge.pid\"\n\
             upgrade_sock = \"{d}/upgrade.sock\"\naccess_log = \"{d}/access.log\"\n\
             graceful_shutdown_timeout = \"3s\"\n{server_extra}\n\
             [admin]\nlisten = \"{admin}\"\ntoken = \"{token}\"\n\
             [cache]\ndisk_path = \"{d}/cache\"\n{cache_extra}\n{maintenance}{journal}{stats}\
             [shield]\nstate_file = \"{d}/shield.json\"\nroom_key_file = \"{d}/room.key\"\n\
             {waf}{rest}\n"
        );
        // The guards' own tables are known; the monitor's probe kinds are not the edge's.
        let tables = peakguard_shield::config_tables();
        let extensions = peakguard_config::Extensions {
            guard_tables: &tables,
            ..Default::default()
        };
        let config = peakguard_config::parse_with(&text, "harness", &extensions)
            .map_err(|e| EdgeError::Harness(e.to_string()))?;
        let (server, state) = crate::build_server(ServeOptions {
            config,
            config_path: None,
            read_config: Arc::new(|path| {
                let tables = peakguard_shield::config_tables();
                let extensions = peakguard_config::Extensions {
                    guard_tables: &tables,
                    ..Default::default()
                };
                peakguard_config::load_with(path, &extensions)
            }),
            upgrade: false,
            extensions: Vec::new(),
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let finished = state.clone();
        let thread = std::thread::Builder::new()
            .name("edge-harness".into())
            .spawn(move || {
                server.run(RunArgs {
                    shutdown_signal: Box::new(Stop(parking_lot::Mutex::new(Some(rx)))),
                });
                crate::finish(&finished);
            })
            .map_err(io)?;
        let harness = Harness {
            addr,
            admin,
            token,
            state,
            stop: Some(tx),
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err(EdgeError::Harness(format!(
                    "the edge did not listen on {addr} within 10 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(harness)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
