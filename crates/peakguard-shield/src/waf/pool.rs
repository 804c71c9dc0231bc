//! The threads inspections run on: libmodsecurity is synchronous, CPU-bound C++, so it never
//! runs on the async runtime. A fixed number of OS threads take jobs from one bounded queue;
//! when the queue is full a new job is refused at once (the guard then applies `on_error`),
//! so a flood of requests to inspect never builds an unbounded backlog or stalls requests
//! the WAF does not inspect (cache hits never come here).

use crossbeam_channel::{Sender, TrySendError, bounded};

type Job = Box<dyn FnOnce() + Send>;

pub struct WafPool {
    tx: Sender<Job>,
    pub workers: usize,
    pub queue: usize,
}

/// The queue was full.
#[derive(Debug)]
pub struct Overloaded;

impl WafPool {
    /// `workers` threads (0: one per core), at most `queue` jobs waiting. The threads live as
    /// long as the process.
    pub fn new(workers: usize, queue: usize) -> WafPool {
        let workers = match workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let queue = queue.max(1);
        let (tx, rx) = bounded::<Job>(queue);
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("waf-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        // A panic inside one inspection must not take the thread with it.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = spawned {
                log::error!("WAF: cannot start inspection thread {i}: {e}");
            }
        }
        WafPool { tx, workers, queue }
    }

    /// Runs `f` on a pool thread; its result arrives on the returned receiver (dropped
    /// without a value if `f` panicked).
    pub fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<T>, Overloaded> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        match self.tx.try_send(job) {
            Ok(()) => Ok(result),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Overloaded),
        }
    }

    /// Jobs waiting now.
    pub fn waiting(&self) -> usize {
        self.tx.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_off_the_runtime_and_a_full_queue_refuses_at_once() {
        let pool = WafPool::new(1, 1);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        // The one thread is held by the first job, the second fills the queue.
        let first = pool
            .submit(move || {
                let _ = started_tx.send(());
                let _ = hold.recv();
                std::thread::current().name().map(str::to_string)
            })
            .expect("queued");
        started
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the thread took the first job");
        let second = pool.submit(|| 2).expect("queued");
        let mut refused = false;
        for _ in 0..1000 {
            if pool.submit(|| 3).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "a bounded queue refuses");
        release.send(()).expect("release");
        assert_eq!(first.await.expect("ran").as_deref(), Some("waf-0"));
        assert_eq!(second.await.expect("ran"), 2);
    }
}
