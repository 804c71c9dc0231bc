//! How large a request body may be: a default, and a larger one for the paths uploads go to.
//! The guard refuses by `Content-Length` before the origin is asked; the edge holds a body
//! that streams without one to the same limit ([`BodyLimits::limit_for`]).

use crate::guard::{Guard, LocalResponse, RequestFacts, Verdict};
use crate::pages;
use peakguard_config::{ByteSize, SiteConfig};
use serde::Deserialize;

/// `[site.shield.body]`: a body over the limit is refused with 413 before the origin reads
/// it (by its `Content-Length`, or as it streams).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BodyConfig {
    /// Any request.
    pub max_size: ByteSize,
    /// Path prefixes where uploads go (media, plugin and theme uploads, imports).
    pub upload_paths: Vec<String>,
    /// Requests to the upload paths.
    pub max_upload_size: ByteSize,
}

impl Default for BodyConfig {
    fn default() -> Self {
        BodyConfig {
            max_size: ByteSize(16 << 20),
            upload_paths: [
                "/wp-admin/async-upload.php",
                "/wp-admin/media-new.php",
                "/wp-admin/update.php",
                "/wp-admin/admin.php",
                "/wp-json/wp/v2/media",
            ]
            .map(String::from)
            .to_vec(),
            max_upload_size: ByteSize(256 << 20),
        }
    }
}

fn check(_site: &SiteConfig, value: &toml::Value) -> Vec<(String, String)> {
    let config: BodyConfig = match crate::registry::checked_table(Some(value)) {
        Ok(c) => c,
        Err(problems) => return problems,
    };
    config
        .upload_paths
        .iter()
        .enumerate()
        .filter(|(_, path)| !path.starts_with('/'))
        .map(|(n, path)| {
            (
                format!("upload_paths[{n}]"),
                format!("{path:?} must start with `/`"),
            )
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct BodyLimits {
    max: u64,
    upload_paths: Vec<String>,
    max_upload: u64,
}

impl BodyLimits {
    /// The site's limits (`[site.shield.body]`, checked when the file was read; its defaults
    /// when absent).
    pub fn of_site(site: &SiteConfig) -> Self {
        Self::from_config(&crate::registry::read_table(site, GUARD.table).unwrap_or_default())
    }

    pub fn from_config(c: &BodyConfig) -> Self {
        BodyLimits {
            max: c.max_size.0,
            upload_paths: crate::guard::rule_paths(&c.upload_paths),
            max_upload: c.max_upload_size.0,
        }
    }

    /// The most bytes a body to `path` may have.
    pub fn limit_for(&self, path: &str) -> u64 {
        if self
            .upload_paths
            .iter()
            .any(|p| path.starts_with(p.as_str()))
        {
            self.max_upload.max(self.max)
        } else {
            self.max
        }
    }
}

/// The 413 answer for a body over `limit`.
pub fn too_large(limit: u64) -> LocalResponse {
    LocalResponse::page(
        413,
        pages::page(
            "Request too large",
            &format!(
                "This request carries more than {} MiB, the most this site accepts here.",
                limit.div_ceil(1 << 20)
            ),
            0,
        ),
    )
    .closing()
}

/// Always in the chain.
pub const GUARD: crate::registry::GuardEntry = crate::registry::GuardEntry {
    name: "body-size",
    table: "body",
    build: |b| {
        Ok(Some(std::sync::Arc::new(BodySizeGuard(
            BodyLimits::from_config(&b.table()?),
        ))))
    },
    check: Some(check),
};

pub struct BodySizeGuard(pub BodyLimits);

impl Guard for BodySizeGuard {
    fn name(&self) -> &'static str {
        "body-size"
    }

    fn on_request(&self, req: &RequestFacts<'_>) -> Verdict {
        let Some(length) = req
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
        else {
            return Verdict::Pass;
        };
        let limit = self.0.limit_for(&req.path());
        if length <= limit {
            return Verdict::Pass;
        }
        Verdict::Respond {
            reason: format!("a {length}-byte body over the {limit}-byte limit").into(),
            response: too_large(limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Req;

    #[test]
    fn uploads_may_be_larger_than_other_bodies() {
        let limits = BodyLimits::from_config(&BodyConfig {
            max_size: ByteSize(1000),
            max_upload_size: ByteSize(5000),
            ..BodyConfig::default()
        });
        let g = BodySizeGuard(limits);
        let post = |path: &str, len: u64| {
            let r = Req::post(path, "").header("content-length", &len.to_string());
            match g.on_request(&r.facts()) {
                Verdict::Pass => 0,
                Verdict::Respond { response, .. } => response.status,
                _ => 1,
            }
        };
        assert_eq!(post("/?comment=1", 1000), 0);
        assert_eq!(post("/wp-comments-post.php", 1001), 413);
        assert_eq!(post("/wp-admin/async-upload.php", 4000), 0);
        assert_eq!(post("/wp-admin/async-upload.php", 5001), 413);
        assert_eq!(g.0.limit_for("/wp-json/wp/v2/media/12"), 5000);
    }
}
