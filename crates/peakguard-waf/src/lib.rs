//! The WAF engine (issues P8, P10): the OWASP Core Rule Set — CRS 4 from the CRS project,
//! installed by `peakguard waf crs install`, or Debian's `modsecurity-crs` (3.3) — with
//! CRS 4 plugins, evaluated by Debian's libmodsecurity 3.
//!
//! Owns: the only `unsafe` code of the WAF — the FFI to libmodsecurity (ffi.rs, through the
//! declarations of `modsecurity-sys`) —, finding a rule set and its release (crs.rs), CRS 4
//! plugins (plugin.rs), the SecLang built from a site's settings and exceptions (rules.rs),
//! what an inspection found (report.rs), and installing releases side by side
//! (install.rs). Must not touch: the async runtime (an inspection is CPU-bound and
//! synchronous: callers run it on a bounded pool of their own), the network, the request
//! path's types. Why not the `modsecurity` crate: its 0.1 releases (the last to build
//! against Debian 12's libmodsecurity 3.0.9; 1.0 wants ≥ 3.0.13) pass an error out-pointer
//! into a string's buffer in `Rules::add_file` and unwrap non-UTF-8 log messages inside the
//! C callback; its `-sys` crate's declarations are right, so we use those with our own safe
//! wrapper.

pub mod crs;
mod ffi;
pub mod install;
pub mod plugin;
pub mod report;
pub mod rules;

pub use crs::{CrsVersion, Found, RuleSet};
pub use plugin::Plugin;
pub use report::Matched;
pub use rules::{Exception, Excluded, Settings};

/// A request as the WAF sees it (header bytes as received; the body at most
/// `Settings::body_limit`).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub client: std::net::IpAddr,
    pub client_port: u16,
    pub method: &'a str,
    /// Path and query as sent (still percent-encoded).
    pub uri: &'a str,
    /// `1.1`, `2`.
    pub version: &'a str,
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    pub body: &'a [u8],
}

/// An origin's response as the WAF sees it (the body at most `Settings::body_limit`).
#[derive(Debug, Clone)]
pub struct Response<'a> {
    pub status: u16,
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    pub body: &'a [u8],
}

/// What the rules said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspection {
    /// The CRS decided to block (its anomaly score reached the threshold, or a rule denies
    /// on its own), with the status it asked for.
    pub block: Option<u16>,
    /// The anomaly score (inbound for a request, outbound for a response).
    pub score: u32,
    /// The rules that matched (the score's evaluation rules left out).
    pub matched: Vec<Matched>,
}

#[derive(Debug, thiserror::Error)]
pub enum WafError {
    #[error("{0}")]
    Engine(#[from] ffi::FfiError),
    #[error("{0}")]
    Crs(#[from] crs::CrsError),
    #[error("{0}")]
    Plugin(#[from] plugin::PluginError),
    #[error("the Core Rule Set in {dir}: {message}")]
    Files { dir: String, message: String },
    #[error(
        "crs_setup.{name}: CRS {version} has no setting tx.{name} (see its crs-setup.conf.example)"
    )]
    UnknownSetting { name: String, version: CrsVersion },
}

/// A site's compiled rules and the engine that evaluates them. Shared between the threads
/// that inspect (read-only once built).
pub struct Waf {
    // Field order: the rules sets go before the engine.
    request_rules: ffi::RuleSet,
    response_rules: Option<ffi::RuleSet>,
    engine: ffi::Engine,
    settings: Settings,
}

fn compile(settings: &Settings, responses: bool) -> Result<ffi::RuleSet, WafError> {
    let pieces = rules::pieces(settings, responses).map_err(|e| WafError::Files {
        dir: settings.crs.dir.display().to_string(),
        message: e.to_string(),
    })?;
    if !pieces.iter().any(|p| matches!(p, rules::Piece::File(_))) {
        return Err(WafError::Files {
            dir: settings.crs.dir.display().to_string(),
            message: "no REQUEST-*.conf rules".into(),
        });
    }
    let mut set = ffi::RuleSet::new();
    for piece in &pieces {
        match piece {
            rules::Piece::Text(text) => set.add(text)?,
            rules::Piece::File(path) => set.add_file(path)?,
        }
    }
    Ok(set)
}

impl Waf {
    /// Compiles the CRS with the settings (a second or two: do it off the request path).
    /// One build at a time in the process: libmodsecurity's SecLang parser keeps global
    /// state (two threads compiling at once fail with syntax errors that are not there).
    pub fn build(settings: Settings) -> Result<Waf, WafError> {
        for (name, _) in &settings.setup {
            if !settings.crs.knows_setting(name) {
                return Err(WafError::UnknownSetting {
                    name: name.clone(),
                    version: settings.crs.version,
                });
            }
        }
        static PARSER: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
        let _one_at_a_time = PARSER.lock();
        let engine = ffi::Engine::new()?;
        let request_rules = compile(&settings, false)?;
        let response_rules = if settings.responses {
            Some(compile(&settings, true)?)
        } else {
            None
        };
        Ok(Waf {
            request_rules,
            response_rules,
            engine,
            settings,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `ModSecurity v3.0.9 (Linux)`.
    pub fn version(&self) -> String {
        self.engine.version()
    }

    fn begin<'w>(
        &'w self,
        rules: &'w ffi::RuleSet,
        request: &Request<'_>,
    ) -> Result<ffi::Txn<'w>, WafError> {
        let mut txn = ffi::Txn::new(&self.engine, rules)?;
        let client = request.client.to_string();
        txn.connection(&client, request.client_port, "127.0.0.1", 80)?;
        txn.uri(request.uri, request.method, request.version)?;
        for (name, value) in &request.headers {
            txn.header(name, value);
        }
        txn.headers_done();
        Ok(txn)
    }

    /// Evaluates the request rules (phases 1 and 2) against one request.
    pub fn inspect(&self, request: &Request<'_>) -> Result<Inspection, WafError> {
        let mut txn = self.begin(&self.request_rules, request)?;
        let mut block = txn.intervention().map(|i| i.status);
        if block.is_none() {
            let body = &request.body[..request.body.len().min(self.settings.body_limit)];
            if !body.is_empty() {
                txn.body(body);
            }
            txn.body_done();
            block = txn.intervention().map(|i| i.status);
        }
        Ok(report::inspection(block, txn.messages()))
    }

    /// Evaluates the response rules (phases 3 and 4) against an origin's response to
    /// `request`; `None` when the rules were built without them (`Settings::responses`).
    pub fn inspect_response(
        &self,
        request: &Request<'_>,
        response: &Response<'_>,
    ) -> Result<Option<Inspection>, WafError> {
        let Some(rules) = &self.response_rules else {
            return Ok(None);
        };
        let mut txn = self.begin(rules, request)?;
        txn.body_done();
        for (name, value) in &response.headers {
            txn.response_header(name, value);
        }
        txn.response_headers_done(response.status, "HTTP/1.1")?;
        let mut block = txn.intervention().map(|i| i.status);
        if block.is_none() {
            let body = &response.body[..response.body.len().min(self.settings.body_limit)];
            if !body.is_empty() {
                txn.response_body(body);
            }
            txn.response_body_done();
            block = txn.intervention().map(|i| i.status);
        }
        Ok(Some(report::inspection(block, txn.messages())))
    }
}
