//! Configuration defaults and topic dispatch, as the Go service had them.

use std::sync::Arc;
use substrate::app::ServiceSettings;

use media_service::configuration::Config;
use media_service::handlers::MediaRouter;
use serde_json::json;
use substrate::avro::{AvroCodec, RegistrySettings, SchemaRegistry};
use substrate::kafka::{HandlerError, StartAt};

use crate::fakes::{Kit, fields, insert_video, lock};

#[test]
fn defaults_match_the_original_configuration() {
    // What the service loads from its shipped config/ with no environment at all.
    let loaded = Config::load_with_env(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        std::collections::HashMap::new(),
    )
    .unwrap();
    assert_eq!(loaded.backbone.http.port, 8090);
    assert_eq!(loaded.backbone.kafka.brokers, "127.0.0.1:9092");
    assert_eq!(loaded.backbone.registry.url, "http://127.0.0.1:8081");
    let settings = loaded.service;
    assert_eq!(settings.s3.endpoint, "127.0.0.1:9000");
    assert_eq!(settings.s3.public_endpoint, "127.0.0.1:9000");
    assert_eq!(settings.s3.access_key, "admin");
    assert_eq!(settings.s3.bucket, "media-uploads");
    assert_eq!(settings.media.upload_url_expiry_secs, 900);
    assert_eq!(settings.media.download_url_expiry_secs, 3600);
    // the Go service's group (cut-over continues from its offsets); the retry group is new and
    // must not replay the retry topic on its first start
    assert_eq!(settings.consumer.group_id, "media-service-consumer");
    assert_eq!(settings.consumer.start_at, StartAt::Earliest);
    assert_eq!(
        settings.retry_consumer.group_id,
        "media-service-delete-retry"
    );
    assert_eq!(settings.retry_consumer.start_at, StartAt::Latest);
    assert_eq!(
        settings.consumer.topics,
        [
            "public.media.upload.approved",
            "internal.media.download.intent",
            "internal.media.delete.intent",
            "internal.media.upload.retry",
            "public.media.expired.events"
        ]
    );
    assert_eq!(
        settings.retry_consumer.topics,
        ["internal.media.delete.retry"]
    );
    assert!(
        settings.webhook.require_token,
        "production default fails closed"
    );
    assert!(settings.validate().is_ok());
    let mut same_group = settings.clone();
    same_group.retry_consumer.group_id = same_group.consumer.group_id.clone();
    assert!(
        same_group.validate().is_err(),
        "the retry loop needs its own group"
    );
}

fn router(kit: &Kit) -> MediaRouter {
    // Dispatch works on decoded events; the codec is never asked here.
    let registry = SchemaRegistry::new(&RegistrySettings::default()).unwrap();
    MediaRouter::new(AvroCodec::new(Arc::new(registry)), kit.deps.clone())
}

#[tokio::test]
async fn each_topic_reaches_its_own_handler() {
    let kit = Kit::new();
    insert_video(&kit.files, "u", "files/u/1/a.jpg", 1);
    let router = router(&kit);
    let topics = kit.deps.topics.clone();
    let cases = [
        (
            &topics.upload_approved,
            json!({"user_id":"u","file_name":"a.jpg","media_type":"image/jpeg","request_id":"r1"}),
            "public.media.upload.signed",
        ),
        (
            &topics.download_intent,
            json!({"user_id":"u","file_path":"files/u/1/a.jpg","request_id":"r2"}),
            "public.media.download.signed",
        ),
        (
            &topics.delete_intent,
            json!({"user_id":"u","file_path":"files/u/1/a.jpg","request_id":"r3"}),
            "public.media.delete.events",
        ),
        (
            &topics.upload_retry,
            json!({"user_id":"u","email":"","file_path":"uploads/u/1/a.jpg","permanent_path":"files/u/1/a.jpg","file_name":"a.jpg","file_size":1,"media_type":"image/jpeg","upload_time":"t","retry_count":0}),
            "internal.media.upload.received",
        ),
    ];
    for (topic, event, produced) in cases {
        let before = kit.sink.events().len();
        assert!(
            router.dispatch(topic, &fields(event)).await.is_ok(),
            "{topic}"
        );
        let events = kit.sink.events();
        assert_eq!(events.len(), before + 1, "{topic}");
        assert_eq!(events[before].0, produced, "{topic}");
    }
    // Expiry and delete retry produce nothing on success; their effect is the removal.
    let removed = lock(&kit.storage.removed).len();
    assert!(
        router
            .dispatch(
                &topics.expired,
                &fields(json!({"file_path":"uploads/u/2/b.jpg"}))
            )
            .await
            .is_ok()
    );
    assert!(router.dispatch(&topics.delete_retry, &fields(json!({"user_id":"u","file_path":"uploads/u/3/c.jpg","file_name":"c","media_type":"m","file_size":1,"request_id":"r","retry_count":0,"failed_at":"2026-01-01T00:00:00Z"}))).await.is_ok());
    assert_eq!(lock(&kit.storage.removed).len(), removed + 2);
}

#[tokio::test]
async fn unknown_topics_and_failing_handlers_are_errors_not_panics() {
    let kit = Kit::new();
    let router = router(&kit);
    let unknown = router
        .dispatch("some.other.topic", &fields(json!({})))
        .await;
    assert!(
        matches!(unknown, Err(HandlerError::Permanent(_))),
        "{unknown:?}"
    );
    *lock(&kit.files.fail_lookup) = true;
    let topic = kit.deps.topics.download_intent.clone();
    let failing = router
        .dispatch(
            &topic,
            &fields(json!({"user_id":"u","file_path":"files/u/1/a.jpg","request_id":"r"})),
        )
        .await;
    assert!(
        matches!(failing, Err(HandlerError::Retryable(_))),
        "{failing:?}"
    );
    assert_eq!(
        lock(&kit.files.lookups).len(),
        1,
        "the handler ran exactly once"
    );
}
