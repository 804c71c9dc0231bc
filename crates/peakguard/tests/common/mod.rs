//! Test harness: a raw HTTP/1.1 client (client.rs: tests control every byte, which the
//! smuggling set needs), and [`Edge`], the real `peakguard` binary started on its own ports and stopped by
//! its PID when dropped.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub mod wp;
use std::time::{Duration, Instant};

mod client;
pub use client::*;

/// An empty private directory (0700, a random name: `tempfile`) for one test's files; removed
/// with everything in it when dropped (so every test removes what it created, pass or fail).
pub fn fresh_dir(name: &str) -> TestDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("peakguard-test-{name}-"))
        .tempdir()
        .expect("a temporary directory for the test");
    TestDir(dir)
}

/// A test's directory (see [`fresh_dir`]); derefs to its path.
#[derive(Debug)]
pub struct TestDir(tempfile::TempDir);

impl std::ops::Deref for TestDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl AsRef<std::path::Path> for TestDir {
    fn as_ref(&self) -> &std::path::Path {
        self.0.path()
    }
}

/// A running `peakguard serve`.
pub struct Edge {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: PathBuf,
    pub config: PathBuf,
    child: Option<Child>,
    /// The directory `Edge::start` made for this edge, removed after the process stops.
    owned_dir: Option<TestDir>,
}

pub const TOKEN: &str = "test-token";

impl Edge {
    /// Writes a configuration (server/admin/cache/maintenance sections filled in, `sites`
    /// appended as given) and starts the binary.
    pub fn start(name: &str, sites_and_extra: &str) -> Edge {
        let [p, a, ..] = ports();
        let dir = fresh_dir(name);
        let mut edge = Self::start_in(dir.to_path_buf(), p, a, sites_and_extra, false);
        edge.owned_dir = Some(dir);
        edge
    }

    pub fn config_text(dir: &std::path::Path, port: u16, admin: u16, extra: &str) -> String {
        let d = dir.display();
        // `extra` may start with server keys ending in `#END-SERVER`, then cache keys ending
        // in `#END-CACHE`; the rest (sites, other sections) is appended.
        let (server_extra, rest) = match extra.split_once("#END-SERVER\n") {
            Some((s, r)) => (s, r),
            None => ("", extra),
        };
        let (cache_extra, rest) = match rest.split_once("#END-CACHE\n") {
            Some((c, r)) => (c, r),
            None => ("", rest),
        };
        // The maintenance flag in the test's directory, unless the test sets its own section.
        // The journal in the test's directory too.
        let journal = if rest.contains("[journal]") {
            String::new()
        } else {
            format!("[journal]\nfile = \"{d}/journal.jsonl\"\n")
        };
        // The statistics too, saved every second (what a kill may lose).
        let stats = if rest.contains("[stats]") {
            String::new()
        } else {
            format!("[stats]\ndir = \"{d}/stats\"\nsave_every = \"1s\"\n")
        };
        let maintenance = if rest.contains("[maintenance]") {
            String::new()
        } else {
            format!("[maintenance]\nstate_file = \"{d}/maintenance.json\"\n")
        };
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nthreads = 2\npid_file = \"{d}/pid\"\nupgrade_sock = \"{d}/upgrade.sock\"\naccess_log = \"{d}/access.log\"\ngraceful_shutdown_timeout = \"3s\"\n{server_extra}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{TOKEN}\"\n[cache]\ndisk_path = \"{d}/cache\"\n{cache_extra}\n{maintenance}{journal}{stats}[shield]\nstate_file = \"{d}/shield-state.json\"\nroom_key_file = \"{d}/room.key\"\n{rest}\n"
        )
    }

    pub fn start_in(dir: PathBuf, port: u16, admin: u16, extra: &str, upgrade: bool) -> Edge {
        let config = dir.join("peakguard.toml");
        if !upgrade {
            std::fs::write(&config, Self::config_text(&dir, port, admin, extra))
                .expect("write config");
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peakguard"));
        cmd.arg("serve").arg("--config").arg(&config);
        if upgrade {
            cmd.arg("--upgrade");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("edge.log"))
            .expect("log");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start peakguard");
        let edge = Edge {
            addr: ([127, 0, 0, 1], port).into(),
            admin: ([127, 0, 0, 1], admin).into(),
            dir,
            config,
            child: Some(child),
            owned_dir: None,
        };
        if !upgrade {
            edge.wait_ready();
        }
        edge
    }

    /// Removes `dir` once the process has stopped.
    pub fn own_dir(&mut self, dir: TestDir) {
        self.owned_dir = Some(dir);
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let healthy = exchange(
                self.admin,
                b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                Duration::from_secs(2),
            )
            .is_ok_and(|r| r.first().is_some_and(|r| r.status == 200));
            if healthy && TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "peakguard did not start; log:\n{}",
            std::fs::read_to_string(self.dir.join("edge.log")).unwrap_or_default()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Runs a CLI subcommand of the binary against this edge's admin API.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_peakguard"))
            .args(args)
            .args(["--admin", &self.admin.to_string(), "--token", TOKEN])
            .output()
            .expect("run peakguard cli")
    }

    /// Runs a CLI subcommand of the binary as given (no admin address or token added).
    pub fn cli_plain(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_peakguard"))
            .args(args)
            .output()
            .expect("run peakguard cli")
    }

    pub fn admin_get(&self, path: &str) -> Response {
        request(
            self.admin,
            "GET",
            "admin",
            path,
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            b"",
        )
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Graceful stop (SIGTERM) and wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal_pid(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal_pid(&self, pid: u32, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
    }

    /// Waits for the process to exit by itself (after SIGQUIT in an upgrade).
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A self-signed certificate and key (PEM) for `name`, made with openssl.
pub fn self_signed(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            &format!("subjectAltName=DNS:{name}"),
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// Waits until `done` holds, polling every 100 ms; fails the test after `within`.
pub fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process (a server the test started) killed when the test ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The OWASP CRS 4 release tree in the workplace's shared folder (`../shared/crs-4`): what
/// the WAF tests run. The product never reads it; `peakguard waf crs install` does, when a
/// test asks.
pub fn shared_crs4() -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs-4");
    assert!(
        dir.join("rules").is_dir(),
        "CRS 4 is expected in {} (the workplace's shared folder)",
        dir.display()
    );
    std::fs::canonicalize(&dir).expect("the shared CRS 4")
}

/// The official WordPress rule exclusions plugin beside it.
pub fn shared_wordpress_plugin() -> PathBuf {
    shared_crs4().join("plugins-available/wordpress-rule-exclusions")
}

/// `[site.waf]` lines that run CRS 4 with the WordPress plugin from the shared folder.
pub fn crs4_site_waf() -> String {
    format!(
        "crs_dir = \"{}\"\nplugins = [\"{}\"]\n",
        shared_crs4().display(),
        shared_wordpress_plugin().display()
    )
}

/// A call to the edge's admin API with a bearer token.
pub fn admin_call(edge: &Edge, method: &str, path: &str, token: &str) -> Response {
    request(
        edge.admin,
        method,
        "admin",
        path,
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
}

/// Runs Debian's headless Chromium on a local `page` (a fresh profile under `dir`, no
/// background networking) with `extra` arguments (`--screenshot=…`, `--dump-dom`).
pub fn chromium(
    dir: &std::path::Path,
    page: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let profile = dir.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).expect("chromium profile");
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (Debian package) is installed")
}
