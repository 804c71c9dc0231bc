//! The only place that calls libmodsecurity: a safe wrapper over its C API (declared by
//! `modsecurity-sys`, checked against Debian's 3.0.9 headers). Everything here is
//! synchronous and CPU-bound; callers run it off the async runtime.
//!
//! Ownership: `Engine` owns the `ModSecurity` object and `RuleSet` a compiled rules set;
//! both are read-only once built and libmodsecurity lets many threads create transactions
//! from them at once (its server connectors do). A `Txn` is one request on one thread; it
//! is cleaned up when dropped. Strings the library hands back (an intervention's log and
//! URL) are `malloc`ed copies we free.

use modsecurity_sys as sys;
use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr;

#[derive(Debug, thiserror::Error)]
pub enum FfiError {
    #[error("libmodsecurity could not be initialised")]
    Init,
    #[error("{0} holds a NUL byte")]
    Nul(&'static str),
    #[error("the rules did not load: {0}")]
    Rules(String),
    #[error("libmodsecurity refused the transaction")]
    Transaction,
}

/// The library instance (`msc_init`), with its log callback set: rule matches are handed to
/// the transaction that made them.
pub struct Engine {
    inner: *mut sys::ModSecurity,
}

// SAFETY: the ModSecurity object is configured once (connector info, log callback) before it
// is shared and only read afterwards; libmodsecurity's connectors share it between threads.
unsafe impl Send for Engine {}
unsafe impl Sync for Engine {}

/// Collects a transaction's log messages (the callback's `logCbData`).
type Sink = Vec<String>;

unsafe extern "C" fn log_callback(data: *mut c_void, message: *const c_void) {
    if data.is_null() || message.is_null() {
        return;
    }
    // SAFETY: `data` is the `Sink` the transaction was created with, alive and used by this
    // thread only for the transaction's lifetime; `message` is a NUL-terminated string
    // (text log property) valid for the call.
    let sink = unsafe { &mut *(data as *mut Sink) };
    let text = unsafe { CStr::from_ptr(message as *const c_char) };
    if sink.len() < 256 {
        sink.push(text.to_string_lossy().into_owned());
    }
}

impl Engine {
    pub fn new() -> Result<Engine, FfiError> {
        // SAFETY: plain constructor; null on failure.
        let inner = unsafe { sys::msc_init() };
        if inner.is_null() {
            return Err(FfiError::Init);
        }
        let connector = CString::new(concat!("peakguard/", env!("CARGO_PKG_VERSION")))
            .map_err(|_| FfiError::Nul("connector"))?;
        // SAFETY: `inner` is valid; the library copies the string.
        unsafe {
            sys::msc_set_connector_info(inner, connector.as_ptr());
            sys::msc_set_log_cb(inner, Some(log_callback));
        }
        Ok(Engine { inner })
    }

    /// `libmodsecurity v3.0.9 (Linux)`.
    pub fn version(&self) -> String {
        // SAFETY: a static string owned by the library.
        unsafe {
            let s = sys::msc_who_am_i(self.inner);
            if s.is_null() {
                return String::new();
            }
            CStr::from_ptr(s).to_string_lossy().into_owned()
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: no transaction outlives the engine (they borrow it).
        unsafe { sys::msc_cleanup(self.inner) };
    }
}

/// A compiled rules set.
pub struct RuleSet {
    inner: *mut sys::RulesSet,
}

// SAFETY: built on one thread, then only read by transactions (as the connectors do).
unsafe impl Send for RuleSet {}
unsafe impl Sync for RuleSet {}

fn take_error(error: *const c_char) -> String {
    if error.is_null() {
        return "no detail".into();
    }
    // SAFETY: a malloc'ed NUL-terminated string the library handed over; freed here.
    unsafe {
        let text = CStr::from_ptr(error).to_string_lossy().into_owned();
        libc::free(error as *mut c_void);
        text
    }
}

impl RuleSet {
    pub fn new() -> RuleSet {
        // SAFETY: plain constructor.
        RuleSet {
            inner: unsafe { sys::msc_create_rules_set() },
        }
    }

    /// Adds SecLang text (directives and rules); `Include` paths are read as written.
    pub fn add(&mut self, text: &str) -> Result<(), FfiError> {
        let c = CString::new(text).map_err(|_| FfiError::Nul("rules"))?;
        let mut error: *const c_char = ptr::null();
        // SAFETY: valid rules set, NUL-terminated text, `error` a local out-pointer.
        let r = unsafe { sys::msc_rules_add(self.inner, c.as_ptr(), &mut error) };
        if r < 0 {
            return Err(FfiError::Rules(take_error(error)));
        }
        Ok(())
    }

    /// Adds a rules file.
    pub fn add_file(&mut self, path: &std::path::Path) -> Result<(), FfiError> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| FfiError::Nul("a rules file path"))?;
        let mut error: *const c_char = ptr::null();
        // SAFETY: as `add`.
        let r = unsafe { sys::msc_rules_add_file(self.inner, c.as_ptr(), &mut error) };
        if r < 0 {
            return Err(FfiError::Rules(format!(
                "{}: {}",
                path.display(),
                take_error(error)
            )));
        }
        Ok(())
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet::new()
    }
}

impl Drop for RuleSet {
    fn drop(&mut self) {
        // SAFETY: no transaction outlives the rules set (they borrow it).
        unsafe { sys::msc_rules_cleanup(self.inner) };
    }
}

/// What libmodsecurity decided so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intervention {
    pub status: u16,
    pub log: Option<String>,
}

/// One request's transaction. Borrowing the engine and the rules set keeps them alive.
pub struct Txn<'a> {
    inner: *mut sys::Transaction,
    // Boxed so its address stays put while the library holds it.
    sink: Box<Sink>,
    _engine: &'a Engine,
    _rules: &'a RuleSet,
}

fn cstring(s: &str, what: &'static str) -> Result<CString, FfiError> {
    CString::new(s).map_err(|_| FfiError::Nul(what))
}

impl<'a> Txn<'a> {
    pub fn new(engine: &'a Engine, rules: &'a RuleSet) -> Result<Txn<'a>, FfiError> {
        let mut sink: Box<Sink> = Box::default();
        let data = &mut *sink as *mut Sink as *mut c_void;
        // SAFETY: engine and rules are valid for 'a; `data` stays valid while `sink` lives,
        // which is as long as the transaction (cleaned up first in Drop).
        let inner = unsafe { sys::msc_new_transaction(engine.inner, rules.inner, data) };
        if inner.is_null() {
            return Err(FfiError::Transaction);
        }
        Ok(Txn {
            inner,
            sink,
            _engine: engine,
            _rules: rules,
        })
    }

    pub fn connection(
        &mut self,
        client: &str,
        client_port: u16,
        server: &str,
        server_port: u16,
    ) -> Result<(), FfiError> {
        let c = cstring(client, "client address")?;
        let s = cstring(server, "server address")?;
        // SAFETY: valid transaction, NUL-terminated strings copied by the library.
        unsafe {
            sys::msc_process_connection(
                self.inner,
                c.as_ptr(),
                i32::from(client_port),
                s.as_ptr(),
                i32::from(server_port),
            )
        };
        Ok(())
    }

    /// The request line: `uri` as sent (path and query), the method, `1.1`.
    pub fn uri(&mut self, uri: &str, method: &str, version: &str) -> Result<(), FfiError> {
        let u = cstring(uri, "URI")?;
        let m = cstring(method, "method")?;
        let v = cstring(version, "HTTP version")?;
        // SAFETY: as above.
        unsafe { sys::msc_process_uri(self.inner, u.as_ptr(), m.as_ptr(), v.as_ptr()) };
        Ok(())
    }

    pub fn header(&mut self, name: &[u8], value: &[u8]) {
        // SAFETY: pointer + length pairs valid for the call; the library copies them.
        unsafe {
            sys::msc_add_n_request_header(
                self.inner,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        };
    }

    /// Runs phase 1 (request headers).
    pub fn headers_done(&mut self) {
        // SAFETY: valid transaction.
        unsafe { sys::msc_process_request_headers(self.inner) };
    }

    pub fn body(&mut self, chunk: &[u8]) {
        // SAFETY: pointer + length valid for the call; copied.
        unsafe { sys::msc_append_request_body(self.inner, chunk.as_ptr(), chunk.len()) };
    }

    /// Runs phase 2 (request body).
    pub fn body_done(&mut self) {
        // SAFETY: valid transaction.
        unsafe { sys::msc_process_request_body(self.inner) };
    }

    pub fn response_header(&mut self, name: &[u8], value: &[u8]) {
        // SAFETY: pointer + length pairs valid for the call; the library copies them.
        unsafe {
            sys::msc_add_n_response_header(
                self.inner,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        };
    }

    /// Runs phase 3 (response headers): the status and the protocol (`HTTP/1.1`).
    pub fn response_headers_done(&mut self, status: u16, protocol: &str) -> Result<(), FfiError> {
        let p = cstring(protocol, "protocol")?;
        // SAFETY: valid transaction, NUL-terminated string copied by the library.
        unsafe { sys::msc_process_response_headers(self.inner, i32::from(status), p.as_ptr()) };
        Ok(())
    }

    pub fn response_body(&mut self, chunk: &[u8]) {
        // SAFETY: pointer + length valid for the call; copied.
        unsafe { sys::msc_append_response_body(self.inner, chunk.as_ptr(), chunk.len()) };
    }

    /// Runs phase 4 (response body).
    pub fn response_body_done(&mut self) {
        // SAFETY: valid transaction.
        unsafe { sys::msc_process_response_body(self.inner) };
    }

    /// A disruptive action decided so far (status ≥ 400 to answer), if any.
    pub fn intervention(&mut self) -> Option<Intervention> {
        let mut it = sys::ModSecurityIntervention {
            status: 200,
            pause: 0,
            url: ptr::null_mut(),
            log: ptr::null_mut(),
            disruptive: 0,
        };
        // SAFETY: `it` is a valid struct the library fills; the strings it may set are
        // malloc'ed copies we free below.
        let disruptive = unsafe { sys::msc_intervention(self.inner, &mut it) };
        let log = (!it.log.is_null()).then(|| take_error(it.log));
        if !it.url.is_null() {
            // SAFETY: malloc'ed by the library (a redirect URL we do not use).
            unsafe { libc::free(it.url as *mut c_void) };
        }
        (disruptive != 0).then(|| Intervention {
            status: u16::try_from(it.status).unwrap_or(403),
            log,
        })
    }

    /// The log messages of the rules that matched so far.
    pub fn messages(&self) -> &[String] {
        &self.sink
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        // SAFETY: created by msc_new_transaction, cleaned up once; the sink is freed after.
        unsafe { sys::msc_transaction_cleanup(self.inner) };
    }
}
