//! `Idempotency-Key`: a client that is not sure its request went through (a timeout, a dropped
//! connection, a 503) sends it again with the same key, and gets the first attempt's answer
//! instead of a second event.
//!
//! - **Scope**: a key belongs to one user and one route (the request path). It is remembered
//!   for `gateway.idempotency.window_secs` after its first use; after that the same key starts
//!   afresh.
//! - **Same key, other body**: the body's fingerprint is stored with the key; a request that
//!   reuses a key for a different body is a client bug, answered 422, and produces nothing.
//! - **Concurrent attempts**: the first claims the key for `lease_secs`; another attempt while
//!   it runs is answered 409 and may be retried.
//! - **Failures**: an attempt that fails (a 4xx from validation, a 503 from the broker)
//!   releases the key, so the retry runs again. Only successes are replayed.
//! - **Durability**: the keys live in Postgres (`gateway.idempotency_keys`), so a retry that
//!   reaches another replica, or this one after a restart, is recognised. A keyed request is
//!   answered 503 while the database is unreachable (the gateway cannot tell a retry from a
//!   first attempt then); requests without a key never touch it.
//! - **A crash between producing and recording**: the claim's lease runs out and the next
//!   retry takes it over and produces again, with the same event identity (`ce_id`) and the
//!   same `request_id`, both derived from the key and the time of its first use. Consumers key
//!   their effects on those (the message-consumer's rows on `ce_id`, the media sagas on
//!   `request_id`), so even then the key has one effect.

use std::future::Future;

use async_trait::async_trait;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;

use crate::error::StoreError;
use crate::error::{ApiError, ApiResult};

/// The request header carrying the key.
pub const HEADER: &str = "idempotency-key";
/// Set (`true`) on an answer replayed from an earlier attempt.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// How long keys are remembered and claimed.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct IdempotencySettings {
    /// Seconds a key is remembered after its first use.
    pub window_secs: u64,
    /// Seconds an attempt holds its key before another attempt may take it over (longer than
    /// a request can take: the request timeout is 30 s by default).
    pub lease_secs: u64,
    /// Seconds between removals of keys older than the window.
    pub sweep_interval_secs: u64,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            window_secs: 24 * 3600,
            lease_secs: 60,
            sweep_interval_secs: 600,
        }
    }
}

/// A key as the client sent it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key: `None` without the header; 400 when it is sent more than once or is
    /// not 1 to [`MAX_KEY_LEN`] visible ASCII characters.
    pub fn from_headers(headers: &HeaderMap) -> ApiResult<Option<Self>> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let invalid = || {
            ApiError::BadRequest(format!(
                "Idempotency-Key must be sent once, as 1 to {MAX_KEY_LEN} visible ASCII characters"
            ))
        };
        if values.next().is_some() {
            return Err(invalid());
        }
        let key = value
            .to_str()
            .ok()
            .filter(|k| {
                !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(invalid)?;
        Ok(Some(Self(key.to_owned())))
    }

    /// The key itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose key, on which route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The authenticated user.
    pub user_id: String,
    /// The request path.
    pub route: String,
    /// The client's key.
    pub key: String,
}

/// A successful answer, as recorded for replays.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// HTTP status.
    pub status: u16,
    /// JSON body, if the answer has one.
    pub body: Option<Value>,
}

impl Recorded {
    /// An answer without a body.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status: status.as_u16(),
            body: None,
        }
    }

    /// An answer with a JSON body.
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status: status.as_u16(),
            body: Some(body),
        }
    }

    fn into_response(self, replayed: bool) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = match self.body {
            Some(body) => (status, Json(body)).into_response(),
            None => status.into_response(),
        };
        if replayed {
            response
                .headers_mut()
                .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}

/// What an attempt answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Everything the request asked for happened: a retry gets this answer again.
    Complete(Recorded),
    /// Part of it failed (a batch with failed events): the client sees this answer, and a
    /// retry with the key runs again (what succeeded is produced again with the same
    /// identities, which consumers deduplicate).
    Partial(Recorded),
}

/// Where a keyed request stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This attempt runs. `first_used` (microseconds since the epoch) dates the key's first
    /// use; it stays the same when an abandoned attempt is taken over.
    Run {
        /// When the key was first used.
        first_used: i64,
    },
    /// An earlier attempt succeeded with this answer.
    Replay(Recorded),
    /// Another attempt holds the key.
    InProgress,
    /// The key was used for a different body.
    Mismatch,
}

/// Where keys are kept.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    /// Claims `scope` for an attempt on a body with `fingerprint`.
    async fn claim(&self, scope: &Scope, fingerprint: &str) -> Result<Claim, StoreError>;
    /// Records the answer of the attempt that claimed `scope` at `first_used`.
    async fn record(
        &self,
        scope: &Scope,
        first_used: i64,
        answer: &Recorded,
    ) -> Result<(), StoreError>;
    /// Gives up the claim of a failed attempt, so a retry runs again.
    async fn release(&self, scope: &Scope, first_used: i64) -> Result<(), StoreError>;
    /// Removes keys older than the window; returns how many.
    async fn sweep(&self) -> Result<u64, StoreError>;
}

/// The identities of what one attempt produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The event's `ce_id` header.
    pub event_id: String,
    /// The `request_id` of an intent.
    pub request_id: String,
}

impl Identity {
    /// Fresh identities, for a request without a key.
    pub fn fresh() -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().to_string(),
            request_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The event identity of the `index`th event of a batch.
    pub fn item(&self, index: usize) -> String {
        uuid::Uuid::new_v5(
            &IDENTITY_NAMESPACE,
            format!("item\n{}\n{index}", self.event_id).as_bytes(),
        )
        .to_string()
    }

    /// The identities every attempt with this key and first use shares.
    pub fn derived(scope: &Scope, first_used: i64) -> Self {
        let name = |purpose: &str| {
            // Newlines cannot occur in a key (visible ASCII only) nor in a path, so the parts
            // cannot run into each other; the user id is a UUID.
            format!(
                "{purpose}\n{}\n{}\n{}\n{first_used}",
                scope.user_id, scope.route, scope.key
            )
        };
        Self {
            event_id: uuid::Uuid::new_v5(&IDENTITY_NAMESPACE, name("event").as_bytes()).to_string(),
            request_id: uuid::Uuid::new_v5(&IDENTITY_NAMESPACE, name("request").as_bytes())
                .to_string(),
        }
    }
}

/// Namespace of the derived identities (a random UUID, fixed for good: changing it would give
/// an in-flight retry new identities).
const IDENTITY_NAMESPACE: uuid::Uuid = uuid::uuid!("6f7c2b1e-93a4-4d0b-9a55-2f1e8c6d7b30");

/// A fingerprint of a JSON body that does not depend on the order of its object keys or its
/// whitespace: a SHA-1 based UUID of its canonical form. It only has to tell a client's own
/// bodies apart (a key is scoped to one user), not resist a forger.
pub fn fingerprint(body: &Value) -> String {
    let mut canonical = Vec::new();
    write_canonical(body, &mut canonical);
    uuid::Uuid::new_v5(&IDENTITY_NAMESPACE, &canonical).to_string()
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(key.clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// Runs `attempt` once per key: without a key it simply runs; with one, a retry of a
/// successful attempt gets that attempt's answer (marked [`REPLAYED_HEADER`]) and `attempt`
/// does not run. `body` is what the client sent (its fingerprint is stored with the key).
pub async fn once<F, Fut>(
    store: &dyn IdempotencyStore,
    key: Option<IdempotencyKey>,
    user_id: &str,
    route: &str,
    body: &Value,
    attempt: F,
) -> ApiResult<Response>
where
    F: FnOnce(Identity) -> Fut,
    Fut: Future<Output = ApiResult<Outcome>>,
{
    let Some(key) = key else {
        let (Outcome::Complete(answer) | Outcome::Partial(answer)) =
            attempt(Identity::fresh()).await?;
        return Ok(answer.into_response(false));
    };
    let scope = Scope {
        user_id: user_id.to_owned(),
        route: route.to_owned(),
        key: key.0,
    };
    let first_used = match store
        .claim(&scope, &fingerprint(body))
        .await
        .map_err(unavailable)?
    {
        Claim::Run { first_used } => first_used,
        Claim::Replay(answer) => {
            tracing::info!(route, "idempotent retry answered from the first attempt");
            return Ok(answer.into_response(true));
        }
        Claim::InProgress => {
            return Err(ApiError::Conflict(
                "A request with this Idempotency-Key is still in progress; retry later".into(),
            ));
        }
        Claim::Mismatch => {
            return Err(ApiError::Unprocessable(
                "This Idempotency-Key was already used with a different request body".into(),
            ));
        }
    };
    let outcome = attempt(Identity::derived(&scope, first_used)).await;
    match outcome {
        Ok(Outcome::Complete(answer)) => {
            // The effect happened: a failure to record it only costs the retry a second,
            // deduplicated, produce after the lease (see the module docs), so the client
            // still gets its success.
            if let Err(error) = store.record(&scope, first_used, &answer).await {
                tracing::warn!(%error, route, "could not record an idempotent answer");
            }
            Ok(answer.into_response(false))
        }
        Ok(Outcome::Partial(answer)) => {
            release(store, &scope, first_used, route).await;
            Ok(answer.into_response(false))
        }
        Err(error) => {
            release(store, &scope, first_used, route).await;
            Err(error)
        }
    }
}

async fn release(store: &dyn IdempotencyStore, scope: &Scope, first_used: i64, route: &str) {
    if let Err(error) = store.release(scope, first_used).await {
        tracing::warn!(%error, route, "could not release an idempotency key; a retry waits for its lease");
    }
}

fn unavailable(error: StoreError) -> ApiError {
    tracing::warn!(error = %substrate::telemetry::cause_chain(&error), "idempotency keys unavailable");
    ApiError::Unavailable("idempotency keys unavailable; retry shortly".into())
}

/// [`IdempotencyStore`] on Postgres (`gateway.idempotency_keys`, migration
/// `20261201000200_gateway_idempotency_keys.sql`).
#[derive(Debug, Clone)]
pub struct PgIdempotencyStore {
    pool: PgPool,
    window_secs: f64,
    lease_secs: f64,
}

impl PgIdempotencyStore {
    /// A store over `pool`.
    pub fn new(pool: PgPool, settings: &IdempotencySettings) -> Self {
        Self {
            pool,
            window_secs: settings.window_secs as f64,
            lease_secs: settings.lease_secs as f64,
        }
    }
}

fn store_error(error: sqlx::Error) -> StoreError {
    StoreError::new("idempotency key", error)
}

/// The key's first use in microseconds, as every statement below compares it.
const FIRST_USED_US: &str = "(extract(epoch from first_used) * 1000000)::bigint";

#[async_trait]
impl IdempotencyStore for PgIdempotencyStore {
    async fn claim(&self, scope: &Scope, fingerprint: &str) -> Result<Claim, StoreError> {
        // One statement decides, so two attempts racing for a key cannot both run: a new key
        // is inserted; an expired one starts afresh; an abandoned attempt (no answer, lease
        // over, same body) is taken over, keeping its first use and so its identities.
        let claim = format!(
            "insert into gateway.idempotency_keys as k
                 (user_id, route, key, fingerprint, first_used, lease_until)
             values ($1, $2, $3, $4, clock_timestamp(), clock_timestamp() + make_interval(secs => $5))
             on conflict (user_id, route, key) do update set
                 fingerprint = excluded.fingerprint,
                 first_used = case when k.first_used < clock_timestamp() - make_interval(secs => $6)
                                   then excluded.first_used else k.first_used end,
                 lease_until = excluded.lease_until,
                 status = null,
                 body = null
             where k.first_used < clock_timestamp() - make_interval(secs => $6)
                or (k.status is null and k.lease_until < clock_timestamp()
                    and k.fingerprint = excluded.fingerprint)
             returning {FIRST_USED_US}"
        );
        // The row a failed claim met may be released (deleted) before it is read; the claim is
        // then tried again.
        for _ in 0..3 {
            let claimed: Option<i64> = sqlx::query_scalar(&claim)
                .bind(&scope.user_id)
                .bind(&scope.route)
                .bind(&scope.key)
                .bind(fingerprint)
                .bind(self.lease_secs)
                .bind(self.window_secs)
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
            if let Some(first_used) = claimed {
                return Ok(Claim::Run { first_used });
            }
            let existing: Option<(String, Option<i16>, Option<String>)> = sqlx::query_as(
                "select fingerprint, status, body::text from gateway.idempotency_keys
                 where user_id = $1 and route = $2 and key = $3",
            )
            .bind(&scope.user_id)
            .bind(&scope.route)
            .bind(&scope.key)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
            let Some((stored_fingerprint, status, body)) = existing else {
                continue;
            };
            if stored_fingerprint != fingerprint {
                return Ok(Claim::Mismatch);
            }
            return Ok(match status {
                Some(status) => Claim::Replay(Recorded {
                    status: u16::try_from(status).unwrap_or(200),
                    body: body.and_then(|text| serde_json::from_str(&text).ok()),
                }),
                None => Claim::InProgress,
            });
        }
        Err(StoreError::new(
            "idempotency key claim",
            "the key kept changing while it was claimed",
        ))
    }

    async fn record(
        &self,
        scope: &Scope,
        first_used: i64,
        answer: &Recorded,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "update gateway.idempotency_keys set status = $5, body = $6::jsonb
             where user_id = $1 and route = $2 and key = $3 and {FIRST_USED_US} = $4"
        ))
        .bind(&scope.user_id)
        .bind(&scope.route)
        .bind(&scope.key)
        .bind(first_used)
        .bind(i16::try_from(answer.status).unwrap_or(200))
        .bind(answer.body.as_ref().map(Value::to_string))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn release(&self, scope: &Scope, first_used: i64) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "delete from gateway.idempotency_keys
             where user_id = $1 and route = $2 and key = $3 and status is null
               and {FIRST_USED_US} = $4"
        ))
        .bind(&scope.user_id)
        .bind(&scope.route)
        .bind(&scope.key)
        .bind(first_used)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn sweep(&self) -> Result<u64, StoreError> {
        let removed = sqlx::query(
            "delete from gateway.idempotency_keys
             where first_used < clock_timestamp() - make_interval(secs => $1)",
        )
        .bind(self.window_secs)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(removed.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace_but_not_values() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).unwrap_or_default();
        let b: Value =
            serde_json::from_str(r#"{ "a" : { "x":"s", "y":[1, 2] }, "b":1 }"#).unwrap_or_default();
        let c: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[2,1],"x":"s"}}"#).unwrap_or_default();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c), "array order matters");
    }

    #[test]
    fn keys_must_be_one_visible_ascii_value() {
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(HEADER, HeaderValue::from_str(v).unwrap());
            }
            map
        };
        assert_eq!(IdempotencyKey::from_headers(&headers(&[])).ok(), Some(None));
        assert_eq!(
            IdempotencyKey::from_headers(&headers(&["order-42"]))
                .ok()
                .flatten()
                .map(|k| k.as_str().to_owned()),
            Some("order-42".into())
        );
        for bad in [&["a b"][..], &[""], &["a", "b"]] {
            assert!(
                IdempotencyKey::from_headers(&headers(bad)).is_err(),
                "{bad:?}"
            );
        }
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert!(IdempotencyKey::from_headers(&headers(&[&long])).is_err());
    }

    #[test]
    fn derived_identities_depend_on_every_part_of_the_scope_and_the_first_use() {
        let scope = Scope {
            user_id: "u".into(),
            route: "/api/v1/events/message".into(),
            key: "k".into(),
        };
        let base = Identity::derived(&scope, 1);
        assert_eq!(base, Identity::derived(&scope, 1));
        assert_ne!(base.event_id, base.request_id);
        assert_ne!(base, Identity::derived(&scope, 2));
        for other in [
            Scope {
                user_id: "v".into(),
                ..scope.clone()
            },
            Scope {
                route: "/api/v1/media/delete-intent".into(),
                ..scope.clone()
            },
            Scope {
                key: "l".into(),
                ..scope.clone()
            },
        ] {
            assert_ne!(base, Identity::derived(&other, 1));
        }
    }
}
