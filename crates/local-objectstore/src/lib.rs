//! A dev-only S3 server for the Docker-free local stack.
//!
//! Storage and the S3 protocol (including SigV4 header and presigned-URL verification) come from
//! `s3s` + `s3s-fs`. This crate adds what MinIO gives the platform and s3s-fs lacks: **bucket
//! event notifications** in MinIO's webhook format, so the media-service receives exactly the
//! requests it receives in production:
//!
//! - object created (`PutObject`, `CopyObject`, `CompleteMultipartUpload`) → `s3:ObjectCreated:*`
//! - object removed (`DeleteObject`, `DeleteObjects`) → `s3:ObjectRemoved:Delete`
//!
//! Each target has a key prefix filter and receives a JSON body with `EventName`, `Key` and one
//! `Records` entry whose `s3.object.key` is URL-encoded as MinIO encodes it. Delivery is
//! asynchronous and retried on failure (MinIO retries persistently), in order per target.
//! Production keeps MinIO; this binary never ships.

pub mod notify;
mod service;

pub use notify::{EventKind, Notifier, WebhookTarget};
pub use service::NotifyingStore;

/// CORS for browsers on `origins` (the frontend's dev server): GET, PUT and HEAD with any
/// request header, the ETag readable, as the compose MinIO is configured. Preflights are
/// answered here; they carry no signature, so they never reach the S3 service.
pub fn cors(origins: &[String]) -> anyhow::Result<tower_http::cors::CorsLayer> {
    use http::{HeaderValue, Method, header};
    let origins = origins
        .iter()
        .map(|origin| HeaderValue::from_str(origin))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--cors-origin: {e}"))?;
    Ok(tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::PUT, Method::HEAD])
        .allow_headers(tower_http::cors::Any)
        .expose_headers([header::ETAG]))
}
