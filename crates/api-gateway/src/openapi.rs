//! The gateway's OpenAPI 3.1 document, served at `GET /openapi.json`.
//!
//! Generated from the code: each handler carries its `#[utoipa::path]` (route, parameters,
//! body, its own outcomes) and the body and answer types below derive their schemas. Two
//! things are filled in when the document is served, because they are configuration rather
//! than code: the route keys the allowlist (`routes.yaml`, hot-reloaded) accepts right now, as
//! the `key` parameter's `enum`, and the batch size limit. The answers every route shares (a
//! malformed body, a missing token, the rate limit, an unavailable dependency) are added to
//! every operation in one place, [`shared_responses`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::state::AppState;

/// Every error answer: `{"error": <code>, "message": <text>}`.
#[derive(Debug, ToSchema)]
pub struct ErrorBody {
    /// A stable code (`bad_request`, `unauthorized`, `rate_limited`, ...).
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// An event: a JSON object whose fields must fit the topic's Avro schema. `user_id` and
/// `email` are set from the token, whatever the body says.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"message": "hello", "timestamp": "2026-12-01T10:00:00Z"}))]
pub struct Event(pub BTreeMap<String, Value>);

/// A batch of events for one topic.
#[derive(Debug, ToSchema)]
pub struct Batch {
    /// The events, in the order they are produced (1 to `gateway.batch_max_events`).
    #[schema(min_items = 1)]
    pub events: Vec<Event>,
}

/// One event's result in a batch answer.
#[derive(Debug, ToSchema)]
pub struct BatchItem {
    /// The event's position in the request.
    pub index: u32,
    /// 204 when produced; otherwise the status a single request would have got.
    pub status: u16,
    /// The error code, for a failed event.
    pub error: Option<String>,
    /// The error message, for a failed event.
    pub message: Option<String>,
}

/// The answer to a batch.
#[derive(Debug, ToSchema)]
pub struct BatchAnswer {
    /// Events produced.
    pub accepted: u32,
    /// Events refused.
    pub rejected: u32,
    /// One result per event, in request order.
    pub results: Vec<BatchItem>,
}

/// A media type the platform accepts for uploads.
#[derive(Debug, ToSchema)]
pub enum MediaType {
    #[schema(rename = "image/jpeg")]
    ImageJpeg,
    #[schema(rename = "image/png")]
    ImagePng,
    #[schema(rename = "image/gif")]
    ImageGif,
    #[schema(rename = "image/webp")]
    ImageWebp,
    #[schema(rename = "video/mp4")]
    VideoMp4,
    #[schema(rename = "video/webm")]
    VideoWebm,
    #[schema(rename = "audio/mpeg")]
    AudioMpeg,
    #[schema(rename = "audio/wav")]
    AudioWav,
    #[schema(rename = "audio/ogg")]
    AudioOgg,
}

/// An upload to start.
#[derive(Debug, ToSchema)]
pub struct UploadRequest {
    /// The file's name: one path segment, no control characters, at most 255 bytes.
    #[schema(min_length = 1, max_length = 255)]
    pub file_name: String,
    /// Its media type.
    pub media_type: MediaType,
    /// Its size in bytes.
    #[schema(minimum = 1)]
    pub file_size: i64,
}

/// A file of the caller's, by its object key.
#[derive(Debug, ToSchema)]
pub struct FileRequest {
    /// The object key (`files/<user>/<id>/<name>`, or `uploads/...` for an upload in flight).
    #[schema(min_length = 1, max_length = 1024)]
    pub file_path: String,
}

/// An accepted intent: notifications about it carry this `request_id`.
#[derive(Debug, ToSchema)]
pub struct Accepted {
    /// Correlates the saga's notifications with this request.
    #[schema(format = "uuid")]
    pub request_id: String,
}

/// A presigned upload (legacy route).
#[derive(Debug, ToSchema)]
pub struct UploadUrl {
    /// PUT the file here, with the request's media type as `Content-Type`.
    pub upload_url: String,
    /// Where the file will be.
    pub file_path: String,
    /// Seconds the URL stays valid.
    pub expires_in: u64,
}

/// A presigned download (legacy route).
#[derive(Debug, ToSchema)]
pub struct DownloadUrl {
    /// GET the file here.
    pub download_url: String,
    /// Seconds the URL stays valid.
    pub expires_in: u64,
}

/// A completed legacy deletion.
#[derive(Debug, ToSchema)]
pub struct Deleted {
    /// Always true.
    pub success: bool,
}

/// The process answers.
#[derive(Debug, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// Readiness: every dependency check.
#[derive(Debug, ToSchema)]
pub struct Readiness {
    /// `ok` when every check passes.
    pub status: String,
    /// `ok` or `error` per check (broker, registry, routes, jwks).
    pub checks: BTreeMap<String, String>,
}

/// The `Idempotency-Key` header of the event and intent routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// A retry with the same key (same user, same path) within the window (24 h by default)
    /// gets the first answer, marked `Idempotent-Replayed: true`, and produces nothing; the
    /// same key with another body is 422; while the first attempt runs, 409.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    pub idempotency_key: Option<String>,
}

/// `GET /healthz`: the process runs (any method is accepted).
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses((status = 200, description = "The process runs", body = Health)))]
#[allow(dead_code)]
fn healthz_doc() {}

/// `GET /readyz`: every dependency is reachable (any method is accepted).
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is not reachable", body = Readiness),
    ))]
#[allow(dead_code)]
fn readyz_doc() {}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn serve(State(state): State<AppState>) -> Json<Value> {
    let routes = state.routes.current();
    Json(document(
        &routes.webhook_keys(),
        &routes.external_keys(),
        state.batch_max_events,
    ))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Event Substrate api-gateway",
        description = "Authenticated ingress: events and media intents to Avro on the broker. \
            Every success is answered after the broker acknowledged the record.",
    ),
    paths(
        crate::routes::events::webhook,
        crate::routes::events::external,
        crate::routes::events::batch,
        crate::routes::intents::upload,
        crate::routes::intents::download,
        crate::routes::intents::delete,
        crate::routes::legacy::upload_url,
        crate::routes::legacy::download_url,
        crate::routes::legacy::delete,
        healthz_doc,
        readyz_doc,
        serve,
    ),
    components(schemas(ErrorBody, Event, Batch, BatchItem, BatchAnswer, MediaType, UploadRequest,
        FileRequest, Accepted, UploadUrl, DownloadUrl, Deleted, Health, Readiness)),
    tags(
        (name = "events", description = "Events for allowlisted topics"),
        (name = "media", description = "Upload, download and delete sagas"),
        (name = "legacy", description = "Synchronous media routes of the current frontend"),
        (name = "health", description = "Probes and this document"),
    )
)]
struct ApiDoc;

/// The document with the current allowlist keys and batch limit.
pub fn document(webhook_keys: &[String], external_keys: &[String], batch_max: usize) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    doc["openapi"] = json!("3.1.0");
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "A Supabase access token (HS256 or ES256)"},
        "webhook_secret": {"type": "apiKey", "in": "header", "name": "X-Webhook-Secret",
                           "description": "The database's shared secret"},
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let keys = if path.starts_with("/webhooks/") {
                Some(webhook_keys)
            } else if path.starts_with("/api/v1/events/") {
                Some(external_keys)
            } else {
                None
            };
            let Some(operations) = item.as_object_mut() else {
                continue;
            };
            for operation in operations.values_mut() {
                if let Some(keys) = keys {
                    restrict_key(operation, keys);
                }
                shared_responses(path, operation);
            }
        }
    }
    doc["components"]["schemas"]["Batch"]["properties"]["events"]["maxItems"] = json!(batch_max);
    doc
}

/// The `key` path parameter may only be a key the allowlist has now (any other is 403).
fn restrict_key(operation: &mut Value, keys: &[String]) {
    let Some(params) = operation["parameters"].as_array_mut() else {
        return;
    };
    for param in params.iter_mut().filter(|p| p["name"] == "key") {
        param["schema"] = json!({"type": "string", "enum": keys});
    }
}

/// Adds the answers every route of its kind shares, unless the handler documents its own.
fn shared_responses(path: &str, operation: &mut Value) {
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
    };
    let mut shared = Vec::new();
    if path.starts_with("/api/") || path.starts_with("/webhooks/") {
        shared.extend([
            (
                "400",
                error("The body is not a JSON object, or a field is invalid"),
            ),
            ("401", error("Missing or invalid credentials")),
            (
                "413",
                error("The body is larger than the limit (1 MiB by default)"),
            ),
            (
                "500",
                error("An unexpected failure (logged; details are not shown)"),
            ),
            (
                "503",
                error(
                    "The broker, registry or database is unavailable, or the \
                gateway is at its concurrency limit; retry later",
                ),
            ),
        ]);
    }
    if path.starts_with("/api/") {
        let mut limited = error("The user's rate limit is spent");
        limited["headers"] = json!({"Retry-After": {
            "description": "Seconds until the request fits the limit",
            "schema": {"type": "integer", "minimum": 1}}});
        shared.push(("429", limited));
    }
    let responses = &mut operation["responses"];
    for (code, response) in shared {
        if responses.get(code).is_none() {
            responses[code] = response;
        }
    }
    if path.starts_with("/api/v1/events/")
        || path.starts_with("/api/v1/media/") && path.ends_with("-intent")
    {
        for (code, description) in [
            (
                "409",
                "Another attempt with this Idempotency-Key is still running",
            ),
            ("422", "This Idempotency-Key was used with a different body"),
        ] {
            responses[code] = error(description);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Route;

    #[test]
    fn every_rate_limited_route_is_named_by_its_operation_id() {
        // gateway.rate_limits.routes is keyed by operation id: the two lists must not drift.
        let doc = document(&[], &[], 100);
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.values())
            .filter_map(|item| item.as_object())
            .flat_map(|operations| operations.values())
            .filter_map(|operation| operation["operationId"].as_str())
            .collect();
        for route in Route::ALL {
            assert!(
                ids.contains(&route.name()),
                "{} is no operation id: {ids:?}",
                route.name()
            );
        }
    }
}
