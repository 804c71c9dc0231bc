//! Silences: label matchers with an end time. A silenced alert still changes state and shows
//! in `peakguard alerts list`; nobody is notified of it. Kept in `[monitor] state_file`
//! (0600), so a restart forgets none.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// At most this many silences at once; past it a new one is refused (say what to end).
pub const MAX_SILENCES: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Silence {
    pub id: String,
    /// Every label here must have this value (`alertname`, `probe`, `severity`…).
    pub matchers: BTreeMap<String, String>,
    pub starts_at: u64,
    pub ends_at: u64,
    pub comment: String,
}

impl Silence {
    pub fn matches(&self, labels: &BTreeMap<String, String>, now: u64) -> bool {
        self.starts_at <= now
            && now < self.ends_at
            && self
                .matchers
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot keep the silences in {path}: {message}")]
    Store { path: String, message: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    silences: Vec<Silence>,
}

/// The silences in force, and the file that keeps them.
pub struct Silences {
    path: PathBuf,
    list: Vec<Silence>,
}

impl Silences {
    /// Reads the file (none yet: no silences; unreadable: said in the log, none).
    pub fn load(path: PathBuf) -> Silences {
        let list = match peakguard_config::private_fs::read_private(&path) {
            Ok(Some(text)) => match serde_json::from_str::<Saved>(&text) {
                Ok(saved) => saved.silences,
                Err(e) => {
                    log::warn!(
                        "{}: not a silence list ({e}); starting with none",
                        path.display()
                    );
                    Vec::new()
                }
            },
            Ok(None) => Vec::new(),
            Err(e) => {
                log::warn!("{}: {e}; starting with no silences", path.display());
                Vec::new()
            }
        };
        Silences { path, list }
    }

    pub fn in_force(&self) -> &[Silence] {
        &self.list
    }

    /// The silence that covers these labels now, if any.
    pub fn covering(&self, labels: &BTreeMap<String, String>, now: u64) -> Option<&Silence> {
        self.list.iter().find(|s| s.matches(labels, now))
    }

    /// Adds a silence and saves the list.
    pub fn add(
        &mut self,
        matchers: BTreeMap<String, String>,
        ends_at: u64,
        comment: String,
        now: u64,
    ) -> Result<Silence, SilenceError> {
        if matchers.is_empty() {
            return Err(SilenceError::Invalid(
                "a silence needs at least one matcher (alertname=NAME, probe=NAME…): one that matches everything would hide every alert".into(),
            ));
        }
        for name in matchers.keys() {
            if !peakguard_config::valid_label_name(name) {
                return Err(SilenceError::Invalid(format!(
                    "{name:?} is not a label name"
                )));
            }
        }
        if ends_at <= now {
            return Err(SilenceError::Invalid(
                "the silence would end before it starts: give a duration (2h) or a later time"
                    .into(),
            ));
        }
        self.expire(now);
        if self.list.len() >= MAX_SILENCES {
            return Err(SilenceError::Invalid(format!(
                "{MAX_SILENCES} silences are in force already; end some first"
            )));
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let silence = Silence {
            id: format!(
                "{:x}",
                (nanos as u64) ^ (self.list.len() as u64).rotate_left(48)
            ),
            matchers,
            starts_at: now,
            ends_at,
            comment,
        };
        self.list.push(silence.clone());
        self.save()?;
        Ok(silence)
    }

    /// Ends a silence now; `false` when there is none with this id.
    pub fn remove(&mut self, id: &str) -> Result<bool, SilenceError> {
        let before = self.list.len();
        self.list.retain(|s| s.id != id);
        if self.list.len() == before {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    /// Forgets silences that ended (saved when any did).
    pub fn expire(&mut self, now: u64) {
        let before = self.list.len();
        self.list.retain(|s| s.ends_at > now);
        if self.list.len() != before
            && let Err(e) = self.save()
        {
            log::warn!("{e}");
        }
    }

    fn save(&self) -> Result<(), SilenceError> {
        let text = serde_json::to_string_pretty(&Saved {
            silences: self.list.clone(),
        })
        .map_err(|e| SilenceError::Store {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        peakguard_config::private_fs::ensure_private_parent(&self.path)
            .and_then(|()| peakguard_config::private_fs::write_private(&self.path, text.as_bytes()))
            .map_err(|e| SilenceError::Store {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_silence_matches_its_labels_until_it_ends_and_outlives_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state").join("monitor.json");
        let mut s = Silences::load(path.clone());
        assert!(s.add(BTreeMap::new(), 200, String::new(), 100).is_err());
        assert!(
            s.add(labels(&[("probe", "home")]), 50, String::new(), 100)
                .is_err()
        );
        let made = s
            .add(labels(&[("probe", "home")]), 200, "deploy".into(), 100)
            .expect("added");
        let home = labels(&[("alertname", "Down"), ("probe", "home")]);
        let shop = labels(&[("alertname", "Down"), ("probe", "shop")]);
        assert!(s.covering(&home, 150).is_some());
        assert!(s.covering(&shop, 150).is_none());
        assert!(s.covering(&home, 200).is_none(), "ended");
        let again = Silences::load(path.clone());
        assert_eq!(again.in_force(), std::slice::from_ref(&made));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("saved")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private: {mode:o}");
        let mut again = again;
        assert!(again.remove(&made.id).expect("saved"));
        assert!(!again.remove(&made.id).expect("nothing to save"));
        assert!(Silences::load(path).in_force().is_empty());
    }
}
