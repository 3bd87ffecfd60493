//! MinIO bucket-notification webhooks.
//!
//! `/webhooks/media-upload` (prefix `uploads/`): for **every** created object in the POST,
//! produce `internal.media.upload.received` (acknowledged) and move the object to `files/…`
//! (bounded by a timeout; a failed move is retried by the move saga). `/webhooks/file-ready`
//! (prefix `files/`): produce `internal.media.file.ready` for every created object.
//!
//! MinIO redelivers on any non-2xx answer, so a produce failure answers 500 and the whole POST
//! comes back; the downstream sagas key by path, so a repeated event is harmless. Requests must
//! carry `Authorization: Bearer <token>` (MinIO's webhook `auth_token`); without a configured
//! token every webhook is refused unless `webhook.require_token` is off (local development).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use substrate::events::{EventSink, SinkError};
use substrate::http::json_error;
use substrate::media::ObjectStore;
use substrate::media::events::{FileReady, UploadReceived};
use subtle::ConstantTimeEq;

use crate::configuration::Topics;
use crate::domain;

/// What the webhook handlers need.
#[derive(Debug, Clone)]
pub struct WebhookState {
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// For the `uploads/` → `files/` move.
    pub storage: Arc<dyn ObjectStore>,
    /// Topic names.
    pub topics: Arc<Topics>,
    /// Only notifications about this bucket are processed.
    pub bucket: String,
    /// Expected bearer token.
    pub token: Option<SecretString>,
    /// Refuse all webhooks when no token is configured.
    pub require_token: bool,
    /// Bound of the synchronous move.
    pub move_timeout: Duration,
}

/// The webhook routes (POST only; other methods get 405 JSON).
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/webhooks/media-upload", post(media_upload))
        .route("/webhooks/file-ready", post(file_ready))
        .method_not_allowed_fallback(|| async {
            json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            )
        })
        .with_state(state)
}

#[derive(Debug, Default, Deserialize)]
struct Notification {
    #[serde(default)]
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct Record {
    #[serde(default, rename = "eventname")]
    event_name: Option<String>,
    #[serde(default, rename = "eventtime")]
    event_time: Option<String>,
    s3: S3Entity,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    #[serde(default)]
    bucket: Option<BucketEntity>,
    object: ObjectEntity,
}

#[derive(Debug, Deserialize)]
struct BucketEntity {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ObjectEntity {
    key: String,
    #[serde(default)]
    size: i64,
    #[serde(default, rename = "contenttype")]
    content_type: Option<String>,
    #[serde(default, rename = "usermetadata")]
    user_metadata: Option<HashMap<String, String>>,
}

/// A created object from a notification, with its key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    /// Decoded object key.
    pub key: String,
    /// Size in bytes.
    pub size: i64,
    /// Content type (or empty).
    pub content_type: String,
    /// Uploader's email from the object metadata (or empty).
    pub email: String,
    /// Event time (or now).
    pub event_time: String,
}

/// Keys are matched case-insensitively, as MinIO clients have always done.
fn lowercase_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.to_lowercase(), lowercase_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_keys).collect()),
        other => other,
    }
}

/// Decodes a MinIO key (Go's `url.QueryUnescape`: `%XX` and `+` → space); a key that does not
/// decode is used as is.
pub fn query_unescape(key: &str) -> String {
    let plus_as_space = key.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .unwrap_or_else(|_| key.to_owned())
}

/// The created objects of a notification body that belong to `bucket`.
pub fn created_objects(body: &[u8], bucket: &str) -> Result<Vec<CreatedObject>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let notification: Notification =
        serde_json::from_value(lowercase_keys(value)).map_err(|e| e.to_string())?;
    Ok(notification
        .records
        .into_iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .is_none_or(|name| name.starts_with("s3:ObjectCreated:"))
        })
        .filter(|r| {
            r.s3.bucket
                .as_ref()
                .and_then(|b| b.name.as_deref())
                .is_none_or(|name| name == bucket)
        })
        .map(|r| {
            let metadata = r.s3.object.user_metadata.unwrap_or_default();
            let email = metadata
                .get("email")
                .or_else(|| metadata.get("x-amz-meta-email"))
                .cloned()
                .unwrap_or_default();
            CreatedObject {
                key: query_unescape(&r.s3.object.key),
                size: r.s3.object.size,
                content_type: r.s3.object.content_type.unwrap_or_default(),
                email,
                event_time: r
                    .event_time
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(substrate::time::now_rfc3339),
            }
        })
        .collect())
}

/// Why a webhook POST was not processed; each answer is the platform's JSON error body.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 401: no or a wrong bearer token (or none configured while one is required).
    #[error("missing or invalid webhook token")]
    Unauthorized,
    /// 400: the body is not a bucket notification.
    #[error("Invalid event format: {0}")]
    BadRequest(String),
    /// 500: an event was not acknowledged; the object store redelivers the whole POST.
    #[error("Failed to produce event")]
    ProduceFailed(#[source] SinkError),
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::ProduceFailed(error) => {
                tracing::error!(%error, "webhook event not produced; the object store will redeliver");
                (StatusCode::INTERNAL_SERVER_ERROR, "produce_failed")
            }
        };
        json_error(status, code, self.to_string())
    }
}

/// Proof that the request carries the configured bearer token (MinIO's webhook `auth_token`),
/// compared in constant time. Without a configured token every request is refused, unless
/// `webhook.require_token` is off (local development).
#[derive(Debug, Clone, Copy)]
pub struct Authorized;

impl FromRequestParts<WebhookState> for Authorized {
    type Rejection = WebhookError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebhookState,
    ) -> Result<Self, WebhookError> {
        let Some(expected) = state
            .token
            .as_ref()
            .map(|t| t.expose_secret())
            .filter(|t| !t.is_empty())
        else {
            return if state.require_token {
                Err(WebhookError::Unauthorized)
            } else {
                Ok(Self)
            };
        };
        let given = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(given) if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) => Ok(Self),
            _ => Err(WebhookError::Unauthorized),
        }
    }
}

/// The upload event for an object under `uploads/<user>/<id>/<name>`, or `None` for other keys.
pub fn upload_received(object: &CreatedObject) -> Option<UploadReceived> {
    let rest = object.key.strip_prefix("uploads/")?;
    let segments: Vec<&str> = object.key.split('/').collect();
    // Every segment a plain name of at most 255 bytes too, not only the whole key: the user id
    // and file name are taken from them (a 300-byte "user id" got through, found by fuzzing).
    if segments.len() < 4
        || domain::safe_key("key", &object.key).is_err()
        || segments
            .iter()
            .any(|segment| domain::safe_segment("key", segment).is_err())
    {
        return None;
    }
    let content_type = if object.content_type.is_empty() {
        "application/octet-stream"
    } else {
        &object.content_type
    };
    Some(UploadReceived {
        user_id: segments[1].to_owned(),
        email: object.email.clone(),
        file_path: object.key.clone(),
        file_name: segments[segments.len() - 1].to_owned(),
        file_size: object.size,
        media_type: content_type.to_owned(),
        upload_time: object.event_time.clone(),
        permanent_path: format!("files/{rest}"),
        retry_count: 0,
    })
}

/// The created objects of the notification in `body`.
fn notification(state: &WebhookState, body: &[u8]) -> Result<Vec<CreatedObject>, WebhookError> {
    created_objects(body, &state.bucket).map_err(WebhookError::BadRequest)
}

/// Publishes `event` to `topic`, acknowledged.
async fn produce(
    state: &WebhookState,
    topic: &str,
    event: &impl serde::Serialize,
) -> Result<(), WebhookError> {
    let document = serde_json::to_value(event)
        .map_err(|error| WebhookError::ProduceFailed(SinkError::Schema(error.to_string())))?;
    state
        .events
        .send(topic, &document)
        .await
        .map_err(WebhookError::ProduceFailed)
}

/// 200; with a plain-text note when nothing in the POST was for this endpoint (MinIO only looks
/// at the status).
fn processed(count: usize, nothing: &'static str) -> Response {
    if count == 0 {
        (StatusCode::OK, nothing).into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

async fn media_upload(
    State(state): State<WebhookState>,
    _: Authorized,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let objects = notification(&state, &body)?;
    let mut handled = 0;
    for object in &objects {
        let Some(event) = upload_received(object) else {
            tracing::info!(key = %object.key, "not an upload key; skipped");
            continue;
        };
        produce(&state, &state.topics.upload_received, &event).await?;
        handled += 1;
        let (from, to) = (&event.file_path, &event.permanent_path);
        match tokio::time::timeout(state.move_timeout, state.storage.move_object(from, to)).await {
            Ok(Ok(moved)) => tracing::info!(src = %from, dst = %to, ?moved, "upload moved"),
            Ok(Err(error)) => {
                tracing::warn!(%error, src = %from, "move failed; the move saga will retry")
            }
            Err(_) => tracing::warn!(src = %from, "move timed out; the move saga will retry"),
        }
    }
    Ok(processed(handled, "No processable upload records"))
}

async fn file_ready(
    State(state): State<WebhookState>,
    _: Authorized,
    body: Bytes,
) -> Result<Response, WebhookError> {
    let objects = notification(&state, &body)?;
    let mut handled = 0;
    for object in objects.iter().filter(|o| o.key.starts_with("files/")) {
        let event = FileReady {
            file_path: object.key.clone(),
            file_size: object.size,
            upload_time: object.event_time.clone(),
        };
        produce(&state, &state.topics.file_ready, &event).await?;
        handled += 1;
    }
    Ok(processed(handled, "No processable file-ready records"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_like_go_query_unescape() {
        assert_eq!(
            query_unescape("uploads%2Fu%2F1%2Fmy+photo+%281%29.jpg"),
            "uploads/u/1/my photo (1).jpg"
        );
        assert_eq!(query_unescape("files%2F%C3%BC.png"), "files/ü.png");
        assert_eq!(query_unescape("a%2Bb"), "a+b");
        assert_eq!(
            query_unescape("bad%ff"),
            "bad%ff",
            "undecodable keys are kept"
        );
    }

    #[test]
    fn every_created_record_of_the_bucket_is_returned() {
        let body = br#"{"EventName":"s3:ObjectCreated:Put","Records":[
          {"eventName":"s3:ObjectCreated:Put","eventTime":"2026-02-25T10:00:00.000Z","s3":{"bucket":{"name":"media-uploads"},"object":{"key":"uploads%2Fu%2F1%2Fa.jpg","size":5,"contentType":"image/jpeg","userMetadata":{"X-Amz-Meta-Email":"a@b.c"}}}},
          {"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"media-uploads"},"object":{"key":"uploads%2Fu%2F1%2Fb.jpg"}}},
          {"eventName":"s3:ObjectCreated:Copy","s3":{"bucket":{"name":"other"},"object":{"key":"uploads%2Fu%2F1%2Fc.jpg"}}},
          {"S3":{"Object":{"Key":"uploads%2Fu%2F2%2Fd.jpg","Size":7}}}
        ]}"#;
        let objects = created_objects(body, "media-uploads").unwrap_or_default();
        let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["uploads/u/1/a.jpg", "uploads/u/2/d.jpg"]);
        assert_eq!(objects[0].email, "a@b.c");
        assert_eq!(objects[1].size, 7, "key matching is case-insensitive");
        assert!(created_objects(b"not json", "b").is_err());
    }

    #[test]
    fn upload_events_derive_user_name_and_permanent_path_from_the_key() {
        let object = CreatedObject {
            key: "uploads/user-123/uuid-1/my photo.jpg".into(),
            size: 204_800,
            content_type: String::new(),
            email: String::new(),
            event_time: "t".into(),
        };
        let event = upload_received(&object).unwrap();
        assert_eq!(event.user_id, "user-123");
        assert_eq!(event.file_name, "my photo.jpg");
        assert_eq!(event.permanent_path, "files/user-123/uuid-1/my photo.jpg");
        assert_eq!(event.media_type, "application/octet-stream");
        assert_eq!(event.retry_count, 0);
        for key in ["other/file.txt", "uploads/u/x.jpg", "uploads/u/../x/y.jpg"] {
            let other = CreatedObject {
                key: key.into(),
                ..object.clone()
            };
            assert!(upload_received(&other).is_none(), "{key}");
        }
    }

    #[test]
    fn keys_with_an_overlong_segment_make_no_upload_event() {
        // The fuzzer's input, reduced: a user id segment over 255 bytes in an otherwise valid
        // uploads/ key (1 + 300 + 2 + 5 segments' worth, well under the 1024-byte key limit).
        let key = format!("uploads/{}/r1/a.png", "u".repeat(300));
        let object = CreatedObject {
            key,
            size: 1,
            content_type: String::new(),
            email: String::new(),
            event_time: "t".into(),
        };
        assert_eq!(upload_received(&object), None);
        let fine = CreatedObject {
            key: format!("uploads/{}/r1/a.png", "u".repeat(255)),
            ..object
        };
        assert!(upload_received(&fine).is_some());
    }
}
