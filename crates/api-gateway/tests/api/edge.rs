//! What every route shares, over fakes: fail-closed JWT auth (401 JSON), 405 and 400/413 JSON
//! answers, health and CORS (the Go gateway's behaviour, with the fixes).

use axum::http::StatusCode;
use serde_json::json;

use crate::client::{UPLOAD, bearer, call, harness};
use crate::fakes::{Harness, Options};
use crate::tokens::{claims, es256, expired, hs256, hs256_with, token, unsigned};

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
