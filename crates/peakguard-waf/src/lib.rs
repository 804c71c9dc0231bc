//! The WAF engine (issue P8): the OWASP Core Rule Set as Debian ships it
//! (`modsecurity-crs`), evaluated by Debian's libmodsecurity 3.
//!
//! Owns: the only `unsafe` code of peakguard — the FFI to libmodsecurity (ffi.rs, through the
//! declarations of `modsecurity-sys`) — the SecLang built from a site's settings and
//! exceptions (rules.rs), and what an inspection found (report.rs). Must not touch: the async
//! runtime (an inspection is CPU-bound and synchronous: callers run it on a bounded pool of
//! their own), the network, the request path's types. Why not the `modsecurity` crate: its
//! 0.1 releases (the last to build against Debian 12's libmodsecurity 3.0.9; 1.0 wants
//! ≥ 3.0.13) pass an error out-pointer into a string's buffer in `Rules::add_file` and
//! unwrap non-UTF-8 log messages inside the C callback; its `-sys` crate's declarations are
//! right, so we use those with our own safe wrapper.

mod ffi;
pub mod report;
pub mod rules;

pub use report::Matched;
pub use rules::{Exception, Settings};

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

/// What the rules said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspection {
    /// The CRS decided to block (its inbound score reached the threshold, or a rule denies
    /// on its own), with the status it asked for.
    pub block: Option<u16>,
    /// The inbound anomaly score.
    pub score: u32,
    /// The rules that matched (the score's evaluation rules left out).
    pub matched: Vec<Matched>,
}

#[derive(Debug, thiserror::Error)]
pub enum WafError {
    #[error("{0}")]
    Engine(#[from] ffi::FfiError),
    #[error("the Core Rule Set in {dir}: {message} (install Debian's modsecurity-crs)")]
    Crs { dir: String, message: String },
}

/// A site's compiled rules and the engine that evaluates them. Shared between the threads
/// that inspect (read-only once built).
pub struct Waf {
    // Field order: the rules set goes before the engine.
    rules: ffi::RuleSet,
    engine: ffi::Engine,
    settings: Settings,
}

impl Waf {
    /// Compiles the CRS with the settings (about a second: do it off the request path).
    /// One build at a time in the process: libmodsecurity's SecLang parser keeps global
    /// state (two threads compiling at once fail with syntax errors that are not there).
    pub fn build(settings: Settings) -> Result<Waf, WafError> {
        static PARSER: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
        let _one_at_a_time = PARSER.lock();
        let engine = ffi::Engine::new()?;
        let mut rules = ffi::RuleSet::new();
        rules.add(&rules::before_crs(&settings))?;
        let files = rules::crs_files(&settings).map_err(|e| WafError::Crs {
            dir: settings.crs_dir.display().to_string(),
            message: e.to_string(),
        })?;
        if files.is_empty() {
            return Err(WafError::Crs {
                dir: settings.crs_dir.display().to_string(),
                message: "no REQUEST-*.conf rules".into(),
            });
        }
        for file in &files {
            rules.add_file(file)?;
        }
        let after = rules::after_crs(&settings);
        if !after.is_empty() {
            rules.add(&after)?;
        }
        Ok(Waf {
            rules,
            engine,
            settings,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `libmodsecurity v3.0.9 (Linux)`.
    pub fn version(&self) -> String {
        self.engine.version()
    }

    /// Evaluates the request rules (phases 1 and 2) against one request.
    pub fn inspect(&self, request: &Request<'_>) -> Result<Inspection, WafError> {
        let mut txn = ffi::Txn::new(&self.engine, &self.rules)?;
        let client = request.client.to_string();
        txn.connection(&client, request.client_port, "127.0.0.1", 80)?;
        txn.uri(request.uri, request.method, request.version)?;
        for (name, value) in &request.headers {
            txn.header(name, value);
        }
        txn.headers_done();
        let mut block = txn.intervention().map(|i| i.status);
        if block.is_none() {
            let body = &request.body[..request.body.len().min(self.settings.body_limit)];
            if !body.is_empty() {
                txn.body(body);
            }
            txn.body_done();
            block = txn.intervention().map(|i| i.status);
        }
        let mut score = None;
        let mut matched = Vec::new();
        for line in txn.messages() {
            if let Some(total) = report::total_score(line) {
                score = Some(total);
            }
            if let Some(m) = report::parse(line)
                && !report::EVALUATION_RULES.contains(&m.id)
                && !matched
                    .iter()
                    .any(|x: &Matched| x.id == m.id && x.target == m.target)
            {
                matched.push(m);
            }
        }
        let score = score.unwrap_or_else(|| matched.iter().map(|m| m.points).sum());
        Ok(Inspection {
            block,
            score,
            matched,
        })
    }
}
