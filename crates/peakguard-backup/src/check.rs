//! `check [--read-data]`: the repository's structure (and with read-data every pack's
//! content) verified by rustic's checker.

use crate::error::{BackupError, Result};
use crate::repo::Repo;
use rustic_core::CheckOptions;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub location: String,
    pub read_data: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

impl Repo {
    /// Checks the repository; problems are returned, not raised (the caller decides).
    pub fn check(&self, read_data: bool) -> Result<CheckOutcome> {
        let started = std::time::Instant::now();
        let mut opts = CheckOptions::default();
        opts.read_data = read_data;
        let results = self.handle()?.check(opts).map_err(|e| self.err(e))?;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for (level, err) in &results.0 {
            let text = short(err);
            if format!("{level:?}") == "Error" {
                errors.push(text);
            } else {
                warnings.push(text);
            }
        }
        Ok(CheckOutcome {
            location: self.location.clone(),
            read_data,
            errors,
            warnings,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// A finding in one line: rustic's display of its errors runs over many lines and carries a
/// stack trace; the cause's concise form (`display_log`) says the same.
fn short(err: &(dyn std::error::Error + 'static)) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    let cause = err
        .source()
        .and_then(|s| {
            s.downcast_ref::<rustic_core::RusticError>().or_else(|| {
                s.downcast_ref::<Box<rustic_core::RusticError>>()
                    .map(AsRef::as_ref)
            })
        })
        .map(|e| e.display_log());
    match cause {
        Some(cause) => {
            // "error checking pack ID : `rustic_core` experienced…" → "error checking pack ID"
            let head = first.split(" : ").next().unwrap_or(first);
            format!("{head}: {}", cause.trim_start_matches("Error: "))
        }
        None => first.to_string(),
    }
}

impl CheckOutcome {
    pub fn into_result(self) -> Result<CheckOutcome> {
        if self.errors.is_empty() {
            Ok(self)
        } else {
            Err(BackupError::CheckFailed {
                location: self.location.clone(),
                count: self.errors.len(),
                first: self.errors[0].clone(),
            })
        }
    }
}
