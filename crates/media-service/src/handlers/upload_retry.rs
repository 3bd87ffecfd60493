//! `internal.media.upload.retry` (from the move saga) → move `uploads/…` → `files/…` again →
//! `internal.media.upload.received` with retry_count + 1. The move saga caps the retries.
//!
//! The saga confirms an upload once it has both the `upload.received` and the permanent path's
//! `file.ready`, which the store's notification produces when the object lands in `files/`. A
//! retry that finds the object already there (an earlier move finished after the saga's
//! timeout) copies nothing, so no notification follows; the saga may also have dropped the
//! `file.ready` it got meanwhile. This handler then says `file.ready` itself, or the upload
//! would be retried until dead-lettered while its file sits in `files/`.

use substrate::kafka::HandlerError;

use crate::deps::{Deps, storage_failure};
use crate::domain::{self, Fields};
use substrate::media::{Moved, ObjectError};

/// Handles one move retry.
pub async fn handle(deps: &Deps, f: &Fields) -> Result<(), HandlerError> {
    let retry = domain::upload_retry(f).map_err(HandlerError::permanent)?;
    let (from, to) = (retry.file_path.as_str(), retry.permanent_path.as_str());
    let moved = match deps.storage.move_object(from, to).await {
        Ok(moved) => moved,
        Err(ObjectError::NotFound(_)) => {
            return Err(HandlerError::permanent(format!(
                "{from} is gone and {to} does not exist"
            )));
        }
        Err(error) => return Err(storage_failure(error)),
    };
    deps.emit(&deps.topics.upload_received, retry.received())
        .await?;
    if moved == Moved::AlreadyMoved {
        tracing::info!(
            permanent_path = to,
            "object already in place; announcing file.ready for the saga"
        );
        deps.emit(&deps.topics.file_ready, retry.ready()).await?;
    }
    Ok(())
}
