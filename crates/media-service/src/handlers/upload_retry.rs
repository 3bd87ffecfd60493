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
use substrate::media::events::{FileReady, UploadReceived};
use substrate::media::{Moved, ObjectError};

/// Handles one move retry.
pub async fn handle(deps: &Deps, f: &Fields) -> Result<(), HandlerError> {
    // Flink writes every column as nullable; a null where UploadReceived needs a value would make
    // the re-produce unencodable, so such records are dead-lettered up front.
    let user_id = domain::required(f, "user_id").map_err(HandlerError::permanent)?;
    let file_path = domain::required(f, "file_path").map_err(HandlerError::permanent)?;
    let permanent_path = domain::required(f, "permanent_path").map_err(HandlerError::permanent)?;
    let file_name = domain::required(f, "file_name").map_err(HandlerError::permanent)?;
    let media_type = domain::required(f, "media_type").map_err(HandlerError::permanent)?;
    let upload_time = domain::required(f, "upload_time").map_err(HandlerError::permanent)?;
    let file_size = domain::integer(f, "file_size").map_err(HandlerError::permanent)?;
    domain::safe_key("file_path", file_path).map_err(HandlerError::permanent)?;
    domain::safe_key("permanent_path", permanent_path).map_err(HandlerError::permanent)?;
    let expected = file_path
        .strip_prefix("uploads/")
        .map(|rest| format!("files/{rest}"));
    if expected.as_deref() != Some(permanent_path) {
        return Err(HandlerError::permanent(format!(
            "permanent_path {permanent_path:?} does not belong to {file_path:?}"
        )));
    }
    let moved = match deps.storage.move_object(file_path, permanent_path).await {
        Ok(moved) => moved,
        Err(ObjectError::NotFound(_)) => {
            return Err(HandlerError::permanent(format!(
                "{file_path} is gone and {permanent_path} does not exist"
            )));
        }
        Err(error) => return Err(storage_failure(error)),
    };
    deps.emit(
        &deps.topics.upload_received,
        UploadReceived {
            user_id: user_id.to_owned(),
            email: domain::optional(f, "email").to_owned(),
            file_path: file_path.to_owned(),
            file_name: file_name.to_owned(),
            file_size,
            media_type: media_type.to_owned(),
            upload_time: upload_time.to_owned(),
            permanent_path: permanent_path.to_owned(),
            retry_count: i32::try_from(domain::retry_count(f))
                .unwrap_or(i32::MAX)
                .saturating_add(1),
        },
    )
    .await?;
    if moved == Moved::AlreadyMoved {
        tracing::info!(
            permanent_path,
            "object already in place; announcing file.ready for the saga"
        );
        deps.emit(
            &deps.topics.file_ready,
            FileReady {
                file_path: permanent_path.to_owned(),
                file_size,
                upload_time: substrate::time::now_rfc3339(),
            },
        )
        .await?;
    }
    Ok(())
}
