//! `internal.media.download.intent` → ownership check → presigned GET →
//! `public.media.download.signed`, or `public.media.download.rejected` (`not_found`,
//! `internal_error`, `invalid_request`).

use substrate::kafka::HandlerError;
use substrate::media::events::DownloadSigned;

use crate::deps::{Deps, PathIntent, db_failure};
use crate::domain::{self, Fields};

/// Handles one download intent.
pub async fn handle(deps: &Deps, f: &Fields) -> Result<(), HandlerError> {
    let intent = PathIntent::parse(f)?;
    let (user_id, request_id) = (intent.user_id, intent.request_id);
    let file_path = match &intent.file_path {
        Ok(path) => *path,
        Err(invalid) => {
            tracing::warn!(%invalid, request_id, "download intent rejected");
            let path = domain::optional(f, "file_path");
            return deps
                .reject(
                    &deps.topics.download_rejected,
                    &intent,
                    path,
                    "invalid_request",
                )
                .await;
        }
    };
    let row = deps
        .files
        .lookup(user_id, file_path)
        .await
        .map_err(db_failure)?;
    if !row.is_some_and(|row| row.is_active()) {
        return deps
            .reject(
                &deps.topics.download_rejected,
                &intent,
                file_path,
                "not_found",
            )
            .await;
    }
    let download_url = match deps
        .storage
        .presign_get(file_path, deps.download_expiry())
        .await
    {
        Ok(url) => url,
        Err(error) => {
            tracing::error!(%error, file_path, "presigning a download failed");
            return deps
                .reject(
                    &deps.topics.download_rejected,
                    &intent,
                    file_path,
                    "internal_error",
                )
                .await;
        }
    };
    deps.emit(
        &deps.topics.download_signed,
        DownloadSigned::now(
            &intent.answering(file_path),
            download_url,
            deps.media.download_url_expiry_secs,
        ),
    )
    .await
}
