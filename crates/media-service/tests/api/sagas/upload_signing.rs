//! `public.media.upload.approved` → a presigned PUT under a request-derived key, or a rejection.

use media_service::announced::Announced;
use media_service::configuration::MediaSettings;
use media_service::handlers::upload_signing;
use serde_json::{Value, json};

use super::{is_rfc3339, permanent, retryable};
use crate::fakes::{Kit, SinkMode, fields, lock};

pub(crate) fn approved() -> Value {
    json!({"user_id":"user-abc-123","file_name":"photo.jpg","media_type":"video/mp4","file_size":2048000,"request_id":"req-1","request_time":"2026-02-25T10:00:00Z"})
}

#[tokio::test]
async fn upload_signing_produces_one_signed_event_with_a_request_derived_key() {
    let kit = Kit::new();
    let result = upload_signing::handle(&kit.deps, &fields(approved())).await;
    assert!(result.is_ok(), "{result:?}");
    let signed = kit.on("public.media.upload.signed");
    assert_eq!(kit.sink.events().len(), 1);
    let event = &signed[0];
    for field in [
        "user_id",
        "file_path",
        "file_name",
        "upload_url",
        "request_id",
        "signed_time",
    ] {
        assert!(
            event[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    assert_eq!(event["expires_in"], 900);
    assert!(event["expires_in"].is_u64());
    assert_eq!(event["user_id"], "user-abc-123");
    assert_eq!(event["request_id"], "req-1");
    assert_eq!(event["file_name"], "photo.jpg");
    assert!(is_rfc3339(&event["signed_time"]));
    let path = event["file_path"].as_str().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').collect();
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("uploads", "user-abc-123", "photo.jpg")
    );
    assert!(uuid::Uuid::parse_str(parts[2]).is_ok(), "{path}");
    let presigned = lock(&kit.storage.presigned).clone();
    assert_eq!(presigned.len(), 1);
    let (method, key, content_type, expiry) = &presigned[0];
    assert_eq!(
        (method.as_str(), key.as_str()),
        ("PUT", path),
        "the signed key is the event's path"
    );
    assert_eq!(
        content_type.as_deref(),
        Some("video/mp4"),
        "the content type is bound"
    );
    assert_eq!(expiry.as_secs(), 900);
    assert_eq!(
        event["upload_url"],
        format!("http://objects.test/media-uploads/{path}?sig=put")
    );
}

#[tokio::test]
async fn redelivered_approvals_sign_the_same_key_and_distinct_requests_get_distinct_keys() {
    let kit = Kit::new();
    let mut second = approved();
    second["request_id"] = json!("req-2");
    for event in [approved(), approved(), second] {
        assert!(
            upload_signing::handle(&kit.deps, &fields(event))
                .await
                .is_ok()
        );
    }
    let paths: Vec<Value> = kit
        .on("public.media.upload.signed")
        .iter()
        .map(|e| e["file_path"].clone())
        .collect();
    assert_eq!(paths[0], paths[1], "redelivery keeps the key");
    assert_ne!(paths[0], paths[2], "another request gets another key");
}

#[tokio::test]
async fn an_approval_signed_before_this_start_is_not_signed_again() {
    // req-1 was signed before (by the Go service under a random key, or before a crash).
    let mut announced = Announced::default();
    announced.add_signed("req-1");
    let kit = Kit::announcing(MediaSettings::default(), announced);
    let mut other = approved();
    other["request_id"] = json!("req-2");
    for event in [approved(), other] {
        assert!(
            upload_signing::handle(&kit.deps, &fields(event))
                .await
                .is_ok()
        );
    }
    let signed = kit.on("public.media.upload.signed");
    let requests: Vec<&Value> = signed.iter().map(|e| &e["request_id"]).collect();
    assert_eq!(
        requests,
        [&json!("req-2")],
        "only the new approval is signed"
    );
    assert_eq!(kit.sink.events().len(), 1);
}

#[tokio::test]
async fn upload_signing_uses_the_configured_expiry() {
    let kit = Kit::with(MediaSettings {
        upload_url_expiry_secs: 1800,
        ..MediaSettings::default()
    });
    assert!(
        upload_signing::handle(&kit.deps, &fields(approved()))
            .await
            .is_ok()
    );
    assert_eq!(kit.on("public.media.upload.signed")[0]["expires_in"], 1800);
}

#[tokio::test]
async fn upload_signing_validation() {
    // Without user or request id nobody can be told: permanent (dead-letter), nothing produced.
    for (field, value) in [
        ("user_id", json!(null)),
        ("user_id", json!("")),
        ("user_id", json!(42)),
        ("request_id", json!(null)),
        ("request_id", json!("")),
    ] {
        let kit = Kit::new();
        let mut event = approved();
        event[field] = value.clone();
        let result = upload_signing::handle(&kit.deps, &fields(event)).await;
        assert!(permanent(&result), "{field}={value}: {result:?}");
        assert!(kit.sink.events().is_empty(), "{field}={value}");
    }
    let kit = Kit::new();
    assert!(
        permanent(&upload_signing::handle(&kit.deps, &fields(json!({}))).await),
        "empty payload"
    );
    // A bad file name or media type is answered with the saga's rejection.
    for (field, value) in [
        ("file_name", json!(null)),
        ("file_name", json!("")),
        ("file_name", json!(1.5)),
        ("file_name", json!("../../etc/passwd")),
        ("file_name", json!("a\u{0007}b.jpg")),
        ("media_type", json!(true)),
        ("media_type", json!("")),
    ] {
        let kit = Kit::new();
        let mut event = approved();
        event[field] = value.clone();
        let result = upload_signing::handle(&kit.deps, &fields(event)).await;
        assert!(result.is_ok(), "{field}={value}: {result:?}");
        let rejected = kit.on("public.media.upload.rejected");
        assert_eq!(rejected.len(), 1, "{field}={value}");
        assert_eq!(rejected[0]["reason"], "invalid_request");
        assert_eq!(rejected[0]["request_id"], "req-1");
        assert!(kit.on("public.media.upload.signed").is_empty());
        assert!(
            lock(&kit.storage.presigned).is_empty(),
            "{field}={value}: nothing signed"
        );
    }
}

#[tokio::test]
async fn upload_signing_failures_produce_nothing_and_only_outages_are_retried() {
    // A presign refused by a bad setting can never succeed: dead-lettered, not retried with
    // every approval behind it waiting.
    let kit = Kit::new();
    *lock(&kit.storage.fail_presign) = true;
    let result = upload_signing::handle(&kit.deps, &fields(approved())).await;
    assert!(permanent(&result), "{result:?}");
    assert!(kit.sink.events().is_empty());

    let kit = Kit::new();
    kit.sink.set_mode(SinkMode::Unavailable);
    assert!(retryable(
        &upload_signing::handle(&kit.deps, &fields(approved())).await
    ));
}

#[tokio::test]
async fn upload_signing_edge_cases_keep_names_and_accept_any_media_type() {
    let long = "a".repeat(250) + ".mp4";
    for name in ["my vacation video.mp4", "my file (1).mp4", long.as_str()] {
        let kit = Kit::new();
        let mut event = approved();
        event["file_name"] = json!(name);
        assert!(
            upload_signing::handle(&kit.deps, &fields(event))
                .await
                .is_ok(),
            "{name}"
        );
        let signed = &kit.on("public.media.upload.signed")[0];
        assert_eq!(signed["file_name"], name);
        assert!(
            signed["file_path"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&format!("/{name}"))
        );
    }
    for media_type in [
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "video/mp4",
        "video/webm",
        "audio/mpeg",
        "audio/wav",
        "application/pdf",
    ] {
        let kit = Kit::new();
        let mut event = approved();
        event["media_type"] = json!(media_type);
        event["file_size"] = json!(i64::MAX);
        assert!(
            upload_signing::handle(&kit.deps, &fields(event))
                .await
                .is_ok(),
            "{media_type}"
        );
        assert_eq!(kit.sink.events().len(), 1);
    }
}
