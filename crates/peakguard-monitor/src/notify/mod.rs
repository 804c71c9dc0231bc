//! Notifiers: where alerts go. Each has its own task and a bounded queue
//! ([`QUEUE`] messages; when full, the new message is dropped and counted), so a slow or
//! failing receiver never holds up the probes, the alert engine or another notifier. A
//! failed send is retried with a growing pause (1 s, 2 s, 4 s… at most a minute) up to
//! `retries` times; failures are counted in the notifier's status and metrics, and
//! `failing` stays set until a send succeeds.

pub mod payload;
mod post;

/// Declares each notifier kind's module and [`NOTIFIERS`].
macro_rules! notifiers {
    ($($kind:ident),* $(,)?) => {
        $(mod $kind;)*
        /// Every kind of notifier (each module's `NOTIFIER`).
        pub static NOTIFIERS: &[&dyn AnyNotifier] = &[$(&$kind::NOTIFIER),*];
    };
}

// A new kind of notifier: its file in this folder, and its name on a line of this list.
notifiers![webhook, alertmanager, slack, email];

use crate::alerts::{Alert, GroupNotice};
use crate::own_keys::{KeyedKind, Kind, Problems, check_among, read_settings};
use parking_lot::Mutex;
use peakguard_config::{NotifierConfig, NotifierKind, NotifierKindSpec, OwnKeys};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::LazyLock;
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

/// A send in progress.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// How one kind of notifier sends a message (a message it does not take is `Ok`).
pub trait Deliver: Send + Sync {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a>;
}

/// One kind of notifier, as its file writes it.
pub trait Notify: Send + Sync + 'static {
    /// The kind's own keys.
    type Settings: DeserializeOwned + Send + 'static;
    /// Its `kind = "..."`.
    const KIND: &'static str;
    /// It takes group notifications; off: it takes the alerts themselves and groups them
    /// (Alertmanager).
    const TAKES_GROUPS: bool = true;
    /// The checks of its keys' values beyond their types.
    fn check(_settings: &Self::Settings) -> Problems {
        Vec::new()
    }
    /// What sends for the notifier `config` (its name, its timeout); `external_url` links
    /// back to this monitor.
    fn sender(
        config: &NotifierConfig,
        settings: Self::Settings,
        external_url: &str,
    ) -> Result<Box<dyn Deliver>, SendError>;
}

/// A kind in the registry, whatever its settings' type.
pub trait AnyNotifier: KeyedKind {
    fn takes_groups(&self) -> bool;
    fn sender(
        &self,
        config: &NotifierConfig,
        external_url: &str,
    ) -> Result<Box<dyn Deliver>, SendError>;
}

/// What a notifier file registers: `pub(crate) static NOTIFIER: Registered<Slack> = Registered::NEW;`.
pub struct Registered<N>(PhantomData<fn() -> N>);

impl<N> Registered<N> {
    pub const NEW: Registered<N> = Registered(PhantomData);
}

fn kind_of<N: Notify>() -> Kind<'static> {
    Kind {
        name: N::KIND,
        of: "notifier",
    }
}

impl<N: Notify> KeyedKind for Registered<N> {
    fn kind(&self) -> &'static str {
        N::KIND
    }

    fn check(&self, keys: &OwnKeys) -> Problems {
        let (settings, mut problems) = read_settings::<N::Settings>(kind_of::<N>(), keys);
        if let Some(settings) = settings {
            problems.extend(N::check(&settings));
        }
        problems
    }
}

impl<N: Notify> AnyNotifier for Registered<N> {
    fn takes_groups(&self) -> bool {
        N::TAKES_GROUPS
    }

    fn sender(
        &self,
        config: &NotifierConfig,
        external_url: &str,
    ) -> Result<Box<dyn Deliver>, SendError> {
        let settings = crate::own_keys::own_settings(kind_of::<N>(), &config.settings)
            .map_err(SendError::Failed)?;
        N::sender(config, settings, external_url)
    }
}

/// The notifier kind `kind`, if one is registered.
pub fn find(kind: &NotifierKind) -> Option<&'static dyn AnyNotifier> {
    NOTIFIERS
        .iter()
        .copied()
        .find(|n| n.kind() == kind.as_str())
}

/// Every kind, for [`peakguard_config::Extensions::notifier_kinds`].
pub fn notifier_kinds() -> &'static [NotifierKindSpec] {
    static KINDS: LazyLock<Vec<NotifierKindSpec>> = LazyLock::new(|| {
        NOTIFIERS
            .iter()
            .map(|n| NotifierKindSpec {
                name: n.kind(),
                check: check_any,
            })
            .collect()
    });
    &KINDS
}

/// The checks of any notifier's own keys, with a key of another kind named as such.
fn check_any(config: &NotifierConfig) -> Problems {
    let Some(kind) = find(&config.kind) else {
        return Vec::new(); // peakguard-config names the unknown kind
    };
    check_among(
        kind,
        &config.settings,
        NOTIFIERS.iter().map(|k| *k as &dyn KeyedKind),
    )
}

impl Notifier {
    /// Builds the notifier and starts its task on the current runtime; it ends when `stop`
    /// says so (a message in its retries is abandoned then).
    pub fn start(
        config: NotifierConfig,
        external_url: String,
        stop: watch::Receiver<bool>,
    ) -> Result<Notifier, SendError> {
        let kind = find(&config.kind).ok_or_else(|| {
            SendError::Failed(format!("no notifier of kind {:?}", config.kind.as_str()))
        })?;
        let sender = kind.sender(&config, &external_url)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let status = Arc::new(Mutex::new(NotifierStatus {
            name: config.name.clone(),
            kind: kind.kind(),
            ..NotifierStatus::default()
        }));
        tokio::spawn(work(
            sender,
            config.name.clone(),
            config.retries,
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
        find(&self.config.kind).is_some_and(|k| k.takes_groups())
    }

    /// Whether an alert of a rule with this `notify` list goes here.
    pub fn wanted_by(&self, notify: &[String]) -> bool {
        notify.is_empty() || notify.iter().any(|n| n == &self.config.name)
    }
}

async fn work(
    sender: Box<dyn Deliver>,
    name: String,
    retries: u32,
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
            match sender.send(&message).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn problems(text: &str) -> String {
        match peakguard_config::parse_with(text, "t", &crate::extensions()) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    // Moved from peakguard-config with the keys they check: a notifier's keys are its kind's.
    #[test]
    fn each_kind_checks_its_own_keys() {
        let clear_smtp = "[[notifier]]\nname = \"m\"\nkind = \"email\"\nsmtp = \"mail.example.com:25\"\nsecurity = \"none\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n";
        assert!(problems(clear_smtp).contains("only a server on loopback"));
        let loop_smtp = clear_smtp.replace("mail.example.com", "127.0.0.1");
        assert_eq!(problems(&loop_smtp), "");
        let no_to = "[[notifier]]\nname = \"m\"\nkind = \"email\"\nsmtp = \"mail.example.com:587\"\nfrom = \"a@b.c\"\n";
        assert!(problems(no_to).contains("notifier[0].to"));
        let hook_with_smtp = "[[notifier]]\nname = \"h\"\nkind = \"slack\"\nurl = \"https://hooks.example.com/x\"\nsmtp = \"a:1\"\n";
        assert!(problems(hook_with_smtp).contains("belongs to kind = \"email\""));
    }

    #[test]
    fn every_kind_is_registered_once() {
        let mut kinds: Vec<&str> = NOTIFIERS.iter().map(|n| n.kind()).collect();
        kinds.sort_unstable();
        let n = kinds.len();
        kinds.dedup();
        assert_eq!(n, kinds.len(), "two notifiers share a kind");
        let text = "[[notifier]]\nname = \"m\"\nkind = \"email\"\nsmtp = \"127.0.0.1:25\"\nsecurity = \"none\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\npassword = \"hunter2\"\nusername = \"u\"\n";
        let config = peakguard_config::parse_with(text, "t", &crate::extensions()).expect("valid");
        let shown = format!("{:?}", config.notifiers);
        assert!(!shown.contains("hunter2"), "{shown}");
        let e = problems("[[notifier]]\nname = \"x\"\nkind = \"pager\"\n");
        assert!(
            e.contains("unknown kind \"pager\"") && e.contains("slack"),
            "{e}"
        );
    }

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
