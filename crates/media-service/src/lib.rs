//! media-service: presigns uploads and downloads, runs the delete and move sagas, receives
//! object-store webhooks.
//!
//! Two consume loops (the sagas, and the delete retries in their own group so their backoff
//! never blocks the sagas) plus an HTTP server with the MinIO webhooks, `/healthz` and `/readyz`.

pub mod announced;
pub mod configuration;
pub mod edges;
pub mod fields;
pub mod handlers;
pub mod startup;
pub mod webhooks;
