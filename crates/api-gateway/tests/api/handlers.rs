//! Handler behaviour over fakes: every case of services spec §7.1–§7.5, adapted to the fixes
//! (identity only from the token, fail-closed auth, JSON errors, credit deducted atomically,
//! legacy delete removes the object), table-driven where the cases share a shape.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::fakes::{FakeMedia, Harness, Options, SinkMode, WEBHOOK_SECRET};
use crate::tokens::{claims, es256, expired, hs256, hs256_with, token, unsigned};

const UPLOAD: &str = r#"{"file_name":"photo.jpg","media_type":"image/jpeg","file_size":2048000}"#;
const FILE: &str = r#"{"file_path":"uploads/user-123/some-uuid/photo.jpg"}"#;

pub(crate) struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

async fn call(h: &Harness, method: &str, path: &str, auth: Option<String>, body: &str) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let request = request
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap_or_else(|e| panic!("{e}"));
    send(h, request).await
}

pub(crate) async fn send(h: &Harness, request: Request<Body>) -> Reply {
    let response = h
        .router
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}

pub(crate) fn bearer(sub: &str) -> Option<String> {
    Some(format!("Bearer {}", token(sub)))
}

fn harness() -> Harness {
    Harness::new(Options::default())
}

const JWT_ROUTES: [&str; 7] = [
    "/api/v1/media/upload-intent",
    "/api/v1/media/download-intent",
    "/api/v1/media/delete-intent",
    "/api/v1/media/upload-url",
    "/api/v1/media/download-url",
    "/api/v1/media/delete",
    "/api/v1/events/message",
];

#[tokio::test]
async fn every_user_route_rejects_bad_credentials_with_401_json() {
    let h = harness();
    let other_secret = hs256_with(&claims("user-123"), "some-other-secret-of-32-characters-x");
    let mut no_sub = claims("x");
    no_sub.as_object_mut().map(|c| c.remove("sub"));
    let mut wrong_aud = claims("user-123");
    wrong_aud["aud"] = json!("anon");
    let mut no_exp = claims("user-123");
    no_exp.as_object_mut().map(|c| c.remove("exp"));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing header", None),
        (
            "malformed token",
            Some("Bearer not-a-valid-jwt-token".into()),
        ),
        ("missing Bearer prefix", Some(token("user-123"))),
        (
            "lowercase bearer",
            Some(format!("bearer {}", token("user-123"))),
        ),
        ("expired", Some(format!("Bearer {}", expired("user-123")))),
        ("forged signature", Some(format!("Bearer {other_secret}"))),
        ("alg none", Some(format!("Bearer {}", unsigned("user-123")))),
        ("no sub", Some(format!("Bearer {}", hs256(&no_sub)))),
        (
            "wrong audience",
            Some(format!("Bearer {}", hs256(&wrong_aud))),
        ),
        ("no exp", Some(format!("Bearer {}", hs256(&no_exp)))),
        (
            "ES256 without JWKS configured",
            Some(format!(
                "Bearer {}",
                es256("a", Some("k1"), &claims("user-123"))
            )),
        ),
    ];
    for route in JWT_ROUTES {
        for (case, auth) in &cases {
            let reply = call(&h, "POST", route, auth.clone(), UPLOAD).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{route}: {case}");
            assert_eq!(reply.body["error"], "unauthorized", "{route}: {case}");
            assert!(reply.body["message"].is_string(), "{route}: {case}");
        }
    }
    assert!(
        h.sink.events().is_empty(),
        "nothing is published for rejected callers"
    );
}

#[tokio::test]
async fn with_no_jwt_key_configured_every_user_route_fails_closed() {
    let h = Harness::new(Options {
        jwt_secret: None,
        ..Options::default()
    });
    for route in JWT_ROUTES {
        let reply = call(&h, "POST", route, bearer("user-123"), UPLOAD).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{route}");
    }
}

#[tokio::test]
async fn wrong_methods_get_405_json_on_every_route() {
    let h = harness();
    let mut routes = JWT_ROUTES.to_vec();
    routes.push("/webhooks/login");
    for route in routes {
        for method in ["GET", "PUT", "DELETE", "PATCH"] {
            let reply = call(&h, method, route, bearer("user-123"), UPLOAD).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {route}"
            );
            assert_eq!(
                reply.body["error"], "method_not_allowed",
                "{method} {route}"
            );
        }
    }
}

#[tokio::test]
async fn bodies_that_are_not_one_json_object_are_400() {
    let h = harness();
    let bodies = ["", "{not json at all", "[1,2]", "\"text\"", "null", "{} {}"];
    for route in JWT_ROUTES {
        for body in bodies {
            let reply = call(&h, "POST", route, bearer("user-123"), body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{route}: {body:?}");
            assert_eq!(reply.body["error"], "bad_request", "{route}: {body:?}");
        }
    }
}

#[tokio::test]
async fn oversized_bodies_are_413_json() {
    let h = harness();
    let big = format!(r#"{{"message":"{}"}}"#, "x".repeat(1024 * 1024 + 1));
    let reply = call(&h, "POST", "/api/v1/events/message", bearer("u"), &big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["error"], "payload_too_large");
}

#[tokio::test]
async fn health_and_cors_follow_the_original_contract() {
    let h = harness();
    for _ in 0..3 {
        let reply = call(&h, "GET", "/healthz", None, "").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.content_type, "application/json");
        assert_eq!(reply.body, json!({"status":"ok"}));
    }
    for path in [
        "/anything/at/all",
        "/api/v1/media/upload-intent",
        "/webhooks/login",
    ] {
        let reply = call(&h, "OPTIONS", path, None, "").await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.headers["access-control-allow-origin"], "*");
        // Header names are case-insensitive; tower-http lists them in lowercase.
        assert!(
            reply.headers["access-control-allow-headers"]
                .to_str()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .contains("x-webhook-secret")
        );
    }
    let denied = call(&h, "POST", "/api/v1/media/upload-intent", None, UPLOAD).await;
    assert_eq!(
        denied.headers["access-control-allow-origin"], "*",
        "errors carry CORS too"
    );
    let missing = call(&h, "GET", "/nope", None, "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"], "not_found");
}

// ---------------------------------------------------------------- webhooks and events

fn webhook(h: &Harness, path: &str, secret: Option<&str>, body: &str) -> Request<Body> {
    let _ = h;
    let mut request = Request::builder().method("POST").uri(path);
    if let Some(secret) = secret {
        request = request.header("x-webhook-secret", secret);
    }
    request
        .body(Body::from(body.to_owned()))
        .unwrap_or_else(|e| panic!("{e}"))
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

// ---------------------------------------------------------------- intents

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

// ---------------------------------------------------------------- legacy upload-url

fn funded(user: &str, balance: i64) -> Harness {
    Harness::new(Options {
        media: FakeMedia::default().with_balance(user, balance),
        ..Options::default()
    })
}

#[tokio::test]
async fn upload_url_issues_a_presigned_put_and_spends_one_credit() {
    let h = funded("abc-def-ghi-789", 2);
    let reply = call(
        &h,
        "POST",
        "/api/v1/media/upload-url",
        bearer("abc-def-ghi-789"),
        UPLOAD,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.content_type.contains("application/json"));
    let path = reply.body["file_path"].as_str().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').collect();
    assert_eq!(parts.len(), 4, "{path}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("uploads", "abc-def-ghi-789", "photo.jpg")
    );
    assert!(uuid::Uuid::parse_str(parts[2]).is_ok(), "{path}");
    assert!(
        reply.body["upload_url"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );
    assert_eq!(reply.body["expires_in"], 900);
    let presigned = h
        .objects
        .presigned
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    assert_eq!(presigned.len(), 1);
    assert_eq!(
        (
            presigned[0].0.as_str(),
            presigned[0].1.as_str(),
            presigned[0].2.as_str()
        ),
        ("PUT", "media-uploads", path)
    );
    assert_eq!(
        h.objects
            .content_types
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default(),
        ["image/jpeg"],
        "the content type is bound into the signature"
    );
    assert_eq!(
        h.media
            .deductions
            .lock()
            .map(|d| d.len())
            .unwrap_or_default(),
        1,
        "one credit spent"
    );
    let second = call(
        &h,
        "POST",
        "/api/v1/media/upload-url",
        bearer("abc-def-ghi-789"),
        UPLOAD,
    )
    .await;
    assert_eq!(second.status, StatusCode::OK);
    let third = call(
        &h,
        "POST",
        "/api/v1/media/upload-url",
        bearer("abc-def-ghi-789"),
        UPLOAD,
    )
    .await;
    assert_eq!(
        third.status,
        StatusCode::PAYMENT_REQUIRED,
        "two credits buy exactly two uploads"
    );
}

#[tokio::test]
async fn upload_url_accepts_every_supported_media_type_and_rejects_others() {
    for media_type in api_gateway::domain::ALLOWED_MEDIA_TYPES {
        let h = funded("u", 1);
        let body = json!({"file_name":"f","media_type":media_type,"file_size":1}).to_string();
        let reply = call(&h, "POST", "/api/v1/media/upload-url", bearer("u"), &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{media_type}");
    }
    for media_type in [
        "application/pdf",
        "text/plain",
        "image/bmp",
        "video/avi",
        "audio/flac",
        "application/octet-stream",
    ] {
        let h = funded("u", 1);
        let body = json!({"file_name":"f","media_type":media_type,"file_size":1}).to_string();
        let reply = call(&h, "POST", "/api/v1/media/upload-url", bearer("u"), &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{media_type}");
    }
}

#[tokio::test]
async fn upload_url_failure_cases() {
    struct Case {
        name: &'static str,
        balance: Option<i64>,
        body: &'static str,
        fail_db: bool,
        fail_sign: bool,
        status: StatusCode,
        code: &'static str,
    }
    let ok = UPLOAD;
    let cases = [
        Case {
            name: "missing file_name",
            balance: Some(5),
            body: r#"{"media_type":"image/jpeg","file_size":1}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "missing media_type",
            balance: Some(5),
            body: r#"{"file_name":"a","file_size":1}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "missing file_size",
            balance: Some(5),
            body: r#"{"file_name":"a","media_type":"image/jpeg"}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "file_size zero",
            balance: Some(5),
            body: r#"{"file_name":"a","media_type":"image/jpeg","file_size":0}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "file_size negative",
            balance: Some(5),
            body: r#"{"file_name":"a","media_type":"image/jpeg","file_size":-500}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "empty file_name",
            balance: Some(5),
            body: r#"{"file_name":"","media_type":"image/jpeg","file_size":1}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "empty media_type",
            balance: Some(5),
            body: r#"{"file_name":"a","media_type":"","file_size":1}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "zero credits",
            balance: Some(0),
            body: ok,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::PAYMENT_REQUIRED,
            code: "insufficient_credits",
        },
        Case {
            name: "negative credits",
            balance: Some(-5),
            body: ok,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::PAYMENT_REQUIRED,
            code: "insufficient_credits",
        },
        Case {
            name: "no ledger row",
            balance: None,
            body: ok,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::PAYMENT_REQUIRED,
            code: "insufficient_credits",
        },
        Case {
            name: "database error",
            balance: Some(5),
            body: ok,
            fail_db: true,
            fail_sign: false,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
        },
        Case {
            name: "signer error",
            balance: Some(5),
            body: ok,
            fail_db: false,
            fail_sign: true,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
        },
    ];
    for case in cases {
        let media = match case.balance {
            Some(balance) => FakeMedia::default().with_balance("user-123", balance),
            None => FakeMedia::default(),
        };
        *media.fail_reads.lock().unwrap_or_else(|p| p.into_inner()) = case.fail_db;
        let h = Harness::new(Options {
            media,
            ..Options::default()
        });
        *h.objects
            .fail_presign
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = case.fail_sign;
        let reply = call(
            &h,
            "POST",
            "/api/v1/media/upload-url",
            bearer("user-123"),
            case.body,
        )
        .await;
        assert_eq!(reply.status, case.status, "{}", case.name);
        assert_eq!(reply.body["error"], case.code, "{}", case.name);
        assert!(
            h.media
                .deductions
                .lock()
                .map(|d| d.is_empty())
                .unwrap_or(false),
            "{}: no credit spent",
            case.name
        );
    }
}

#[tokio::test]
async fn upload_url_uses_the_configured_bucket_and_expiry() {
    let h = Harness::new(Options {
        bucket: "custom-bucket",
        expiry_secs: 1800,
        media: FakeMedia::default().with_balance("u", 1),
        ..Options::default()
    });
    let reply = call(&h, "POST", "/api/v1/media/upload-url", bearer("u"), UPLOAD).await;
    assert_eq!(reply.body["expires_in"], 1800);
    let presigned = h
        .objects
        .presigned
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    assert_eq!(presigned[0].1, "custom-bucket");
    assert_eq!(presigned[0].3.as_secs(), 1800);
}

// ---------------------------------------------------------------- legacy download-url and delete

fn with_file(user: &str, path: &str) -> Harness {
    Harness::new(Options {
        media: FakeMedia::default().with_file(user, path),
        ..Options::default()
    })
}

#[tokio::test]
async fn download_url_signs_the_owners_file_and_records_the_download() {
    let h = with_file("user-123", "uploads/user-123/some-uuid/photo.jpg");
    let reply = call(
        &h,
        "POST",
        "/api/v1/media/download-url",
        bearer("user-123"),
        FILE,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.contains("application/json"));
    assert!(reply.body["download_url"].is_string());
    assert_eq!(reply.body["expires_in"], 900);
    let events = h.sink.on("public.media.download.events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["user_id"], "user-123");
    assert_eq!(events[0]["file_name"], "photo.jpg");
}

#[tokio::test]
async fn delete_soft_deletes_notifies_and_removes_the_object() {
    let path = "uploads/user-123/some-uuid/photo.jpg";
    let h = with_file("user-123", path);
    let reply = call(&h, "POST", "/api/v1/media/delete", bearer("user-123"), FILE).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"success": true}));
    assert!(!h.media.active("user-123", path));
    let events = h.sink.on("public.media.delete.events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["file_size"], 999_999);
    let removed = h
        .objects
        .removed
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    assert_eq!(removed, vec![("media-uploads".to_owned(), path.to_owned())]);
    assert!(h.sink.on("internal.media.delete.retry").is_empty());
}

#[tokio::test]
async fn delete_hands_a_failed_removal_to_the_retry_saga() {
    let path = "uploads/user-123/some-uuid/photo.jpg";
    let h = with_file("user-123", path);
    *h.objects
        .fail_remove
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = true;
    let reply = call(&h, "POST", "/api/v1/media/delete", bearer("user-123"), FILE).await;
    assert_eq!(reply.status, StatusCode::OK);
    let retries = h.sink.on("internal.media.delete.retry");
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0]["retry_count"], 0);
    assert_eq!(retries[0]["file_path"], path);
}

#[tokio::test]
async fn download_and_delete_failure_cases() {
    let path = "uploads/user-123/some-uuid/photo.jpg";
    for route in ["/api/v1/media/download-url", "/api/v1/media/delete"] {
        for (name, body, status) in [
            ("empty body", "", StatusCode::BAD_REQUEST),
            ("malformed", "{not json", StatusCode::BAD_REQUEST),
            ("missing path", "{}", StatusCode::BAD_REQUEST),
            ("empty path", r#"{"file_path":""}"#, StatusCode::BAD_REQUEST),
            (
                "not found",
                r#"{"file_path":"uploads/user-123/other/x.jpg"}"#,
                StatusCode::NOT_FOUND,
            ),
        ] {
            let h = with_file("user-123", path);
            let reply = call(&h, "POST", route, bearer("user-123"), body).await;
            assert_eq!(reply.status, status, "{route}: {name}");
            assert!(
                h.sink.events().is_empty(),
                "{route}: {name}: nothing published"
            );
        }
        let h = with_file("user-456", path);
        let reply = call(&h, "POST", route, bearer("user-123"), FILE).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{route}: another user's file"
        );
        assert!(
            h.media.active("user-456", path),
            "{route}: the owner's file is untouched"
        );

        let h = with_file("user-123", path);
        *h.media.fail_reads.lock().unwrap_or_else(|p| p.into_inner()) = true;
        let reply = call(&h, "POST", route, bearer("user-123"), FILE).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{route}: metadata error"
        );
    }
    let h = with_file("user-123", path);
    *h.objects
        .fail_presign
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = true;
    let reply = call(
        &h,
        "POST",
        "/api/v1/media/download-url",
        bearer("user-123"),
        FILE,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "presign failure"
    );

    let h = with_file("user-123", path);
    *h.media
        .fail_soft_delete
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = true;
    let reply = call(&h, "POST", "/api/v1/media/delete", bearer("user-123"), FILE).await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "soft delete failure"
    );
    assert!(
        h.objects
            .removed
            .lock()
            .map(|r| r.is_empty())
            .unwrap_or(false)
    );
}
