//! Event ingestion: `/webhooks/{key}` (Supabase triggers, shared secret),
//! `/api/v1/events/{key}` (the frontend, Supabase JWT) and its batch form
//! `/api/v1/events/{key}/batch`. The key resolves to a topic only through the allowlist; the
//! body is encoded with the topic's latest schema and the answer comes only after the broker
//! acknowledged the record. User routes take an `Idempotency-Key` and count against the
//! user's `events` rate limit (a batch one token per event).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::JsonObject;
use crate::auth::{AuthUser, WebhookCaller};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, IdempotencyKey, Outcome, Recorded};
use crate::ratelimit::Route;
use crate::state::AppState;
use substrate::events::SinkError;

/// `POST /webhooks/{key}`: published exactly as sent (the caller is the database itself).
#[utoipa::path(post, path = "/webhooks/{key}", operation_id = "webhook", tag = "events",
    params(("key" = String, Path, description = "A key of `webhookRoutes` in routes.yaml")),
    request_body(content = crate::openapi::Event, description = "The database's event"),
    responses(
        (status = 204, description = "Acknowledged by the broker"),
        (status = 403, description = "The key is not in the allowlist", body = crate::openapi::ErrorBody),
    ),
    security(("webhook_secret" = [])))]
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
#[utoipa::path(post, path = "/api/v1/events/{key}", operation_id = "publish_event", tag = "events",
    params(("key" = String, Path, description = "A key of `externalRoutes` in routes.yaml"),
        crate::openapi::IdempotencyHeader),
    request_body(content = crate::openapi::Event),
    responses(
        (status = 204, description = "Acknowledged by the broker"),
        (status = 403, description = "The key is not in the allowlist", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn external(
    State(state): State<AppState>,
    user: AuthUser,
    Path(params): Path<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let topic = external_topic(&state, &params)?;
    state.limits.check(&user.user_id, Route::PublishEvent, 1)?;
    let key = IdempotencyKey::from_headers(&headers)?;
    let sent = Value::Object(body.clone());
    let document = Value::Object(stamped(body, &user));
    idempotency::once(
        &*state.idempotency,
        key,
        &user.user_id,
        uri.path(),
        &sent,
        |identity| async move {
            state
                .events
                .send_event(&topic, &document, &identity.event_id)
                .await
                .map_err(|error| client_error(&topic, error))?;
            Ok(Outcome::Complete(Recorded::empty(StatusCode::NO_CONTENT)))
        },
    )
    .await
}

/// `POST /api/v1/events/{key}/batch`: `{"events": [<event>, ...]}`, 1 to
/// `gateway.batch_max_events` events for one topic. Each event is checked and stamped like a
/// single one; those that fit the schema are produced in their order, each failing one is
/// reported on its own. The answer is 200 with one result per event, in order
/// (`{"index", "status"}`, plus `error` and `message` for a failure) and the counts, unless
/// nothing was produced because the broker or registry is unavailable: then the whole batch is
/// answered 503 and may be sent again as it is.
#[utoipa::path(post, path = "/api/v1/events/{key}/batch", operation_id = "publish_batch", tag = "events",
    params(("key" = String, Path, description = "A key of `externalRoutes` in routes.yaml"),
        crate::openapi::IdempotencyHeader),
    request_body(content = crate::openapi::Batch),
    responses(
        (status = 200, description = "One result per event; the events that fit were produced in order",
            body = crate::openapi::BatchAnswer),
        (status = 403, description = "The key is not in the allowlist", body = crate::openapi::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn batch(
    State(state): State<AppState>,
    user: AuthUser,
    Path(params): Path<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let topic = external_topic(&state, &params)?;
    let items = batch_items(&body, state.batch_max_events)?;
    let cost = u32::try_from(items.len()).unwrap_or(u32::MAX);
    state
        .limits
        .check(&user.user_id, Route::PublishBatch, cost)?;
    let key = IdempotencyKey::from_headers(&headers)?;
    let sent = Value::Object(body.clone());
    let user_id = user.user_id.clone();
    idempotency::once(
        &*state.idempotency,
        key,
        &user_id,
        uri.path(),
        &sent,
        |identity| async move {
            let mut results: Vec<Option<Value>> = vec![None; items.len()];
            let mut events = Vec::new();
            let mut positions = Vec::new();
            for (index, item) in items.iter().enumerate() {
                match item {
                    Value::Object(event) => {
                        events.push((
                            Value::Object(stamped(event.clone(), &user)),
                            identity.item(index),
                        ));
                        positions.push(index);
                    }
                    _ => {
                        results[index] = Some(item_failure(
                            index,
                            ApiError::BadRequest("each event must be a JSON object".into()),
                        ));
                    }
                }
            }
            let mut unavailable = None;
            for (index, result) in positions
                .into_iter()
                .zip(state.events.send_events(&topic, &events).await)
            {
                results[index] = Some(match result {
                    Ok(()) => json!({"index": index, "status": 204}),
                    Err(error) => {
                        let error = client_error(&topic, error);
                        if matches!(error, ApiError::Unavailable(_)) {
                            unavailable.get_or_insert_with(|| error.to_string());
                        }
                        item_failure(index, error)
                    }
                });
            }
            let results: Vec<Value> = results.into_iter().flatten().collect();
            let accepted = results.iter().filter(|r| r["status"] == 204).count();
            if let (0, Some(message)) = (accepted, unavailable) {
                return Err(ApiError::Unavailable(message));
            }
            let answer = Recorded::json(
                StatusCode::OK,
                json!({
                    "accepted": accepted,
                    "rejected": results.len() - accepted,
                    "results": results,
                }),
            );
            Ok(if accepted == items.len() {
                Outcome::Complete(answer)
            } else {
                Outcome::Partial(answer)
            })
        },
    )
    .await
}

/// The events of a batch body, or why the batch as a whole is refused.
fn batch_items(body: &Map<String, Value>, max: usize) -> ApiResult<Vec<Value>> {
    if let Some(other) = body.keys().find(|k| k.as_str() != "events") {
        return Err(ApiError::BadRequest(format!(
            "unknown field `{other}`: a batch is {{\"events\": [...]}}"
        )));
    }
    match body.get("events") {
        Some(Value::Array(items)) if items.is_empty() => Err(ApiError::BadRequest(
            "`events` is empty: a batch needs at least one event".into(),
        )),
        Some(Value::Array(items)) if items.len() > max => Err(ApiError::BadRequest(format!(
            "{} events in one batch; at most {max} are accepted",
            items.len()
        ))),
        Some(Value::Array(items)) => Ok(items.clone()),
        _ => Err(ApiError::BadRequest(
            "a batch is {\"events\": [...]}, an array of event objects".into(),
        )),
    }
}

fn item_failure(index: usize, error: ApiError) -> Value {
    let (status, code, message) = error.describe();
    json!({"index": index, "status": status.as_u16(), "error": code, "message": message})
}

fn external_topic(state: &AppState, params: &HashMap<String, String>) -> ApiResult<String> {
    let key = params.get("key").map(String::as_str).unwrap_or_default();
    state
        .routes
        .current()
        .external_topic(key)
        .map(str::to_owned)
        .ok_or_else(|| forbidden(key))
}

/// The event with the token's identity in place of whatever the body said.
fn stamped(mut event: Map<String, Value>, user: &AuthUser) -> Map<String, Value> {
    event.insert("user_id".into(), Value::String(user.user_id.clone()));
    // A token without an email leaves it empty rather than to the body: the body must not
    // choose whose address a broadcast shows.
    event.insert(
        "email".into(),
        Value::String(user.email.clone().unwrap_or_default()),
    );
    event
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
