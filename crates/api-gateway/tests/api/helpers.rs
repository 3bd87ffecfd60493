//! Running the real gateway against the local stack, with its own topics and routes file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use substrate::app::Service;

use api_gateway::configuration::{Config, Settings, Topics};
use api_gateway::startup::Application;
use secrecy::SecretString;
use serde_json::Value;
use substrate::avro::{AvroCodec, SchemaRegistry};
use substrate::kafka::InboundMessage;
use substrate::testing::{TestStack, unique};
use tokio_util::sync::CancellationToken;

use crate::fakes::{JWT_SECRET, WEBHOOK_SECRET};

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

impl TestApp {
    pub async fn post(&self, path: &str, headers: &[(&str, String)], body: &Value) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }
}

/// Topics (one per contract the test needs), a routes file and clients, all owned by one test.
pub struct Env {
    pub stack: TestStack,
    pub codec: AvroCodec,
    pub topics: HashMap<String, String>,
    pub routes_dir: PathBuf,
}

fn contract_path(topic: &str) -> PathBuf {
    let mut parts = topic.splitn(3, '.');
    let (a, b, rest) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../avro")
        .join(a)
        .join(b)
        .join(format!("{rest}.avsc"))
}

impl Env {
    /// Creates a unique topic for each contract topic and registers its `.avsc` there.
    pub async fn new(contracts: &[&str]) -> Self {
        let stack = TestStack::from_env();
        let registry = Arc::new(SchemaRegistry::new(&stack.registry).unwrap());
        let mut topics = HashMap::new();
        for contract in contracts {
            let topic = unique(&format!("gw.{contract}"));
            stack.create_topics(&[&topic]).await;
            let schema = std::fs::read_to_string(contract_path(contract))
                .unwrap_or_else(|e| panic!("{contract}: {e}"));
            registry
                .register_for_topic(&topic, &schema)
                .await
                .unwrap_or_else(|e| panic!("register {topic}: {e}"));
            topics.insert((*contract).to_owned(), topic);
        }
        let routes_dir = std::env::temp_dir().join(unique("gw-routes"));
        std::fs::create_dir_all(&routes_dir).unwrap();
        Self {
            codec: AvroCodec::new(registry),
            stack,
            topics,
            routes_dir,
        }
    }

    pub fn topic(&self, contract: &str) -> String {
        self.topics
            .get(contract)
            .cloned()
            .unwrap_or_else(|| panic!("{contract} was not created for this test"))
    }

    pub fn routes_file(&self) -> PathBuf {
        self.routes_dir.join("routes.yaml")
    }

    /// Writes a routes file mapping the usual keys to this test's topics (when created).
    pub fn write_default_routes(&self) {
        let mut text = String::from("webhookRoutes:\n");
        for (key, contract) in [
            ("login", "public.identity.login.events"),
            ("signup", "public.identity.signup.events"),
            ("signout", "public.identity.signout.events"),
        ] {
            if let Some(topic) = self.topics.get(contract) {
                text.push_str(&format!("  {key}: {topic}\n"));
            }
        }
        text.push_str("externalRoutes:\n");
        if let Some(topic) = self.topics.get("public.user.message.events") {
            text.push_str(&format!("  message: {topic}\n"));
        }
        std::fs::write(self.routes_file(), text).unwrap();
    }

    /// Gateway configuration for this environment on a free port.
    pub fn config(&self) -> Config {
        let mut settings = Settings::default();
        settings.auth.jwt_secret = Some(SecretString::from(JWT_SECRET));
        settings.auth.webhook_secret = Some(SecretString::from(WEBHOOK_SECRET));
        settings.gateway.routes_file = Some(self.routes_file());
        let topic =
            |contract: &str, default: String| self.topics.get(contract).cloned().unwrap_or(default);
        let defaults = Topics::default();
        settings.gateway.topics = Topics {
            upload_intent: topic("internal.media.upload.intent", defaults.upload_intent),
            download_intent: topic("internal.media.download.intent", defaults.download_intent),
            delete_intent: topic("internal.media.delete.intent", defaults.delete_intent),
            download_events: topic("public.media.download.events", defaults.download_events),
            delete_events: topic("public.media.delete.events", defaults.delete_events),
            delete_retry: topic("internal.media.delete.retry", defaults.delete_retry),
        };
        Config {
            backbone: self.stack.backbone(None),
            service: settings,
        }
    }

    /// Reads `count` records of a contract's test topic and decodes them with the registry.
    pub async fn read_decoded(
        &self,
        contract: &str,
        count: usize,
    ) -> Vec<(InboundMessage, u32, Value)> {
        let topic = self.topic(contract);
        let messages = self
            .stack
            .read_topic(&topic, count, Duration::from_secs(30))
            .await;
        let mut decoded = Vec::new();
        for message in messages {
            let bytes = message.payload.clone().unwrap_or_default();
            let value = self
                .codec
                .decode(&bytes)
                .await
                .unwrap_or_else(|e| panic!("{topic}: {e}"));
            decoded.push((message, value.schema_id, value.to_json()));
        }
        decoded
    }
}

pub async fn spawn_app(config: Config) -> TestApp {
    let app = Application::build(config)
        .await
        .unwrap_or_else(|e| panic!("build: {e}"));
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move { app.run_until_stopped(token).await });
    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        shutdown,
    }
}
