//! A secret from the configuration (a token, a password): read like a string where it is
//! used, never shown — its `Debug` prints `***`, and it has no `Display`, so a log line or an
//! error cannot print it by accident.

use serde::Deserialize;

#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that uses it (a header, a backend, a child's password).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
        let parsed: crate::Config = crate::parse(
            "[admin]\ntoken = \"tok-123\"\n[[site]]\norigin = \"http://127.0.0.1:1\"\n[site.backup]\nroot = \"/srv/wp\"\npassword = \"repo-pass\"\n[site.backup.database]\npassword = \"db-pass\"\n",
            "t",
        )
        .expect("valid");
        let shown = format!("{parsed:?}");
        for secret in ["tok-123", "repo-pass", "db-pass"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
