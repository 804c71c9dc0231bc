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
            let text = err.to_string();
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
