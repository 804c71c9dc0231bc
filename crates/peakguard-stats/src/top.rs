//! The most frequent keys (pages, referrers) in bounded memory: the "space-saving" counter.
//! At most `capacity` keys are kept; a new key when full replaces the least counted one and
//! inherits its count (so a key's count may be over-estimated by at most the count it
//! inherited, never under-estimated). Merging sums and keeps the largest.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Top {
    entries: Vec<(String, u64)>,
}

impl Top {
    /// Counts one more of `key`, keeping at most `capacity` keys.
    pub fn add(&mut self, key: &str, n: u64, capacity: usize) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == key) {
            e.1 += n;
            return;
        }
        if self.entries.len() < capacity {
            self.entries.push((key.to_owned(), n));
            return;
        }
        if let Some(min) = self.entries.iter_mut().min_by_key(|e| e.1) {
            min.0 = key.to_owned();
            min.1 += n;
        }
    }

    /// Adds `other`'s counts, then keeps the `capacity` largest.
    pub fn merge(&mut self, other: &Top, capacity: usize) {
        if other.entries.is_empty() {
            return;
        }
        let mut all: HashMap<&str, u64> = HashMap::new();
        for (k, n) in self.entries.iter().chain(&other.entries) {
            *all.entry(k.as_str()).or_default() += n;
        }
        let mut merged: Vec<(String, u64)> =
            all.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
        merged.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        merged.truncate(capacity);
        self.entries = merged;
    }

    /// The keys, most counted first.
    pub fn ranked(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.entries.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// The kept keys and counts, as stored.
    pub fn entries(&self) -> &[(String, u64)] {
        &self.entries
    }

    pub fn from_entries(entries: Vec<(String, u64)>) -> Top {
        Top { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frequent_key_is_kept_when_many_rare_ones_pass_by() {
        let mut t = Top::default();
        for i in 0..1000 {
            t.add("/", 1, 4);
            t.add(&format!("/rare-{i}"), 1, 4);
        }
        assert_eq!(t.len(), 4);
        let ranked = t.ranked();
        assert_eq!(ranked[0], ("/", 1000));
    }

    #[test]
    fn merging_sums_and_keeps_the_largest() {
        let (mut a, mut b) = (Top::default(), Top::default());
        a.add("/a", 5, 8);
        a.add("/b", 1, 8);
        b.add("/a", 2, 8);
        b.add("/c", 3, 8);
        a.merge(&b, 2);
        assert_eq!(a.ranked(), vec![("/a", 7), ("/c", 3)]);
    }
}
