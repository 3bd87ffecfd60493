//! Webhooks and frontend events over fakes: allowlisted topics, the Go gateway's statuses,
//! schema errors naming the field, identity from the token only.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::client::{bearer, call, harness, send};
use crate::fakes::{Harness, Options, SinkMode, WEBHOOK_SECRET};
use crate::tokens::{claims, hs256};

fn webhook(h: &Harness, path: &str, secret: Option<&str>, body: &str) -> Request<Body> {
    let _ = h;
    let mut request = Request::builder().method("POST").uri(path);
    if let Some(secret) = secret {
        request = request.header("x-webhook-secret", secret);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn webhooks_publish_the_body_unchanged_to_the_allowlisted_topic() {
    let h = harness();
    let body = r#"{"user_id":"u1","email":"a@b.c","login_time":"2026-02-25T10:00:00+00:00","device_id":null}"#;
    for path in [
        "/webhooks/login",
        "/webhooks/LOGIN",
        "/webhooks/login/extra/segments",
    ] {
        let reply = send(&h, webhook(&h, path, Some(WEBHOOK_SECRET), body)).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{path}");
    }
    let sent = h.sink.on("public.identity.login.events");
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[0],
        serde_json::from_str::<Value>(body).unwrap_or_default()
    );
}

#[tokio::test]
async fn webhook_failures_map_to_the_spec_statuses() {
    let cases = vec![
        (
            "no header",
            Some(WEBHOOK_SECRET),
            None,
            "/webhooks/login",
            SinkMode::Accept,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "wrong secret",
            Some(WEBHOOK_SECRET),
            Some("guess"),
            "/webhooks/login",
            SinkMode::Accept,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "no secret configured",
            None,
            Some(""),
            "/webhooks/login",
            SinkMode::Accept,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "unknown key",
            Some(WEBHOOK_SECRET),
            Some(WEBHOOK_SECRET),
            "/webhooks/payments",
            SinkMode::Accept,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "external key on webhook",
            Some(WEBHOOK_SECRET),
            Some(WEBHOOK_SECRET),
            "/webhooks/message",
            SinkMode::Accept,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "schema violation",
            Some(WEBHOOK_SECRET),
            Some(WEBHOOK_SECRET),
            "/webhooks/login",
            SinkMode::SchemaViolation,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "no schema",
            Some(WEBHOOK_SECRET),
            Some(WEBHOOK_SECRET),
            "/webhooks/login",
            SinkMode::UnknownSubject,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "broker down",
            Some(WEBHOOK_SECRET),
            Some(WEBHOOK_SECRET),
            "/webhooks/login",
            SinkMode::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        ),
    ];
    for (case, configured, presented, path, mode, status, code) in cases {
        let h = Harness::new(Options {
            webhook_secret: configured,
            ..Options::default()
        });
        h.sink_mode(mode);
        let reply = send(&h, webhook(&h, path, presented, r#"{"user_id":"u"}"#)).await;
        assert_eq!(reply.status, status, "{case}");
        assert_eq!(reply.body["error"], code, "{case}");
    }
}

#[tokio::test]
async fn schema_violations_name_the_field() {
    let h = harness();
    h.sink_mode(SinkMode::SchemaViolation);
    let reply = call(
        &h,
        "POST",
        "/api/v1/events/message",
        bearer("u"),
        r#"{"message":"hi"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("user_id"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn external_events_take_identity_from_the_token_not_the_body() {
    let h = harness();
    let mut with_email = claims("user-a");
    with_email["email"] = json!("a@example.com");
    let spoof = r#"{"user_id":"user-b","email":"b@example.com","message":"hi","timestamp":"2026-02-25T10:00:00.000Z","visibility":"broadcast","recipient_id":null}"#;
    let reply = call(
        &h,
        "POST",
        "/api/v1/events/message",
        Some(format!("Bearer {}", hs256(&with_email))),
        spoof,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = call(
        &h,
        "POST",
        "/api/v1/events/Message",
        bearer("user-c"),
        spoof,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);

    let sent = h.sink.on("public.user.message.events");
    assert_eq!(sent[0]["user_id"], "user-a");
    assert_eq!(sent[0]["email"], "a@example.com", "token email wins");
    assert_eq!(sent[0]["message"], "hi");
    assert_eq!(sent[1]["user_id"], "user-c");
    assert_eq!(
        sent[1]["email"], "",
        "without an email claim the body's is not taken either"
    );

    let denied = call(&h, "POST", "/api/v1/events/login", bearer("u"), spoof).await;
    assert_eq!(
        denied.status,
        StatusCode::FORBIDDEN,
        "webhook keys are not external keys"
    );
}
