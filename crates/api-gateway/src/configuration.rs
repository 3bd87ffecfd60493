//! Settings of the api-gateway (see `config/base.yaml` for every key and its environment name).
//! Beside the backbone every service has (`substrate::app::Backbone`: the HTTP listener, broker,
//! registry, the database of the legacy synchronous media routes, telemetry), it has the
//! sections below.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;
use substrate::app::{Aliases, ServiceSettings};
use substrate::config::ConfigError;
use substrate::s3::{S3_ALIASES, S3Settings};

use crate::idempotency::IdempotencySettings;
use crate::ratelimit::RateLimitSettings;

/// The whole configuration of the gateway.
pub type Config = substrate::app::Config<Settings>;

/// The gateway's own settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Authentication of webhooks and users.
    pub auth: AuthSettings,
    /// The route allowlist file and request limits.
    pub gateway: GatewaySettings,
    /// Object store for the legacy routes (presigning on the public endpoint, removal on the
    /// internal one).
    pub s3: S3Settings,
}

/// Authentication settings. Every secret here fails closed: when it is not configured the
/// routes that need it answer 401.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// Supabase JWT secret for HS256 tokens (`SUPABASE_JWT_SECRET`).
    pub jwt_secret: Option<SecretString>,
    /// JWKS URL for ES256 tokens (`SUPABASE_JWKS_URL`).
    pub jwks_url: Option<String>,
    /// Required `aud` claim.
    pub audience: String,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_secs: u64,
    /// How often the JWKS is refreshed, in seconds (it is also refreshed on an unknown `kid`,
    /// at most once per `jwks_min_refresh_secs`).
    pub jwks_refresh_secs: u64,
    /// Minimum spacing of JWKS refreshes triggered by unknown key ids, in seconds.
    pub jwks_min_refresh_secs: u64,
    /// Timeout of one JWKS fetch, in milliseconds.
    pub jwks_timeout_ms: u64,
    /// PEM file of extra CA certificates trusted for an `https` JWKS URL (a private CA); the
    /// system trust store is always used.
    pub jwks_ca_file: Option<String>,
    /// Shared secret expected in `X-Webhook-Secret` (`WEBHOOK_SECRET`).
    pub webhook_secret: Option<SecretString>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwks_url: None,
            audience: "authenticated".to_owned(),
            issuer: None,
            leeway_secs: 30,
            jwks_refresh_secs: 300,
            jwks_min_refresh_secs: 30,
            jwks_timeout_ms: 3_000,
            jwks_ca_file: None,
            webhook_secret: None,
        }
    }
}

/// Gateway behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GatewaySettings {
    /// The allowlist file. When unset, `routes.yaml` in the configuration directory
    /// (`APP_CONFIG_DIR`, in the image `/app/config`; otherwise the crate's `config/`).
    /// Its directory is watched, so Kubernetes ConfigMap symlink swaps are picked up.
    pub routes_file: Option<PathBuf>,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Lifetime of presigned URLs of the legacy routes, in seconds.
    pub presign_expiry_secs: u64,
    /// Topics of the hard-wired (non-allowlisted) routes.
    pub topics: Topics,
    /// Most events one `/api/v1/events/{key}/batch` request may carry.
    pub batch_max_events: usize,
    /// How long `Idempotency-Key`s are remembered.
    pub idempotency: IdempotencySettings,
    /// Per-user rate limits by route class.
    pub rate_limits: RateLimitSettings,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            routes_file: None,
            body_limit_bytes: 1024 * 1024,
            presign_expiry_secs: 900,
            topics: Topics::default(),
            batch_max_events: 100,
            idempotency: IdempotencySettings::default(),
            rate_limits: RateLimitSettings::default(),
        }
    }
}

/// Topics the intent and legacy routes write to. The defaults are the platform's contract;
/// overriding them is for isolated environments and tests.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Topics {
    /// Upload intents (consumed by the credit check).
    pub upload_intent: String,
    /// Download intents (consumed by the media-service).
    pub download_intent: String,
    /// Delete intents (consumed by the media-service).
    pub delete_intent: String,
    /// Legacy download audit events.
    pub download_events: String,
    /// File-deleted notifications.
    pub delete_events: String,
    /// Object removals handed to the delete saga's retry loop.
    pub delete_retry: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            upload_intent: "internal.media.upload.intent".to_owned(),
            download_intent: "internal.media.download.intent".to_owned(),
            delete_intent: "internal.media.delete.intent".to_owned(),
            download_events: "public.media.download.events".to_owned(),
            delete_events: "public.media.delete.events".to_owned(),
            delete_retry: "internal.media.delete.retry".to_owned(),
        }
    }
}

impl GatewaySettings {
    /// The routes file to load.
    pub fn routes_path(&self) -> PathBuf {
        if let Some(path) = &self.routes_file {
            return path.clone();
        }
        // The same directory the settings files are read from.
        std::env::var_os(substrate::config::CONFIG_DIR_VAR)
            .filter(|dir| !dir.is_empty())
            .map_or_else(
                || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config")),
                PathBuf::from,
            )
            .join("routes.yaml")
    }
}

/// Legacy variable names of the original gateway.
const ALIASES: &[(&str, &str)] = &[
    ("SUPABASE_JWT_SECRET", "auth.jwt_secret"),
    ("SUPABASE_JWKS_URL", "auth.jwks_url"),
    ("WEBHOOK_SECRET", "auth.webhook_secret"),
    ("ROUTES_FILE", "gateway.routes_file"),
];

impl ServiceSettings for Settings {
    const ALIASES: &'static [Aliases] = &[S3_ALIASES, ALIASES];

    /// Missing keys are not an error: the routes that need them fail closed, and
    /// `Application::build` reports them loudly once logging is up.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.gateway.body_limit_bytes == 0 {
            return Err(ConfigError::Invalid("gateway.body_limit_bytes is 0".into()));
        }
        Ok(())
    }
}
