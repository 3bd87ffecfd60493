//! The legacy synchronous media routes the current frontend still calls.
//!
//! Fixes over the original Go routes: `upload-url` deducts the credit in the same
//! transaction as the balance check, so uploads are never free; `delete` removes the object too
//! (soft delete → `public.media.delete.events` → remove object, and on a storage failure it hands
//! the object to the delete saga's retry loop via `internal.media.delete.retry`, exactly like the
//! media-service's delete handler). They count against the user's `media` rate limit.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::JsonObject;
use crate::auth::AuthUser;
use crate::domain;
use substrate::media::FileRow;
use substrate::media::events::{DeleteRetry, FileDeleted, FileDownloaded};

use crate::credits::CreditOutcome;
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::Route;
use crate::state::AppState;

/// `POST /api/v1/media/upload-url`: one credit buys one presigned PUT.
#[utoipa::path(post, path = "/api/v1/media/upload-url", operation_id = "legacy_upload_url", tag = "legacy",
    request_body(content = crate::openapi::UploadRequest),
    responses(
        (status = 200, description = "One credit spent; PUT the file to the URL", body = crate::openapi::UploadUrl),
        (status = 402, description = "No credit left", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn upload_url(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    state
        .limits
        .check(&user.user_id, Route::LegacyUploadUrl, 1)?;
    let file_name = domain::file_name(&body)?;
    let media_type = domain::media_type(&body)?;
    domain::file_size(&body)?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let file_path = format!("uploads/{}/{request_id}/{file_name}", user.user_id);
    // Sign first (local computation): if deduction then fails, no credit was spent.
    let upload_url = state
        .objects
        .presign_put(&file_path, &media_type, state.presign_expiry)
        .await
        .map_err(ApiError::unexpected)?;
    match state
        .credits
        .deduct_upload_credit(&user.user_id, &file_name, &request_id)
        .await
        .map_err(ApiError::unexpected)?
    {
        CreditOutcome::Insufficient => return Err(ApiError::InsufficientCredits),
        CreditOutcome::Deducted => {}
    }
    tracing::info!(user_id = %user.user_id, file_path, media_type, "legacy upload URL issued");
    Ok(Json(json!({
        "upload_url": upload_url,
        "file_path": file_path,
        "expires_in": state.presign_expiry.as_secs(),
    })))
}

/// The caller's active file named by the body's `file_path` (404 for anyone else's).
async fn owned_file(
    state: &AppState,
    user: &AuthUser,
    body: &serde_json::Map<String, Value>,
) -> ApiResult<FileRow> {
    let file_path = domain::file_path(body)?;
    state
        .files
        .active(&user.user_id, &file_path)
        .await
        .map_err(ApiError::unexpected)?
        .ok_or_else(|| ApiError::NotFound("Not found".into()))
}

/// `POST /api/v1/media/download-url`: presigned GET for the caller's own active file.
#[utoipa::path(post, path = "/api/v1/media/download-url", operation_id = "legacy_download_url", tag = "legacy",
    request_body(content = crate::openapi::FileRequest),
    responses(
        (status = 200, description = "GET the file from the URL", body = crate::openapi::DownloadUrl),
        (status = 404, description = "No active file of the caller's at that path", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn download_url(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    state
        .limits
        .check(&user.user_id, Route::LegacyDownloadUrl, 1)?;
    let file = owned_file(&state, &user, &body).await?;
    let download_url = state
        .objects
        .presign_get(&file.file_path, state.presign_expiry)
        .await
        .map_err(ApiError::unexpected)?;
    let event = to_document(&FileDownloaded::now(&user.user_id, &file))?;
    // An audit event; the user already has the URL, so its failure must not fail the request.
    if let Err(error) = state
        .events
        .send(&state.topics.download_events, &event)
        .await
    {
        tracing::warn!(%error, "download event not published");
    }
    Ok(Json(json!({
        "download_url": download_url,
        "expires_in": state.presign_expiry.as_secs(),
    })))
}

/// `POST /api/v1/media/delete`: soft delete, notify, remove the object (or schedule its removal).
#[utoipa::path(post, path = "/api/v1/media/delete", operation_id = "legacy_delete", tag = "legacy",
    request_body(content = crate::openapi::FileRequest),
    responses(
        (status = 200, description = "Deleted", body = crate::openapi::Deleted),
        (status = 404, description = "No active file of the caller's at that path", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Value>> {
    state.limits.check(&user.user_id, Route::LegacyDelete, 1)?;
    let file = owned_file(&state, &user, &body).await?;
    // The deletion's own identity, recorded on the row like the delete saga's request id.
    let request_id = uuid::Uuid::new_v4().to_string();
    if !state
        .files
        .soft_delete(&user.user_id, &file.file_path, &request_id)
        .await
        .map_err(ApiError::unexpected)?
    {
        // Another request deleted it since the lookup; that one announces it.
        return Err(ApiError::NotFound("Not found".into()));
    }
    let deleted = to_document(&FileDeleted::now(&user.user_id, &file))?;
    // The row is already gone for the user; a notification failure is logged, not surfaced
    // (answering 500 would invite a retry that can only 404).
    if let Err(error) = state
        .events
        .send(&state.topics.delete_events, &deleted)
        .await
    {
        tracing::error!(%error, file_path = %file.file_path, "delete notification not published");
    }
    if let Err(error) = state.objects.remove(&file.file_path).await {
        tracing::warn!(%error, file_path = %file.file_path, "object removal failed; scheduling a retry");
        let retry = to_document(&DeleteRetry::first(&user.user_id, &file, &request_id))?;
        if let Err(error) = state.events.send(&state.topics.delete_retry, &retry).await {
            // Last resort: the bucket's lifecycle rules and operators see this log line.
            tracing::error!(%error, file_path = %file.file_path, "object removal could not be scheduled");
        }
    }
    Ok(Json(json!({ "success": true })))
}

/// An event as the JSON document the sink encodes.
fn to_document(event: &impl serde::Serialize) -> ApiResult<Value> {
    serde_json::to_value(event).map_err(ApiError::unexpected)
}
