//! `internal.media.download.intent` → ownership check → presigned GET →
//! `public.media.download.signed`, or `public.media.download.rejected` (`not_found`,
//! `internal_error`, `invalid_request`).

use serde_json::json;
use substrate::kafka::HandlerError;

use super::Deps;
use crate::fields::{self, Fields};

/// Handles one download intent.
pub async fn handle(deps: &Deps, f: &Fields) -> Result<(), HandlerError> {
    let user_id = fields::required(f, "user_id").map_err(HandlerError::permanent)?;
    let request_id = fields::required(f, "request_id").map_err(HandlerError::permanent)?;
    let file_path = match fields::required(f, "file_path")
        .and_then(|path| fields::safe_key("file_path", path).map(|()| path))
    {
        Ok(path) => path,
        Err(invalid) => {
            tracing::warn!(%invalid, request_id, "download intent rejected");
            let path = fields::optional(f, "file_path");
            return reject(deps, user_id, path, request_id, "invalid_request").await;
        }
    };
    let row = deps
        .files
        .lookup(user_id, file_path)
        .await
        .map_err(HandlerError::retryable)?;
    if row.is_none_or(|row| row.status != "active") {
        return reject(deps, user_id, file_path, request_id, "not_found").await;
    }
    let download_url = match deps
        .storage
        .presign_get(file_path, deps.download_expiry())
        .await
    {
        Ok(url) => url,
        Err(error) => {
            tracing::error!(%error, file_path, "presigning a download failed");
            return reject(deps, user_id, file_path, request_id, "internal_error").await;
        }
    };
    deps.emit(
        &deps.topics.download_signed,
        json!({
            "user_id": user_id,
            "file_path": file_path,
            "download_url": download_url,
            "expires_in": deps.media.download_url_expiry_secs,
            "request_id": request_id,
            "signed_time": substrate::time::now_rfc3339(),
        }),
    )
    .await
}

async fn reject(
    deps: &Deps,
    user_id: &str,
    file_path: &str,
    request_id: &str,
    reason: &str,
) -> Result<(), HandlerError> {
    deps.emit(
        &deps.topics.download_rejected,
        json!({
            "user_id": user_id,
            "file_path": file_path,
            "request_id": request_id,
            "reason": reason,
            "rejected_time": substrate::time::now_rfc3339(),
        }),
    )
    .await
}
