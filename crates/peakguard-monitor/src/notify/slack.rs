//! `kind = "slack"`: a Slack-compatible incoming webhook (`{"text": ...}`; Mattermost,
//! Rocket.Chat take it too).

use super::post::{HttpTarget, Post};
use super::{Deliver, Message, Notify, Registered, SendError, SendFuture, payload};
use crate::own_keys::Problems;
use peakguard_config::NotifierConfig;

pub(crate) struct Slack;
pub(crate) static NOTIFIER: Registered<Slack> = Registered::NEW;

impl Notify for Slack {
    type Settings = HttpTarget;
    const KIND: &'static str = "slack";

    fn check(s: &HttpTarget) -> Problems {
        s.check(Self::KIND)
    }

    fn sender(
        config: &NotifierConfig,
        s: HttpTarget,
        _external_url: &str,
    ) -> Result<Box<dyn Deliver>, SendError> {
        Ok(Box::new(Sender(Post::new(
            config,
            &s,
            s.url.clone().unwrap_or_default(),
        )?)))
    }
}

struct Sender(Post);

impl Deliver for Sender {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            match message {
                Message::Group(n) => self.0.json(&payload::slack(n)).await,
                Message::Push(_) => Ok(()),
            }
        })
    }
}
