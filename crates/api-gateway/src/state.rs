//! The state every handler receives.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;

use crate::auth::{JwtVerifier, WebhookSecret};
use crate::configuration::Topics;
use substrate::events::EventSink;
use substrate::media::{MediaFiles, ObjectStore};

use crate::credits::CreditLedger;
use crate::idempotency::IdempotencyStore;
use crate::ratelimit::RateLimiter;
use crate::routes_config::Routes;

/// Cloned into every request; everything heavy sits behind `Arc`.
// Every field is an `Arc` or `Copy`, because axum clones the state for each extractor: a
// profile showed cloning and dropping an owned secret and the bucket name at 2 % of the gateway's
// CPU (docs/benchmarks.md).
#[derive(Debug, Clone)]
pub struct AppState {
    /// User token verification.
    pub jwt: Arc<JwtVerifier>,
    /// Expected `X-Webhook-Secret`; `None` rejects every webhook.
    pub webhook_secret: WebhookSecret,
    /// The live topic allowlist.
    pub routes: Routes,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// Credits the legacy upload route spends.
    pub credits: Arc<dyn CreditLedger>,
    /// `media_files` (legacy routes).
    pub files: Arc<dyn MediaFiles>,
    /// The media bucket: presigning and removal (legacy routes).
    pub objects: Arc<dyn ObjectStore>,
    /// Lifetime of presigned URLs of the legacy routes.
    pub presign_expiry: Duration,
    /// Topics of the intent and legacy routes.
    pub topics: Arc<Topics>,
    /// `Idempotency-Key` records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Per-user rate limits.
    pub limits: Arc<RateLimiter>,
    /// Most events one batch may carry.
    pub batch_max_events: usize,
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

impl FromRef<AppState> for WebhookSecret {
    fn from_ref(state: &AppState) -> Self {
        state.webhook_secret.clone()
    }
}
