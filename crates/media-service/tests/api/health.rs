use media_service::configuration::{Config, Settings};
use media_service::startup::Application;
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
async fn readyz_checks_kafka_database_and_bucket_for_real() {
    let (status, body) = readyz(settings()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    for check in ["kafka", "database", "minio"] {
        assert_eq!(body["checks"][check], "ok", "{check}: {body}");
    }

    let mut missing_bucket = settings();
    missing_bucket.service.s3.bucket = substrate::testing::unique("no-such-bucket");
    let (status, body) = readyz(missing_bucket).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["checks"]["minio"], "error");
    assert_eq!(body["checks"]["kafka"], "ok");
    assert_eq!(body["checks"]["database"], "ok");
}
