//! The webhook endpoints over fakes: the Go service's behaviour plus the fixes (every record,
//! auth, body limit).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use media_service::configuration::Topics;
use media_service::webhooks::{WebhookState, router};
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::fakes::{FakeSink, FakeStorage, SinkMode, lock};

struct Hook {
    sink: Arc<FakeSink>,
    storage: Arc<FakeStorage>,
    router: axum::Router,
}

fn hook(token: Option<&str>, require: bool) -> Hook {
    let sink = Arc::new(FakeSink::default());
    let storage = Arc::new(FakeStorage::default());
    let state = WebhookState {
        events: sink.clone(),
        storage: storage.clone(),
        topics: Arc::new(Topics::default()),
        bucket: "media-uploads".into(),
        token: token.map(SecretString::from),
        require_token: require,
        move_timeout: Duration::from_secs(5),
    };
    Hook {
        sink,
        storage,
        // Wrapped in the same edge as in the service, whose body limit the tests exercise.
        router: substrate::http::with_edge(
            router(state),
            substrate::http::Edge {
                service: "media-service",
                body_limit: 64 * 1024,
                cors: None,
            },
        ),
    }
}

fn notification(keys: &[&str]) -> String {
    let records: Vec<Value> = keys
        .iter()
        .map(|key| json!({"eventName":"s3:ObjectCreated:Put","eventTime":"2026-02-25T10:00:00.000Z",
            "s3":{"bucket":{"name":"media-uploads"},"object":{"key":key,"size":204800,"contentType":"image/jpeg","userMetadata":{"X-Amz-Meta-Email":"u@x.y"}}}}))
        .collect();
    json!({"EventName":"s3:ObjectCreated:Put","Records":records}).to_string()
}

async fn call(
    h: &Hook,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: String,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = auth {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = h
        .router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn an_upload_notification_produces_upload_received_for_every_record_and_moves_them() {
    let h = hook(Some("tok"), true);
    let body = notification(&[
        "uploads%2Fuser-123%2Fuuid-1%2Fphoto.jpg",
        "other%2Ffile.txt",
        "uploads%2Fuser-123%2Fuuid-2%2Fmy%20photo.jpg",
    ]);
    let (status, _) = call(&h, "POST", "/webhooks/media-upload", Some("tok"), body).await;
    assert_eq!(status, StatusCode::OK);
    let events = h.sink.events();
    assert_eq!(
        events.len(),
        2,
        "every upload record, not only the first; other keys skipped"
    );
    let (topic, first) = &events[0];
    assert_eq!(topic, "internal.media.upload.received");
    assert_eq!(first["user_id"], "user-123");
    assert_eq!(first["email"], "u@x.y");
    assert_eq!(first["file_path"], "uploads/user-123/uuid-1/photo.jpg");
    assert_eq!(first["permanent_path"], "files/user-123/uuid-1/photo.jpg");
    assert_eq!(first["retry_count"], 0);
    assert_eq!(first["file_size"], 204_800);
    assert_eq!(events[1].1["file_name"], "my photo.jpg", "URL-decoded");
    assert_eq!(
        events[1].1["permanent_path"],
        "files/user-123/uuid-2/my photo.jpg"
    );
    assert_eq!(lock(&h.storage.moved).len(), 2);
}

#[tokio::test]
async fn webhook_failure_modes() {
    let h = hook(Some("tok"), true);
    let only_other = notification(&["other%2Ffile.txt"]);
    assert_eq!(
        call(
            &h,
            "POST",
            "/webhooks/media-upload",
            Some("tok"),
            only_other
        )
        .await,
        (StatusCode::OK, "No processable upload records".into())
    );
    assert!(h.sink.events().is_empty());
    assert_eq!(
        call(
            &h,
            "POST",
            "/webhooks/media-upload",
            Some("tok"),
            "not json".into()
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(
            &h,
            "GET",
            "/webhooks/media-upload",
            Some("tok"),
            String::new()
        )
        .await
        .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        call(
            &h,
            "GET",
            "/webhooks/file-ready",
            Some("tok"),
            String::new()
        )
        .await
        .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let upload = notification(&["uploads%2Fu%2F1%2Fa.jpg"]);
    assert_eq!(
        call(&h, "POST", "/webhooks/media-upload", None, upload.clone())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &h,
            "POST",
            "/webhooks/media-upload",
            Some("wrong"),
            upload.clone()
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let big = format!("{{\"Records\":[],\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    assert_eq!(
        call(&h, "POST", "/webhooks/media-upload", Some("tok"), big)
            .await
            .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    h.sink.set_mode(SinkMode::Unavailable);
    assert_eq!(
        call(
            &h,
            "POST",
            "/webhooks/media-upload",
            Some("tok"),
            upload.clone()
        )
        .await
        .0,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the store redelivers"
    );

    let closed = hook(None, true);
    assert_eq!(
        call(
            &closed,
            "POST",
            "/webhooks/media-upload",
            None,
            upload.clone()
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED,
        "no token configured fails closed"
    );
    let open = hook(None, false);
    assert_eq!(
        call(&open, "POST", "/webhooks/media-upload", None, upload)
            .await
            .0,
        StatusCode::OK,
        "explicitly open for local development"
    );
}

#[tokio::test]
async fn file_ready_notifications_produce_file_ready_for_files_keys_only() {
    let h = hook(Some("tok"), true);
    let body = notification(&[
        "files%2Fuser-1%2Fuuid%2Fa.jpg",
        "uploads%2Fuser-1%2Fuuid%2Fa.jpg",
    ]);
    assert_eq!(
        call(&h, "POST", "/webhooks/file-ready", Some("tok"), body)
            .await
            .0,
        StatusCode::OK
    );
    let events = h.sink.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "internal.media.file.ready");
    assert_eq!(
        events[0].1,
        json!({"file_path":"files/user-1/uuid/a.jpg","file_size":204800,"upload_time":"2026-02-25T10:00:00.000Z"})
    );
    let none = notification(&["uploads%2Fx%2Fy%2Fz"]);
    assert_eq!(
        call(&h, "POST", "/webhooks/file-ready", Some("tok"), none).await,
        (StatusCode::OK, "No processable file-ready records".into())
    );
}
