//! Publishing JSON documents as Avro events, acknowledged by the broker.
//!
//! [`EventSink`] is the narrow edge services put in front of "encode with the topic's latest
//! schema, produce, wait for the ack"; [`AvroEventSink`] is the real implementation and counts
//! outcomes in `kafka.producer.messages.total{topic,status}` on the service's meter.
//!
//! Every event gets an identity of its own, a fresh UUID in the [`EVENT_ID_HEADER`] record header
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

/// Publishes a JSON document as an Avro event and resolves once the broker acknowledged it.
#[async_trait]
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Encodes `document` with the latest schema of `<topic>-value` and produces it.
    async fn send(&self, topic: &str, document: &Value) -> Result<(), SinkError>;
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

#[async_trait]
impl EventSink for AvroEventSink {
    async fn send(&self, topic: &str, document: &Value) -> Result<(), SinkError> {
        let result = async {
            let bytes =
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
                    })?;
            let record = OutboundRecord {
                headers: vec![(
                    EVENT_ID_HEADER.to_owned(),
                    uuid::Uuid::new_v4().to_string().into_bytes(),
                )],
                ..OutboundRecord::new(topic, bytes)
            };
            self.publisher
                .publish(record)
                .await
                .map_err(|error| match error {
                    PublishError::Unavailable(e) => {
                        SinkError::Unavailable(format!("broker unavailable: {e}"))
                    }
                    PublishError::Rejected(e) => SinkError::Rejected(e),
                })
        }
        .await;
        let status = if result.is_ok() { "success" } else { "error" };
        self.produced.add(
            1,
            &[
                KeyValue::new("topic", topic.to_owned()),
                KeyValue::new("status", status),
            ],
        );
        result.map(|_| ())
    }
}
