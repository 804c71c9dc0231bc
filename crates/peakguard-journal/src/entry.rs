//! One line of the journal and its hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest `detail` kept; a longer one is cut (the journal says what, not everything).
const MAX_DETAIL: usize = 1024;

/// What happened, as its author says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Who: an admin token's name, `"cli"`, or the part that acted by itself (`"monitor"`).
    pub who: String,
    /// What, in a word or two: `"POST /purge"`, `"maintenance on"`.
    pub what: String,
    /// The site it concerns, when one.
    pub site: Option<String>,
    /// The rest: the call's parameters, secrets redacted by the caller.
    pub detail: String,
    /// How it ended: `"200"`, `"ok"`, an error's first line.
    pub result: String,
}

/// One line: the event, its place in the chain and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// 1 for the first line, then one more each line.
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub who: String,
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(default)]
    pub detail: String,
    pub result: String,
    /// The previous line's `hash` ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 of this line without its `hash` (its JSON with `"hash":""`), in hex.
    pub hash: String,
}

impl Entry {
    /// The line for `event`, after the line whose hash is `prev`.
    pub fn new(event: Event, seq: u64, at: std::time::SystemTime, prev: &str) -> Entry {
        let mut detail = event.detail;
        if detail.len() > MAX_DETAIL {
            let mut cut = MAX_DETAIL;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push('…');
        }
        let mut entry = Entry {
            seq,
            at: humantime::format_rfc3339_millis(at).to_string(),
            who: event.who,
            what: event.what,
            site: event.site,
            detail,
            result: event.result,
            prev: prev.to_string(),
            hash: String::new(),
        };
        entry.hash = entry.computed_hash();
        entry
    }

    /// The hash this line's content gives.
    pub fn computed_hash(&self) -> String {
        let unhashed = Entry {
            hash: String::new(),
            ..self.clone()
        };
        let text = serde_json::to_string(&unhashed).unwrap_or_default();
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The line as written (no newline).
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
