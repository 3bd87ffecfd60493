//! One trace from the HTTP request to the record on the broker: the gateway's request span
//! continues the caller's W3C `traceparent`, carries route, status and request id, and the record
//! it produces carries the span's context in its own `traceparent` header, where the next service
//! picks it up (substrate's `tracing` stack test follows it through a consumer).

use std::time::Duration;

use serde_json::json;
use substrate::telemetry::TRACEPARENT;
use substrate::testing::{
    SpanCapture, SpanData, capture_spans, eventually, span_attribute, unique,
};

use crate::helpers::{Env, TestApp, spawn_app};
use crate::tokens::token;

const MESSAGE: &str = "public.user.message.events";

async fn post_message(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/api/v1/events/message", app.address))
        .bearer_auth(token("traced-user"))
        .json(&json!({"message":"follow me","timestamp":"2026-02-25T10:00:00.000Z"}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap_or_else(|e| panic!("POST: {e}"))
}

/// The one finished request span of the message route.
fn request_span(spans: &SpanCapture, request_id: &str) -> SpanData {
    let matching: Vec<_> = spans
        .named("POST /api/v1/events/{key}")
        .into_iter()
        .filter(|span| span_attribute(span, "request_id").as_deref() == Some(request_id))
        .collect();
    assert_eq!(matching.len(), 1, "one request span for {request_id}");
    matching
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_and_the_record_it_produces_are_one_trace() {
    // Arrange
    let spans = capture_spans();
    let env = Env::new(&[MESSAGE]).await;
    env.write_default_routes();
    let app = spawn_app(env.config()).await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let incoming = format!("00-{caller_trace}-{caller_span}-01");
    // Unique, because every test of this process records into the same capture.
    let request_id = unique("req-traced");

    // Act: one request inside the caller's trace, one without a trace of its own.
    let continued = post_message(
        &app,
        &[(TRACEPARENT, &incoming), ("x-request-id", &request_id)],
    )
    .await;
    let fresh = post_message(&app, &[]).await;

    // Assert: the request ids are echoed (a fresh one is made up when none is sent).
    assert_eq!(continued.status(), 204);
    assert_eq!(fresh.status(), 204);
    assert_eq!(continued.headers()["x-request-id"], request_id.as_str());
    let fresh_id = fresh.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(fresh_id.len(), 36, "a UUID: {fresh_id}");
    // A request span ends when the server has written the response, which can be just after
    // the client has read it.
    let ids = [request_id.as_str(), fresh_id.as_str()];
    eventually(Duration::from_secs(10), || async {
        spans
            .finished()
            .iter()
            .filter(|span| {
                span_attribute(span, "request_id").is_some_and(|id| ids.contains(&id.as_str()))
            })
            .count()
            == 2
    })
    .await;

    // The request span: route template, status, request id, child of the caller's span.
    let span = request_span(&spans, &request_id);
    assert_eq!(span.span_context.trace_id().to_string(), caller_trace);
    assert_eq!(span.parent_span_id.to_string(), caller_span);
    assert_eq!(
        span_attribute(&span, "http.route").as_deref(),
        Some("/api/v1/events/{key}")
    );
    assert_eq!(
        span_attribute(&span, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        span_attribute(&span, "http.response.status_code").as_deref(),
        Some("204")
    );
    let fresh_span = request_span(&spans, &fresh_id);
    assert_ne!(fresh_span.span_context.trace_id().to_string(), caller_trace);

    // Each record carries its request span as the parent for whoever consumes it.
    let records = env
        .stack
        .read_topic(&env.topic(MESSAGE), 2, Duration::from_secs(30))
        .await;
    let mut carried: Vec<String> = records
        .iter()
        .map(|record| {
            let value = record
                .header(TRACEPARENT)
                .unwrap_or_else(|| panic!("record without {TRACEPARENT}: {record:?}"));
            String::from_utf8_lossy(value).into_owned()
        })
        .collect();
    carried.sort();
    let mut expected = vec![
        format!("00-{caller_trace}-{}-01", span.span_context.span_id()),
        format!(
            "00-{}-{}-01",
            fresh_span.span_context.trace_id(),
            fresh_span.span_context.span_id()
        ),
    ];
    expected.sort();
    assert_eq!(carried, expected);
}
