//! Test utilities (feature `test-util`): recording fakes for the edge traits and helpers for
//! tests that run against the real local stack (broker, registry) on 127.0.0.1.
//!
//! Stack addresses come from the same configuration layers as the services (`APP__KAFKA__BROKERS`,
//! `APP__REGISTRY__URL`, …), defaulting to the local stack's ports.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use serde::Deserialize;

use crate::avro::RegistrySettings;
use crate::kafka::{
    Delivered, EventPublisher, InboundMessage, KafkaSettings, OutboundRecord, PublishError,
};

/// An [`EventPublisher`] that records every record and can be told to fail.
#[derive(Debug, Default, Clone)]
pub struct RecordingPublisher {
    records: Arc<Mutex<Vec<OutboundRecord>>>,
    failure: Arc<Mutex<Option<FakeFailure>>>,
}

/// How a [`RecordingPublisher`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeFailure {
    /// Every publish fails as unavailable.
    Unavailable,
    /// Every publish fails as rejected.
    Rejected,
}

impl RecordingPublisher {
    /// A publisher that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes subsequent publishes fail (or succeed again with `None`).
    pub fn fail_with(&self, failure: Option<FakeFailure>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }

    /// Everything published so far.
    pub fn records(&self) -> Vec<OutboundRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl EventPublisher for RecordingPublisher {
    async fn publish(&self, record: OutboundRecord) -> Result<Delivered, PublishError> {
        let failure = *self.failure.lock().unwrap_or_else(|p| p.into_inner());
        match failure {
            Some(FakeFailure::Unavailable) => Err(PublishError::Unavailable("fake outage".into())),
            Some(FakeFailure::Rejected) => Err(PublishError::Rejected("fake rejection".into())),
            None => {
                let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
                records.push(record);
                Ok(Delivered {
                    partition: 0,
                    offset: records.len() as i64 - 1,
                })
            }
        }
    }
}

/// Addresses of the running local stack.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TestStack {
    /// Broker settings.
    pub kafka: KafkaSettings,
    /// Registry settings.
    pub registry: RegistrySettings,
    /// Database settings; tests use the server of `postgres.url`, never its database.
    pub postgres: crate::postgres::PostgresSettings,
}

impl TestStack {
    /// Defaults overridden by `APP__…` / legacy environment variables.
    pub fn from_env() -> Self {
        let source = crate::config::ConfigSource::new("/nonexistent-substrate-test-config", &[]);
        crate::config::load(&source).unwrap_or_else(|e| panic!("test stack config: {e}"))
    }

    /// Kafka settings with short timeouts suited to tests.
    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings {
            session_timeout_ms: 10_000,
            auto_commit_interval_ms: 200,
            ..self.kafka.clone()
        }
    }

    fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.kafka
            .producer_config()
            .unwrap_or_else(|e| panic!("{e}"))
            .create()
            .unwrap_or_else(|e| panic!("admin client: {e}"))
    }

    /// Creates topics (one partition each); the broker must not auto-create them.
    pub async fn create_topics(&self, topics: &[&str]) {
        let admin = self.admin();
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
            .collect();
        let results = admin
            .create_topics(
                &new_topics,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .unwrap_or_else(|e| panic!("create topics: {e}"));
        for result in results {
            if let Err((topic, code)) = result
                && code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
            {
                panic!("create topic {topic}: {code}");
            }
        }
    }

    /// Deletes `topic` and creates it again, empty (its offsets start from 0 again). The broker
    /// finishes a deletion in the background, so creation is retried until it is accepted.
    pub async fn recreate_topic(&self, topic: &str) {
        let admin = self.admin();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let deleted = admin
            .delete_topics(&[topic], &options)
            .await
            .unwrap_or_else(|e| panic!("delete {topic}: {e}"));
        if let Some(Err((_, code))) = deleted.into_iter().next() {
            panic!("delete {topic}: {code}");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let created = admin
                .create_topics(
                    &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
                    &options,
                )
                .await
                .unwrap_or_else(|e| panic!("create {topic}: {e}"));
            match created.into_iter().next() {
                Some(Err((_, code))) if Instant::now() < deadline => {
                    tracing::debug!(%code, topic, "topic not created yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(Err((_, code))) => panic!("create {topic}: {code}"),
                _ => return,
            }
        }
    }

    /// Commits `next` (the offset of the next record to read) for `group` on partition 0 of
    /// `topic` from outside the group, the way another client of it (the Go service a cut-over
    /// replaces) leaves it behind. The group must have no running member.
    pub fn commit_offset(&self, group: &str, topic: &str, next: i64) {
        let consumer: BaseConsumer = self
            .kafka()
            .consumer_config(group)
            .unwrap_or_else(|e| panic!("{e}"))
            .create()
            .unwrap_or_else(|e| panic!("committer: {e}"));
        let mut offsets = rdkafka::TopicPartitionList::new();
        offsets
            .add_partition_offset(topic, 0, rdkafka::Offset::Offset(next))
            .unwrap_or_else(|e| panic!("{e}"));
        consumer
            .commit(&offsets, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("commit {group} {topic}@{next}: {e}"));
    }

    /// Reads messages of `topic` from the beginning with a fresh group until `count` arrived or
    /// `within` elapsed; returns what arrived (callers assert on it).
    pub async fn read_topic(
        &self,
        topic: &str,
        count: usize,
        within: Duration,
    ) -> Vec<InboundMessage> {
        self.read_topics(&[topic], count, within).await
    }

    /// Like [`Self::read_topic`] for several topics at once (one group join instead of many).
    pub async fn read_topics(
        &self,
        topics: &[&str],
        count: usize,
        within: Duration,
    ) -> Vec<InboundMessage> {
        let consumer: StreamConsumer = self
            .kafka()
            .consumer_config(&unique("reader"))
            .unwrap_or_else(|e| panic!("{e}"))
            .create()
            .unwrap_or_else(|e| panic!("reader: {e}"));
        consumer
            .subscribe(topics)
            .unwrap_or_else(|e| panic!("subscribe: {e}"));
        let deadline = Instant::now() + within;
        let mut messages = Vec::new();
        while messages.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, consumer.recv()).await {
                Ok(Ok(message)) => messages.push(crate::kafka::consume::detach(&message)),
                Ok(Err(error)) => tracing::warn!(%error, "test reader poll failed"),
                Err(_) => break,
            }
        }
        messages
    }
}

/// A fresh database with the real Supabase schema (bootstrap + `supabase/migrations`), applied
/// by the project's own `scripts/supabase_apply.py`. Dropped (forcibly) when this value drops.
#[derive(Debug)]
pub struct TestDatabase {
    /// Database name.
    pub name: String,
    /// Connection URL for it (as `postgres`, which bypasses RLS like the backend writers).
    pub url: String,
    /// A pool connected to it.
    pub pool: sqlx::PgPool,
    server: String,
}

impl TestDatabase {
    /// Creates and migrates `rs_<prefix>_<uuid>` on the stack's Postgres server.
    pub async fn create(stack: &TestStack, prefix: &str) -> Self {
        use secrecy::ExposeSecret;
        let configured = stack.postgres.url.expose_secret().to_owned();
        let server = configured
            .rsplit_once('/')
            .map(|(server, _)| server.to_owned())
            .unwrap_or(configured);
        let name = format!("rs_{prefix}_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{server}/{name}");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join(".venv/bin/python");
        let script = root.join("scripts/supabase_apply.py");
        let target = url.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .arg(script)
                .arg(target)
                .arg("--no-seed")
                .output()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("running supabase_apply.py (./taskw setup creates .venv): {e}"));
        assert!(
            output.status.success(),
            "supabase_apply.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        Self {
            name,
            url,
            pool,
            server,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop cannot await, and a leftover database would leak.
        let _ = std::process::Command::new("psql")
            .arg(format!("{}/postgres", self.server))
            .arg("-qc")
            .arg(format!(
                "drop database if exists \"{}\" with (force)",
                self.name
            ))
            .output();
    }
}

/// A name no other test (or earlier run) uses: `<prefix>-<uuid>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Polls `condition` every 50 ms until it holds or `within` elapses; returns whether it held.
/// Used to wait for asynchronous effects without sleeping a fixed time.
pub async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub use opentelemetry_sdk::trace::SpanData;

/// The spans this test process has recorded since [`capture_spans`] was first called, as
/// OpenTelemetry exports them. Every test of the process records into it, so a test picks its
/// own spans out by something it alone uses (a unique topic, request id or span name).
#[derive(Debug, Clone)]
pub struct SpanCapture {
    exporter: opentelemetry_sdk::trace::InMemorySpanExporter,
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

impl SpanCapture {
    /// Every span that has ended so far.
    pub fn finished(&self) -> Vec<SpanData> {
        // Spans are exported as they end (simple processor); flushing is only a safeguard.
        let _ = self.provider.force_flush();
        self.exporter.get_finished_spans().unwrap_or_default()
    }

    /// The ended spans named `name`.
    pub fn named(&self, name: &str) -> Vec<SpanData> {
        self.finished()
            .into_iter()
            .filter(|span| span.name == name)
            .collect()
    }
}

/// Records every span of this process (all sampled) through the same `tracing-opentelemetry`
/// bridge the services install. It is the process's global subscriber, installed by the first
/// call: a thread's own default subscriber would miss spans whose call site another test's
/// thread reached first, while none was installed, since `tracing` caches that nobody wanted
/// them.
///
/// # Panics
/// When another global subscriber was installed before.
pub fn capture_spans() -> SpanCapture {
    static CAPTURE: std::sync::OnceLock<SpanCapture> = std::sync::OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            use opentelemetry::trace::TracerProvider as _;
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::util::SubscriberInitExt;

            let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            tracing_subscriber::Registry::default()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tests")))
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .try_init()
                .unwrap_or_else(|e| panic!("span capture: {e}"));
            SpanCapture { exporter, provider }
        })
        .clone()
}

/// The value of the string attribute `key` of `span`, if it has one.
pub fn span_attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| attribute.value.to_string())
}
