//! Publishing JSON documents as Avro events, acknowledged by the broker.
//!
//! [`EventSink`] is the narrow edge services put in front of "encode with the topic's latest
//! schema, produce, wait for the ack"; [`AvroEventSink`] is the real implementation and counts
//! outcomes in `kafka.producer.messages.total{topic,status}` on the service's meter.
//!
//! Every event gets an identity of its own, a UUID in the [`EVENT_ID_HEADER`] record header
//! (the CloudEvents Kafka binding's name for it). Consumers key idempotent effects on it: unlike
//! the record's topic, partition and offset it stays the same when a topic is mirrored or
//! recreated. It is a header, not a field, so the Avro contracts stay exactly as specified.

use std::sync::Arc;

use async_trait::async_trait;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use serde_json::Value;

use crate::avro::{AvroCodec, CodecError, RegistryError};
use crate::kafka::{EventPublisher, OutboundRecord, PublishError};

/// The record header carrying an event's identity (`ce_id`, as in the CloudEvents Kafka binding).
pub const EVENT_ID_HEADER: &str = "ce_id";

/// Why an event was not accepted by the broker.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The document does not fit the topic's schema (names the field).
    #[error("{0}")]
    Schema(String),
    /// The topic has no schema registered (`<topic>-value`).
    #[error("no schema registered for topic {0}")]
    UnknownSubject(String),
    /// Broker or registry unavailable; nothing was stored.
    #[error("{0}")]
    Unavailable(String),
    /// The broker refused the record.
    #[error("{0}")]
    Rejected(String),
}

/// A fresh event identity, for an event that is not the repeat of an earlier one.
pub fn new_event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Publishes a JSON document as an Avro event and resolves once the broker acknowledged it.
#[async_trait]
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Encodes `document` with the latest schema of `<topic>-value` and produces it with
    /// `event_id` in the [`EVENT_ID_HEADER`]. A producer that may send the same event twice
    /// (a client's retry with an `Idempotency-Key`) passes the same id both times, so
    /// consumers apply it once.
    async fn send_event(
        &self,
        topic: &str,
        document: &Value,
        event_id: &str,
    ) -> Result<(), SinkError>;

    /// [`Self::send_event`] with a fresh identity.
    async fn send(&self, topic: &str, document: &Value) -> Result<(), SinkError> {
        self.send_event(topic, document, &new_event_id()).await
    }

    /// Sends each `(document, event_id)` to `topic`, in order, and returns one result per
    /// document: a document that does not fit the schema fails alone, the others are produced
    /// in their relative order. The default sends them one after another.
    async fn send_events(
        &self,
        topic: &str,
        events: &[(Value, String)],
    ) -> Vec<Result<(), SinkError>> {
        let mut results = Vec::with_capacity(events.len());
        for (document, event_id) in events {
            results.push(self.send_event(topic, document, event_id).await);
        }
        results
    }
}

/// [`EventSink`] over the shared Avro codec and Kafka publisher.
#[derive(Debug)]
pub struct AvroEventSink {
    codec: AvroCodec,
    publisher: Arc<dyn EventPublisher>,
    produced: Counter<u64>,
}

impl AvroEventSink {
    /// A sink that counts outcomes in `kafka.producer.messages.total{topic,status}` on the
    /// meter named `service`.
    pub fn new(
        service: &'static str,
        codec: AvroCodec,
        publisher: Arc<dyn EventPublisher>,
    ) -> Self {
        let produced = opentelemetry::global::meter(service)
            .u64_counter("kafka.producer.messages.total")
            .with_description("Records produced, by topic and status (success, error)")
            .build();
        Self {
            codec,
            publisher,
            produced,
        }
    }
}

impl AvroEventSink {
    async fn encode(&self, topic: &str, document: &Value) -> Result<Vec<u8>, SinkError> {
        self.codec
            .encode_json(topic, document)
            .await
            .map_err(|error| match error {
                CodecError::Registry(RegistryError::Refused(_)) => {
                    SinkError::UnknownSubject(topic.to_owned())
                }
                error if error.is_retryable() => {
                    SinkError::Unavailable(format!("schema registry unavailable: {error}"))
                }
                error => SinkError::Schema(error.to_string()),
            })
    }

    fn count(&self, topic: &str, result: &Result<(), SinkError>) {
        let status = if result.is_ok() { "success" } else { "error" };
        self.produced.add(
            1,
            &[
                KeyValue::new("topic", topic.to_owned()),
                KeyValue::new("status", status),
            ],
        );
    }
}

fn record(topic: &str, bytes: Vec<u8>, event_id: &str) -> OutboundRecord {
    OutboundRecord {
        headers: vec![(EVENT_ID_HEADER.to_owned(), event_id.as_bytes().to_vec())],
        ..OutboundRecord::new(topic, bytes)
    }
}

fn sink_error(error: PublishError) -> SinkError {
    match error {
        PublishError::Unavailable(e) => SinkError::Unavailable(format!("broker unavailable: {e}")),
        PublishError::Rejected(e) => SinkError::Rejected(e),
    }
}

#[async_trait]
impl EventSink for AvroEventSink {
    async fn send_event(
        &self,
        topic: &str,
        document: &Value,
        event_id: &str,
    ) -> Result<(), SinkError> {
        let result = async {
            let bytes = self.encode(topic, document).await?;
            self.publisher
                .publish(record(topic, bytes, event_id))
                .await
                .map(|_| ())
                .map_err(sink_error)
        }
        .await;
        self.count(topic, &result);
        result
    }

    async fn send_events(
        &self,
        topic: &str,
        events: &[(Value, String)],
    ) -> Vec<Result<(), SinkError>> {
        // Every document is encoded first (the schema is cached after the first), so the ones
        // that fit are queued together and in order.
        let mut results: Vec<Option<Result<(), SinkError>>> = Vec::with_capacity(events.len());
        let mut records = Vec::new();
        let mut positions = Vec::new();
        for (index, (document, event_id)) in events.iter().enumerate() {
            match self.encode(topic, document).await {
                Ok(bytes) => {
                    records.push(record(topic, bytes, event_id));
                    positions.push(index);
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        let published = self.publisher.publish_in_order(records).await;
        for (index, outcome) in positions.into_iter().zip(published) {
            results[index] = Some(outcome.map(|_| ()).map_err(sink_error));
        }
        results
            .into_iter()
            .map(|result| {
                let result = result
                    .unwrap_or_else(|| Err(SinkError::Unavailable("no acknowledgement".into())));
                self.count(topic, &result);
                result
            })
            .collect()
    }
}
