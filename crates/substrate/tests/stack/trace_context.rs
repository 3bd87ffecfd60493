//! Trace context through the broker: a consumed record's span continues the trace of the span
//! that produced it, carries topic, partition, offset and event type, and what the handler
//! produces in turn carries the record's span onward, so a saga is one trace.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use substrate::avro::AvroCodec;
use substrate::kafka::{
    ConsumeSettings, EventPublisher, HandlerError, InboundMessage, KafkaPublisher, MessageHandler,
    OutboundRecord, PerMessage, StartAt, record_event_type, run_consumer,
};
use substrate::telemetry::TRACEPARENT;
use substrate::testing::{capture_spans, span_attribute, unique};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::helpers::{Stack, USER_MESSAGE};

/// Decodes a record and produces the same event to `next`, the way a saga step does.
struct Forward {
    codec: AvroCodec,
    publisher: KafkaPublisher,
    next: String,
}

impl MessageHandler for Forward {
    async fn handle(&self, message: &InboundMessage) -> Result<(), HandlerError> {
        let payload = message.payload.as_deref().unwrap_or_default();
        let event = self
            .codec
            .decode(payload)
            .await
            .map_err(HandlerError::permanent)?
            .to_json();
        record_event_type(&message.topic, &event);
        let bytes = self
            .codec
            .encode_json(&self.next, &event)
            .await
            .map_err(HandlerError::permanent)?;
        self.publisher
            .publish(OutboundRecord::new(self.next.clone(), bytes))
            .await
            .map_err(HandlerError::retryable)?;
        Ok(())
    }
}

fn traceparent(record: &InboundMessage) -> String {
    let value = record
        .header(TRACEPARENT)
        .unwrap_or_else(|| panic!("record without {TRACEPARENT}: {record:?}"));
    String::from_utf8_lossy(value).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumed_record_continues_its_producers_trace_and_passes_it_on() {
    // Arrange: a record produced inside a span.
    let spans = capture_spans();
    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.trace.in", USER_MESSAGE)
        .await;
    let (next, _) = stack
        .topic_with_schema("substrate.trace.next", USER_MESSAGE)
        .await;
    let dead_letters = unique("substrate.trace.dlq");
    stack.stack.create_topics(&[&dead_letters]).await;
    let event = json!({"user_id":"u","email":"e","message":"traced","timestamp":"t"});
    let bytes = stack.codec.encode_json(&topic, &event).await.unwrap();
    stack
        .publisher
        .publish(OutboundRecord::new(topic.clone(), bytes))
        .instrument(tracing::info_span!("test.produce", topic = %topic))
        .await
        .unwrap();

    // Act: the loop consumes it and the handler forwards it.
    let kafka = stack.stack.kafka();
    let settings = ConsumeSettings {
        group_id: unique("g-trace"),
        topics: vec![topic.clone()],
        dead_letter_topic: dead_letters,
        start_at: StartAt::Earliest,
        ..ConsumeSettings::default()
    };
    let handler = Forward {
        codec: stack.codec.clone(),
        publisher: KafkaPublisher::new(&kafka).unwrap(),
        next: next.clone(),
    };
    let dead_letter_publisher: Arc<dyn EventPublisher> =
        Arc::new(KafkaPublisher::new(&kafka).unwrap());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let consumer = tokio::spawn(async move {
        let meter = opentelemetry::global::meter("substrate-tests");
        run_consumer(
            &kafka,
            &settings,
            PerMessage(handler),
            dead_letter_publisher,
            &meter,
            token,
        )
        .await
    });
    let forwarded = stack
        .stack
        .read_topic(&next, 1, Duration::from_secs(60))
        .await;
    shutdown.cancel();
    consumer.await.unwrap().unwrap();

    // Assert: the produced record names its producer's span ...
    let produced = stack
        .stack
        .read_topic(&topic, 1, Duration::from_secs(30))
        .await;
    // Every test of this process records into the same capture: pick this test's spans.
    let producer: Vec<_> = spans
        .named("test.produce")
        .into_iter()
        .filter(|span| span_attribute(span, "topic").as_deref() == Some(topic.as_str()))
        .collect();
    assert_eq!(producer.len(), 1);
    let producer = &producer[0].span_context;
    assert_eq!(produced.len(), 1);
    assert_eq!(
        traceparent(&produced[0]),
        format!("00-{}-{}-01", producer.trace_id(), producer.span_id())
    );
    // ... the record's span is its child, with where the record was and what it was ...
    let consumed = spans.named(&format!("process {topic}"));
    assert_eq!(consumed.len(), 1, "one span per consumed record");
    let consumed = &consumed[0];
    assert_eq!(consumed.span_context.trace_id(), producer.trace_id());
    assert_eq!(consumed.parent_span_id, producer.span_id());
    let attribute = |key| span_attribute(consumed, key);
    assert_eq!(attribute("messaging.destination.name"), Some(topic.clone()));
    assert_eq!(
        attribute("messaging.destination.partition.id").as_deref(),
        Some("0")
    );
    assert_eq!(attribute("messaging.kafka.offset").as_deref(), Some("0"));
    assert_eq!(attribute("event.type"), Some(topic.clone()));
    // ... and what the handler produced carries the record's span onward.
    assert_eq!(forwarded.len(), 1, "the handler forwarded the record");
    assert_eq!(
        traceparent(&forwarded[0]),
        format!(
            "00-{}-{}-01",
            producer.trace_id(),
            consumed.span_context.span_id()
        )
    );
}
