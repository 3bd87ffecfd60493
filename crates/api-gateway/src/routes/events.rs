//! Event ingestion: `/webhooks/{key}` (Supabase triggers, shared secret) and
//! `/api/v1/events/{key}` (the frontend, Supabase JWT). The key resolves to a topic only through
//! the allowlist; the body is encoded with the topic's latest schema and the answer (204) comes
//! only after the broker acknowledged the record.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::JsonObject;
use crate::auth::{AuthUser, WebhookCaller};
use crate::edges::SinkError;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `POST /webhooks/{key}`: published exactly as sent (the caller is the database itself).
pub async fn webhook(
    State(state): State<AppState>,
    _caller: WebhookCaller,
    Path(params): Path<HashMap<String, String>>,
    JsonObject(body): JsonObject,
) -> ApiResult<StatusCode> {
    let key = params.get("key").map(String::as_str).unwrap_or_default();
    let topic = state
        .routes
        .current()
        .webhook_topic(key)
        .map(str::to_owned)
        .ok_or_else(|| forbidden(key))?;
    publish(&state, &topic, Value::Object(body)).await
}

/// `POST /api/v1/events/{key}`: identity fields are overwritten from the verified token, so a
/// body cannot speak for another user.
pub async fn external(
    State(state): State<AppState>,
    user: AuthUser,
    Path(params): Path<HashMap<String, String>>,
    JsonObject(mut body): JsonObject,
) -> ApiResult<StatusCode> {
    let key = params.get("key").map(String::as_str).unwrap_or_default();
    let topic = state
        .routes
        .current()
        .external_topic(key)
        .map(str::to_owned)
        .ok_or_else(|| forbidden(key))?;
    body.insert("user_id".into(), Value::String(user.user_id));
    // A token without an email leaves it empty rather than to the body: the body must not
    // choose whose address a broadcast shows.
    body.insert(
        "email".into(),
        Value::String(user.email.unwrap_or_default()),
    );
    publish(&state, &topic, Value::Object(body)).await
}

fn forbidden(key: &str) -> ApiError {
    tracing::warn!(topic_key = key, "route key not in the allowlist");
    ApiError::Forbidden("Forbidden (Topic mapping not found in allowlist)".into())
}

async fn publish(state: &AppState, topic: &str, document: Value) -> ApiResult<StatusCode> {
    state
        .events
        .send(topic, &document)
        .await
        .map_err(|error| client_error(topic, error))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Maps sink failures for caller-supplied documents: their shape is the caller's business (400),
/// an outage is ours (503).
pub fn client_error(topic: &str, error: SinkError) -> ApiError {
    match error {
        SinkError::Schema(message) => {
            ApiError::BadRequest(format!("Schema violation for topic {topic}: {message}"))
        }
        SinkError::UnknownSubject(_) => ApiError::BadRequest(format!(
            "Failed to resolve schema registry formatting for topic: {topic}"
        )),
        SinkError::Unavailable(message) => ApiError::Unavailable(message),
        SinkError::Rejected(message) => ApiError::unexpected(message),
    }
}
