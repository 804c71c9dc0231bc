//! Notifiers: where alerts go. Each has its own task and a bounded queue
//! ([`QUEUE`] messages; when full, the new message is dropped and counted), so a slow or
//! failing receiver never holds up the probes, the alert engine or another notifier. A
//! failed send is retried with a growing pause (1 s, 2 s, 4 s… at most a minute) up to
//! `retries` times; failures are counted in the notifier's status and metrics, and
//! `failing` stays set until a send succeeds.

mod email;
pub mod payload;

use crate::alerts::{Alert, GroupNotice};
use parking_lot::Mutex;
use peakguard_config::{NotifierConfig, NotifierKind};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};

/// Messages waiting per notifier.
pub const QUEUE: usize = 64;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What a notifier is asked to send.
#[derive(Debug, Clone)]
pub enum Message {
    /// A group's notification (webhook, Slack, e-mail).
    Group(GroupNotice),
    /// Alerts for Alertmanager, which groups them itself.
    Push(Vec<Alert>),
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct NotifierStatus {
    pub name: String,
    pub kind: &'static str,
    pub sent: u64,
    /// Messages given up after every retry.
    pub failed: u64,
    /// Attempts that failed (a message retried three times counts three).
    pub attempts_failed: u64,
    /// Messages dropped because the queue was full.
    pub dropped: u64,
    /// The last attempt failed.
    pub failing: bool,
    pub last_ok_unix: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_unix: Option<u64>,
}

/// One notifier: its queue and what it did.
pub struct Notifier {
    pub config: NotifierConfig,
    tx: mpsc::Sender<Message>,
    status: Arc<Mutex<NotifierStatus>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Failed(String),
}

/// How one message is sent (the notifier's kind).
enum Sender {
    Http {
        client: reqwest::Client,
        url: String,
        kind: NotifierKind,
        bearer: Option<String>,
    },
    Email(Box<email::Mailer>),
}

impl Notifier {
    /// Builds the notifier and starts its task on the current runtime; it ends when `stop`
    /// says so (a message in its retries is abandoned then).
    pub fn start(
        config: NotifierConfig,
        external_url: String,
        stop: watch::Receiver<bool>,
    ) -> Result<Notifier, SendError> {
        let sender = match config.kind {
            NotifierKind::Email => Sender::Email(Box::new(email::Mailer::new(&config)?)),
            kind => {
                let client = reqwest::Client::builder()
                    .timeout(config.timeout.0)
                    .user_agent(concat!("peakguard/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| SendError::Failed(format!("an HTTP client: {e}")))?;
                let base = config.url.clone().unwrap_or_default();
                let url = if kind == NotifierKind::Alertmanager {
                    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
                } else {
                    base
                };
                Sender::Http {
                    client,
                    url,
                    kind,
                    bearer: (!config.bearer_token.is_empty())
                        .then(|| config.bearer_token.expose().to_string()),
                }
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let status = Arc::new(Mutex::new(NotifierStatus {
            name: config.name.clone(),
            kind: config.kind.as_str(),
            ..NotifierStatus::default()
        }));
        tokio::spawn(work(
            sender,
            config.name.clone(),
            config.retries,
            external_url,
            rx,
            status.clone(),
            stop,
        ));
        Ok(Notifier { config, tx, status })
    }

    /// Queues a message without waiting; a full queue drops it (counted).
    pub fn offer(&self, message: Message) {
        if self.tx.try_send(message).is_err() {
            self.status.lock().dropped += 1;
            log::warn!(
                "notifier {}: its queue is full ({QUEUE}); a notification was dropped",
                self.config.name
            );
        }
    }

    pub fn status(&self) -> NotifierStatus {
        self.status.lock().clone()
    }

    /// Whether this notifier takes group notifications (all but Alertmanager).
    pub fn takes_groups(&self) -> bool {
        self.config.kind != NotifierKind::Alertmanager
    }

    /// Whether an alert of a rule with this `notify` list goes here.
    pub fn wanted_by(&self, notify: &[String]) -> bool {
        notify.is_empty() || notify.iter().any(|n| n == &self.config.name)
    }
}

async fn work(
    sender: Sender,
    name: String,
    retries: u32,
    external_url: String,
    mut rx: mpsc::Receiver<Message>,
    status: Arc<Mutex<NotifierStatus>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let message = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => return },
            _ = stop.changed() => return,
        };
        let mut pause = Duration::from_secs(1);
        for attempt in 0..=retries {
            match send(&sender, &name, &message, &external_url).await {
                Ok(()) => {
                    let mut s = status.lock();
                    s.sent += 1;
                    s.failing = false;
                    s.last_ok_unix = Some(crate::result::unix(SystemTime::now()));
                    break;
                }
                Err(e) => {
                    let text = e.to_string();
                    {
                        let mut s = status.lock();
                        s.attempts_failed += 1;
                        s.failing = true;
                        s.last_error = Some(text.clone());
                        s.last_error_unix = Some(crate::result::unix(SystemTime::now()));
                        if attempt == retries {
                            s.failed += 1;
                        }
                    }
                    if attempt == retries {
                        log::error!(
                            "notifier {name}: gave up after {} attempt(s): {text}",
                            attempt + 1
                        );
                        break;
                    }
                    log::warn!(
                        "notifier {name}: attempt {} failed ({text}); again in {}s",
                        attempt + 1,
                        pause.as_secs()
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => return,
                    }
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

async fn send(
    sender: &Sender,
    name: &str,
    message: &Message,
    external_url: &str,
) -> Result<(), SendError> {
    match sender {
        Sender::Email(mailer) => match message {
            Message::Group(notice) => mailer.send(notice).await,
            Message::Push(_) => Ok(()),
        },
        Sender::Http {
            client,
            url,
            kind,
            bearer,
        } => {
            let body = match (kind, message) {
                (NotifierKind::Alertmanager, Message::Push(alerts)) => {
                    payload::alertmanager_v2(alerts, external_url, SystemTime::now())
                }
                (NotifierKind::Slack, Message::Group(n)) => payload::slack(n),
                (NotifierKind::Webhook, Message::Group(n)) => {
                    payload::webhook_v4(name, n, external_url)
                }
                _ => return Ok(()),
            };
            let mut request = client.post(url).json(&body);
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            let response = request
                .send()
                .await
                .map_err(|e| SendError::Failed(format!("POST {url}: {e}")))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(200).collect();
                Err(SendError::Failed(format!(
                    "POST {url}: HTTP {status}{}",
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", text.trim())
                    }
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    /// On a paused clock: the retries' pauses (1 s, 2 s, 4 s) pass at once, and are measured
    /// exactly (the failures are connections refused on loopback).
    #[tokio::test(start_paused = true)]
    async fn a_failing_notifier_retries_after_one_two_four_seconds_then_gives_up() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let text = format!(
            "[[notifier]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://{closed}\"\nretries = 3\n"
        );
        let config = peakguard_config::parse_with(&text, "t", &crate::extensions())
            .expect("valid")
            .notifiers[0]
            .clone();
        let (_stop_tx, stop) = watch::channel(false);
        let n = Notifier::start(config, "http://peakguard.test".into(), stop).expect("start");
        n.offer(Message::Push(Vec::new()));
        let mut at = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while n.status().failed == 0 {
            assert!(Instant::now() < deadline, "{:?}", n.status());
            if n.status().attempts_failed as usize > at.len() {
                at.push(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        at.push(Instant::now());
        let s = n.status();
        assert_eq!((s.attempts_failed, s.failed, s.sent), (4, 1, 0), "{s:?}");
        let pauses: Vec<u64> = at
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis() as u64)
            .collect();
        for (pause, want) in pauses.iter().zip([1000, 2000, 4000]) {
            assert!(
                (want..want + 500).contains(pause),
                "pauses {pauses:?} (ms): 1 s, 2 s, 4 s"
            );
        }
    }
}
