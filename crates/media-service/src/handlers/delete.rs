//! `internal.media.delete.intent` → soft delete → `public.media.delete.events` → remove the
//! object → on failure `internal.media.delete.retry` (retry_count 0). The order is the
//! original's: the user's view changes first, storage follows (with retries).
//!
//! Idempotency: the soft delete records the request id. A redelivered intent finds the row
//! deleted by itself and repeats the outcome (removal, and the event unless it was already
//! published); a different request for an already deleted file gets `delete.rejected`
//! `not_found`, so two concurrent deletes produce one `FileDeleted`. A row the Go service
//! deleted records no request; if its `FileDeleted` is among the outcomes published before this
//! start ([`crate::announced`]), the intent was answered then and only the removal is repeated.

use substrate::kafka::HandlerError;
use substrate::media::FileRow;
use substrate::media::events::{DeleteRetry, FileDeleted};

use crate::deps::{Deps, PathIntent, db_failure};
use crate::domain::{self, Fields};

/// Handles one delete intent.
pub async fn handle(deps: &Deps, f: &Fields) -> Result<(), HandlerError> {
    let intent = PathIntent::parse(f)?;
    let (user_id, request_id) = (intent.user_id, intent.request_id);
    let file_path = match &intent.file_path {
        Ok(path) => *path,
        Err(invalid) => {
            tracing::warn!(%invalid, request_id, "delete intent rejected");
            let path = domain::optional(f, "file_path");
            return deps
                .reject(
                    &deps.topics.delete_rejected,
                    &intent,
                    path,
                    "invalid_request",
                )
                .await;
        }
    };
    let Some(row) = owned_row(deps, user_id, file_path, request_id).await? else {
        return deps
            .reject(
                &deps.topics.delete_rejected,
                &intent,
                file_path,
                "not_found",
            )
            .await;
    };
    if deps.announced.file_deleted(user_id, file_path) {
        tracing::info!(
            request_id,
            file_path,
            "deletion already announced before this start; only the removal is repeated"
        );
    } else {
        announce(deps, user_id, &row).await?;
    }
    if let Err(error) = deps.storage.remove(file_path).await {
        tracing::warn!(%error, file_path, "object removal failed; scheduling a retry");
        deps.emit(
            &deps.topics.delete_retry,
            DeleteRetry::first(user_id, &row, request_id),
        )
        .await?;
    }
    Ok(())
}

/// Publishes `FileDeleted`: the user's view changes before storage does.
async fn announce(deps: &Deps, user_id: &str, row: &FileRow) -> Result<(), HandlerError> {
    deps.emit(&deps.topics.delete_events, FileDeleted::now(user_id, row))
        .await
}

/// The row this request deletes: soft-deletes it when active; returns it again when this same
/// request deleted it before (redelivery) or the Go service deleted it and announced it in the
/// replay window; `None` when it does not exist for this user or was deleted by another request.
async fn owned_row(
    deps: &Deps,
    user_id: &str,
    file_path: &str,
    request_id: &str,
) -> Result<Option<FileRow>, HandlerError> {
    for _ in 0..2 {
        let Some(row) = deps
            .files
            .lookup(user_id, file_path)
            .await
            .map_err(db_failure)?
        else {
            return Ok(None);
        };
        if row.is_active() {
            if deps
                .files
                .soft_delete(user_id, file_path, request_id)
                .await
                .map_err(db_failure)?
            {
                return Ok(Some(row));
            }
            // Someone deleted it between the lookup and the update: look again.
            continue;
        }
        let ours = match row.deleted_by_request_id.as_deref() {
            Some(deleted_by) => deleted_by == request_id,
            // Deleted by the Go service (it kept no request id): this intent was answered
            // before the cut-over if the deletion was announced in the replay window.
            None => deps.announced.file_deleted(user_id, file_path),
        };
        return Ok(ours.then_some(row));
    }
    Ok(None)
}
