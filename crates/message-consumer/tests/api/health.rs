use message_consumer::configuration::{Config, Settings};
use message_consumer::startup::Application;
use secrecy::SecretString;
use serde_json::Value;
use substrate::app::Service;
use substrate::testing::TestStack;
use tokio_util::sync::CancellationToken;

async fn readyz(config: Config) -> (u16, Value) {
    let app = Application::build(config)
        .await
        .unwrap_or_else(|e| panic!("build: {e}"));
    let url = format!("http://127.0.0.1:{}/readyz", app.port());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move { app.run_until_stopped(token).await });
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap();
    shutdown.cancel();
    (status, body)
}

fn settings() -> Config {
    Config {
        backbone: TestStack::from_env().backbone(None),
        service: Settings::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_follows_postgres_reachability() {
    let (status, body) = readyz(settings()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"], "ok");

    let mut unreachable = settings();
    unreachable.backbone.postgres.url =
        SecretString::from("postgres://postgres@127.0.0.1:9/substrate");
    unreachable.backbone.postgres.acquire_timeout_ms = 300;
    let (status, body) = readyz(unreachable).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"], "error");
}

#[test]
fn default_settings_match_the_platform_contract() {
    // What the service loads from its shipped config/ with no environment at all.
    let loaded = Config::load_with_env(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        std::collections::HashMap::new(),
    )
    .unwrap();
    assert_eq!(loaded.backbone.http.port, 8091);
    let settings = loaded.service;
    assert_eq!(settings.consumer.topics, ["public.user.message.events"]);
    // the Go service's group, so a cut-over continues from its committed offsets
    assert_eq!(settings.consumer.group_id, "go-message-consumer");
    assert_eq!(
        settings.consumer.dead_letter_topic,
        "internal.user.message.dead-letter"
    );
}
