//! `public.media.upload.approved` → presigned PUT → `public.media.upload.signed`.
//!
//! The object key is `uploads/<user_id>/<uuid>/<file_name>` where the uuid is derived from the
//! `request_id` (UUID v5), so a redelivered approval yields the same key: the TTL and move sagas,
//! keyed by that path, see one upload, not two. An approval whose `upload.signed` was already
//! published (before a restart, or by the Go service before a cut-over, whose keys were random)
//! is not signed again: see [`crate::announced`].

use substrate::kafka::HandlerError;
use substrate::media::events::{UploadRejected, UploadSigned};

use crate::deps::{Deps, storage_failure};
use crate::domain::{self, Fields};

/// Namespace of the request-derived upload ids (a fixed, random UUID).
const UPLOAD_NAMESPACE: uuid::Uuid = uuid::uuid!("5f0c3a52-8a5e-4f1e-9a4e-1f6c0d2b7e11");

/// The deterministic staging key of an approved upload.
pub fn upload_key(user_id: &str, request_id: &str, file_name: &str) -> String {
    let id = uuid::Uuid::new_v5(&UPLOAD_NAMESPACE, request_id.as_bytes());
    format!("uploads/{user_id}/{id}/{file_name}")
}

/// Handles one approval.
pub async fn handle(deps: &Deps, f: &Fields) -> Result<(), HandlerError> {
    // Without a user and a request id there is nobody to tell: dead-letter.
    let user_id = domain::required(f, "user_id").map_err(HandlerError::permanent)?;
    let request_id = domain::required(f, "request_id").map_err(HandlerError::permanent)?;
    domain::safe_segment("user_id", user_id).map_err(HandlerError::permanent)?;
    let checked = domain::required(f, "file_name")
        .and_then(|name| domain::safe_segment("file_name", name).map(|()| name))
        .and_then(|name| domain::required(f, "media_type").map(|media_type| (name, media_type)));
    let (file_name, media_type) = match checked {
        Ok(valid) => valid,
        Err(invalid) => {
            tracing::warn!(%invalid, request_id, "upload approval rejected");
            return deps
                .emit(
                    &deps.topics.upload_rejected,
                    UploadRejected {
                        user_id: user_id.to_owned(),
                        file_name: domain::optional(f, "file_name").to_owned(),
                        media_type: domain::optional(f, "media_type").to_owned(),
                        file_size: domain::integer(f, "file_size").unwrap_or(0),
                        request_id: request_id.to_owned(),
                        reason: "invalid_request".to_owned(),
                        rejected_time: substrate::time::now_rfc3339(),
                    },
                )
                .await;
        }
    };
    if deps.announced.upload_signed(request_id) {
        tracing::info!(
            request_id,
            "upload already signed before this start; not signed again"
        );
        return Ok(());
    }
    let key = upload_key(user_id, request_id, file_name);
    // Presigning is local: a failure is a setting out of range, which no retry fixes. The
    // approval is dead-lettered (not lost: it can be sent again once the setting is fixed)
    // instead of holding up every approval behind it.
    let upload_url = deps
        .storage
        .presign_put(&key, media_type, deps.upload_expiry())
        .await
        .map_err(storage_failure)?;
    deps.emit(
        &deps.topics.upload_signed,
        UploadSigned::now(
            user_id,
            &key,
            file_name,
            upload_url,
            deps.media.upload_url_expiry_secs,
            request_id,
        ),
    )
    .await
}
