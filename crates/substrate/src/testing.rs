//! Test utilities (feature `test-util`): recording fakes for the edge traits and helpers for
//! tests that run against the real local stack (broker, registry) on 127.0.0.1.
//!
//! Stack addresses come from the same configuration layers as the services (`APP__KAFKA__BROKERS`,
//! `APP__REGISTRY__URL`, …), defaulting to the local stack's ports.

// Test support: it fails a test by panicking, so unwrapping is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

    /// A service's backbone on this stack: HTTP on 127.0.0.1 with a free port (0), the test
    /// Kafka settings, the registry, and `database_url` (a test's own database) when given.
    pub fn backbone(&self, database_url: Option<&str>) -> crate::app::Backbone {
        let mut postgres = self.postgres.clone();
        if let Some(url) = database_url {
            postgres.url = secrecy::SecretString::from(url.to_owned());
        }
        crate::app::Backbone {
            http: crate::config::HttpSettings {
                host: "127.0.0.1".to_owned(),
                port: 0,
                ..crate::config::HttpSettings::default()
            },
            kafka: self.kafka(),
            registry: self.registry.clone(),
            postgres,
            telemetry: crate::telemetry::TelemetrySettings::default(),
        }
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
            .unwrap()
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
            .unwrap()
            .create()
            .unwrap_or_else(|e| panic!("committer: {e}"));
        let mut offsets = rdkafka::TopicPartitionList::new();
        offsets
            .add_partition_offset(topic, 0, rdkafka::Offset::Offset(next))
            .unwrap();
        consumer
            .commit(&offsets, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("commit {group} {topic}@{next}: {e}"));
    }

    /// Produces each batch of `payloads` to partition 0 of `topic` in a committed transaction of
    /// its own, as an exactly-once writer (Flink's Kafka sink) does: every commit leaves a
    /// transaction marker in the partition right after the batch's records, at an offset no
    /// consumer ever receives. Blocks until the last transaction is committed.
    pub async fn produce_in_transactions(&self, topic: &str, batches: Vec<Vec<Vec<u8>>>) {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let (kafka, topic) = (self.kafka(), topic.to_owned());
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(30);
            let producer: BaseProducer = kafka
                .producer_config()
                .unwrap()
                .set("transactional.id", unique("substrate-test-tx"))
                .create()
                .unwrap_or_else(|e| panic!("transactional producer: {e}"));
            producer
                .init_transactions(timeout)
                .unwrap_or_else(|e| panic!("init transactions: {e}"));
            for batch in batches {
                producer.begin_transaction().unwrap();
                for payload in batch {
                    producer
                        .send(
                            BaseRecord::<(), [u8]>::to(&topic)
                                .partition(0)
                                .payload(&payload),
                        )
                        .unwrap_or_else(|(e, _)| panic!("send to {topic}: {e}"));
                }
                producer
                    .commit_transaction(timeout)
                    .unwrap_or_else(|e| panic!("commit transaction on {topic}: {e}"));
            }
        })
        .await
        .unwrap();
    }

    /// The committed offset of `group` on partition 0 of `topic` and the partition's high
    /// watermark (`None` for a group without a committed offset).
    pub fn committed_and_end(&self, group: &str, topic: &str) -> (Option<i64>, i64) {
        let consumer: BaseConsumer = self
            .kafka()
            .consumer_config(group)
            .unwrap()
            .create()
            .unwrap_or_else(|e| panic!("offset reader: {e}"));
        let timeout = Duration::from_secs(10);
        let mut partitions = rdkafka::TopicPartitionList::new();
        partitions.add_partition(topic, 0);
        let committed = consumer
            .committed_offsets(partitions, timeout)
            .unwrap_or_else(|e| panic!("committed offsets of {group}: {e}"));
        let committed = committed
            .elements()
            .first()
            .and_then(|element| match element.offset() {
                rdkafka::Offset::Offset(offset) => Some(offset),
                _ => None,
            });
        let (_, high) = consumer
            .fetch_watermarks(topic, 0, timeout)
            .unwrap_or_else(|e| panic!("watermarks of {topic}: {e}"));
        (committed, high)
    }

    /// How many members `group` has right now (each consume loop of a service is one).
    pub fn group_members(&self, group: &str) -> usize {
        let client: BaseConsumer = self
            .kafka()
            .consumer_config(&unique("group-lister"))
            .unwrap()
            .create()
            .unwrap_or_else(|e| panic!("group lister: {e}"));
        let groups = client
            .fetch_group_list(Some(group), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("describe {group}: {e}"));
        groups
            .groups()
            .iter()
            .filter(|g| g.name() == group)
            .map(|g| g.members().len())
            .sum()
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
            .unwrap()
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
        .unwrap()
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

/// Everything the recording fakes below did, in order, across all of them (a test that shares
/// one log between them asserts the order of effects: "soft delete, then produce, then remove").
pub type OpLog = Arc<Mutex<Vec<String>>>;

/// Locks `mutex`, ignoring poisoning (a test that panicked while holding it fails anyway).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a [`RecordingSink`] answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SinkMode {
    /// Records and acknowledges every event.
    #[default]
    Accept,
    /// The broker is down.
    Unavailable,
    /// The document does not fit its schema.
    SchemaViolation,
    /// The topic has no schema.
    UnknownSubject,
}

/// An [`crate::events::EventSink`] that records what it accepts.
#[derive(Debug, Default)]
pub struct RecordingSink {
    /// (topic, document) of every accepted event, in order.
    pub sent: Mutex<Vec<(String, serde_json::Value)>>,
    /// The `ce_id` of every accepted event, in order.
    pub ids: Mutex<Vec<String>>,
    /// How it answers.
    pub mode: Mutex<SinkMode>,
    /// Shared operation log.
    pub log: OpLog,
}

impl RecordingSink {
    /// Every accepted event.
    pub fn events(&self) -> Vec<(String, serde_json::Value)> {
        lock(&self.sent).clone()
    }

    /// The documents accepted for `topic`.
    pub fn on(&self, topic: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, v)| v)
            .collect()
    }

    /// Answers as `mode` from now on.
    pub fn set_mode(&self, mode: SinkMode) {
        *lock(&self.mode) = mode;
    }
}

#[async_trait]
impl crate::events::EventSink for RecordingSink {
    async fn send_event(
        &self,
        topic: &str,
        document: &serde_json::Value,
        event_id: &str,
    ) -> Result<(), crate::events::SinkError> {
        use crate::events::SinkError;
        match *lock(&self.mode) {
            SinkMode::Accept => {
                lock(&self.log).push(format!("produce {topic}"));
                lock(&self.sent).push((topic.to_owned(), document.clone()));
                lock(&self.ids).push(event_id.to_owned());
                Ok(())
            }
            SinkMode::Unavailable => Err(SinkError::Unavailable("fake broker down".into())),
            SinkMode::SchemaViolation => Err(SinkError::Schema(
                "field `user_id`: required field is missing".into(),
            )),
            SinkMode::UnknownSubject => Err(SinkError::UnknownSubject(topic.to_owned())),
        }
    }
}

/// (method, key, bound content type, expiry) of one presigning call.
pub type Presigned = (String, String, Option<String>, Duration);

/// A [`crate::media::ObjectStore`] that records what it is asked and fails on demand.
#[derive(Debug, Default)]
pub struct RecordingObjectStore {
    /// Every presigning call.
    pub presigned: Mutex<Vec<Presigned>>,
    /// Removed keys.
    pub removed: Mutex<Vec<String>>,
    /// (from, to) of every move.
    pub moved: Mutex<Vec<(String, String)>>,
    /// Presigning is refused (a setting out of range).
    pub fail_presign: Mutex<bool>,
    /// Removals fail for a while (the store is unreachable).
    pub fail_remove: Mutex<bool>,
    /// Removals are refused for good (403).
    pub refuse_remove: Mutex<bool>,
    /// What every move fails with, if anything.
    pub move_result: Mutex<Option<crate::media::ObjectError>>,
    /// A successful move reports that the destination already held the object.
    pub already_moved: Mutex<bool>,
    /// Shared operation log.
    pub log: OpLog,
}

#[async_trait]
impl crate::media::ObjectStore for RecordingObjectStore {
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, crate::media::ObjectError> {
        // Presigning is local: it only fails on a setting out of range, for good.
        if *lock(&self.fail_presign) {
            return Err(crate::media::ObjectError::Refused(
                "expiry out of range".into(),
            ));
        }
        lock(&self.presigned).push((
            "PUT".into(),
            key.into(),
            Some(content_type.into()),
            expires_in,
        ));
        Ok(format!("http://objects.test/media-uploads/{key}?sig=put"))
    }

    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<String, crate::media::ObjectError> {
        if *lock(&self.fail_presign) {
            return Err(crate::media::ObjectError::Refused(
                "expiry out of range".into(),
            ));
        }
        lock(&self.presigned).push(("GET".into(), key.into(), None, expires_in));
        Ok(format!("http://objects.test/media-uploads/{key}?sig=get"))
    }

    async fn remove(&self, key: &str) -> Result<(), crate::media::ObjectError> {
        lock(&self.log).push(format!("remove {key}"));
        if *lock(&self.fail_remove) {
            return Err(crate::media::ObjectError::Failed(
                "connection refused".into(),
            ));
        }
        if *lock(&self.refuse_remove) {
            return Err(crate::media::ObjectError::Refused(
                "AccessDenied (403)".into(),
            ));
        }
        lock(&self.removed).push(key.into());
        Ok(())
    }

    async fn move_object(
        &self,
        from: &str,
        to: &str,
    ) -> Result<crate::media::Moved, crate::media::ObjectError> {
        lock(&self.moved).push((from.into(), to.into()));
        match lock(&self.move_result).clone() {
            Some(error) => Err(error),
            None if *lock(&self.already_moved) => Ok(crate::media::Moved::AlreadyMoved),
            None => Ok(crate::media::Moved::Copied),
        }
    }
}

/// A [`crate::media::MediaFiles`] over rows in memory, with the same ownership and soft-delete
/// rules as the table.
#[derive(Debug, Default)]
pub struct RecordingMediaFiles {
    /// Rows by (user, path).
    pub rows: Mutex<std::collections::HashMap<(String, String), crate::media::FileRow>>,
    /// Lookups fail (the database is unreachable).
    pub fail_lookup: Mutex<bool>,
    /// Soft deletes fail for a while.
    pub fail_soft_delete: Mutex<bool>,
    /// Soft deletes violate a constraint (refused for good).
    pub refuse_soft_delete: Mutex<bool>,
    /// (user, path) of every lookup.
    pub lookups: Mutex<Vec<(String, String)>>,
    /// Shared operation log.
    pub log: OpLog,
}

impl RecordingMediaFiles {
    /// Adds `user`'s active file at `path`.
    pub fn insert(&self, user: &str, path: &str, name: &str, media_type: &str, size: i64) {
        lock(&self.rows).insert(
            (user.into(), path.into()),
            crate::media::FileRow {
                file_path: path.into(),
                file_name: name.into(),
                media_type: media_type.into(),
                file_size: size,
                status: crate::media::ACTIVE.into(),
                deleted_by_request_id: None,
            },
        );
    }

    /// The status of `user`'s row at `path`.
    pub fn status(&self, user: &str, path: &str) -> Option<String> {
        lock(&self.rows)
            .get(&(user.into(), path.into()))
            .map(|row| row.status.clone())
    }

    /// The row of `user` at `path`.
    pub fn row(&self, user: &str, path: &str) -> Option<crate::media::FileRow> {
        lock(&self.rows).get(&(user.into(), path.into())).cloned()
    }
}

#[async_trait]
impl crate::media::MediaFiles for RecordingMediaFiles {
    async fn lookup(
        &self,
        user_id: &str,
        file_path: &str,
    ) -> Result<Option<crate::media::FileRow>, crate::media::DbError> {
        lock(&self.lookups).push((user_id.into(), file_path.into()));
        if *lock(&self.fail_lookup) {
            return Err(crate::media::DbError::unavailable(
                "lookup",
                "connection refused",
            ));
        }
        Ok(lock(&self.rows)
            .get(&(user_id.into(), file_path.into()))
            .cloned())
    }

    async fn soft_delete(
        &self,
        user_id: &str,
        file_path: &str,
        request_id: &str,
    ) -> Result<bool, crate::media::DbError> {
        if *lock(&self.fail_soft_delete) {
            return Err(crate::media::DbError::unavailable(
                "soft delete",
                "deadlock",
            ));
        }
        if *lock(&self.refuse_soft_delete) {
            return Err(crate::media::DbError::refused(
                "soft delete",
                "violates check constraint",
            ));
        }
        lock(&self.log).push(format!("soft_delete {file_path}"));
        let mut rows = lock(&self.rows);
        match rows.get_mut(&(user_id.into(), file_path.into())) {
            Some(row) if row.is_active() => {
                row.status = "deleted".into();
                row.deleted_by_request_id = Some(request_id.into());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
