//! The purge index: which stored keys belong to a URL (all its `Vary` variants), to a URL
//! prefix, or to a tag. pingora's purge removes one entry; this is what turns "purge this
//! page" or "purge tag product-42" into the list of entries to remove. Bounded by the number
//! of stored objects: an entry leaves the index when its object leaves the last tier.

use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Default)]
pub struct PurgeIndex {
    by_url: BTreeMap<String, HashSet<String>>,
    by_tag: HashMap<String, HashSet<String>>,
    of_key: HashMap<String, (String, Vec<String>)>,
}

impl PurgeIndex {
    pub fn add(&mut self, key: &str, url: &str, tags: &[String]) {
        self.remove(key);
        self.by_url
            .entry(url.to_string())
            .or_default()
            .insert(key.to_string());
        for t in tags {
            self.by_tag
                .entry(t.clone())
                .or_default()
                .insert(key.to_string());
        }
        self.of_key
            .insert(key.to_string(), (url.to_string(), tags.to_vec()));
    }

    pub fn remove(&mut self, key: &str) {
        let Some((url, tags)) = self.of_key.remove(key) else {
            return;
        };
        if let Some(set) = self.by_url.get_mut(&url) {
            set.remove(key);
            if set.is_empty() {
                self.by_url.remove(&url);
            }
        }
        for t in tags {
            if let Some(set) = self.by_tag.get_mut(&t) {
                set.remove(key);
                if set.is_empty() {
                    self.by_tag.remove(&t);
                }
            }
        }
    }

    pub fn keys_for_url(&self, url: &str) -> Vec<String> {
        self.by_url
            .get(url)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn keys_for_prefix(&self, prefix: &str) -> Vec<String> {
        self.by_url
            .range(prefix.to_string()..)
            .take_while(|(u, _)| u.starts_with(prefix))
            .flat_map(|(_, s)| s.iter().cloned())
            .collect()
    }

    pub fn keys_for_tag(&self, tag: &str) -> Vec<String> {
        self.by_tag
            .get(tag)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The keys carrying `tag` whose URL is on `host` (either scheme, any port).
    pub fn keys_for_tag_on_host(&self, tag: &str, host: &str) -> Vec<String> {
        let Some(keys) = self.by_tag.get(tag) else {
            return Vec::new();
        };
        keys.iter()
            .filter(|k| {
                self.of_key
                    .get(*k)
                    .is_some_and(|(url, _)| url_host(url).eq_ignore_ascii_case(host))
            })
            .cloned()
            .collect()
    }

    pub fn all_keys(&self) -> Vec<String> {
        self.of_key.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.of_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.of_key.is_empty()
    }
}

/// The host of a key URL (`http://host:port/path` → `host`).
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lookups_can_be_limited_to_one_host() {
        let mut i = PurgeIndex::default();
        i.add("k1", "http://a.test/p", &["post-1".into()]);
        i.add("k2", "https://a.test:8443/q", &["post-1".into()]);
        i.add("k3", "http://b.test/p", &["post-1".into()]);
        let mut on_a = i.keys_for_tag_on_host("post-1", "A.test");
        on_a.sort();
        assert_eq!(on_a, vec!["k1", "k2"]);
        assert_eq!(i.keys_for_tag_on_host("post-1", "b.test"), vec!["k3"]);
        assert!(i.keys_for_tag_on_host("post-2", "a.test").is_empty());
    }

    #[test]
    fn url_prefix_and_tag_lookups() {
        let mut i = PurgeIndex::default();
        i.add(
            "k1",
            "http://a/shop/p1",
            &["product-1".into(), "shop".into()],
        );
        i.add("k1v", "http://a/shop/p1", &["product-1".into()]);
        i.add("k2", "http://a/shop/p2", &["shop".into()]);
        i.add("k3", "http://a/blog/x", &[]);
        let mut v = i.keys_for_url("http://a/shop/p1");
        v.sort();
        assert_eq!(v, vec!["k1", "k1v"]);
        assert_eq!(i.keys_for_prefix("http://a/shop/").len(), 3);
        assert_eq!(i.keys_for_tag("shop").len(), 2);
        i.remove("k1");
        assert_eq!(i.keys_for_tag("shop"), vec!["k2"]);
        assert_eq!(i.keys_for_url("http://a/shop/p1"), vec!["k1v"]);
        assert!(i.keys_for_prefix("http://a/zzz").is_empty());
        assert_eq!(i.len(), 3);
    }
}
