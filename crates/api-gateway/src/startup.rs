//! Builds the gateway from its settings; tests use the same `build` with port 0.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use substrate::BoxError;
use substrate::avro::SchemaRegistry;
use substrate::health::{KafkaCheck, Readiness, RegistryCheck};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::configuration::Settings;

/// A built, bound, not yet running gateway.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    grace: Duration,
}

impl Application {
    /// Creates clients and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Self, BoxError> {
        let registry = Arc::new(SchemaRegistry::new(&settings.registry)?);
        let readiness = Readiness::new("not_ready")
            .with(Arc::new(KafkaCheck::new(&settings.kafka)?))
            .with(Arc::new(RegistryCheck(registry)));
        let router = substrate::health::router(readiness);
        let listener = TcpListener::bind(settings.http.address()).await?;
        let port = listener.local_addr()?.port();
        tracing::info!(port, "api-gateway listening");
        Ok(Self {
            listener,
            router,
            port,
            grace: Duration::from_millis(settings.http.shutdown_grace_ms),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        substrate::http::serve(self.listener, self.router, shutdown, self.grace).await?;
        Ok(())
    }
}
