//! A cached client for a Confluent-compatible schema registry.
//!
//! Lookups go through `schema_registry_converter`. Two caches:
//! - by id: immutable in the registry, so cached for the life of the process;
//! - latest version per subject: cached for `latest_ttl_secs` and then re-fetched, so a newly
//!   registered version is picked up without a restart (the original never refreshed). If the
//!   registry is down when an entry expires, the previous entry keeps serving (stale beats down).
//!
//! With `username`/`password` set, every request (lookups, registration, compatibility, the
//! readiness ping) carries them as HTTP basic auth; a registry that refuses them answers 401/403,
//! reported as [`RegistryError::Unauthorized`] rather than as an outage.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::Schema;
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, get_schema_by_subject, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    RegisteredSchema, SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::RwLock;

use super::json::{Names, collect_names};
use crate::config::{ConfigError, secret_value};

/// Where the registry is and how long to trust cached "latest" answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RegistrySettings {
    /// Base URL, e.g. `http://schema-registry:8081`.
    pub url: String,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u64,
    /// How long the latest version of a subject is cached, in seconds.
    pub latest_ttl_secs: u64,
    /// PEM file of extra CA certificates trusted for an `https` URL (a private CA); the
    /// system trust store is always used.
    pub ca_file: Option<String>,
    /// User name for HTTP basic auth (empty: no authentication); set together with `password`.
    pub username: String,
    /// Password for HTTP basic auth; never logged (redacted in the settings dump).
    pub password: Option<SecretString>,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            url: crate::local_stack::schema_registry_url().to_owned(),
            timeout_ms: 5_000,
            latest_ttl_secs: 300,
            ca_file: None,
            username: String::new(),
            password: None,
        }
    }
}

impl RegistrySettings {
    /// Checks the settings hang together: credentials are both set or both empty.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.credentials().map(|_| ())
    }

    /// The basic-auth user and password, if configured.
    fn credentials(&self) -> Result<Option<(&str, &str)>, ConfigError> {
        let username = self.username.trim();
        match (username.is_empty(), secret_value(&self.password)) {
            (true, None) => Ok(None),
            (false, Some(password)) => Ok(Some((username, password))),
            _ => Err(ConfigError::Invalid(
                "registry.username and registry.password must be set together (or both left empty)"
                    .into(),
            )),
        }
    }

    /// Default headers of every registry request: `Authorization: Basic …` when credentials are
    /// set, marked sensitive so that no debug output of the client shows it.
    fn auth_headers(&self) -> Result<HeaderMap, ConfigError> {
        let mut headers = HeaderMap::new();
        if let Some((username, password)) = self.credentials()? {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|_| {
                ConfigError::Invalid("registry.username contains characters not allowed".into())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(headers)
    }
}

/// Registry failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or answered 5xx; retrying later may work.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    /// The subject or id does not exist, or the registry refused the request.
    #[error("schema registry refused: {0}")]
    Refused(String),
    /// The registry answered 401 or 403: the credentials (`registry.username` and
    /// `registry.password`) are missing or not accepted. Not retried: the same request would be
    /// refused again until the configuration changes.
    #[error("schema registry unauthorized (check registry.username and registry.password): {0}")]
    Unauthorized(String),
    /// The registry returned a schema that does not parse as Avro.
    #[error("invalid Avro schema from registry: {0}")]
    InvalidSchema(String),
}

impl RegistryError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    fn from_src(error: SRCError) -> Self {
        // The converter reports a refused request as "… failed with status 401 Unauthorized".
        if ["status 401", "status 403"]
            .iter()
            .any(|status| error.error.contains(status))
        {
            Self::Unauthorized(error.to_string())
        } else if error.retriable || error.cause.as_deref().is_some_and(is_transport_failure) {
            Self::Unavailable(error.to_string())
        } else {
            Self::Refused(error.to_string())
        }
    }
}

fn is_transport_failure(cause: &str) -> bool {
    let cause = cause.to_ascii_lowercase();
    ["connect", "timed out", "timeout", "connection", "dns"]
        .iter()
        .any(|needle| cause.contains(needle))
}

/// A parsed registry schema with its id.
#[derive(Debug)]
pub struct CachedSchema {
    /// Registry id (goes into the Confluent frame).
    pub id: u32,
    /// Parsed Avro schema.
    pub schema: Schema,
    pub(crate) names: Names,
}

impl CachedSchema {
    fn parse(id: u32, text: &str) -> Result<Self, RegistryError> {
        let schema =
            Schema::parse_str(text).map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
        let names = collect_names(&schema);
        Ok(Self { id, schema, names })
    }
}

/// The registry client with its caches.
pub struct SchemaRegistry {
    settings: SrSettings,
    base_url: String,
    http: reqwest::Client,
    latest_ttl: Duration,
    by_id: RwLock<HashMap<u32, Arc<CachedSchema>>>,
    latest: RwLock<HashMap<String, (Instant, Arc<CachedSchema>)>>,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("url", &self.base_url)
            .field("latest_ttl", &self.latest_ttl)
            .finish_non_exhaustive()
    }
}

/// The subject holding the value schema of `topic` (TopicNameStrategy).
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

impl SchemaRegistry {
    /// Builds the client; no request is made until the first lookup.
    pub fn new(settings: &RegistrySettings) -> Result<Self, RegistryError> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let base_url = settings.url.trim_end_matches('/').to_owned();
        let headers = settings
            .auth_headers()
            .map_err(|e| RegistryError::Refused(e.to_string()))?;
        // Both clients (the converter's and ours) send the credentials with every request.
        let client = || {
            crate::http::client_builder(timeout, settings.ca_file.as_deref())
                .map(|builder| builder.no_proxy().default_headers(headers.clone()))
                .map_err(|e| RegistryError::Refused(e.to_string()))
        };
        let sr = SrSettings::new_builder(base_url.clone())
            .set_timeout(timeout)
            .no_proxy()
            .build_with(client()?)
            .map_err(|e| RegistryError::Refused(e.to_string()))?;
        let http = client()?
            .build()
            .map_err(|e| RegistryError::Refused(e.to_string()))?;
        Ok(Self {
            settings: sr,
            base_url,
            http,
            latest_ttl: Duration::from_secs(settings.latest_ttl_secs),
            by_id: RwLock::default(),
            latest: RwLock::default(),
        })
    }

    /// The latest schema registered under `<topic>-value`.
    pub async fn latest_for_topic(&self, topic: &str) -> Result<Arc<CachedSchema>, RegistryError> {
        let subject = value_subject(topic);
        let cached = self.latest.read().await.get(&subject).cloned();
        if let Some((fetched, schema)) = &cached
            && fetched.elapsed() < self.latest_ttl
        {
            return Ok(schema.clone());
        }
        let strategy = SubjectNameStrategy::TopicNameStrategy(topic.to_owned(), false);
        match get_schema_by_subject(&self.settings, &strategy).await {
            Ok(registered) => {
                let schema = self.remember(registered).await?;
                self.latest
                    .write()
                    .await
                    .insert(subject, (Instant::now(), schema.clone()));
                Ok(schema)
            }
            Err(error) => {
                let error = RegistryError::from_src(error);
                match cached {
                    Some((_, schema)) if error.is_retryable() => {
                        tracing::warn!(%error, subject, "registry unreachable; using the cached schema");
                        Ok(schema)
                    }
                    _ => Err(error),
                }
            }
        }
    }

    /// The schema with registry id `id` (writer schema of a framed record).
    pub async fn by_id(&self, id: u32) -> Result<Arc<CachedSchema>, RegistryError> {
        if let Some(schema) = self.by_id.read().await.get(&id) {
            return Ok(schema.clone());
        }
        let registered = get_schema_by_id(id, &self.settings)
            .await
            .map_err(RegistryError::from_src)?;
        // Some registries omit the id in `GET /schemas/ids/{id}`; the id we asked for is the truth.
        let mut registered = registered;
        registered.id = id;
        self.remember(registered).await
    }

    async fn remember(
        &self,
        registered: RegisteredSchema,
    ) -> Result<Arc<CachedSchema>, RegistryError> {
        let schema = Arc::new(CachedSchema::parse(registered.id, &registered.schema)?);
        self.by_id
            .write()
            .await
            .insert(registered.id, schema.clone());
        Ok(schema)
    }

    /// Registers `schema` (Avro JSON text) under `<topic>-value` and returns its id; registering
    /// an identical schema again returns the existing id.
    pub async fn register_for_topic(
        &self,
        topic: &str,
        schema: &str,
    ) -> Result<u32, RegistryError> {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        let registered = post_schema(&self.settings, value_subject(topic), supplied)
            .await
            .map_err(RegistryError::from_src)?;
        Ok(registered.id)
    }

    /// Sets the compatibility level of `subject` (e.g. `NONE` for Flink-written subjects).
    pub async fn set_compatibility(&self, subject: &str, level: &str) -> Result<(), RegistryError> {
        let response = self
            .http
            .put(format!("{}/config/{subject}", self.base_url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .json(&serde_json::json!({ "compatibility": level }))
            .send()
            .await
            .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status if is_auth_refusal(status) => Err(RegistryError::Unauthorized(format!(
                "PUT /config/{subject}: {status}"
            ))),
            status => Err(RegistryError::Refused(format!(
                "PUT /config/{subject}: {status}"
            ))),
        }
    }

    /// A cheap request that proves the registry answers (used by readiness checks).
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let response = self
            .http
            .get(format!("{}/subjects", self.base_url))
            .send()
            .await
            .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status if is_auth_refusal(status) => Err(RegistryError::Unauthorized(format!(
                "GET /subjects: {status}"
            ))),
            status => Err(RegistryError::Unavailable(format!(
                "GET /subjects: {status}"
            ))),
        }
    }
}

fn is_auth_refusal(status: reqwest::StatusCode) -> bool {
    matches!(
        status,
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::Json;
    use axum::Router;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use serde_json::{Value, json};

    use super::*;

    const SCHEMA: &str = r#"{"type":"record","name":"Ping","fields":[{"name":"n","type":"long"}]}"#;
    const USER: &str = "media-service";
    const PASSWORD: &str = "registry-pw-not-logged";

    /// A Confluent-style registry that answers only requests with `USER:PASSWORD` basic auth.
    async fn registry_requiring_basic_auth() -> String {
        fn authorized(headers: &HeaderMap) -> bool {
            let expected =
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
            headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == format!("Basic {expected}"))
        }
        fn guarded(headers: &HeaderMap, body: Value) -> Response {
            if authorized(headers) {
                Json(body).into_response()
            } else {
                let refusal = json!({"error_code": 401, "message": "Unauthorized"});
                (StatusCode::UNAUTHORIZED, Json(refusal)).into_response()
            }
        }
        let router = Router::new()
            .route(
                "/subjects",
                get(|headers: HeaderMap| async move { guarded(&headers, json!(["t-value"])) }),
            )
            .route(
                "/subjects/{subject}/versions/latest",
                get(|Path(subject): Path<String>, headers: HeaderMap| async move {
                    guarded(
                        &headers,
                        json!({"subject": subject, "version": 1, "id": 7, "schema": SCHEMA}),
                    )
                }),
            )
            .route(
                "/schemas/ids/{id}",
                get(|headers: HeaderMap| async move { guarded(&headers, json!({"schema": SCHEMA})) }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{address}")
    }

    fn settings(url: &str, username: &str, password: Option<&str>) -> RegistrySettings {
        RegistrySettings {
            url: url.to_owned(),
            timeout_ms: 2_000,
            username: username.to_owned(),
            password: password.map(|p| SecretString::from(p.to_owned())),
            ..RegistrySettings::default()
        }
    }

    #[tokio::test]
    async fn without_credentials_every_call_is_unauthorized_not_an_outage() {
        let url = registry_requiring_basic_auth().await;
        let registry = SchemaRegistry::new(&settings(&url, "", None)).unwrap();

        let failures = [
            registry.latest_for_topic("t").await.err(),
            registry.by_id(7).await.err(),
            registry.ping().await.err(),
        ];

        for failure in failures {
            let error = failure.unwrap_or_else(|| panic!("an unauthenticated call succeeded"));
            assert!(
                matches!(error, RegistryError::Unauthorized(_)),
                "expected unauthorized, got {error:?}"
            );
            assert!(!error.is_retryable(), "{error}");
            assert!(error.to_string().contains("unauthorized"), "{error}");
        }
    }

    #[tokio::test]
    async fn with_credentials_lookups_and_the_readiness_ping_succeed() {
        let url = registry_requiring_basic_auth().await;
        let registry = SchemaRegistry::new(&settings(&url, USER, Some(PASSWORD))).unwrap();

        let latest = registry.latest_for_topic("t").await.unwrap();
        assert_eq!(latest.id, 7);
        let by_id = registry.by_id(7).await.unwrap();
        assert_eq!(by_id.schema, latest.schema);
        registry.ping().await.unwrap();
        let wrong = SchemaRegistry::new(&settings(&url, USER, Some("wrong"))).unwrap();
        assert!(matches!(
            wrong.ping().await,
            Err(RegistryError::Unauthorized(_))
        ));
    }

    #[test]
    fn credentials_are_both_or_neither_and_never_in_debug_output() {
        let url = "http://127.0.0.1:1";
        assert!(settings(url, "", None).validate().is_ok());
        assert!(settings(url, USER, Some(PASSWORD)).validate().is_ok());
        assert!(settings(url, USER, None).validate().is_err());
        assert!(settings(url, USER, Some("")).validate().is_err());
        assert!(settings(url, "", Some(PASSWORD)).validate().is_err());
        assert!(SchemaRegistry::new(&settings(url, USER, None)).is_err());

        let configured = settings(url, USER, Some(PASSWORD));
        let client = SchemaRegistry::new(&configured).unwrap();
        for dump in [format!("{configured:?}"), format!("{client:?}")] {
            assert!(!dump.contains(PASSWORD), "password leaked: {dump}");
        }
    }
}
