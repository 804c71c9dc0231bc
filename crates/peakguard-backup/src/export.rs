//! `export SNAPSHOT --to site.tar.gz`: the downloadable archive of a snapshot (`site/` and
//! `database.sql`), streamed blob by blob so memory stays small for large files.

use crate::error::{BackupError, Result};
use crate::repo::Repo;
use crate::restore::{Indexed, content_size};
use crate::snapshot::SnapshotInfo;
use rustic_core::repofile::{BlobType, Node, NodeType};
use rustic_core::{BlobId, LsOptions};
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct ExportOutcome {
    pub snapshot: SnapshotInfo,
    pub to: PathBuf,
    pub entries: u64,
    pub bytes: u64,
}

impl Repo {
    pub fn export(&self, site: Option<&str>, query: &str, to: &Path) -> Result<ExportOutcome> {
        let snap = self.find(site, query)?;
        let repo = self.indexed()?;
        let root = repo
            .node_from_snapshot_and_path(&snap, "")
            .map_err(|e| self.err(e))?;
        let partial = to.with_extension("partial");
        // The export holds wp-config.php and the database: 0600 from the start.
        let file = peakguard_config::private_fs::create_private(&partial)
            .map_err(|e| BackupError::io("creating", &partial, e))?;
        let gz = flate2::write::GzEncoder::new(
            std::io::BufWriter::new(file),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        let (mut entries, mut bytes) = (0u64, 0u64);
        let io = |e: std::io::Error| BackupError::io("writing", to, e);
        for item in repo
            .ls(&root, &LsOptions::default())
            .map_err(|e| self.err(e))?
        {
            let (path, node) = item.map_err(|e| self.err(e))?;
            let mut header = tar::Header::new_gnu();
            header.set_mode(node.meta.mode.unwrap_or(0o644) & 0o7777);
            header.set_mtime(node.meta.mtime.map_or(0, |t| t.as_second().max(0) as u64));
            match &node.node_type {
                NodeType::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    tar.append_data(&mut header, &path, std::io::empty())
                        .map_err(io)?;
                }
                NodeType::File => {
                    let size = content_size(&repo, &node);
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(size);
                    let reader = BlobReader::new(&repo, &node);
                    tar.append_data(&mut header, &path, reader).map_err(|e| {
                        BackupError::Damaged {
                            path: format!("/{}", path.display()),
                            message: e.to_string(),
                        }
                    })?;
                    bytes += size;
                }
                NodeType::Symlink { .. } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    tar.append_link(&mut header, &path, node.node_type.to_link())
                        .map_err(io)?;
                }
                _ => continue,
            }
            entries += 1;
        }
        let gz = tar.into_inner().map_err(io)?;
        let mut buf = gz.finish().map_err(io)?;
        std::io::Write::flush(&mut buf).map_err(io)?;
        drop(buf);
        std::fs::rename(&partial, to).map_err(|e| BackupError::io("renaming into", to, e))?;
        Ok(ExportOutcome {
            snapshot: SnapshotInfo::from_file(&snap),
            to: to.to_path_buf(),
            entries,
            bytes,
        })
    }
}

/// Reads a file node's content one blob at a time.
struct BlobReader<'a> {
    repo: &'a Indexed,
    ids: Vec<BlobId>,
    next: usize,
    current: bytes::Bytes,
}

impl<'a> BlobReader<'a> {
    fn new(repo: &'a Indexed, node: &Node) -> Self {
        BlobReader {
            repo,
            ids: node
                .content
                .iter()
                .flatten()
                .map(|id| BlobId::from(**id))
                .collect(),
            next: 0,
            current: bytes::Bytes::new(),
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            let Some(id) = self.ids.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            self.current = self
                .repo
                .get_blob_cached(id, BlobType::Data)
                .map_err(|e| std::io::Error::other(e.display_log()))?;
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
