//! `kind = "email"`: e-mail over SMTP (lettre): STARTTLS that must succeed, TLS from the
//! first byte, or plain to a server on loopback; authentication when a username is given.

use super::{Deliver, Notify, Registered, SendError, SendFuture};
use crate::alerts::GroupNotice;
use crate::own_keys::Problems;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use peakguard_config::{NotifierConfig, Secret};
use serde::Deserialize;
use std::path::PathBuf;

pub(crate) struct Email;
pub(crate) static NOTIFIER: Registered<Email> = Registered::NEW;

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only accepted for a server on loopback.
    None,
}

/// An `email` notifier's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailSettings {
    /// `host:port` of the SMTP server.
    smtp: Option<String>,
    #[serde(default)]
    security: SmtpSecurity,
    /// Verify the SMTP server's certificate (off only for a test server).
    #[serde(default = "yes")]
    tls_verify: bool,
    username: Option<String>,
    #[serde(default)]
    password: Secret,
    /// A file holding the password (preferred over `password`).
    password_file: Option<PathBuf>,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Notify for Email {
    type Settings = EmailSettings;
    const KIND: &'static str = "email";

    fn check(n: &EmailSettings) -> Problems {
        let mut problems: Problems = Vec::new();
        let mut p = |k: &str, m: String| problems.push((k.to_string(), m));
        match n.smtp.as_deref() {
            None => p(
                "smtp",
                "an email notifier needs `smtp = \"mail.example.com:587\"`".into(),
            ),
            Some(a)
                if a.rsplit_once(':')
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .is_none() =>
            {
                p("smtp", format!("{a:?} is not host:port"))
            }
            Some(a) => {
                let host = a.rsplit_once(':').map_or(a, |(h, _)| h);
                let loopback = host == "localhost"
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if n.security == SmtpSecurity::None && !loopback {
                    p(
                        "security",
                        format!(
                            "security = \"none\" would send the password and the alerts in clear to {host}: only a server on loopback may be plain; use \"starttls\" (port 587) or \"tls\" (465)"
                        ),
                    );
                }
            }
        }
        if n.from.as_deref().is_none_or(|f| !f.contains('@')) {
            p(
                "from",
                "an email notifier needs `from = \"peakguard@example.com\"`".into(),
            );
        }
        if n.to.is_empty() || n.to.iter().any(|t| !t.contains('@')) {
            p(
                "to",
                "an email notifier needs `to = [\"ops@example.com\"]`".into(),
            );
        }
        problems
    }

    fn sender(
        config: &NotifierConfig,
        settings: EmailSettings,
        _external_url: &str,
    ) -> Result<Box<dyn Deliver>, SendError> {
        Ok(Box::new(Mailer::new(config, &settings)?))
    }
}

impl Deliver for Mailer {
    fn send<'a>(&'a self, message: &'a super::Message) -> SendFuture<'a> {
        Box::pin(async move {
            match message {
                super::Message::Group(notice) => self.send_notice(notice).await,
                super::Message::Push(_) => Ok(()),
            }
        })
    }
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    server: String,
}

fn mailbox(text: &str, key: &str) -> Result<Mailbox, SendError> {
    text.parse()
        .map_err(|e| SendError::Failed(format!("{key} {text:?} is not an address: {e}")))
}

impl Mailer {
    pub(crate) fn new(config: &NotifierConfig, s: &EmailSettings) -> Result<Mailer, SendError> {
        let server = s.smtp.clone().unwrap_or_default();
        let (host, port) = server
            .rsplit_once(':')
            .and_then(|(h, p)| {
                p.parse::<u16>()
                    .ok()
                    .map(|p| (h.trim_matches(['[', ']']), p))
            })
            .ok_or_else(|| SendError::Failed(format!("smtp {server:?} is not host:port")))?;
        let tls = || {
            TlsParameters::builder(host.to_string())
                .dangerous_accept_invalid_certs(!s.tls_verify)
                .build_rustls()
                .map_err(|e| SendError::Failed(format!("TLS for {host}: {e}")))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(config.timeout.0));
        builder = match s.security {
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::None => builder.tls(Tls::None),
        };
        if let Some(user) = &s.username {
            let password = match &s.password_file {
                Some(path) => peakguard_config::private_fs::read_private(path)
                    .map_err(|e| SendError::Failed(format!("password_file: {e}")))?
                    .unwrap_or_default()
                    .trim_end()
                    .to_string(),
                None => s.password.expose().to_string(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: mailbox(s.from.as_deref().unwrap_or_default(), "from")?,
            to: s
                .to
                .iter()
                .map(|t| mailbox(t, "to"))
                .collect::<Result<_, _>>()?,
            server,
        })
    }

    async fn send_notice(&self, notice: &GroupNotice) -> Result<(), SendError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(super::payload::title(notice))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(super::payload::text(notice))
            .map_err(|e| SendError::Failed(format!("building the message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError::Failed(format!("SMTP {}: {e}", self.server)))
    }
}
