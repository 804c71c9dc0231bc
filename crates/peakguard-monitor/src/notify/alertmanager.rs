//! `kind = "alertmanager"`: the alerts pushed to an Alertmanager's v2 API (`url` = its base
//! URL), which groups and routes them as it is told.

use super::post::{HttpTarget, Post};
use super::{Deliver, Message, Notify, Registered, SendError, SendFuture, payload};
use crate::own_keys::Problems;
use peakguard_config::NotifierConfig;
use std::time::SystemTime;

pub(crate) struct Alertmanager;
pub(crate) static NOTIFIER: Registered<Alertmanager> = Registered::NEW;

impl Notify for Alertmanager {
    type Settings = HttpTarget;
    const KIND: &'static str = "alertmanager";
    const TAKES_GROUPS: bool = false;

    fn check(s: &HttpTarget) -> Problems {
        s.check(Self::KIND)
    }

    fn sender(
        config: &NotifierConfig,
        s: HttpTarget,
        external_url: &str,
    ) -> Result<Box<dyn Deliver>, SendError> {
        let base = s.url.clone().unwrap_or_default();
        let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
        Ok(Box::new(Sender {
            post: Post::new(config, &s, url)?,
            external_url: external_url.to_string(),
        }))
    }
}

struct Sender {
    post: Post,
    external_url: String,
}

impl Deliver for Sender {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            match message {
                Message::Push(alerts) => {
                    let body =
                        payload::alertmanager_v2(alerts, &self.external_url, SystemTime::now());
                    self.post.json(&body).await
                }
                Message::Group(_) => Ok(()),
            }
        })
    }
}
