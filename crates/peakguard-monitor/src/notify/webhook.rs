//! `kind = "webhook"`: a POST of the JSON body Alertmanager's own webhooks send (version 4),
//! so an existing receiver takes it as it is.

use super::post::{HttpTarget, Post};
use super::{Deliver, Message, Notify, Registered, SendError, SendFuture, payload};
use crate::own_keys::Problems;
use peakguard_config::NotifierConfig;

pub(crate) struct Webhook;
pub(crate) static NOTIFIER: Registered<Webhook> = Registered::NEW;

impl Notify for Webhook {
    type Settings = HttpTarget;
    const KIND: &'static str = "webhook";

    fn check(s: &HttpTarget) -> Problems {
        s.check(Self::KIND)
    }

    fn sender(
        config: &NotifierConfig,
        s: HttpTarget,
        external_url: &str,
    ) -> Result<Box<dyn Deliver>, SendError> {
        Ok(Box::new(Sender {
            post: Post::new(config, &s, s.url.clone().unwrap_or_default())?,
            receiver: config.name.clone(),
            external_url: external_url.to_string(),
        }))
    }
}

struct Sender {
    post: Post,
    receiver: String,
    external_url: String,
}

impl Deliver for Sender {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            match message {
                Message::Group(n) => {
                    let body = payload::webhook_v4(&self.receiver, n, &self.external_url);
                    self.post.json(&body).await
                }
                Message::Push(_) => Ok(()),
            }
        })
    }
}
