//! peakguard's view of a snapshot: its stable peakguard id (the same in the main repository
//! and the bunker, where restic ids differ), what it holds, and how it was made.

use rustic_core::repofile::SnapshotFile;
use serde::Serialize;

pub const TAG_MARK: &str = "peakguard";
const ID_PREFIX: &str = "pgid:";
const WP_PREFIX: &str = "wp:";
const DB_PREFIX: &str = "dbsize:";
const KIND_PREFIX: &str = "kind:";

/// Why a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Manual,
    Scheduled,
    /// Taken by a rollback just before it changed anything.
    Safety,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Manual => "manual",
            Kind::Scheduled => "scheduled",
            Kind::Safety => "safety",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "manual" => Some(Kind::Manual),
            "scheduled" => Some(Kind::Scheduled),
            "safety" => Some(Kind::Safety),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    /// peakguard's id (stable across repositories).
    pub id: String,
    /// The repository's own (restic) id.
    pub repo_id: String,
    pub site: String,
    pub time: String,
    /// Seconds since the epoch (for sorting and ages).
    pub unix_time: i64,
    pub kind: Option<Kind>,
    pub wordpress_version: Option<String>,
    pub database_bytes: Option<u64>,
    pub files: u64,
    pub bytes: u64,
    pub added_bytes: u64,
    pub duration_secs: f64,
    pub tags: Vec<String>,
}

impl SnapshotInfo {
    pub(crate) fn from_file(snap: &SnapshotFile) -> SnapshotInfo {
        let tags: Vec<String> = (&snap.tags).into_iter().cloned().collect();
        let find = |prefix: &str| {
            tags.iter()
                .find_map(|t| t.strip_prefix(prefix).map(str::to_string))
        };
        let summary = snap.summary.as_ref();
        SnapshotInfo {
            id: find(ID_PREFIX)
                .unwrap_or_else(|| format!("restic:{}", short(&snap.id.to_string()))),
            repo_id: snap.id.to_string(),
            site: snap.label.clone(),
            time: snap.time.strftime("%Y-%m-%d %H:%M:%S %Z").to_string(),
            unix_time: snap.time.timestamp().as_second(),
            kind: find(KIND_PREFIX).and_then(|k| Kind::parse(&k)),
            wordpress_version: find(WP_PREFIX),
            database_bytes: find(DB_PREFIX).and_then(|v| v.parse().ok()),
            files: summary.map_or(0, |s| s.total_files_processed),
            bytes: summary.map_or(0, |s| s.total_bytes_processed),
            added_bytes: summary.map_or(0, |s| s.data_added),
            duration_secs: summary.map_or(0.0, |s| s.total_duration),
            tags,
        }
    }

    /// Whether `query` names this snapshot: `latest` is handled by the caller; otherwise a
    /// prefix of the peakguard id or of the repository id.
    pub fn matches(&self, query: &str) -> bool {
        !query.is_empty() && (self.id.starts_with(query) || self.repo_id.starts_with(query))
    }
}

/// The tags a new snapshot carries.
pub(crate) fn tags_for(
    id: &str,
    kind: Kind,
    wp_version: Option<&str>,
    db_bytes: Option<u64>,
) -> Vec<String> {
    let mut tags = vec![
        TAG_MARK.to_string(),
        format!("{ID_PREFIX}{id}"),
        format!("{KIND_PREFIX}{}", kind.as_str()),
    ];
    if let Some(v) = wp_version {
        tags.push(format!("{WP_PREFIX}{v}"));
    }
    if let Some(b) = db_bytes {
        tags.push(format!("{DB_PREFIX}{b}"));
    }
    tags
}

/// A new peakguard id: the UTC time and random bits, sortable and unique.
pub(crate) fn new_id() -> String {
    let now = rustic_core::jiff::Timestamp::now();
    let random: u32 = rand_u32();
    format!("{}-{random:08x}", now.strftime("%Y%m%dT%H%M%SZ"))
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}

pub(crate) fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// The WordPress version from `wp-includes/version.php`.
pub(crate) fn wordpress_version(root: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("wp-includes/version.php")).ok()?;
    let pos = text.find("$wp_version")?;
    let rest = &text[pos..];
    let start = rest.find(['\'', '"'])? + 1;
    let end = rest[start..].find(['\'', '"'])? + start;
    Some(rest[start..end].to_string())
}
