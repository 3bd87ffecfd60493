//! api-gateway: authenticated HTTP ingress that turns requests into Avro events on the broker.
//!
//! Routes: `/webhooks/{key}` (shared secret), `/api/v1/events/{key}`
//! (Supabase JWT) and its `/batch` form, the three `*-intent` routes (202 + `request_id`), the
//! three legacy synchronous media routes, `/openapi.json`, `/healthz`, `/readyz`. Every success is answered only after the broker
//! acknowledged the event; every error is JSON `{"error", "message"}`.

pub mod auth;
pub mod configuration;
pub mod credits;
pub mod domain;
pub mod error;
pub mod idempotency;
pub mod openapi;
#[cfg(any(test, feature = "fuzzing"))]
pub mod properties;
pub mod ratelimit;
pub mod routes;
pub mod routes_config;
pub mod startup;
pub mod state;
