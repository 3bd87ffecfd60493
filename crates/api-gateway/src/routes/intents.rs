//! Saga intents: validate, stamp identity and ids on the server, publish, answer 202 with the
//! `request_id` the client can correlate notifications with. Every field the server sets
//! (`user_id`, `request_id`, `request_time`) wins over anything in the body. Each takes an
//! `Idempotency-Key` (a retry gets the first `request_id`) and counts against the user's
//! `media` rate limit.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value, json};
use substrate::events::SinkError;
use substrate::media::events::{FileIntent, UploadIntent};

use super::JsonObject;
use crate::auth::AuthUser;
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, IdempotencyKey, Outcome, Recorded};
use crate::ratelimit::Route;
use crate::state::AppState;

/// `POST /api/v1/media/upload-intent` → `internal.media.upload.intent` (by default).
#[utoipa::path(post, path = "/api/v1/media/upload-intent", operation_id = "upload_intent", tag = "media",
    params(crate::openapi::IdempotencyHeader),
    request_body(content = crate::openapi::UploadRequest),
    responses((status = 202, description = "Accepted: the saga checks the credit and signs an upload URL",
        body = crate::openapi::Accepted)),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    uri: Uri,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    state.limits.check(&user.user_id, Route::UploadIntent, 1)?;
    let file_name = domain::file_name(&body)?;
    let media_type = domain::media_type(&body)?;
    let file_size = domain::file_size(&body)?;
    let topic = state.topics.upload_intent.clone();
    let user_id = user.user_id.clone();
    accept(&state, &user, &uri, &headers, body, &topic, |request_id| {
        UploadIntent {
            user_id,
            file_name,
            media_type,
            file_size,
            request_id,
            request_time: substrate::time::now_rfc3339(),
        }
    })
    .await
}

/// `POST /api/v1/media/download-intent` → `internal.media.download.intent`.
#[utoipa::path(post, path = "/api/v1/media/download-intent", operation_id = "download_intent", tag = "media",
    params(crate::openapi::IdempotencyHeader),
    request_body(content = crate::openapi::FileRequest),
    responses((status = 202, description = "Accepted: the saga checks ownership and signs a download URL",
        body = crate::openapi::Accepted)),
    security(("bearer" = [])))]
pub async fn download(
    State(state): State<AppState>,
    user: AuthUser,
    uri: Uri,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let topic = state.topics.download_intent.clone();
    path_intent(
        &state,
        &user,
        &uri,
        &headers,
        body,
        &topic,
        Route::DownloadIntent,
    )
    .await
}

/// `POST /api/v1/media/delete-intent` → `internal.media.delete.intent`.
#[utoipa::path(post, path = "/api/v1/media/delete-intent", operation_id = "delete_intent", tag = "media",
    params(crate::openapi::IdempotencyHeader),
    request_body(content = crate::openapi::FileRequest),
    responses((status = 202, description = "Accepted: the saga checks ownership and deletes the file",
        body = crate::openapi::Accepted)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    uri: Uri,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let topic = state.topics.delete_intent.clone();
    path_intent(
        &state,
        &user,
        &uri,
        &headers,
        body,
        &topic,
        Route::DeleteIntent,
    )
    .await
}

async fn path_intent(
    state: &AppState,
    user: &AuthUser,
    uri: &Uri,
    headers: &HeaderMap,
    body: Map<String, Value>,
    topic: &str,
    route: Route,
) -> ApiResult<Response> {
    state.limits.check(&user.user_id, route, 1)?;
    // Ownership is checked by the media-service against `media_files`, not here.
    let file_path = domain::file_path(&body)?;
    let user_id = user.user_id.clone();
    accept(state, user, uri, headers, body, topic, |request_id| {
        FileIntent {
            user_id,
            file_path,
            request_id,
            request_time: substrate::time::now_rfc3339(),
        }
    })
    .await
}

/// Publishes the event `intent` builds around the server's `request_id`, once per
/// `Idempotency-Key`.
async fn accept<E: Serialize>(
    state: &AppState,
    user: &AuthUser,
    uri: &Uri,
    headers: &HeaderMap,
    body: Map<String, Value>,
    topic: &str,
    intent: impl FnOnce(String) -> E,
) -> ApiResult<Response> {
    let key = IdempotencyKey::from_headers(headers)?;
    idempotency::once(
        &*state.idempotency,
        key,
        &user.user_id,
        uri.path(),
        &Value::Object(body),
        |identity| async move {
            let event = serde_json::to_value(intent(identity.request_id.clone()))
                .map_err(ApiError::unexpected)?;
            state
                .events
                .send_event(topic, &event, &identity.event_id)
                .await
                .map_err(|error| match error {
                    SinkError::Unavailable(message) => ApiError::Unavailable(message),
                    // The server built this event from validated input, so a schema problem is ours.
                    other => ApiError::unexpected(other),
                })?;
            Ok(Outcome::Complete(Recorded::json(
                StatusCode::ACCEPTED,
                json!({ "request_id": identity.request_id }),
            )))
        },
    )
    .await
}
