//! A client of the edge's admin API, for `purge`, `maintenance` and `status`.

use crate::cli::AdminArgs;
use anyhow::{Context, Result, bail};
use peakguard_config::Config;

pub struct AdminClient {
    base: String,
    token: String,
    /// A call that takes longer fails (an edge that accepts but never answers must not hang
    /// the CLI, or a rollback waiting to switch maintenance on).
    timeout: std::time::Duration,
}

/// How long one admin API call may take.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl AdminClient {
    pub fn from_args(args: &AdminArgs, config: Option<&Config>) -> Result<Self> {
        let admin = config.map_or_else(|| peakguard_config::defaults().admin, |c| c.admin.clone());
        let addr = args.admin.clone().unwrap_or(admin.listen.clone());
        let token = match &args.token {
            Some(t) => t.clone(),
            None if !admin.token.is_empty() => admin.token.expose().to_string(),
            None => peakguard_config::private_fs::read_private(&admin.token_file)
                .with_context(|| format!("the admin token file {}", admin.token_file.display()))?
                .map(|t| t.trim().to_string())
                .with_context(|| {
                    format!(
                        "no admin token: pass --token, set PEAKGUARD_TOKEN, or start the edge once to create {}",
                        admin.token_file.display()
                    )
                })?,
        };
        let base = if addr.starts_with("http") {
            addr
        } else {
            format!("http://{addr}")
        };
        Ok(AdminClient {
            base,
            token,
            timeout: CALL_TIMEOUT,
        })
    }

    fn call(&self, method: &str, path: &str) -> Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let resp = ureq::request(method, &url)
            .timeout(self.timeout)
            .set("Authorization", &format!("Bearer {}", self.token))
            .call();
        match resp {
            Ok(r) => Ok(r.into_json()?),
            Err(ureq::Error::Status(code, r)) => {
                let body: serde_json::Value = r.into_json().unwrap_or_default();
                bail!(
                    "admin API answered {code} for {method} {path}: {}",
                    body["error"].as_str().unwrap_or("no detail")
                )
            }
            Err(e) => bail!(
                "cannot reach the admin API at {}: {e} (is `peakguard serve` running? see --admin)",
                self.base
            ),
        }
    }

    pub fn get(&self, path: &str) -> Result<serde_json::Value> {
        self.call("GET", path)
    }

    pub fn post(&self, path: &str) -> Result<serde_json::Value> {
        self.call("POST", path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_that_never_answers_fails_the_call_in_time() {
        // Accepts (the kernel's backlog) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = AdminClient {
            base: format!("http://{}", silent.local_addr().expect("addr")),
            token: "t".into(),
            timeout: std::time::Duration::from_millis(300),
        };
        let started = std::time::Instant::now();
        let err = client.get("/status").expect_err("timed out");
        assert!(
            err.to_string().contains("cannot reach the admin API"),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
