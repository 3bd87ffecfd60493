//! Authentication: Supabase JWTs for users, a shared secret for webhooks.
//!
//! Tokens are accepted only as `HS256` (signed with the Supabase JWT secret) or `ES256` (verified
//! against the Supabase JWKS, key chosen by `kid`). `exp` is required, `aud` must match, `iss`
//! must match when configured, and `sub` must be a non-empty string. Everything fails closed: a
//! key that is not configured means every token of that algorithm is rejected.
//!
//! Identity comes only from the verified token; handlers never read `user_id` from bodies.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

use crate::configuration::AuthSettings;
use crate::error::ApiError;

/// The verified caller of a user route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The token's `sub`.
    pub user_id: String,
    /// The token's `email`, when present.
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<serde_json::Value>,
    email: Option<String>,
}

/// Why a token was refused (logged, never shown in detail to the client).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Header or payload do not parse.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The algorithm is not HS256/ES256, or no key for it is configured.
    #[error("algorithm not accepted: {0}")]
    Algorithm(String),
    /// No JWKS key matches the token's `kid`.
    #[error("unknown signing key {0:?}")]
    UnknownKey(Option<String>),
    /// Signature, expiry, audience or issuer check failed.
    #[error("verification failed: {0}")]
    Invalid(String),
    /// `sub` is missing, empty or not a string.
    #[error("token has no subject")]
    NoSubject,
}

/// Verifies user tokens.
#[derive(Debug)]
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    jwks: Option<Arc<JwksCache>>,
    audience: String,
    issuer: Option<String>,
    leeway: u64,
}

impl JwtVerifier {
    /// Builds the verifier; the JWKS (if configured) is fetched lazily and refreshed in the
    /// background by [`JwksCache::spawn_refresh`]. Fails when the JWKS client cannot be built
    /// (an unreadable `jwks_ca_file`): starting without it would refuse every ES256 token.
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let hs256 = substrate::config::secret_value(&settings.jwt_secret)
            .map(|secret| DecodingKey::from_secret(secret.as_bytes()));
        let jwks = match settings.jwks_url.as_deref().filter(|url| !url.is_empty()) {
            Some(url) => Some(Arc::new(JwksCache::new(url, settings)?)),
            None => None,
        };
        Ok(Self {
            hs256,
            jwks,
            audience: settings.audience.clone(),
            issuer: settings.issuer.clone().filter(|i| !i.is_empty()),
            leeway: settings.leeway_secs,
        })
    }

    /// Whether any key is configured at all.
    pub fn is_configured(&self) -> bool {
        self.hs256.is_some() || self.jwks.is_some()
    }

    /// The JWKS cache, if ES256 is configured (shared with its refresh task).
    pub fn jwks(&self) -> Option<Arc<JwksCache>> {
        self.jwks.clone()
    }

    /// Verifies `token` and returns the caller.
    pub async fn verify(&self, token: &str) -> Result<AuthUser, TokenError> {
        well_formed(token)?;
        // Parsing the header first picks the key by algorithm; unknown algorithms such as `none`
        // fail to parse and never reach signature verification.
        let header = decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let key = match header.alg {
            Algorithm::HS256 => self
                .hs256
                .clone()
                .ok_or_else(|| TokenError::Algorithm("HS256 (no JWT secret configured)".into()))?,
            Algorithm::ES256 => match &self.jwks {
                Some(jwks) => jwks.key_for(header.kid.as_deref()).await?,
                None => return Err(TokenError::Algorithm("ES256 (no JWKS configured)".into())),
            },
            other => return Err(TokenError::Algorithm(format!("{other:?}"))),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.set_audience(&[&self.audience]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let data = decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let user_id = match data.claims.sub {
            Some(serde_json::Value::String(sub)) if !sub.is_empty() => sub,
            _ => return Err(TokenError::NoSubject),
        };
        Ok(AuthUser {
            user_id,
            email: data.claims.email.filter(|e| !e.is_empty()),
        })
    }
}

/// Requires the header and the claims to be JSON objects in full. The JWT library reads only the
/// members it needs and skips the others unchecked, so a token with invalid UTF-8 or broken
/// escapes in a member nobody reads was accepted (found by the `jwt_signed` fuzz target): a
/// token that is not entirely well-formed is refused before anything else is looked at.
fn well_formed(token: &str) -> Result<(), TokenError> {
    use base64::Engine;
    let mut parts = token.splitn(3, '.');
    for part in ["header", "claims"] {
        let encoded = parts
            .next()
            .ok_or_else(|| TokenError::Malformed(format!("no {part}")))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|e| TokenError::Malformed(format!("{part}: {e}")))?;
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => return Err(TokenError::Malformed(format!("{part} is not an object"))),
            Err(e) => return Err(TokenError::Malformed(format!("{part}: {e}"))),
        }
    }
    Ok(())
}

/// ES256 keys from a JWKS URL, cached by `kid`.
#[derive(Debug)]
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Keys>,
    refresh_lock: Mutex<Option<Instant>>,
    min_refresh: Duration,
    refresh_every: Duration,
}

#[derive(Debug, Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// Used for tokens without `kid` (the original picked the first P-256 key).
    first: Option<DecodingKey>,
}

impl JwksCache {
    fn new(url: &str, settings: &AuthSettings) -> Result<Self, String> {
        let client = substrate::http::client_builder(
            Duration::from_millis(settings.jwks_timeout_ms),
            settings.jwks_ca_file.as_deref(),
        )
        .and_then(|builder| Ok(builder.build()?))
        .map_err(|e| format!("JWKS client: {e}"))?;
        Ok(Self {
            url: url.to_owned(),
            client,
            keys: RwLock::default(),
            refresh_lock: Mutex::new(None),
            min_refresh: Duration::from_secs(settings.jwks_min_refresh_secs),
            refresh_every: Duration::from_secs(settings.jwks_refresh_secs),
        })
    }

    /// Whether at least one usable key was loaded.
    pub fn has_keys(&self) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .first
            .is_some()
    }

    fn lookup(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        match kid {
            Some(kid) => keys.by_kid.get(kid).cloned(),
            None => keys.first.clone(),
        }
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        // Unknown kid: the issuer may have rotated keys. Refresh, but not more often than
        // `min_refresh`, so garbage kids cannot make us hammer the JWKS endpoint.
        self.refresh(false).await;
        self.lookup(kid)
            .ok_or_else(|| TokenError::UnknownKey(kid.map(str::to_owned)))
    }

    /// Fetches the JWKS now (`force`) or if the last fetch is older than the minimum spacing.
    pub async fn refresh(&self, force: bool) {
        let mut last = self.refresh_lock.lock().await;
        if !force && last.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.by_kid.len(), url = %self.url, "JWKS loaded");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
            }
            Err(error) => {
                // Keep the previous keys: a transient JWKS outage must not log everyone out.
                tracing::warn!(%error, url = %self.url, "JWKS refresh failed; keeping previous keys");
            }
        }
    }

    async fn fetch(&self) -> Result<Keys, String> {
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let mut keys = Keys::default();
        for jwk in &set.keys {
            let AlgorithmParameters::EllipticCurve(params) = &jwk.algorithm else {
                continue;
            };
            if params.curve != EllipticCurve::P256 {
                continue;
            }
            let key = DecodingKey::from_ec_components(&params.x, &params.y)
                .map_err(|e| format!("JWK {:?}: {e}", jwk.common.key_id))?;
            if keys.first.is_none() {
                keys.first = Some(key.clone());
            }
            if let Some(kid) = &jwk.common.key_id {
                keys.by_kid.insert(kid.clone(), key);
            }
        }
        Ok(keys)
    }

    /// Loads the keys now and refreshes them periodically until `shutdown`.
    pub fn spawn_refresh(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        tokio::spawn(async move {
            loop {
                self.refresh(true).await;
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.refresh_every) => {}
                }
            }
        });
    }
}

/// Compares the presented webhook secret with the configured one in constant time. No secret
/// configured means no webhook is accepted.
pub fn webhook_secret_matches(configured: Option<&SecretString>, presented: Option<&str>) -> bool {
    match (configured.map(|s| s.expose_secret()), presented) {
        (Some(expected), Some(given)) if !expected.is_empty() => {
            bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        }
        _ => false,
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .filter(|token| !token.is_empty())
}

// Both extractors take what they need from any state that provides it (`FromRef`), so this
// module does not depend on the gateway's state type; `state.rs` depends on it.
impl<S: Send + Sync> FromRequestParts<S> for AuthUser
where
    Arc<JwtVerifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Some(token) = bearer(parts) else {
            return Err(ApiError::Unauthorized(
                "Missing or invalid Bearer token".into(),
            ));
        };
        let verifier = Arc::<JwtVerifier>::from_ref(state);
        verifier.verify(token).await.map_err(|error| {
            tracing::info!(%error, "token rejected");
            ApiError::Unauthorized("Invalid or expired token".into())
        })
    }
}

/// Proof that a request carried the webhook secret.
#[derive(Debug, Clone, Copy)]
pub struct WebhookCaller;

/// The expected `X-Webhook-Secret`; `None` (not configured) refuses every webhook.
#[derive(Debug, Clone, Default)]
pub struct WebhookSecret(pub Option<Arc<SecretString>>);

impl<S: Send + Sync> FromRequestParts<S> for WebhookCaller
where
    WebhookSecret: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get("x-webhook-secret")
            .and_then(|v| v.to_str().ok());
        let WebhookSecret(expected) = WebhookSecret::from_ref(state);
        if webhook_secret_matches(expected.as_deref(), presented) {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized(
                "Unauthorized Webhook Connection".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secret_fails_closed_and_compares_exactly() {
        let secret = SecretString::from("super-secret-webhook-key");
        let cases = [
            (Some(&secret), Some("super-secret-webhook-key"), true),
            (Some(&secret), Some("super-secret-webhook-kex"), false),
            (Some(&secret), Some("super-secret-webhook-key "), false),
            (Some(&secret), Some(""), false),
            (Some(&secret), None, false),
            (None, Some("anything"), false),
            (None, None, false),
        ];
        for (configured, presented, expected) in cases {
            assert_eq!(
                webhook_secret_matches(configured, presented),
                expected,
                "configured={} presented={presented:?}",
                configured.is_some()
            );
        }
        let empty = SecretString::from("");
        assert!(
            !webhook_secret_matches(Some(&empty), Some("")),
            "an empty secret is no secret"
        );
    }
}

/// Ready once the JWKS gave at least one key: until then every ES256 token would get 401, so
/// the gateway must not take traffic (an unreachable or untrusted JWKS URL shows here).
#[derive(Debug)]
pub struct JwksCheck(pub Arc<JwksCache>);

#[async_trait::async_trait]
impl substrate::health::ReadinessCheck for JwksCheck {
    fn name(&self) -> &'static str {
        "jwks"
    }

    async fn check(&self) -> Result<(), String> {
        if self.0.has_keys() {
            Ok(())
        } else {
            Err("no key loaded from the JWKS URL yet".into())
        }
    }
}
