//! Builds the gateway from its settings; tests use the same `build` with port 0.

use std::sync::Arc;
use std::time::Duration;

use substrate::BoxError;
use substrate::health::{KafkaCheck, Readiness, RegistryCheck};
use substrate::http::BoundServer;
use substrate::kafka::KafkaPublisher;
use tokio_util::sync::CancellationToken;

use crate::auth::{JwksCheck, JwtVerifier, WebhookSecret};
use crate::configuration::{Config, Settings};
use substrate::events::AvroEventSink;
use substrate::media::{PgMediaFiles, S3ObjectStore};

use crate::credits::PgCreditLedger;
use crate::idempotency::{IdempotencyStore, PgIdempotencyStore};
use crate::ratelimit::RateLimiter;
use crate::routes_config::{Routes, RoutesCheck};
use crate::state::AppState;

/// A built, bound, not yet running gateway.
#[derive(Debug)]
pub struct Application {
    server: BoundServer,
    settings: Settings,
    publisher: KafkaPublisher,
    jwt: Arc<JwtVerifier>,
    routes: Routes,
    idempotency: Arc<PgIdempotencyStore>,
}

impl substrate::app::Service for Application {
    const NAME: &'static str = "api-gateway";
    const CONFIG_DIR: &'static str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    type Settings = Settings;

    /// Creates clients and binds the listener (port 0 picks a free port). No dependency is
    /// contacted here: an unreachable broker or database shows in `/readyz`, not as a crash.
    async fn build(config: Config) -> Result<Self, BoxError> {
        let Config {
            backbone,
            service: settings,
        } = config;
        let jwt = Arc::new(JwtVerifier::new(&settings.auth)?);
        if !jwt.is_configured() {
            tracing::error!(
                "no JWT key configured (auth.jwt_secret / auth.jwks_url): user routes answer 401"
            );
        }
        let webhook_secret =
            settings.auth.webhook_secret.clone().filter(|_| {
                substrate::config::secret_value(&settings.auth.webhook_secret).is_some()
            });
        if webhook_secret.is_none() {
            tracing::error!(
                "no webhook secret configured (auth.webhook_secret): webhooks answer 401"
            );
        }
        settings.gateway.rate_limits.validate()?;
        let routes_path = settings.gateway.routes_path();
        let routes = Routes::load(&routes_path);
        let substrate::app::Clients {
            pool,
            registry,
            codec,
            publisher,
        } = backbone.clients()?;
        let idempotency = Arc::new(PgIdempotencyStore::new(
            pool.clone(),
            &settings.gateway.idempotency,
        ));
        let state = AppState {
            jwt: jwt.clone(),
            webhook_secret: WebhookSecret(webhook_secret.map(Arc::new)),
            routes: routes.clone(),
            events: Arc::new(AvroEventSink::new(
                "api-gateway",
                codec,
                Arc::new(publisher.clone()),
            )),
            credits: Arc::new(PgCreditLedger::new(pool.clone())),
            files: Arc::new(PgMediaFiles::new(pool.clone())),
            objects: Arc::new(S3ObjectStore::new(&settings.s3)),
            presign_expiry: Duration::from_secs(settings.gateway.presign_expiry_secs),
            topics: Arc::new(settings.gateway.topics.clone()),
            idempotency: idempotency.clone(),
            limits: Arc::new(RateLimiter::new(settings.gateway.rate_limits.clone())),
            batch_max_events: settings.gateway.batch_max_events,
        };
        let readiness = Readiness::new("not_ready")
            .with(Arc::new(KafkaCheck::new(&backbone.kafka)?))
            .with(Arc::new(RegistryCheck(registry)))
            .with(Arc::new(RoutesCheck(routes.clone())));
        let readiness = match jwt.jwks() {
            Some(jwks) => readiness.with(Arc::new(JwksCheck(jwks))),
            None => readiness,
        };
        let router = crate::routes::router(
            state,
            substrate::health::router(readiness),
            settings.gateway.body_limit_bytes,
            &backbone.http,
        );
        let server = BoundServer::bind(router, &backbone.http).await?;
        tracing::info!(port = server.port(), routes_file = %routes_path.display(), "api-gateway listening");
        Ok(Self {
            server,
            settings,
            publisher,
            jwt,
            routes,
            idempotency,
        })
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests and flushes the
    /// producer so nothing acknowledged to a client is left in a buffer.
    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let background = shutdown.child_token();
        if let Some(jwks) = self.jwt.jwks() {
            jwks.spawn_refresh(background.clone());
        }
        if let Err(error) = self
            .routes
            .watch(self.settings.gateway.routes_path(), background.clone())
        {
            tracing::error!(%error, "cannot watch the routes file; edits need a restart");
        }
        spawn_sweeper(
            self.idempotency.clone(),
            std::time::Duration::from_secs(
                self.settings.gateway.idempotency.sweep_interval_secs.max(1),
            ),
            background.clone(),
        );
        let served = self.server.serve(shutdown).await;
        background.cancel();
        if let Err(error) = self.publisher.flush_blocking(Duration::from_secs(5)).await {
            tracing::error!(%error, "producer flush on shutdown failed");
        }
        served?;
        Ok(())
    }
}

impl Application {
    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }
}

/// Removes expired idempotency keys every `interval` until `stop` (their window check does not
/// need it; this only keeps the table small).
fn spawn_sweeper(store: Arc<PgIdempotencyStore>, interval: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match store.sweep().await {
                Ok(0) => {}
                Ok(removed) => tracing::debug!(removed, "expired idempotency keys removed"),
                Err(error) => tracing::warn!(%error, "could not remove expired idempotency keys"),
            }
        }
    });
}
