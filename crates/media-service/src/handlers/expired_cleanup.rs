//! `public.media.expired.events` → remove the staging object of an upload that never arrived.
//! Events without a usable `file_path` are skipped (nothing to clean). Only `uploads/` keys are
//! ever removed here: an expiry must never delete a confirmed file.

use substrate::kafka::HandlerError;

use crate::deps::{Deps, storage_failure};
use crate::domain::{self, Fields};

/// Handles one expiry.
pub async fn handle(deps: &Deps, f: &Fields) -> Result<(), HandlerError> {
    let Ok(file_path) = domain::required(f, "file_path") else {
        tracing::info!("expiry without a file_path; nothing to clean");
        return Ok(());
    };
    if !file_path.starts_with("uploads/") || domain::safe_key("file_path", file_path).is_err() {
        tracing::warn!(
            file_path,
            "expiry for a key outside uploads/; not removing it"
        );
        return Ok(());
    }
    // The bucket's 1-day lifecycle rule on uploads/ is the backstop, but an outage is retried
    // rather than ignored.
    deps.storage
        .remove(file_path)
        .await
        .map_err(storage_failure)
}
