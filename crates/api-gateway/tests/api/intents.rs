//! The media intents over fakes: one acknowledged event each, server-set identity and ids, 400
//! before anything is published, 503 when the broker did not acknowledge.

use axum::http::StatusCode;

use crate::client::{UPLOAD, bearer, call, harness};
use crate::fakes::SinkMode;

#[tokio::test]
async fn upload_intent_publishes_one_event_with_server_fields() {
    let h = harness();
    let reply = call(
        &h,
        "POST",
        "/api/v1/media/upload-intent",
        bearer("user-456"),
        r#"{"file_name":"video.mp4","media_type":"video/mp4","file_size":2048000}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(reply.content_type.contains("application/json"));
    let request_id = reply.body["request_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&request_id)
            .map(|u| u.get_version_num())
            .ok(),
        Some(4)
    );
    let sent = h.sink.on("internal.media.upload.intent");
    assert_eq!(sent.len(), 1);
    let event = &sent[0];
    assert_eq!(event["user_id"], "user-456");
    assert_eq!(event["request_id"], request_id.as_str());
    assert_eq!(event["file_name"], "video.mp4");
    assert_eq!(event["media_type"], "video/mp4");
    assert_eq!(event["file_size"], 2_048_000);
    let time = event["request_time"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with('Z'),
        "{time}"
    );
    assert_eq!(
        event.as_object().map(|o| o.len()),
        Some(6),
        "exactly the schema's fields"
    );
}

#[tokio::test]
async fn path_intents_publish_user_path_and_ids() {
    let h = harness();
    for (route, topic, user) in [
        (
            "/api/v1/media/download-intent",
            "internal.media.download.intent",
            "user-789",
        ),
        (
            "/api/v1/media/delete-intent",
            "internal.media.delete.intent",
            "user-321",
        ),
    ] {
        let body = r#"{"file_path":"files/user-789/abc/doc.pdf"}"#;
        let reply = call(&h, "POST", route, bearer(user), body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{route}");
        let sent = h.sink.on(topic);
        assert_eq!(sent.len(), 1, "{route}");
        assert_eq!(sent[0]["user_id"], user);
        assert_eq!(sent[0]["file_path"], "files/user-789/abc/doc.pdf");
        assert_eq!(sent[0]["request_id"], reply.body["request_id"]);
        assert!(sent[0]["request_time"].is_string());
    }
}

#[tokio::test]
async fn intents_ignore_identity_and_ids_from_the_body() {
    let h = harness();
    let spoof = r#"{"file_name":"a.jpg","media_type":"image/jpeg","file_size":5,"user_id":"victim","request_id":"forged","request_time":"1999-01-01T00:00:00Z"}"#;
    let reply = call(
        &h,
        "POST",
        "/api/v1/media/upload-intent",
        bearer("attacker"),
        spoof,
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let event = &h.sink.on("internal.media.upload.intent")[0];
    assert_eq!(event["user_id"], "attacker");
    assert_ne!(event["request_id"], "forged");
    assert_ne!(event["request_time"], "1999-01-01T00:00:00Z");
    let delete = r#"{"file_path":"files/victim/x/a.jpg","user_id":"victim"}"#;
    call(
        &h,
        "POST",
        "/api/v1/media/delete-intent",
        bearer("attacker"),
        delete,
    )
    .await;
    assert_eq!(
        h.sink.on("internal.media.delete.intent")[0]["user_id"],
        "attacker"
    );
}

#[tokio::test]
async fn intent_validation_failures_are_400_and_publish_nothing() {
    let h = harness();
    let upload_cases = [
        r#"{"media_type":"image/jpeg","file_size":1}"#,
        r#"{"file_name":"a.jpg","file_size":1}"#,
        r#"{"file_name":"a.jpg","media_type":"image/jpeg"}"#,
        r#"{"file_name":"","media_type":"image/jpeg","file_size":1}"#,
        r#"{"file_name":"a.jpg","media_type":"","file_size":1}"#,
        r#"{"file_name":"a.jpg","media_type":"image/jpeg","file_size":0}"#,
        r#"{"file_name":"a.jpg","media_type":"image/jpeg","file_size":-100}"#,
        r#"{"file_name":"a.jpg","media_type":"image/jpeg","file_size":1.5}"#,
        r#"{"file_name":"a.jpg","media_type":"image/jpeg","file_size":99999999999999999999}"#,
        r#"{"file_name":"../../etc/passwd","media_type":"image/jpeg","file_size":1}"#,
        r#"{"file_name":"a.pdf","media_type":"application/pdf","file_size":1}"#,
    ];
    for body in upload_cases {
        let reply = call(&h, "POST", "/api/v1/media/upload-intent", bearer("u"), body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
    }
    for route in [
        "/api/v1/media/download-intent",
        "/api/v1/media/delete-intent",
    ] {
        for body in [
            "{}",
            r#"{"file_path":""}"#,
            r#"{"file_path":7}"#,
            r#"{"file_path":"/abs"}"#,
        ] {
            let reply = call(&h, "POST", route, bearer("u"), body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{route} {body}");
        }
    }
    assert!(h.sink.events().is_empty());
}

#[tokio::test]
async fn identical_intents_get_different_request_ids() {
    let h = harness();
    let a = call(
        &h,
        "POST",
        "/api/v1/media/upload-intent",
        bearer("u"),
        UPLOAD,
    )
    .await;
    let b = call(
        &h,
        "POST",
        "/api/v1/media/upload-intent",
        bearer("u"),
        UPLOAD,
    )
    .await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_ne!(a.body["request_id"], b.body["request_id"]);
}

#[tokio::test]
async fn an_intent_the_broker_did_not_acknowledge_is_503_not_202() {
    let h = harness();
    h.sink_mode(SinkMode::Unavailable);
    let reply = call(
        &h,
        "POST",
        "/api/v1/media/upload-intent",
        bearer("u"),
        UPLOAD,
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["error"], "unavailable");
}
