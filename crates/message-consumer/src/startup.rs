//! Builds the message-consumer from its settings; tests use the same `build` with port 0.

use std::sync::Arc;
use std::time::Duration;

use substrate::BoxError;
use substrate::health::{KafkaCheck, PostgresCheck, Readiness};
use substrate::http::BoundServer;
use substrate::kafka::{EventPublisher, KafkaPublisher, run_consumer};
use tokio_util::sync::CancellationToken;

use crate::configuration::{Config, Settings};
use crate::handlers::NotificationWriter;

/// A built, bound, not yet running message-consumer.
#[derive(Debug)]
pub struct Application {
    server: BoundServer,
    config: Config,
    writer: NotificationWriter,
    dead_letters: KafkaPublisher,
}

impl substrate::app::Service for Application {
    const NAME: &'static str = "message-consumer";
    const CONFIG_DIR: &'static str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    type Settings = Settings;

    /// Creates clients and binds the health listener (port 0 picks a free port).
    async fn build(config: Config) -> Result<Self, BoxError> {
        let backbone = &config.backbone;
        let clients = backbone.clients()?;
        let readiness = Readiness::new("not_ready")
            .with(Arc::new(PostgresCheck(clients.pool.clone())))
            .with(Arc::new(KafkaCheck::new(&backbone.kafka)?));
        let server =
            BoundServer::bind(substrate::health::router(readiness), &backbone.http).await?;
        tracing::info!(port = server.port(), group_id = %config.service.consumer.group_id, "message-consumer listening");
        Ok(Self {
            server,
            writer: NotificationWriter::new(clients.codec, clients.pool),
            dead_letters: clients.publisher,
            config,
        })
    }

    /// Consumes and serves health until `shutdown`; then finishes the in-flight batch, commits
    /// offsets and stops. If the consume loop fails to start, the process stops too.
    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let stop_all = shutdown.child_token();
        let server = self.server.serve(stop_all.clone());
        let dead_letters: Arc<dyn EventPublisher> = Arc::new(self.dead_letters.clone());
        let meter = opentelemetry::global::meter("message-consumer");
        let consumer = async {
            let result = run_consumer(
                &self.config.backbone.kafka,
                &self.config.service.consumer,
                self.writer,
                dead_letters,
                &meter,
                stop_all.clone(),
            )
            .await;
            // Whatever ended the loop ends the process: a consumer that is not consuming must
            // not keep reporting healthy.
            stop_all.cancel();
            result
        };
        let (served, consumed) = tokio::join!(server, consumer);
        if let Err(error) = self
            .dead_letters
            .flush_blocking(Duration::from_secs(5))
            .await
        {
            tracing::error!(%error, "dead-letter producer flush on shutdown failed");
        }
        consumed?;
        served?;
        Ok(())
    }
}

impl Application {
    /// The bound health port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }
}
