//! A table of the configuration that a crate above this one owns (a guard's
//! `[site.shield.NAME]`, a probe kind's own keys), read as that crate's struct, with the key a
//! wrong value sits at — so its error can give the line, as the rest of the file's do.

use serde::de::DeserializeOwned;

/// `value` read as `T`; on failure, (the key inside `value`, empty for the table itself;
/// what serde found wrong).
pub fn from_value<T: DeserializeOwned>(value: toml::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = match e.path().to_string() {
            root if root == "." => String::new(),
            key => key,
        };
        (key, e.inner().message().trim().to_string())
    })
}
