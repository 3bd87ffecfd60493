//! The platform-team API over fakes: batches, `Idempotency-Key` and per-user rate limits
//! (issue #18). Their behaviour on the real broker and database is in `stack`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::client::{Reply, bearer, send};
use crate::fakes::{Harness, Options, SinkMode};

async fn post(h: &Harness, path: &str, user: &str, key: Option<&str>, body: &Value) -> Reply {
    let mut request = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json");
    if let Some(auth) = bearer(user) {
        request = request.header("authorization", auth);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let request = request.body(Body::from(body.to_string())).unwrap();
    send(h, request).await
}

fn harness() -> Harness {
    Harness::new(Options::default())
}

fn message(text: &str) -> Value {
    json!({"message": text, "timestamp": "2026-12-01T00:00:00Z"})
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_produces_nothing() {
    let h = harness();
    let first = post(
        &h,
        "/api/v1/media/upload-intent",
        "u1",
        Some("k-1"),
        &json!({"file_name":"a.jpg","media_type":"image/jpeg","file_size":10}),
    )
    .await;
    let again = post(
        &h,
        "/api/v1/media/upload-intent",
        "u1",
        Some("k-1"),
        &json!({"file_size":10,"media_type":"image/jpeg","file_name":"a.jpg"}),
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body, first.body, "the same request_id");
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(h.sink.events().len(), 1, "one event for two attempts");
}

#[tokio::test]
async fn keys_are_scoped_to_user_and_route_and_bodies_must_match() {
    let h = harness();
    let path = "/api/v1/events/message";
    assert_eq!(
        post(&h, path, "u1", Some("k"), &message("a")).await.status,
        StatusCode::NO_CONTENT
    );
    // Another user, or another route, with the same key: a request of its own.
    assert_eq!(
        post(&h, path, "u2", Some("k"), &message("a")).await.status,
        StatusCode::NO_CONTENT
    );
    let file = json!({"file_path":"files/u1/x/a.jpg"});
    assert_eq!(
        post(&h, "/api/v1/media/delete-intent", "u1", Some("k"), &file)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(h.sink.events().len(), 3);
    // The same key with another body: refused, nothing produced.
    let reused = post(&h, path, "u1", Some("k"), &message("b")).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.body["error"], "unprocessable");
    assert_eq!(h.sink.events().len(), 3);
}

#[tokio::test]
async fn a_failed_attempt_releases_its_key_so_the_retry_runs() {
    let h = harness();
    let path = "/api/v1/events/message";
    h.sink_mode(SinkMode::Unavailable);
    assert_eq!(
        post(&h, path, "u1", Some("k"), &message("a")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    h.sink_mode(SinkMode::Accept);
    let retry = post(&h, path, "u1", Some("k"), &message("a")).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT);
    assert!(retry.headers.get("idempotent-replayed").is_none(), "it ran");
    assert_eq!(h.sink.events().len(), 1);
}

#[tokio::test]
async fn keyed_requests_fail_closed_when_keys_cannot_be_checked_and_bad_keys_are_refused() {
    let h = harness();
    let path = "/api/v1/events/message";
    *h.keys.unavailable.lock().unwrap_or_else(|p| p.into_inner()) = true;
    let down = post(&h, path, "u1", Some("k"), &message("a")).await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        down.body
    );
    // Without a key the keys are not needed.
    assert_eq!(
        post(&h, path, "u1", None, &message("a")).await.status,
        StatusCode::NO_CONTENT
    );
    for bad in ["has space", &"k".repeat(256)] {
        let refused = post(&h, path, "u1", Some(bad), &message("a")).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            refused.body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("Idempotency-Key")
        );
    }
    assert_eq!(h.sink.events().len(), 1);
}

#[tokio::test]
async fn a_keyed_event_carries_an_identity_derived_from_the_key() {
    // Two gateways (or one, restarted) that both run the attempt produce the same `ce_id`.
    let a = harness();
    let b = harness();
    let path = "/api/v1/events/message";
    post(&a, path, "u1", Some("k"), &message("a")).await;
    post(&b, path, "u1", Some("k"), &message("a")).await;
    post(&b, path, "u1", None, &message("a")).await;
    let ids_a = a.sink.ids.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ids_b = b.sink.ids.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(ids_a[0], ids_b[0]);
    assert_ne!(ids_b[0], ids_b[1], "an unkeyed event gets a fresh identity");
}

#[tokio::test]
async fn a_batch_reports_each_event_and_produces_the_valid_ones_in_order() {
    let h = harness();
    let body = json!({"events": [message("one"), "not an object", message("three"), {"message": "x", "user_id": "someone-else", "timestamp": "t"}]});
    let reply = post(&h, "/api/v1/events/message/batch", "u1", None, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["accepted"], 3);
    assert_eq!(reply.body["rejected"], 1);
    let statuses: Vec<_> = reply.body["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|i| (i["index"].clone(), i["status"].clone()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        statuses,
        [
            (json!(0), json!(204)),
            (json!(1), json!(400)),
            (json!(2), json!(204)),
            (json!(3), json!(204))
        ]
    );
    assert_eq!(reply.body["results"][1]["error"], "bad_request");
    let sent = h.sink.events();
    let texts: Vec<_> = sent.iter().map(|(_, e)| e["message"].clone()).collect();
    assert_eq!(texts, [json!("one"), json!("three"), json!("x")]);
    assert!(
        sent.iter().all(|(_, e)| e["user_id"] == "u1"),
        "identity from the token"
    );
}

#[tokio::test]
async fn a_malformed_batch_is_refused_whole() {
    let h = Harness::new(Options {
        batch_max_events: 2,
        ..Options::default()
    });
    for body in [
        json!({"events": []}),
        json!({"events": {"message": "x"}}),
        json!({"event": [message("a")]}),
        json!({"events": [message("a")], "extra": 1}),
        json!({"events": [message("a"), message("b"), message("c")]}),
    ] {
        let reply = post(&h, "/api/v1/events/message/batch", "u1", None, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body["error"], "bad_request");
    }
    let unknown = post(
        &h,
        "/api/v1/events/nope/batch",
        "u1",
        None,
        &json!({"events": [message("a")]}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN);
    assert!(h.sink.events().is_empty());
}

#[tokio::test]
async fn a_batch_the_broker_cannot_take_is_answered_503_whole() {
    let h = harness();
    h.sink_mode(SinkMode::Unavailable);
    let body = json!({"events": [message("a"), message("b")]});
    let reply = post(&h, "/api/v1/events/message/batch", "u1", Some("b-1"), &body).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    // The key was released: the retry runs once the broker is back.
    h.sink_mode(SinkMode::Accept);
    let retry = post(&h, "/api/v1/events/message/batch", "u1", Some("b-1"), &body).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.body["accepted"], 2);
    let replay = post(&h, "/api/v1/events/message/batch", "u1", Some("b-1"), &body).await;
    assert_eq!(replay.body, retry.body);
    assert_eq!(h.sink.events().len(), 2);
}

#[tokio::test]
async fn over_the_limit_a_user_gets_429_with_retry_after_and_others_are_unaffected() {
    use api_gateway::ratelimit::{Limit, RateLimitSettings};
    let h = Harness::new(Options {
        rate_limits: RateLimitSettings {
            events: Limit {
                per_second: 0.5,
                burst: 3,
            },
            media: Limit {
                per_second: 0.5,
                burst: 1,
            },
            routes: Default::default(),
        },
        ..Options::default()
    });
    let path = "/api/v1/events/message";
    for _ in 0..3 {
        assert_eq!(
            post(&h, path, "u1", None, &message("a")).await.status,
            StatusCode::NO_CONTENT
        );
    }
    let limited = post(&h, path, "u1", None, &message("a")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.body["error"], "rate_limited");
    assert_eq!(
        limited.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"2"[..])
    );
    assert_eq!(
        post(&h, path, "u2", None, &message("a")).await.status,
        StatusCode::NO_CONTENT
    );
    // A batch takes one token per event; one larger than the burst can never pass.
    let batch = post(
        &h,
        "/api/v1/events/message/batch",
        "u3",
        None,
        &json!({"events": [message("a"), message("b"), message("c"), message("d")]}),
    )
    .await;
    assert_eq!(batch.status, StatusCode::BAD_REQUEST);
    // Media routes have a bucket of their own.
    let file = json!({"file_path":"files/u1/x/a.jpg"});
    assert_eq!(
        post(&h, "/api/v1/media/delete-intent", "u1", None, &file)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post(&h, "/api/v1/media/download-intent", "u1", None, &file)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(h.sink.events().len(), 5);
}
