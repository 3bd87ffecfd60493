//! A cached client for a Confluent-compatible schema registry.
//!
//! Lookups go through `schema_registry_converter`. Two caches:
//! - by id: immutable in the registry, so cached for the life of the process;
//! - latest version per subject: cached for `latest_ttl_secs` and then re-fetched, so a newly
//!   registered version is picked up without a restart (the original never refreshed). If the
//!   registry is down when an entry expires, the previous entry keeps serving (stale beats down).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::Schema;
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, get_schema_by_subject, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    RegisteredSchema, SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde::Deserialize;
use tokio::sync::RwLock;

use super::json::{Names, collect_names};

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
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            url: crate::local_stack::schema_registry_url().to_owned(),
            timeout_ms: 5_000,
            latest_ttl_secs: 300,
            ca_file: None,
        }
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
        if error.retriable || error.cause.as_deref().is_some_and(is_transport_failure) {
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
        let client = || {
            crate::http::client_builder(timeout, settings.ca_file.as_deref())
                .map(reqwest::ClientBuilder::no_proxy)
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
        if response.status().is_success() {
            Ok(())
        } else {
            Err(RegistryError::Refused(format!(
                "PUT /config/{subject}: {}",
                response.status()
            )))
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
        if response.status().is_success() {
            Ok(())
        } else {
            Err(RegistryError::Unavailable(format!(
                "GET /subjects: {}",
                response.status()
            )))
        }
    }
}
