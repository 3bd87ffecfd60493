//! Integration tests of `substrate` against the real local stack (broker on 127.0.0.1:9092,
//! schema registry on 127.0.0.1:8081; start it with `./taskw stack:up`). Every test creates its
//! own topics, subjects and consumer groups, so tests run in parallel and repeatably.

// A test fails by panicking, and an unwrapped error says what went wrong; the workspace's
// unwrap lints are for service code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod avro_roundtrip;
mod consume_loop;
mod helpers;
mod registry_errors;
mod replay;
mod trace_context;
