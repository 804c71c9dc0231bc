//! A kind's own keys, kept as written for the crate that owns the kind.

use serde::Deserialize;

/// The keys of a `[[probe]]` or `[[notifier]]` that belong to its kind, as written: its kind
/// reads and checks them. Its `Debug` shows the keys only: a password or a token may be
/// among the values.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct OwnKeys(toml::Table);

impl OwnKeys {
    pub fn table(&self) -> &toml::Table {
        &self.0
    }
}

impl From<toml::Table> for OwnKeys {
    fn from(table: toml::Table) -> Self {
        OwnKeys(table)
    }
}

impl std::fmt::Debug for OwnKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What an unknown `kind = "..."` gets: the kinds there are.
pub(crate) fn unknown_kind<'k>(kind: &str, known: impl Iterator<Item = &'k str>) -> String {
    let mut known: Vec<&str> = known.collect();
    known.sort_unstable();
    format!("unknown kind {kind:?}; the kinds are: {}", known.join(", "))
}
