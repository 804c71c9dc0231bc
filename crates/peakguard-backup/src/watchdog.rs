//! A bound on how long an external command (`mariadb-dump`, `mariadb`) may run: past it the
//! command is killed and the caller reports it, so a dump stuck on a locked table never holds
//! the backup (and its writer lock) forever.
//!
//! The child is shared with the watchdog and killed through `std`'s handle, which never
//! signals a child that has already been waited for: no other process can be hit.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// Used when a database gives no timeout of its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// How often a waiting caller looks whether the child has ended.
const POLL: Duration = Duration::from_millis(10);

pub(crate) type Shared = Arc<Mutex<Child>>;

fn lock(child: &Shared) -> io::Result<std::sync::MutexGuard<'_, Child>> {
    child
        .lock()
        .map_err(|_| io::Error::other("the child's handle was poisoned"))
}

/// Kills the shared child unless stopped within its limit.
pub(crate) struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(child: Shared, limit: Duration) -> Self {
        let limit = if limit.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            limit
        };
        let (cancel, cancelled) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit)
                && let Ok(mut c) = child.lock()
                && matches!(c.try_wait(), Ok(None))
            {
                flag.store(true, Ordering::SeqCst);
                let _ = c.kill();
            }
        });
        Watchdog {
            cancel: Some(cancel),
            fired,
            thread: Some(thread),
        }
    }

    /// Stops watching; `true` when the limit was reached and the child killed.
    pub fn stop(mut self) -> bool {
        self.shutdown();
        self.fired.load(Ordering::SeqCst)
    }

    fn shutdown(&mut self) {
        drop(self.cancel.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Waits for the shared child without holding it (the watchdog may need it).
pub(crate) fn wait(child: &Shared) -> io::Result<ExitStatus> {
    loop {
        if let Some(status) = lock(child)?.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `cmd` and collects its output, killing it after `limit`; the flag says whether it
/// was killed. With `input`, that is its standard input; without, the caller sets it (a
/// file, or `Stdio::null()`).
pub(crate) fn output(
    cmd: &mut Command,
    input: Option<&[u8]>,
    limit: Duration,
) -> io::Result<(Output, bool)> {
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let child: Shared = Arc::new(Mutex::new(child));
    let watchdog = Watchdog::start(child.clone(), limit);
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = read(stdout.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = read(stderr.map(|p| Box::new(p) as Box<dyn Read + Send>));
    if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
        // A child that stops reading (killed, or failed early) closes the pipe: not an
        // error here, its status says what happened.
        let _ = pipe.write_all(bytes);
    }
    let status = wait(&child)?;
    let killed = watchdog.stop();
    Ok((
        Output {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        },
        killed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_command_past_its_limit_is_killed_and_reported() {
        let started = Instant::now();
        let (out, killed) = output(
            Command::new("sleep").arg("30").stdin(Stdio::null()),
            None,
            Duration::from_millis(300),
        )
        .expect("ran");
        assert!(killed);
        assert!(!out.status.success());
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not waited out"
        );
    }

    #[test]
    fn a_command_within_its_limit_gives_its_output() {
        let (out, killed) = output(
            &mut Command::new("cat"),
            Some(b"hello"),
            Duration::from_secs(30),
        )
        .expect("ran");
        assert!(!killed);
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hello");
    }
}
