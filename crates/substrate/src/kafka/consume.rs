//! The at-least-once consume loop shared by every consumer.
//!
//! Delivery guarantee: **at least once**. A message's offset is stored (and later committed by the
//! background auto-commit or the final synchronous commit) only after its handler succeeded, or
//! after it was written to the dead-letter topic. A crash or rebalance can therefore redeliver
//! messages whose effect already happened, so every handler's effect must be idempotent.
//!
//! Failure classes:
//! - [`HandlerError::Retryable`] (database, object store or broker outage): the loop backs off
//!   exponentially (capped) and retries the same message; the offset does not move and nothing
//!   after it is processed, which keeps per-partition order. Retrying is bounded by
//!   [`ConsumeSettings::retry_budget_ms`]: a message that still fails after that long is
//!   dead-lettered with the last error, so one record can never hold its partition forever.
//! - [`HandlerError::Permanent`] (undecodable bytes, invalid fields, a request the dependency
//!   refuses for good): the original key, value and headers go to the dead-letter topic with
//!   `dlq.*` headers describing the failure, then the offset is stored and the loop moves on. A
//!   poison message can never stall or crash the loop.
//! - [`HandlerError::Deferred`]: the message is not due yet (a scheduled retry); the loop waits
//!   the given time without counting it as a failure.
//!
//! Waiting never costs the group membership: while it backs off or waits for a due time, the
//! loop pauses its partitions and keeps polling, so the member keeps answering the group (a
//! consumer that stops polling for `max.poll.interval.ms` is evicted, and its replicas churn in
//! rebalances). Records that arrive meanwhile (a rebalance assigned a partition) are kept and
//! processed after the current batch.
//!
//! Ordering caveat: messages are processed sequentially in fetch order by one task; batching
//! only groups messages that were already fetched, it never reorders them.
//!
//! On shutdown the loop stops fetching, lets the in-flight batch finish (or abandons a retry
//! without storing its offset), commits stored offsets synchronously and returns.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{EventPublisher, KafkaSettings, LoggingContext, OutboundRecord, PublishError};
use crate::BoxError;
use crate::config::ConfigError;

/// A consumed record, detached from the consumer so it can be held across awaits.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub payload: Option<Vec<u8>>,
    /// Record headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Broker or producer timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl InboundMessage {
    /// The value of the first header named `name`, if it has one.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_deref())
    }

    /// The event's own identity: the `ce_id` header the platform's producers set (a UUID per
    /// event, [`crate::events::EVENT_ID_HEADER`]), when present and sane. Unlike the record's
    /// position it survives a topic being recreated or mirrored, so it is the idempotency key
    /// for effects of events.
    pub fn event_id(&self) -> Option<&str> {
        self.header(crate::events::EVENT_ID_HEADER)
            .and_then(|value| std::str::from_utf8(value).ok())
            .filter(|id| !id.is_empty() && id.len() <= 128 && !id.contains(char::is_control))
    }

    /// The span of this record's processing: one per consumed record, named after OpenTelemetry's
    /// messaging conventions, with topic, partition, offset and event id, and `event.type` for
    /// the handler to fill in ([`record_event_type`]). It continues the trace of the record's
    /// `traceparent` header, so the effect of a record is part of the trace of whatever
    /// produced it (an HTTP request at the gateway, a saga step before it).
    pub fn span(&self) -> tracing::Span {
        let span = tracing::info_span!(
            "kafka.consume",
            "otel.name" = %format_args!("process {}", self.topic),
            "otel.kind" = "consumer",
            "messaging.system" = "kafka",
            "messaging.operation.type" = "process",
            "messaging.destination.name" = %self.topic,
            "messaging.destination.partition.id" = self.partition,
            "messaging.kafka.offset" = self.offset,
            "messaging.message.id" = tracing::field::Empty,
            "event.type" = tracing::field::Empty,
        );
        if let Some(id) = self.event_id() {
            span.record("messaging.message.id", id);
        }
        crate::telemetry::continue_trace(&span, |name| {
            self.header(name)
                .and_then(|value| std::str::from_utf8(value).ok())
        });
        span
    }

    fn from_borrowed(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        }
    }
}

/// Records the type of the event a handler decoded on the current record's span
/// ([`InboundMessage::span`]): its `event_type` field where the contract has one, otherwise the
/// topic (every other topic carries one kind of event).
pub fn record_event_type(topic: &str, event: &serde_json::Value) {
    let event_type = event
        .get("event_type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(topic);
    tracing::Span::current().record("event.type", event_type);
}

/// Copies a fetched message out of the consumer's buffer.
pub fn detach(message: &BorrowedMessage<'_>) -> InboundMessage {
    InboundMessage::from_borrowed(message)
}

/// How a handler failed, which decides what the loop does next.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A dependency is unavailable; retry the same message later without moving the offset.
    #[error("retryable failure: {0}")]
    Retryable(BoxError),
    /// The message itself is bad, or the effect is refused for good; dead-letter it and move on.
    #[error("permanent failure: {0}")]
    Permanent(BoxError),
    /// The message is not due yet; handle it again after this long (not a failure).
    #[error("not due for another {0:?}")]
    Deferred(Duration),
}

impl HandlerError {
    /// A retryable failure from any error.
    pub fn retryable(error: impl Into<BoxError>) -> Self {
        Self::Retryable(error.into())
    }

    /// A permanent failure from any error.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        Self::Permanent(error.into())
    }
}

/// Processes one message at a time.
pub trait MessageHandler: Send + Sync {
    /// Applies the message's effect. Must be idempotent: the same message can arrive again.
    fn handle(
        &self,
        message: &InboundMessage,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Processes messages in groups (e.g. one database transaction per batch).
pub trait BatchHandler: Send + Sync {
    /// Returns one result per message, in order, for a prefix of `batch`. Processing is taken to
    /// have stopped at the first [`HandlerError::Retryable`] or [`HandlerError::Deferred`]
    /// (results after it are ignored); a result vector shorter than the batch means the rest was
    /// not attempted.
    fn handle_batch(
        &self,
        batch: &[InboundMessage],
    ) -> impl Future<Output = Vec<Result<(), HandlerError>>> + Send;
}

/// Adapts a [`MessageHandler`] to a [`BatchHandler`] that handles messages one by one.
#[derive(Debug, Clone)]
pub struct PerMessage<H>(pub H);

impl<H: MessageHandler> BatchHandler for PerMessage<H> {
    async fn handle_batch(&self, batch: &[InboundMessage]) -> Vec<Result<(), HandlerError>> {
        let mut results = Vec::with_capacity(batch.len());
        for message in batch {
            let result = self.0.handle(message).instrument(message.span()).await;
            let stop = matches!(
                result,
                Err(HandlerError::Retryable(_) | HandlerError::Deferred(_))
            );
            results.push(result);
            if stop {
                break;
            }
        }
        results
    }
}

/// Settings of one consume loop.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsumeSettings {
    /// Consumer group id.
    pub group_id: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Where permanently failing messages go (original bytes plus `dlq.*` headers).
    pub dead_letter_topic: String,
    /// Most messages handed to the handler at once; only already-fetched messages are grouped,
    /// so a lone message is processed immediately.
    pub max_batch: usize,
    /// First retry delay after a retryable failure, in milliseconds.
    pub retry_initial_backoff_ms: u64,
    /// Cap of the exponential retry delay, in milliseconds.
    pub retry_max_backoff_ms: u64,
    /// How long one message may keep failing with retryable errors before it is dead-lettered
    /// (milliseconds since its first failure; 0 retries for ever). Long enough to ride out a
    /// dependency's restart, short enough that a record that can never succeed does not hold
    /// its partition for good.
    pub retry_budget_ms: u64,
    /// Where the group starts on a partition it has no committed offset for. `earliest` for
    /// the groups the original services had (a new deployment processes every record; a
    /// cut-over keeps the Go fleet's committed offsets), `latest` for groups the Rust services
    /// added, so their first start cannot replay a topic's history (docs/cutover.md).
    pub start_at: StartAt,
}

/// `auto.offset.reset` of a consume loop: where a group without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// The oldest retained record.
    Earliest,
    /// Only records produced after the group first joined.
    Latest,
}

impl StartAt {
    fn as_reset(self) -> &'static str {
        match self {
            Self::Earliest => "earliest",
            Self::Latest => "latest",
        }
    }
}

impl Default for ConsumeSettings {
    fn default() -> Self {
        Self {
            group_id: String::new(),
            topics: Vec::new(),
            dead_letter_topic: String::new(),
            max_batch: 256,
            retry_initial_backoff_ms: 200,
            retry_max_backoff_ms: 30_000,
            retry_budget_ms: 900_000,
            start_at: StartAt::Earliest,
        }
    }
}

impl ConsumeSettings {
    /// Checks the settings hang together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.group_id.is_empty() {
            return Err(ConfigError::Invalid("consumer group_id is empty".into()));
        }
        if self.topics.is_empty() {
            return Err(ConfigError::Invalid("consumer has no topics".into()));
        }
        if self.dead_letter_topic.is_empty() {
            return Err(ConfigError::Invalid(
                "consumer dead_letter_topic is empty".into(),
            ));
        }
        if self.max_batch == 0 {
            return Err(ConfigError::Invalid(
                "consumer max_batch must be > 0".into(),
            ));
        }
        Ok(())
    }

    /// Delay before retry number `attempt` (1-based): doubling from the initial delay, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u64.saturating_pow(attempt.saturating_sub(1).min(32));
        Duration::from_millis(
            self.retry_initial_backoff_ms
                .saturating_mul(factor)
                .min(self.retry_max_backoff_ms),
        )
    }
}

/// Why the loop could not run.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// Settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The consumer could not be created or subscribed.
    #[error("kafka consumer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Counters and timings of a consume loop, registered on the service's meter.
#[derive(Debug, Clone)]
struct LoopMetrics {
    messages: Counter<u64>,
    errors: Counter<u64>,
    duration: Histogram<f64>,
}

impl LoopMetrics {
    fn new(meter: &Meter) -> Self {
        Self {
            messages: meter
                .u64_counter("kafka.consumer.messages.total")
                .with_description("Consumed messages by outcome: success, dead_lettered")
                .build(),
            errors: meter
                .u64_counter("kafka.consumer.errors.total")
                .with_description("Handler failures by kind: retryable, permanent, retries_exhausted, dead_letter_publish, poll")
                .build(),
            duration: meter
                .f64_histogram("kafka.consumer.processing.duration")
                .with_unit("s")
                .with_description("Time from fetch to stored offset per batch")
                .build(),
        }
    }

    fn outcome(&self, topic: &str, status: &'static str) {
        self.messages.add(
            1,
            &[
                KeyValue::new("topic", topic.to_owned()),
                KeyValue::new("status", status),
            ],
        );
    }

    fn error(&self, topic: &str, kind: &'static str) {
        self.errors.add(
            1,
            &[
                KeyValue::new("topic", topic.to_owned()),
                KeyValue::new("kind", kind),
            ],
        );
    }
}

/// Runs the consume loop until `shutdown` is cancelled. See the module docs for the guarantees.
pub async fn run_consumer<H: BatchHandler>(
    kafka: &KafkaSettings,
    settings: &ConsumeSettings,
    handler: H,
    dead_letters: Arc<dyn EventPublisher>,
    meter: &Meter,
    shutdown: CancellationToken,
) -> Result<(), ConsumeError> {
    settings.validate()?;
    let consumer: StreamConsumer<LoggingContext> = kafka
        .consumer_config(&settings.group_id)?
        .set("auto.offset.reset", settings.start_at.as_reset())
        .create_with_context(LoggingContext)?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(
        group_id = %settings.group_id,
        topics = ?settings.topics,
        start_at = settings.start_at.as_reset(),
        "consuming"
    );

    let worker = Worker {
        consumer: &consumer,
        settings,
        handler,
        dead_letters,
        metrics: LoopMetrics::new(meter),
        shutdown: shutdown.clone(),
        held: Mutex::default(),
    };
    worker.run().await;
    drop(worker);

    // Everything whose effect succeeded has its offset stored; make that durable before leaving
    // the group so the next member starts exactly after it. The commit, leaving the group and
    // closing the client block on broker round trips: they run on a blocking thread so the
    // runtime keeps serving the other loops and the HTTP drain meanwhile.
    let group_id = settings.group_id.clone();
    let closed = tokio::task::spawn_blocking(move || {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!(%group_id, "final offsets committed"),
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            )) => tracing::info!(%group_id, "no new offsets to commit"),
            Err(error) => {
                tracing::warn!(%error, "final offset commit failed; messages since the last commit will be redelivered")
            }
        }
        consumer.unsubscribe();
        drop(consumer);
    })
    .await;
    if let Err(error) = closed {
        tracing::error!(%error, "closing the consumer failed");
    }
    Ok(())
}

struct Worker<'a, H> {
    consumer: &'a StreamConsumer<LoggingContext>,
    settings: &'a ConsumeSettings,
    handler: H,
    dead_letters: Arc<dyn EventPublisher>,
    metrics: LoopMetrics,
    shutdown: CancellationToken,
    /// Records fetched while the loop was waiting with its partitions paused (a rebalance can
    /// assign new ones meanwhile); processed, in order, before anything else is fetched.
    held: Mutex<VecDeque<InboundMessage>>,
}

/// Longest pause after a failed poll (see `Worker::run`).
const POLL_ERROR_MAX_WAIT: Duration = Duration::from_secs(1);

/// Most queued poll errors taken in one go before the loop waits (see `drain_poll_errors`).
const POLL_ERROR_DRAIN_LIMIT: usize = 1024;

/// Whether the loop should keep going.
enum Flow {
    Continue,
    Stop,
}

/// Where one message stands in its retries.
struct Retrying {
    topic: String,
    offset: i64,
    partition: i32,
    attempts: u32,
    since: Instant,
}

impl<H: BatchHandler> Worker<'_, H> {
    async fn run(&self) {
        let mut batch = Vec::with_capacity(self.settings.max_batch);
        let mut poll_failures = 0u32;
        loop {
            self.take_held(&mut batch);
            if batch.is_empty() {
                let first = tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => return,
                    received = self.consumer.recv() => received,
                };
                match first {
                    Ok(message) => {
                        poll_failures = 0;
                        batch.push(InboundMessage::from_borrowed(&message));
                    }
                    Err(error) => {
                        // Nothing was fetched, so nothing can be skipped. These errors report
                        // what the client is already recovering from by itself (a broker gone,
                        // a reconnect failing), and one is queued for each: backing off as for a
                        // handler's retries would sleep up to the retry cap per queued error,
                        // long after the broker is back (a chaos run saw minutes). So the
                        // errors already queued are drained without waiting, and the loop then
                        // waits once, at most a second, which keeps a stream of errors from
                        // spinning it.
                        poll_failures += 1;
                        self.metrics.error("", "poll");
                        tracing::warn!(%error, "poll failed");
                        match self.drain_poll_errors() {
                            Some(message) => {
                                poll_failures = 0;
                                batch.push(message);
                            }
                            None => {
                                let delay = self
                                    .settings
                                    .backoff(poll_failures)
                                    .min(POLL_ERROR_MAX_WAIT);
                                if self.sleep(delay).await.is_stop() {
                                    return;
                                }
                                continue;
                            }
                        }
                    }
                }
            }
            // Group what is already buffered locally, without waiting for more.
            while batch.len() < self.settings.max_batch {
                match self.consumer.recv().now_or_never() {
                    Some(Ok(message)) => batch.push(InboundMessage::from_borrowed(&message)),
                    Some(Err(error)) => {
                        tracing::warn!(%error, "poll failed while batching");
                        break;
                    }
                    None => break,
                }
            }
            let flow = self.process(&batch).await;
            batch.clear();
            if flow.is_stop() {
                return;
            }
        }
    }

    /// Takes the poll errors already queued, without waiting; returns the first message found
    /// behind them, if any. Bounded, so a client producing errors as fast as they are read
    /// still reaches the loop's wait.
    fn drain_poll_errors(&self) -> Option<InboundMessage> {
        let mut drained = 0usize;
        while drained < POLL_ERROR_DRAIN_LIMIT {
            match self.consumer.recv().now_or_never() {
                Some(Ok(message)) => {
                    if drained > 0 {
                        tracing::info!(drained, "queued poll errors drained");
                    }
                    return Some(InboundMessage::from_borrowed(&message));
                }
                Some(Err(error)) => {
                    drained += 1;
                    self.metrics.error("", "poll");
                    tracing::debug!(%error, "queued poll error drained");
                }
                None => break,
            }
        }
        if drained > 0 {
            tracing::info!(drained, "queued poll errors drained");
        }
        None
    }

    fn take_held(&self, batch: &mut Vec<InboundMessage>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let take = held.len().min(self.settings.max_batch);
        batch.extend(held.drain(..take));
    }

    async fn process(&self, batch: &[InboundMessage]) -> Flow {
        let started = Instant::now();
        let mut done = 0usize;
        let mut retrying: Option<Retrying> = None;
        while done < batch.len() {
            let pending = &batch[done..];
            let results = self.handler.handle_batch(pending).await;
            let mut progressed = 0usize;
            let mut wait = None;
            for (message, result) in pending.iter().zip(results) {
                let outcome = match result {
                    Ok(()) => {
                        self.metrics.outcome(&message.topic, "success");
                        None
                    }
                    Err(HandlerError::Permanent(error)) => {
                        self.metrics.error(&message.topic, "permanent");
                        Some(crate::telemetry::cause_chain(&*error))
                    }
                    Err(HandlerError::Retryable(error)) => {
                        self.metrics.error(&message.topic, "retryable");
                        let entry = match retrying.take() {
                            Some(entry)
                                if entry.offset == message.offset
                                    && entry.partition == message.partition
                                    && entry.topic == message.topic =>
                            {
                                entry
                            }
                            _ => Retrying {
                                topic: message.topic.clone(),
                                offset: message.offset,
                                partition: message.partition,
                                attempts: 0,
                                since: Instant::now(),
                            },
                        };
                        let budget = self.settings.retry_budget_ms;
                        let spent = entry.since.elapsed();
                        if budget > 0 && spent >= Duration::from_millis(budget) {
                            // Out of budget: record it for good instead of holding the partition.
                            self.metrics.error(&message.topic, "retries_exhausted");
                            Some(format!(
                                "retries exhausted after {} attempts over {} s: {}",
                                entry.attempts + 1,
                                spent.as_secs(),
                                crate::telemetry::cause_chain(&*error)
                            ))
                        } else {
                            let attempts = entry.attempts + 1;
                            let delay = self.settings.backoff(attempts);
                            tracing::warn!(
                                topic = %message.topic,
                                partition = message.partition,
                                offset = message.offset,
                                attempt = attempts,
                                delay_ms = delay.as_millis() as u64,
                                error = %crate::telemetry::cause_chain(&*error),
                                "retryable failure; offset not advanced, retrying after backoff"
                            );
                            retrying = Some(Retrying { attempts, ..entry });
                            wait = Some(delay);
                            break;
                        }
                    }
                    Err(HandlerError::Deferred(delay)) => {
                        tracing::debug!(
                            topic = %message.topic,
                            partition = message.partition,
                            offset = message.offset,
                            delay_ms = delay.as_millis() as u64,
                            "not due yet; waiting"
                        );
                        wait = Some(delay);
                        break;
                    }
                };
                if let Some(reason) = outcome {
                    if self.dead_letter(message, &reason).await.is_stop() {
                        return Flow::Stop;
                    }
                    self.metrics.outcome(&message.topic, "dead_lettered");
                }
                self.store(message);
                progressed += 1;
            }
            done += progressed;
            if done == batch.len() {
                break;
            }
            // A handler that returns fewer results than messages without saying why is
            // treated like a retryable failure of the next one.
            let delay = wait.unwrap_or_else(|| self.settings.backoff(1));
            if self.wait_paused(delay).await.is_stop() {
                // Abandon the retry: its offset stays unstored, so it is redelivered later.
                return Flow::Stop;
            }
        }
        if let Some(first) = batch.first() {
            self.metrics.duration.record(
                started.elapsed().as_secs_f64(),
                &[KeyValue::new("topic", first.topic.clone())],
            );
        }
        Flow::Continue
    }

    /// Publishes the message to the dead-letter topic; a message may only be skipped once it is
    /// safely recorded somewhere. A broker outage is waited out (paused, still polling). A copy
    /// the broker refuses for good (too large for the dead-letter topic) is replaced by one
    /// without the value, whose headers still point at the original (topic, partition,
    /// offset) for as long as the source topic retains it.
    async fn dead_letter(&self, message: &InboundMessage, reason: &str) -> Flow {
        let mut record = dead_letter_record(
            message,
            &self.settings.dead_letter_topic,
            &self.settings.group_id,
            reason,
        );
        tracing::warn!(
            topic = %message.topic,
            partition = message.partition,
            offset = message.offset,
            dead_letter_topic = %self.settings.dead_letter_topic,
            error = reason,
            "permanent failure; dead-lettering message"
        );
        let mut attempt = 0u32;
        loop {
            match self.dead_letters.publish(record.clone()).await {
                Ok(_) => return Flow::Continue,
                Err(PublishError::Rejected(refusal)) if !record.payload.is_empty() => {
                    tracing::error!(%refusal, "dead-letter copy refused; recording it without its value");
                    record = without_value(record, &refusal);
                }
                Err(publish_error) => {
                    attempt += 1;
                    self.metrics.error(&message.topic, "dead_letter_publish");
                    tracing::error!(%publish_error, attempt, "dead-letter publish failed; retrying");
                    if self
                        .wait_paused(self.settings.backoff(attempt))
                        .await
                        .is_stop()
                    {
                        return Flow::Stop;
                    }
                }
            }
        }
    }

    fn store(&self, message: &InboundMessage) {
        // Stores offset+1 for the next commit. This fails only if the partition was revoked in a
        // rebalance, in which case the new owner will redeliver it (idempotent handlers make
        // that harmless).
        if let Err(error) =
            self.consumer
                .store_offset(&message.topic, message.partition, message.offset)
        {
            tracing::warn!(%error, topic = %message.topic, partition = message.partition, offset = message.offset, "could not store offset");
        }
    }

    /// Waits `delay` with every assigned partition paused while still polling, so the member
    /// keeps its place in the group however long the wait. Anything fetched meanwhile (only
    /// partitions a rebalance assigned during the wait deliver) is held for later, and those
    /// partitions are paused too.
    async fn wait_paused(&self, delay: Duration) -> Flow {
        if let Err(error) = self.set_paused(true) {
            tracing::warn!(%error, "could not pause partitions; waiting without polling");
            return self.sleep(delay).await;
        }
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        let flow = loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break Flow::Stop,
                () = &mut deadline => break Flow::Continue,
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        self.held
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push_back(InboundMessage::from_borrowed(&message));
                        if let Err(error) = self.set_paused(true) {
                            tracing::warn!(%error, "could not pause newly assigned partitions");
                        }
                    }
                    Err(error) => tracing::debug!(%error, "poll failed while paused"),
                },
            }
        };
        if let Err(error) = self.set_paused(false) {
            tracing::warn!(%error, "could not resume partitions");
        }
        flow
    }

    fn set_paused(&self, paused: bool) -> KafkaResult<()> {
        let assignment = self.consumer.assignment()?;
        if assignment.count() == 0 {
            return Ok(());
        }
        if paused {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        }
    }

    async fn sleep(&self, delay: Duration) -> Flow {
        tokio::select! {
            () = self.shutdown.cancelled() => Flow::Stop,
            () = tokio::time::sleep(delay) => Flow::Continue,
        }
    }
}

impl Flow {
    fn is_stop(&self) -> bool {
        matches!(self, Self::Stop)
    }
}

/// Header names on dead-lettered records.
pub mod dlq_headers {
    /// The failure, with its cause chain.
    pub const ERROR: &str = "dlq.error";
    /// Topic the message was consumed from.
    pub const SOURCE_TOPIC: &str = "dlq.source.topic";
    /// Partition the message was consumed from.
    pub const SOURCE_PARTITION: &str = "dlq.source.partition";
    /// Offset of the message in its source partition.
    pub const SOURCE_OFFSET: &str = "dlq.source.offset";
    /// Consumer group that gave up on it.
    pub const CONSUMER_GROUP: &str = "dlq.consumer.group";
    /// When it was dead-lettered (RFC 3339).
    pub const FAILED_AT: &str = "dlq.failed_at";
    /// Present when the copy carries no value because the broker refused it (says why).
    pub const VALUE_OMITTED: &str = "dlq.value_omitted";
}

/// The dead-letter copy of `message`: same key and value bytes, original headers, plus `dlq.*`.
pub fn dead_letter_record(
    message: &InboundMessage,
    dead_letter_topic: &str,
    group_id: &str,
    error: &str,
) -> OutboundRecord {
    let mut headers: Vec<(String, Vec<u8>)> = message
        .headers
        .iter()
        .filter(|(key, _)| !key.starts_with("dlq."))
        .map(|(key, value)| (key.clone(), value.clone().unwrap_or_default()))
        .collect();
    headers.extend([
        (dlq_headers::ERROR.to_owned(), error.as_bytes().to_vec()),
        (
            dlq_headers::SOURCE_TOPIC.to_owned(),
            message.topic.as_bytes().to_vec(),
        ),
        (
            dlq_headers::SOURCE_PARTITION.to_owned(),
            message.partition.to_string().into_bytes(),
        ),
        (
            dlq_headers::SOURCE_OFFSET.to_owned(),
            message.offset.to_string().into_bytes(),
        ),
        (
            dlq_headers::CONSUMER_GROUP.to_owned(),
            group_id.as_bytes().to_vec(),
        ),
        (
            dlq_headers::FAILED_AT.to_owned(),
            crate::time::now_rfc3339().into_bytes(),
        ),
    ]);
    OutboundRecord {
        topic: dead_letter_topic.to_owned(),
        key: message.key.clone(),
        payload: message.payload.clone().unwrap_or_default(),
        headers,
    }
}

/// A dead-letter record without its value, for when the broker refuses the full copy: the
/// `dlq.*` headers still name the original's topic, partition and offset, and say why the value
/// is missing.
fn without_value(mut record: OutboundRecord, refusal: &str) -> OutboundRecord {
    record.payload.clear();
    record.headers.push((
        dlq_headers::VALUE_OMITTED.to_owned(),
        format!("the dead-letter topic refused the copy: {refusal}").into_bytes(),
    ));
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_at_defaults_to_earliest_and_reads_lowercase_names() {
        assert_eq!(ConsumeSettings::default().start_at, StartAt::Earliest);
        let settings: ConsumeSettings =
            serde_json::from_value(serde_json::json!({"group_id": "g", "start_at": "latest"}))
                .unwrap();
        assert_eq!(settings.start_at, StartAt::Latest);
        assert_eq!(settings.start_at.as_reset(), "latest");
        assert!(
            serde_json::from_value::<ConsumeSettings>(serde_json::json!({"start_at": "newest"}))
                .is_err()
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let settings = ConsumeSettings {
            retry_initial_backoff_ms: 100,
            retry_max_backoff_ms: 1_000,
            ..Default::default()
        };
        let delays: Vec<u64> = (1..=6)
            .map(|n| settings.backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(settings.backoff(u32::MAX).as_millis(), 1_000);
    }

    #[test]
    fn dead_letter_records_keep_the_original_bytes_and_describe_the_failure() {
        let message = InboundMessage {
            topic: "t".into(),
            partition: 3,
            offset: 42,
            key: Some(b"k".to_vec()),
            payload: Some(vec![0, 0, 0, 0, 9, 1, 2]),
            headers: vec![("trace".into(), Some(b"abc".to_vec()))],
            timestamp_ms: None,
        };
        let record = dead_letter_record(&message, "t.dlq", "g", "bad bytes");
        assert_eq!(record.topic, "t.dlq");
        assert_eq!(record.payload, message.payload.clone().unwrap_or_default());
        assert_eq!(record.key, message.key);
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header("trace").as_deref(), Some("abc"));
        assert_eq!(header(dlq_headers::ERROR).as_deref(), Some("bad bytes"));
        assert_eq!(header(dlq_headers::SOURCE_TOPIC).as_deref(), Some("t"));
        assert_eq!(header(dlq_headers::SOURCE_PARTITION).as_deref(), Some("3"));
        assert_eq!(header(dlq_headers::SOURCE_OFFSET).as_deref(), Some("42"));
        assert_eq!(header(dlq_headers::CONSUMER_GROUP).as_deref(), Some("g"));
    }

    #[test]
    fn settings_without_a_dead_letter_topic_are_invalid() {
        let settings = ConsumeSettings {
            group_id: "g".into(),
            topics: vec!["t".into()],
            ..Default::default()
        };
        assert!(settings.validate().is_err());
    }
}
