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
