//! After a restart the disk tier serves at once: its index comes from the directory listing
//! alone. A background thread then reads each object's key URL and tags into the purge
//! index. A purge that arrives meanwhile is remembered here, and an object it names is
//! dropped when the thread reads it, or when a request loads it first — a purged page is
//! never served because the restart had not read it yet.

/// A purge that happened while objects were still being read.
#[derive(Debug, Clone)]
pub enum Purge {
    Url(String),
    Prefix(String),
    Tag(String),
    All,
}

/// The purges since the restart, until every object was read.
#[derive(Debug, Default)]
pub struct PurgeLog {
    purges: Vec<Purge>,
    /// Past [`MAX_LOGGED`] purges (or after a purge of everything) every object not yet read
    /// counts as purged: wrong only in the safe direction.
    all: bool,
}

/// How many purges are remembered one by one.
const MAX_LOGGED: usize = 10_000;

impl PurgeLog {
    pub fn record(&mut self, purge: Purge) {
        if self.all {
            return;
        }
        if matches!(purge, Purge::All) || self.purges.len() >= MAX_LOGGED {
            self.all = true;
            self.purges = Vec::new();
            return;
        }
        self.purges.push(purge);
    }

    /// Whether an object with this key URL and these tags was purged.
    pub fn names(&self, url: &str, tags: &[String]) -> bool {
        self.all
            || self.purges.iter().any(|p| match p {
                Purge::Url(u) => u == url,
                Purge::Prefix(prefix) => url.starts_with(prefix.as_str()),
                Purge::Tag(tag) => tags.iter().any(|t| t == tag),
                Purge::All => true,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_names_what_each_purge_covers_and_overflows_to_everything() {
        let mut log = PurgeLog::default();
        let tags = vec!["post-1".to_string()];
        assert!(!log.names("https://a/p", &tags));
        log.record(Purge::Tag("post-1".into()));
        assert!(log.names("https://a/other", &tags));
        log.record(Purge::Prefix("https://a/blog/".into()));
        assert!(log.names("https://a/blog/x", &[]));
        assert!(!log.names("https://a/shop/x", &[]));
        log.record(Purge::Url("https://a/shop/x".into()));
        assert!(log.names("https://a/shop/x", &[]));
        for i in 0..MAX_LOGGED {
            log.record(Purge::Url(format!("https://a/{i}")));
        }
        assert!(
            log.names("https://never/purged", &[]),
            "overflow: everything"
        );
    }
}
