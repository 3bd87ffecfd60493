//! Builds the message-consumer from its settings; tests use the same `build` with port 0.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use substrate::BoxError;
use substrate::avro::{AvroCodec, SchemaRegistry};
use substrate::health::{KafkaCheck, PostgresCheck, Readiness};
use substrate::http::ServeLimits;
use substrate::kafka::{EventPublisher, KafkaPublisher, run_consumer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::configuration::Settings;
use crate::handler::NotificationWriter;

/// A built, bound, not yet running message-consumer.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    limits: ServeLimits,
    settings: Settings,
    writer: NotificationWriter,
    dead_letters: KafkaPublisher,
}

impl Application {
    /// Creates clients and binds the health listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Self, BoxError> {
        let pool = settings.postgres.pool()?;
        let registry = Arc::new(SchemaRegistry::new(&settings.registry)?);
        let writer = NotificationWriter::new(AvroCodec::new(registry), pool.clone());
        let dead_letters = KafkaPublisher::new(&settings.kafka)?;
        let readiness = Readiness::new("not_ready")
            .with(Arc::new(PostgresCheck(pool)))
            .with(Arc::new(KafkaCheck::new(&settings.kafka)?));
        let router = substrate::health::router(readiness);
        let listener = TcpListener::bind(settings.http.address()).await?;
        let port = listener.local_addr()?.port();
        tracing::info!(port, group_id = %settings.consumer.group_id, "message-consumer listening");
        Ok(Self {
            listener,
            router,
            port,
            limits: ServeLimits::from(&settings.http),
            settings,
            writer,
            dead_letters,
        })
    }

    /// The bound health port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Consumes and serves health until `shutdown`; then finishes the in-flight batch, commits
    /// offsets and stops. If the consume loop fails to start, the process stops too.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let stop_all = shutdown.child_token();
        let server =
            substrate::http::serve(self.listener, self.router, stop_all.clone(), self.limits);
        let dead_letters: Arc<dyn EventPublisher> = Arc::new(self.dead_letters.clone());
        let meter = opentelemetry::global::meter("message-consumer");
        let consumer = async {
            let result = run_consumer(
                &self.settings.kafka,
                &self.settings.consumer,
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
