//! `/healthz` (liveness) and `/readyz` (readiness with real dependency checks).
//!
//! Liveness says only that the process serves HTTP. Readiness runs every registered check
//! concurrently, each bounded by a timeout, and answers 200 only when all pass:
//! `{"status":"ok","checks":{"kafka":"ok",…}}`, otherwise 503 with the failing checks marked
//! `error` and the top-level status set to the service's not-ready word.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Map, Value, json};

use crate::avro::SchemaRegistry;
use crate::kafka::KafkaSettings;

/// One dependency probe.
#[async_trait]
pub trait ReadinessCheck: Send + Sync + std::fmt::Debug {
    /// Name in the `checks` object (`kafka`, `database`, `minio`, …).
    fn name(&self) -> &'static str;
    /// Ok when the dependency is usable right now.
    async fn check(&self) -> Result<(), String>;
}

/// The set of readiness checks of a service.
#[derive(Debug, Clone)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
    timeout: Duration,
    not_ready_status: &'static str,
}

impl Readiness {
    /// No checks yet; `not_ready_status` is the top-level status word on failure
    /// (`not_ready` for the gateway and consumer, `error` for the media service).
    pub fn new(not_ready_status: &'static str) -> Self {
        Self {
            checks: Vec::new(),
            timeout: Duration::from_secs(2),
            not_ready_status,
        }
    }

    /// Adds a check.
    pub fn with(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Bounds each check (default 2 s) so a hanging dependency cannot hang the probe.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs all checks; returns overall readiness and the per-check body.
    pub async fn evaluate(&self) -> (bool, Value) {
        let results = futures::future::join_all(self.checks.iter().map(|check| async move {
            let outcome = match tokio::time::timeout(self.timeout, check.check()).await {
                Ok(result) => result,
                Err(_) => Err(format!("timed out after {} ms", self.timeout.as_millis())),
            };
            (check.name(), outcome)
        }))
        .await;
        let mut checks = Map::new();
        let mut ready = true;
        for (name, outcome) in results {
            if let Err(reason) = &outcome {
                ready = false;
                tracing::warn!(check = name, reason, "readiness check failed");
            }
            checks.insert(
                name.to_owned(),
                Value::from(if outcome.is_ok() { "ok" } else { "error" }),
            );
        }
        let status = if ready { "ok" } else { self.not_ready_status };
        (ready, json!({ "status": status, "checks": checks }))
    }
}

/// The two probe routes; any method is accepted, as in the original services.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", any(healthz))
        .route("/readyz", any(readyz))
        .with_state(Arc::new(readiness))
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(readiness): State<Arc<Readiness>>) -> Response {
    let (ready, body) = readiness.evaluate().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Kafka is ready when cluster metadata can be fetched from a broker.
pub struct KafkaCheck {
    client: Arc<BaseConsumer>,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaCheck").finish_non_exhaustive()
    }
}

impl KafkaCheck {
    /// A metadata-only client (it never joins a group) for the given broker settings.
    pub fn new(settings: &KafkaSettings) -> Result<Self, crate::config::ConfigError> {
        let client = settings
            .consumer_config("readiness-probe")?
            .create()
            .map_err(|e| crate::config::ConfigError::Invalid(format!("kafka probe: {e}")))?;
        Ok(Self {
            client: Arc::new(client),
            timeout: Duration::from_millis(1_500),
        })
    }
}

#[async_trait]
impl ReadinessCheck for KafkaCheck {
    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn check(&self) -> Result<(), String> {
        let client = self.client.clone();
        let timeout = self.timeout;
        // fetch_metadata blocks the calling thread, so it runs on the blocking pool.
        tokio::task::spawn_blocking(move || {
            client
                .fetch_metadata(None, timeout)
                .map(|metadata| metadata.brokers().len())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
        .and_then(|brokers| {
            if brokers == 0 {
                Err("metadata lists no brokers".to_owned())
            } else {
                Ok(())
            }
        })
    }
}

/// The registry is ready when it answers `GET /subjects`.
#[derive(Debug)]
pub struct RegistryCheck(pub Arc<SchemaRegistry>);

#[async_trait]
impl ReadinessCheck for RegistryCheck {
    fn name(&self) -> &'static str {
        "schema_registry"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

/// Postgres is ready when `select 1` succeeds.
#[derive(Debug)]
pub struct PostgresCheck(pub sqlx::PgPool);

#[async_trait]
impl ReadinessCheck for PostgresCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        sqlx::query("select 1")
            .execute(&self.0)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The object store is ready when the bucket answers `HeadBucket`.
#[derive(Debug)]
pub struct BucketCheck {
    /// S3 client for the internal endpoint.
    pub client: aws_sdk_s3::Client,
    /// Bucket that must exist.
    pub bucket: String,
}

#[async_trait]
impl ReadinessCheck for BucketCheck {
    fn name(&self) -> &'static str {
        "minio"
    }

    async fn check(&self) -> Result<(), String> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[derive(Debug)]
    struct Fixed(&'static str, bool);

    #[async_trait]
    impl ReadinessCheck for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        async fn check(&self) -> Result<(), String> {
            if self.1 { Ok(()) } else { Err("down".into()) }
        }
    }

    #[derive(Debug)]
    struct Hangs;

    #[async_trait]
    impl ReadinessCheck for Hangs {
        fn name(&self) -> &'static str {
            "slow"
        }
        async fn check(&self) -> Result<(), String> {
            futures::future::pending::<()>().await;
            Ok(())
        }
    }

    async fn call(router: Router, path: &str, method: &str) -> (StatusCode, String, Value) {
        let response = router
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap();
        (status, content_type, body)
    }

    #[tokio::test]
    async fn healthz_is_ok_json_for_any_method() {
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let (status, content_type, body) =
                call(router(Readiness::new("not_ready")), "/healthz", method).await;
            assert_eq!(status, StatusCode::OK, "{method}");
            assert_eq!(content_type, "application/json");
            assert_eq!(body, json!({"status":"ok"}));
        }
    }

    #[tokio::test]
    async fn readyz_reports_each_check_and_fails_if_any_fails() {
        let table = [
            (true, true, StatusCode::OK, "ok"),
            (true, false, StatusCode::SERVICE_UNAVAILABLE, "error"),
            (false, false, StatusCode::SERVICE_UNAVAILABLE, "error"),
        ];
        for (kafka_ok, db_ok, expected_status, expected_word) in table {
            let readiness = Readiness::new("error")
                .with(Arc::new(Fixed("kafka", kafka_ok)))
                .with(Arc::new(Fixed("database", db_ok)));
            let (status, content_type, body) = call(router(readiness), "/readyz", "GET").await;
            assert_eq!(status, expected_status, "kafka={kafka_ok} db={db_ok}");
            assert_eq!(content_type, "application/json");
            assert_eq!(body["status"], expected_word);
            assert_eq!(
                body["checks"]["kafka"],
                if kafka_ok { "ok" } else { "error" }
            );
            assert_eq!(
                body["checks"]["database"],
                if db_ok { "ok" } else { "error" }
            );
        }
    }

    #[tokio::test]
    async fn a_hanging_check_times_out_as_not_ready() {
        let readiness = Readiness::new("not_ready")
            .with(Arc::new(Hangs))
            .with_timeout(Duration::from_millis(20));
        let (status, _, body) = call(router(readiness), "/readyz", "GET").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["checks"]["slow"], "error");
    }
}
