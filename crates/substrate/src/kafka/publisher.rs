//! Producing records and waiting for the broker's acknowledgement.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::KafkaSettings;
use crate::config::ConfigError;

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRecord {
    /// Destination topic.
    pub topic: String,
    /// Record key; the platform produces keyless records unless a caller needs ordering.
    pub key: Option<Vec<u8>>,
    /// Serialized value (normally Confluent-framed Avro).
    pub payload: Vec<u8>,
    /// Record headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl OutboundRecord {
    /// A keyless, header-less record.
    pub fn new(topic: impl Into<String>, payload: Vec<u8>) -> Self {
        Self {
            topic: topic.into(),
            key: None,
            payload,
            headers: Vec::new(),
        }
    }
}

/// Where the broker stored an acknowledged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition written to.
    pub partition: i32,
    /// Offset assigned by the broker.
    pub offset: i64,
}

/// Why a record was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The broker did not acknowledge in time or is unreachable; trying again later may work.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the record for a reason retrying will not fix (e.g. too large).
    #[error("record rejected: {0}")]
    Rejected(String),
}

impl PublishError {
    /// Whether a later attempt can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The narrow edge in front of the Kafka producer; handlers depend on this, tests on fakes.
#[async_trait]
pub trait EventPublisher: Send + Sync + std::fmt::Debug {
    /// Produces `record` and resolves once the broker acknowledged it (or it failed).
    async fn publish(&self, record: OutboundRecord) -> Result<Delivered, PublishError>;

    /// Produces `records` in their order (records bound for one partition land in it in this
    /// order) and resolves with one result per record once each is acknowledged or failed. The
    /// default publishes one after another; [`KafkaPublisher`] queues them all at once.
    async fn publish_in_order(
        &self,
        records: Vec<OutboundRecord>,
    ) -> Vec<Result<Delivered, PublishError>> {
        let mut results = Vec::with_capacity(records.len());
        for record in records {
            results.push(self.publish(record).await);
        }
        results
    }
}

/// [`EventPublisher`] over an rdkafka `FutureProducer`.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    delivery_timeout: Duration,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("delivery_timeout", &self.delivery_timeout)
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    /// Builds the producer. No network call happens here; the broker is contacted lazily.
    pub fn new(settings: &KafkaSettings) -> Result<Self, ConfigError> {
        let producer = settings
            .producer_config()?
            .create()
            .map_err(|e| ConfigError::Invalid(format!("kafka producer: {e}")))?;
        Ok(Self {
            producer,
            delivery_timeout: settings.delivery_timeout(),
        })
    }

    /// The underlying producer, e.g. for metadata checks.
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Waits up to `timeout` for every queued record to be delivered; call on shutdown.
    pub fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        self.producer
            .flush(Timeout::After(timeout))
            .map_err(|e| PublishError::Unavailable(e.to_string()))
    }

    /// [`Self::flush`] on a blocking thread: waiting for the broker to acknowledge what is
    /// queued must not hold a runtime thread (shutdown still drains requests meanwhile).
    pub async fn flush_blocking(&self, timeout: Duration) -> Result<(), PublishError> {
        let publisher = self.clone();
        tokio::task::spawn_blocking(move || publisher.flush(timeout))
            .await
            .map_err(|e| PublishError::Unavailable(format!("flush task: {e}")))?
    }
}

/// The rdkafka record for `record` (borrowing its parts), with the trace context `trace` added
/// unless the record carries one of its own (a dead-letter copy keeps its original's).
fn future_record<'a>(
    record: &'a OutboundRecord,
    trace: &[(&'static str, String)],
) -> FutureRecord<'a, [u8], [u8]> {
    let mut future_record: FutureRecord<'_, [u8], [u8]> =
        FutureRecord::to(&record.topic).payload(&record.payload);
    if let Some(key) = record.key.as_deref() {
        future_record = future_record.key(key);
    }
    let has_trace = record
        .headers
        .iter()
        .any(|(key, _)| key == crate::telemetry::TRACEPARENT);
    let trace = if has_trace { &[][..] } else { trace };
    if !record.headers.is_empty() || !trace.is_empty() {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + trace.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        for (key, value) in trace {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        future_record = future_record.headers(headers);
    }
    future_record
}

#[async_trait]
impl EventPublisher for KafkaPublisher {
    async fn publish_in_order(
        &self,
        records: Vec<OutboundRecord>,
    ) -> Vec<Result<Delivered, PublishError>> {
        // Queued synchronously, one after the other, so librdkafka batches them in this order
        // (idempotent producers keep it across retries); then every acknowledgement is awaited.
        let trace = crate::telemetry::trace_headers();
        let queued: Vec<_> = records
            .iter()
            .map(|record| {
                self.producer
                    .send_result(future_record(record, &trace))
                    .map_err(|(error, _)| classify(&error))
            })
            .collect();
        let limit = self.delivery_timeout + Duration::from_secs(1);
        let acknowledged = queued.into_iter().map(|queued| async move {
            let delivery = queued?;
            match tokio::time::timeout(limit, delivery).await {
                Err(_) => Err(PublishError::Unavailable(format!(
                    "no acknowledgement within {} ms",
                    self.delivery_timeout.as_millis()
                ))),
                Ok(Err(_canceled)) => Err(PublishError::Unavailable(
                    "the producer dropped the record".into(),
                )),
                Ok(Ok(Ok(delivery))) => Ok(Delivered {
                    partition: delivery.partition,
                    offset: delivery.offset,
                }),
                Ok(Ok(Err((error, _message)))) => Err(classify(&error)),
            }
        });
        futures::future::join_all(acknowledged).await
    }

    async fn publish(&self, record: OutboundRecord) -> Result<Delivered, PublishError> {
        let trace = crate::telemetry::trace_headers();
        let future_record = future_record(&record, &trace);
        // The queue wait is bounded by the same timeout as delivery (message.timeout.ms), so the
        // whole call resolves within roughly `delivery_timeout`.
        let send = self
            .producer
            .send(future_record, Timeout::After(self.delivery_timeout));
        // A safety net in case librdkafka's own timer is late: never hang a request forever.
        match tokio::time::timeout(self.delivery_timeout + Duration::from_secs(1), send).await {
            Err(_) => Err(PublishError::Unavailable(format!(
                "no acknowledgement within {} ms",
                self.delivery_timeout.as_millis()
            ))),
            Ok(Ok(delivery)) => Ok(Delivered {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Ok(Err((error, _message))) => Err(classify(&error)),
        }
    }
}

fn classify(error: &rdkafka::error::KafkaError) -> PublishError {
    use rdkafka::types::RDKafkaErrorCode as Code;
    match error.rdkafka_error_code() {
        Some(
            Code::MessageSizeTooLarge
            | Code::InvalidMessage
            | Code::InvalidRecord
            | Code::TopicAuthorizationFailed
            | Code::InvalidTopic
            | Code::UnknownTopic,
        ) => PublishError::Rejected(error.to_string()),
        _ => PublishError::Unavailable(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn flushing_leaves_the_runtime_free() {
        // No broker listens here: the queued record stays queued for the whole flush.
        let settings = KafkaSettings {
            brokers: "127.0.0.1:1".into(),
            ..KafkaSettings::default()
        };
        let publisher = KafkaPublisher::new(&settings).unwrap();
        let _queued = publisher
            .producer()
            .send_result(FutureRecord::<[u8], [u8]>::to("nowhere").payload(b"x"))
            .unwrap_or_else(|(e, _)| panic!("{e}"));
        let ticks = Arc::new(AtomicU32::new(0));
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let flushed = publisher.flush_blocking(Duration::from_millis(300)).await;
        ticker.abort();
        assert!(
            flushed.is_err(),
            "nothing can be delivered without a broker"
        );
        // On the only runtime thread, a flush that blocked it would leave the ticker at 0.
        assert!(
            ticks.load(Ordering::SeqCst) > 0,
            "the runtime stood still while flushing"
        );
    }
}
