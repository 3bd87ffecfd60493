//! Saga intents: validate, stamp identity and ids on the server, publish, answer 202 with the
//! `request_id` the client can correlate notifications with. Every field the server sets
//! (`user_id`, `request_id`, `request_time`) wins over anything in the body.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::JsonObject;
use crate::auth::AuthUser;
use crate::domain;
use crate::edges::SinkError;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `POST /api/v1/media/upload-intent` → `internal.media.upload.intent` (by default).
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let file_name = domain::file_name(&body)?;
    let media_type = domain::media_type(&body)?;
    let file_size = domain::file_size(&body)?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = json!({
        "user_id": user.user_id,
        "file_name": file_name,
        "media_type": media_type,
        "file_size": file_size,
        "request_id": request_id,
        "request_time": substrate::time::now_rfc3339(),
    });
    let topic = state.topics.upload_intent.clone();
    accept(&state, &topic, event, request_id).await
}

/// `POST /api/v1/media/download-intent` → `internal.media.download.intent`.
pub async fn download(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let topic = state.topics.download_intent.clone();
    path_intent(state, user, body, &topic).await
}

/// `POST /api/v1/media/delete-intent` → `internal.media.delete.intent`.
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let topic = state.topics.delete_intent.clone();
    path_intent(state, user, body, &topic).await
}

async fn path_intent(
    state: AppState,
    user: AuthUser,
    body: serde_json::Map<String, Value>,
    topic: &str,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // Ownership is checked by the media-service against `media_files`, not here.
    let file_path = domain::file_path(&body)?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = json!({
        "user_id": user.user_id,
        "file_path": file_path,
        "request_id": request_id,
        "request_time": substrate::time::now_rfc3339(),
    });
    accept(&state, topic, event, request_id).await
}

async fn accept(
    state: &AppState,
    topic: &str,
    event: Value,
    request_id: String,
) -> ApiResult<(StatusCode, Json<Value>)> {
    state
        .events
        .send(topic, &event)
        .await
        .map_err(|error| match error {
            SinkError::Unavailable(message) => ApiError::Unavailable(message),
            // The server built this event from validated input, so a schema problem is ours.
            other => ApiError::unexpected(other),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "request_id": request_id })),
    ))
}
