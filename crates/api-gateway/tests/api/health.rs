use serde_json::Value;

use crate::helpers::{settings, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_readyz_are_ok_json_when_broker_and_registry_are_up() {
    let app = spawn_app(settings()).await;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body["status"], "ok", "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_not_ready_when_the_registry_is_unreachable() {
    let mut settings = settings();
    settings.registry.url = "http://127.0.0.1:9".into();
    let app = spawn_app(settings).await;
    let response = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["schema_registry"], "error");
    assert_eq!(body["checks"]["kafka"], "ok");
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        health.status(),
        200,
        "liveness does not depend on dependencies"
    );
}
