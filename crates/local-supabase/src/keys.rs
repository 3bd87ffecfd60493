//! JWTs as Supabase issues them: HS256 with the project's JWT secret. The API keys (`anon`,
//! `service_role`) are long-lived tokens signed with the same secret, so one verifier serves
//! API keys, user access tokens and Realtime's `access_token`.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Value, json};

/// The Supabase CLI's local JWT secret; the local gateway verifies user tokens with it.
pub const LOCAL_JWT_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

/// Lifetime of an access token, in seconds (GoTrue's default).
pub const ACCESS_TOKEN_SECS: i64 = 3600;

/// The database roles a token may act as (PostgREST's `role` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbRole {
    /// Not signed in.
    Anon,
    /// A signed-in user.
    Authenticated,
    /// The server-side key; skips row level security.
    ServiceRole,
}

impl DbRole {
    /// The role's name in Postgres (a fixed identifier, safe to splice into `set local role`).
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Anon => "anon",
            Self::Authenticated => "authenticated",
            Self::ServiceRole => "service_role",
        }
    }

    fn parse(role: &str) -> Option<Self> {
        match role {
            "anon" => Some(Self::Anon),
            "authenticated" => Some(Self::Authenticated),
            "service_role" => Some(Self::ServiceRole),
            _ => None,
        }
    }
}

/// A verified token: its role and its whole payload (handed to Postgres as
/// `request.jwt.claims`, so `auth.uid()` and the RLS policies see it).
#[derive(Debug, Clone)]
pub struct Verified {
    /// The role the request runs as.
    pub role: DbRole,
    /// The payload.
    pub claims: Value,
}

impl Verified {
    /// The `sub` claim (a user id) when present.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// The `session_id` claim when present.
    pub fn session_id(&self) -> Option<&str> {
        self.claims.get("session_id").and_then(Value::as_str)
    }

    /// Whether the token has expired by `now` (Unix seconds).
    pub fn expired_at(&self, now: i64) -> bool {
        self.claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_none_or(|exp| exp <= now)
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, algorithm, shape or expiry.
    #[error("invalid JWT: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// A valid signature over a role this server does not know.
    #[error("invalid JWT: unknown role")]
    UnknownRole,
}

/// Signs and verifies the project's tokens.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    anon_key: String,
    service_role_key: String,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys { .. }")
    }
}

impl Keys {
    /// Keys for `secret`; the API keys are derived from it as the Supabase CLI derives its own
    /// (issuer `supabase-demo`, a far expiry), so they are the same on every start.
    pub fn new(secret: &str) -> Result<Self, TokenError> {
        let encoding = EncodingKey::from_secret(secret.as_bytes());
        // Only HS256: a token naming another algorithm (or `none`) is refused, never tried.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_aud = false;
        validation.leeway = 0;
        let sign = |role: &str| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &json!({"iss": "supabase-demo", "role": role, "exp": 1_983_812_996_i64}),
                &encoding,
            )
        };
        Ok(Self {
            anon_key: sign("anon")?,
            service_role_key: sign("service_role")?,
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding,
            validation,
        })
    }

    /// The public API key (browsers).
    pub fn anon_key(&self) -> &str {
        &self.anon_key
    }

    /// The server-side API key (skips RLS; tests and admin calls).
    pub fn service_role_key(&self) -> &str {
        &self.service_role_key
    }

    /// Verifies signature, algorithm and expiry, and reads the role.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let data = jsonwebtoken::decode::<Value>(token, &self.decoding, &self.validation)?;
        let role = data
            .claims
            .get("role")
            .and_then(Value::as_str)
            .and_then(DbRole::parse)
            .ok_or(TokenError::UnknownRole)?;
        Ok(Verified {
            role,
            claims: data.claims,
        })
    }

    /// Signs an access token with `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_verify_as_their_roles_and_foreign_tokens_do_not() {
        let keys = Keys::new(LOCAL_JWT_SECRET).unwrap();
        assert_eq!(keys.verify(keys.anon_key()).unwrap().role, DbRole::Anon);
        assert_eq!(
            keys.verify(keys.service_role_key()).unwrap().role,
            DbRole::ServiceRole
        );
        let other = Keys::new("another-secret-of-at-least-32-characters!!").unwrap();
        assert!(keys.verify(other.anon_key()).is_err(), "wrong secret");
        let expired = keys
            .sign(&json!({"role": "authenticated", "sub": "u", "exp": 1}))
            .unwrap();
        assert!(keys.verify(&expired).is_err(), "expired");
        let admin = keys
            .sign(&json!({"role": "postgres", "exp": 1_983_812_996_i64}))
            .unwrap();
        assert!(matches!(keys.verify(&admin), Err(TokenError::UnknownRole)));
    }

    #[test]
    fn tokens_with_another_algorithm_are_refused() {
        let keys = Keys::new(LOCAL_JWT_SECRET).unwrap();
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &json!({"role": "service_role", "exp": 1_983_812_996_i64}),
            &EncodingKey::from_secret(LOCAL_JWT_SECRET.as_bytes()),
        )
        .unwrap();
        assert!(keys.verify(&hs512).is_err());
    }
}
