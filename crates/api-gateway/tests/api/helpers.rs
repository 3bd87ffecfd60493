use api_gateway::configuration::Settings;
use api_gateway::startup::Application;
use substrate::testing::TestStack;
use tokio_util::sync::CancellationToken;

/// A running gateway; stopped when dropped.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Settings pointing at the local stack, listening on a free port.
pub fn settings() -> Settings {
    let stack = TestStack::from_env();
    let mut settings = Settings::default();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.kafka = stack.kafka();
    settings.registry = stack.registry;
    settings
}

pub async fn spawn_app(settings: Settings) -> TestApp {
    let app = Application::build(settings)
        .await
        .unwrap_or_else(|e| panic!("build: {e}"));
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move { app.run_until_stopped(token).await });
    TestApp {
        address,
        client: reqwest::Client::new(),
        shutdown,
    }
}
