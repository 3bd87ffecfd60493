//! Encoding failures are reported precisely and classified for the retry logic.

use serde_json::json;
use substrate::avro::{AvroCodec, CodecError, RegistrySettings, SchemaRegistry};
use substrate::testing::unique;

use crate::helpers::{Stack, USER_MESSAGE};

#[tokio::test(flavor = "multi_thread")]
async fn bad_documents_are_rejected_naming_the_field_and_nothing_is_produced() {
    // Arrange
    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.bad-json", USER_MESSAGE)
        .await;
    let cases = [
        (
            json!({"email":"e","message":"m","timestamp":"t"}),
            "user_id",
        ),
        (
            json!({"user_id":1,"email":"e","message":"m","timestamp":"t"}),
            "user_id",
        ),
        (
            json!({"user_id":"u","email":"e","message":["m"],"timestamp":"t"}),
            "message",
        ),
        (
            json!({"user_id":"u","email":"e","message":"m","timestamp":"t","recipient_id":7}),
            "recipient_id",
        ),
        (
            json!({"user_id":"u","email":"e","message":"m","timestamp":"t","visibility":null}),
            "visibility",
        ),
    ];

    for (document, field) in cases {
        // Act
        let result = stack.codec.encode_json(&topic, &document).await;

        // Assert
        match result {
            Err(CodecError::Field(error)) => {
                assert_eq!(error.path, field, "{document}");
                assert!(error.to_string().contains(field), "{error}");
            }
            other => panic!("{document}: expected a field error, got {other:?}"),
        }
    }
    let messages = stack
        .stack
        .read_topic(&topic, 1, std::time::Duration::from_secs(3))
        .await;
    assert!(
        messages.is_empty(),
        "a rejected document must never reach the topic"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_subject_is_permanent_and_an_unreachable_registry_is_retryable() {
    let stack = Stack::connect();
    let missing = stack
        .codec
        .encode_json(&unique("substrate.no-such-topic"), &json!({}))
        .await
        .err()
        .unwrap_or_else(|| panic!("an unknown subject must fail"));
    assert!(matches!(missing, CodecError::Registry(_)), "{missing}");
    assert!(!missing.is_retryable(), "{missing}");

    // Port 9 (discard) is closed on the test machine: nothing answers there.
    let down = SchemaRegistry::new(&RegistrySettings {
        url: "http://127.0.0.1:9".into(),
        timeout_ms: 500,
        ..RegistrySettings::default()
    })
    .unwrap();
    let error = AvroCodec::new(std::sync::Arc::new(down))
        .encode_json("any", &json!({}))
        .await
        .err()
        .unwrap_or_else(|| panic!("an unreachable registry must fail"));
    assert!(error.is_retryable(), "{error}");
}
