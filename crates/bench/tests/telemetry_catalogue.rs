//! Every OpenTelemetry instrument that the dashboards and alert rules rely on
//! (`telemetry/metrics.yaml`, which the ops suite checks every panel and alert against) is really
//! registered by the services that the catalogue names, with the attributes it lists.
//!
//! The three services run in this process against the local stack with an in-memory metric
//! exporter as the global meter provider, get some traffic (successes, an auth failure, poison
//! records), and the exported instruments are compared with the catalogue per service (the meter
//! scope is the service name).

// A test fails by panicking, and an unwrapped error says what went wrong; the workspace's
// unwrap lints are for service code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use substrate::app::Service;

use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use substrate::avro::{AvroCodec, SchemaRegistry};
use substrate::kafka::{EventPublisher, KafkaPublisher, OutboundRecord};
use substrate::testing::{TestDatabase, TestStack, eventually, unique};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Deserialize)]
struct Catalogue {
    otel: Vec<Instrument>,
}

#[derive(Debug, Deserialize)]
struct Instrument {
    instrument: String,
    #[serde(default)]
    attributes: Vec<String>,
    services: Vec<String>,
}

const JWT_SECRET: &str = "telemetry-test-secret-with-32-characters";

fn schema(topic: &str) -> String {
    let mut parts = topic.splitn(3, '.');
    let (a, b, rest) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    std::fs::read_to_string(format!(
        "{}/../../avro/{a}/{b}/{rest}.avsc",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{topic}: {e}"))
}

/// Observed (scope, instrument) → attribute keys.
fn observed(exporter: &InMemoryMetricExporter) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut seen: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for resource in exporter.get_finished_metrics().unwrap_or_default() {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                let keys = seen
                    .entry((scope.scope().name().to_owned(), metric.name().to_owned()))
                    .or_default();
                let attributes: Vec<String> = match metric.data() {
                    AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                        .data_points()
                        .flat_map(|p| {
                            p.attributes()
                                .map(|kv| kv.key.to_string())
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                    AggregatedMetrics::F64(MetricData::Histogram(histogram)) => histogram
                        .data_points()
                        .flat_map(|p| {
                            p.attributes()
                                .map(|kv| kv.key.to_string())
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                keys.extend(attributes);
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn every_catalogued_instrument_is_registered_by_its_services() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_meter_provider(provider.clone());
    let catalogue: Catalogue = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../telemetry/metrics.yaml"
        ))
        .unwrap(),
    )
    .unwrap();

    // Topics, schemas and a database owned by this test.
    let stack = TestStack::from_env();
    let registry = Arc::new(SchemaRegistry::new(&stack.registry).unwrap());
    let codec = AvroCodec::new(registry.clone());
    let mut media_topics = media_service::configuration::Topics::default();
    let message_topic = unique("tel.public.user.message.events");
    let mut created = vec![message_topic.clone()];
    registry_register(
        &stack,
        &registry,
        &message_topic,
        "public.user.message.events",
    )
    .await;
    for (field, contract) in [
        (
            &mut media_topics.upload_received,
            "internal.media.upload.received",
        ),
        (&mut media_topics.expired, "public.media.expired.events"),
        (
            &mut media_topics.upload_approved,
            "public.media.upload.approved",
        ),
        (
            &mut media_topics.download_intent,
            "internal.media.download.intent",
        ),
        (
            &mut media_topics.delete_intent,
            "internal.media.delete.intent",
        ),
        (
            &mut media_topics.upload_retry,
            "internal.media.upload.retry",
        ),
        (
            &mut media_topics.delete_retry,
            "internal.media.delete.retry",
        ),
    ] {
        *field = unique(&format!("tel.{contract}"));
        registry_register(&stack, &registry, field, contract).await;
        created.push(field.clone());
    }
    let dead_letters = unique("tel.dead-letter");
    stack.create_topics(&[&dead_letters]).await;
    let db = TestDatabase::create(&stack, "telemetry").await;
    let shutdown = CancellationToken::new();

    // api-gateway
    let routes = std::env::temp_dir().join(unique("tel-routes.yaml"));
    std::fs::write(
        &routes,
        format!("externalRoutes:\n  message: {message_topic}\n"),
    )
    .unwrap();
    let mut gateway = api_gateway::configuration::Settings::default();
    gateway.auth.jwt_secret = Some(SecretString::from(JWT_SECRET));
    gateway.gateway.routes_file = Some(routes);
    let gateway = api_gateway::startup::Application::build(api_gateway::configuration::Config {
        backbone: stack.backbone(None),
        service: gateway,
    })
    .await
    .unwrap();
    let gateway_url = format!("http://127.0.0.1:{}", gateway.port());
    tokio::spawn(gateway.run_until_stopped(shutdown.clone()));

    // message-consumer
    let mut consumer = message_consumer::configuration::Settings::default();
    consumer.consumer.group_id = unique("tel-consumer");
    consumer.consumer.topics = vec![message_topic.clone()];
    consumer.consumer.dead_letter_topic = dead_letters.clone();
    let consumer =
        message_consumer::startup::Application::build(message_consumer::configuration::Config {
            backbone: stack.backbone(Some(&db.url)),
            service: consumer,
        })
        .await
        .unwrap();
    tokio::spawn(consumer.run_until_stopped(shutdown.clone()));

    // media-service
    let mut media = media_service::configuration::Settings::default();
    media.webhook.require_token = false;
    media.consumer.group_id = unique("tel-media");
    media.consumer.topics = vec![media_topics.expired.clone()];
    media.consumer.dead_letter_topic = dead_letters.clone();
    media.retry_consumer.group_id = unique("tel-media-retry");
    media.retry_consumer.topics = vec![media_topics.delete_retry.clone()];
    media.retry_consumer.dead_letter_topic = dead_letters.clone();
    media.topics = media_topics.clone();
    let media = media_service::startup::Application::build(media_service::configuration::Config {
        backbone: stack.backbone(Some(&db.url)),
        service: media,
    })
    .await
    .unwrap();
    let media_url = format!("http://127.0.0.1:{}", media.port());
    tokio::spawn(media.run_until_stopped(shutdown.clone()));

    // Traffic: gateway success and auth failure; consumer success and poison; media webhook
    // produce, saga success and poison.
    let client = reqwest::Client::new();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub":"u","aud":"authenticated","exp": chrono::Utc::now().timestamp() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let message = json!({"user_id":"u","email":"e","message":"m","timestamp":"t"});
    let ok = client
        .post(format!("{gateway_url}/api/v1/events/message"))
        .bearer_auth(&jwt)
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 204);
    let denied = client
        .post(format!("{gateway_url}/api/v1/events/message"))
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let publisher = KafkaPublisher::new(&stack.kafka()).unwrap();
    publisher
        .publish(OutboundRecord::new(
            message_topic.clone(),
            b"poison".to_vec(),
        ))
        .await
        .unwrap();
    let upload = json!({"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"media-uploads"},"object":{"key":"uploads%2Fu%2F1%2Fa.jpg","size":1,"contentType":"image/jpeg"}}}]});
    let hook = client
        .post(format!("{media_url}/webhooks/media-upload"))
        .json(&upload)
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 200);
    let expired = codec.encode_json(&media_topics.expired, &json!({"user_id":"u","file_path":"","file_name":"a","file_size":0,"media_type":"","request_id":"r","request_time":"t","expired_time":"t"})).await.unwrap();
    publisher
        .publish(OutboundRecord::new(media_topics.expired.clone(), expired))
        .await
        .unwrap();
    publisher
        .publish(OutboundRecord::new(
            media_topics.expired.clone(),
            b"poison".to_vec(),
        ))
        .await
        .unwrap();

    // Wait until both consume loops handled their records (two dead letters), then export.
    let handled = eventually(Duration::from_secs(60), || async {
        stack
            .read_topic(&dead_letters, 2, Duration::from_millis(500))
            .await
            .len()
            == 2
    })
    .await;
    assert!(handled, "both poison records dead-lettered");
    let complete = eventually(Duration::from_secs(30), || async {
        let _ = provider.force_flush();
        let seen = observed(&exporter);
        catalogue.otel.iter().all(|i| {
            i.services
                .iter()
                .all(|s| seen.contains_key(&(s.clone(), i.instrument.clone())))
        })
    })
    .await;
    let seen = observed(&exporter);
    shutdown.cancel();

    println!(
        "\n{:<40} {:<18} {:<8} attributes",
        "instrument", "service", "found"
    );
    let mut missing = Vec::new();
    let mut total = 0;
    for instrument in &catalogue.otel {
        for service in &instrument.services {
            total += 1;
            let keys = seen.get(&(service.clone(), instrument.instrument.clone()));
            let found = keys.is_some();
            println!(
                "{:<40} {:<18} {:<8} {:?}",
                instrument.instrument,
                service,
                found,
                keys.map(|k| k.iter().collect::<Vec<_>>())
                    .unwrap_or_default()
            );
            match keys {
                None => missing.push(format!("{service}: {}", instrument.instrument)),
                Some(keys) => {
                    for attribute in &instrument.attributes {
                        if !keys.contains(attribute) {
                            missing.push(format!(
                                "{service}: {} lacks attribute {attribute}",
                                instrument.instrument
                            ));
                        }
                    }
                }
            }
        }
    }
    println!(
        "coverage: {}/{} catalogued (instrument, service) pairs registered",
        total - missing.len().min(total),
        total
    );
    assert!(complete && missing.is_empty(), "missing: {missing:#?}");
    let _ = created;
}

async fn registry_register(
    stack: &TestStack,
    registry: &SchemaRegistry,
    topic: &str,
    contract: &str,
) {
    stack.create_topics(&[topic]).await;
    registry
        .register_for_topic(topic, &schema(contract))
        .await
        .unwrap_or_else(|e| panic!("{topic}: {e}"));
}
