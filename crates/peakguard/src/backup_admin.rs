//! The backup daemon (peakguard-backup) plugged into the edge's admin API.

use peakguard_backup::BackupDaemon;
use peakguard_edge::admin::AdminExtension;
use std::collections::HashMap;
use std::sync::Arc;

pub struct BackupAdmin(pub Arc<BackupDaemon>);

impl AdminExtension for BackupAdmin {
    fn name(&self) -> &str {
        "backups"
    }

    fn handle(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
    ) -> Option<(u16, serde_json::Value)> {
        self.0.handle(method, path, query)
    }

    fn metrics(&self) -> String {
        self.0.metrics()
    }

    fn status(&self) -> serde_json::Value {
        self.0.status()
    }
}
