//! Shared plumbing for the Event Substrate services.
//!
//! Everything the three services have in common lives here exactly once: layered typed
//! configuration ([`config`]), tracing and OpenTelemetry ([`telemetry`]), Kafka producers and the
//! at-least-once consume loop ([`kafka`]), the Confluent-framed Avro codec backed by a schema
//! registry ([`avro`]), health and readiness routes ([`health`]), client builders for Postgres and
//! S3 ([`postgres`], [`s3`]) and signal-driven graceful shutdown ([`shutdown`]).
//!
//! The public API returns this crate's own error types (never `anyhow`), so services can match on
//! them, e.g. to tell a retryable registry outage from a permanently undecodable message.

pub mod app;
pub mod avro;
pub mod config;
pub mod events;
pub mod health;
pub mod http;
pub mod kafka;
pub mod keys;
pub mod local_stack;
pub mod media;
pub mod postgres;
pub mod s3;
pub mod shutdown;
pub mod telemetry;
pub mod time;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

/// A boxed error that can cross task boundaries; used where a trait object has to carry the cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
