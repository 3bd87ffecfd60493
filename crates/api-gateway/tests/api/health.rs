use serde_json::Value;

use crate::helpers::{Env, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_readyz_are_ok_when_broker_registry_and_routes_are_up() {
    let env = Env::new(&[]).await;
    env.write_default_routes();
    let app = spawn_app(env.config()).await;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok", "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_when_the_registry_is_down_or_no_routes_file_is_loaded() {
    let env = Env::new(&[]).await;
    env.write_default_routes();
    let mut settings = env.config();
    settings.backbone.registry.url = "http://127.0.0.1:9".into();
    let app = spawn_app(settings).await;
    let body: Value = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["schema_registry"], "error");
    assert_eq!(body["checks"]["kafka"], "ok");

    let env = Env::new(&[]).await; // no routes file written
    let app = spawn_app(env.config()).await;
    let response = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["routes"], "error");
}
