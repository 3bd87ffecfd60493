//! media-service: presigns uploads and downloads, runs the delete and move sagas, receives
//! object-store webhooks.
//!
//! One consume loop per saga topic in the saga group (a record that keeps failing holds up only
//! its own topic), the delete retries in their own group (their backoff never blocks the sagas),
//! and an HTTP server with the MinIO webhooks, `/healthz` and `/readyz`.

pub mod announced;
pub mod configuration;
pub mod deps;
pub mod domain;
pub mod handlers;
#[cfg(any(test, feature = "fuzzing"))]
pub mod properties;
pub mod startup;
pub mod webhooks;
