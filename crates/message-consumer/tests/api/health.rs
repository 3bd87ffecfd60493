use message_consumer::configuration::Settings;
use message_consumer::startup::Application;
use secrecy::SecretString;
use serde_json::Value;
use substrate::app::Service;
use substrate::testing::TestStack;
use tokio_util::sync::CancellationToken;

async fn readyz(settings: Settings) -> (u16, Value) {
    let app = Application::build(settings)
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

fn settings() -> Settings {
    let stack = TestStack::from_env();
    let mut settings = Settings::default();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.kafka = stack.kafka();
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_follows_postgres_reachability() {
    let (status, body) = readyz(settings()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"], "ok");

    let mut unreachable = settings();
    unreachable.postgres.url = SecretString::from("postgres://postgres@127.0.0.1:9/substrate");
    unreachable.postgres.acquire_timeout_ms = 300;
    let (status, body) = readyz(unreachable).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"], "error");
}

#[test]
fn default_settings_match_the_platform_contract() {
    let settings = Settings::default();
    assert_eq!(settings.http.port, 8091);
    assert_eq!(settings.consumer.topics, ["public.user.message.events"]);
    // the Go service's group, so a cut-over continues from its committed offsets
    assert_eq!(settings.consumer.group_id, "go-message-consumer");
    assert_eq!(
        settings.consumer.dead_letter_topic,
        "internal.user.message.dead-letter"
    );
}
