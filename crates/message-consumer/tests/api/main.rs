//! The message-consumer built as in production (`Application::build`) against the real broker,
//! registry and Postgres. Each test owns its topics, consumer groups and database.

// A test fails by panicking, and an unwrapped error says what went wrong; the workspace's
// unwrap lints are for service code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod consume;
mod health;
