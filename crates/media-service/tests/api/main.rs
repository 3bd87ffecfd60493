//! The media-service: handlers and webhooks over fakes (`handlers`, `webhooks`), and the
//! production build against the real broker, registry, Postgres and object store (`health`,
//! `stack`).

// A test fails by panicking, and an unwrapped error says what went wrong; the workspace's
// unwrap lints are for service code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fakes;
mod handlers;
mod health;
mod router;
mod stack;
mod webhooks;
