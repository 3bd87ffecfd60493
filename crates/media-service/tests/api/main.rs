//! The media-service: saga handlers and webhooks over fakes (`sagas`, one module per consumed
//! topic; `webhooks`; `router`), and the production build against the real broker, registry,
//! Postgres and object store (`health`, `stack`).

// A test fails by panicking, and an unwrapped error says what went wrong; the workspace's
// unwrap lints are for service code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fakes;
mod health;
mod router;
mod sagas;
mod stack;
mod webhooks;
