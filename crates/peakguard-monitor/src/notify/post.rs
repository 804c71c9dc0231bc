//! What the HTTP notifiers share: their keys (`url`, `bearer_token`), the URL's check, and
//! one JSON POST with its timeout and its error in a sentence.

use super::SendError;
use crate::own_keys::Problems;
use peakguard_config::{NotifierConfig, Secret};
use serde::Deserialize;

/// The keys of a notifier that posts JSON to a URL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpTarget {
    /// The URL posted to (alertmanager: its base URL, `http://127.0.0.1:9093`).
    pub(crate) url: Option<String>,
    /// `Authorization: Bearer …`.
    #[serde(default)]
    bearer_token: Secret,
}

impl HttpTarget {
    /// `url` must be an http:// or https:// URL.
    pub(crate) fn check(&self, kind: &str) -> Problems {
        let problem = match self.url.as_deref().map(url::Url::parse) {
            None => format!("a {kind} notifier needs `url = \"https://...\"`"),
            Some(Err(e)) => format!("not a URL ({e})"),
            Some(Ok(u)) if !matches!(u.scheme(), "http" | "https") => {
                "the URL must be http:// or https://".into()
            }
            Some(Ok(_)) => return Vec::new(),
        };
        vec![("url".into(), problem)]
    }
}

/// Posts JSON to one URL.
pub(crate) struct Post {
    client: reqwest::Client,
    url: String,
    bearer: Option<String>,
}

impl Post {
    /// Posts to `url` (the target's, or one built from it) within the notifier's timeout.
    pub(crate) fn new(
        config: &NotifierConfig,
        target: &HttpTarget,
        url: String,
    ) -> Result<Post, SendError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout.0)
            .user_agent(concat!("peakguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Failed(format!("an HTTP client: {e}")))?;
        Ok(Post {
            client,
            url,
            bearer: (!target.bearer_token.is_empty())
                .then(|| target.bearer_token.expose().to_string()),
        })
    }

    pub(crate) async fn json(&self, body: &serde_json::Value) -> Result<(), SendError> {
        let url = &self.url;
        let mut request = self.client.post(url).json(body);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SendError::Failed(format!("POST {url}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
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
