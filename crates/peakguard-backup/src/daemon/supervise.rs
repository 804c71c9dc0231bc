//! The daemon's threads: started under a supervisor that logs and counts a panic and starts
//! the loop again, and their waits (a timer, a request, or the stop flag).

use super::*;

/// What a waiting loop got.
pub(super) enum Woken<T> {
    Asked(T),
    TimeUp,
    Stop,
}

/// Waits for a request on `rx` until `until` (forever if `None`), looking at `stopping` every
/// second.
pub(super) fn wait_for<T>(
    rx: &Receiver<T>,
    until: Option<Instant>,
    stopping: &AtomicBool,
) -> Woken<T> {
    loop {
        if stopping.load(Ordering::Relaxed) {
            return Woken::Stop;
        }
        let slice = until.map_or(Duration::from_secs(1), |u| {
            u.saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1))
        });
        match rx.recv_timeout(slice) {
            Ok(v) => return Woken::Asked(v),
            Err(RecvTimeoutError::Disconnected) => return Woken::Stop,
            Err(RecvTimeoutError::Timeout) => {
                if until.is_some_and(|u| Instant::now() >= u) {
                    return Woken::TimeUp;
                }
            }
        }
    }
}

/// Runs `body` on its own thread, again after a panic (reported in the site's status and
/// the log), until it returns.
pub(super) fn supervised(
    worker: Arc<SiteWorker>,
    name: String,
    what: &'static str,
    body: impl Fn(&SiteWorker) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(move || {
        loop {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&worker)));
            let Err(panic) = run else { return };
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            log::error!(
                "site {:?}: the {what} thread panicked ({message}); starting it again",
                worker.site.name
            );
            {
                let mut s = worker.status.lock();
                s.panics += 1;
                s.running = false;
                s.last_error = Some(format!("the {what} thread panicked ({message}); restarted"));
                s.last_error_unix = Some(now_unix());
            }
            if worker.stopping.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

pub(super) fn hidden() -> Hidden {
    Hidden
}
