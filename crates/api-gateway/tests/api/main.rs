//! The api-gateway: handler behaviour over fakes, one module per feature (`edge`, `events`,
//! `intents`, `legacy`, `ingress`), and the production build (`Application::build` on a free
//! port) against the real local stack (`stack`, `health`, `trace_context`).

// A test fails by panicking, and an unwrapped error says what went wrong; the workspace's
// unwrap lints are for service code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod edge;
mod events;
mod fakes;
mod health;
mod helpers;
mod ingress;
mod intents;
mod legacy;
mod stack;
mod tokens;
mod trace_context;
