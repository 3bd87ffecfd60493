//! message-consumer: writes user message events from the broker into `user_notifications`.
//!
//! At-least-once consumption with idempotent inserts (keyed by the Kafka record), batched
//! writes, dead-lettering of poison records, capped exponential backoff while Postgres is down,
//! and `/healthz` + `/readyz` (Postgres and broker) on port 8091.

pub mod configuration;
pub mod domain;
pub mod handlers;
pub mod startup;
pub mod store;
