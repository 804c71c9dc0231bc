//! E-mail over SMTP (lettre): STARTTLS that must succeed, TLS from the first byte, or plain
//! to a server on loopback; authentication when a username is given.

use super::SendError;
use crate::alerts::GroupNotice;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use peakguard_config::{NotifierConfig, SmtpSecurity};

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
    pub fn new(config: &NotifierConfig) -> Result<Mailer, SendError> {
        let server = config.smtp.clone().unwrap_or_default();
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
                .dangerous_accept_invalid_certs(!config.tls_verify)
                .build_rustls()
                .map_err(|e| SendError::Failed(format!("TLS for {host}: {e}")))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(config.timeout.0));
        builder = match config.security {
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::None => builder.tls(Tls::None),
        };
        if let Some(user) = &config.username {
            let password = match &config.password_file {
                Some(path) => peakguard_config::private_fs::read_private(path)
                    .map_err(|e| SendError::Failed(format!("password_file: {e}")))?
                    .unwrap_or_default()
                    .trim_end()
                    .to_string(),
                None => config.password.expose().to_string(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: mailbox(config.from.as_deref().unwrap_or_default(), "from")?,
            to: config
                .to
                .iter()
                .map(|t| mailbox(t, "to"))
                .collect::<Result<_, _>>()?,
            server,
        })
    }

    pub async fn send(&self, notice: &GroupNotice) -> Result<(), SendError> {
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
