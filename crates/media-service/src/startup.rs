//! Builds the media-service from its settings; tests use the same `build` with port 0.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;

use substrate::BoxError;
use substrate::avro::AvroCodec;
use substrate::health::{BucketCheck, KafkaCheck, PostgresCheck, Readiness};
use substrate::http::{BoundServer, Edge};
use substrate::kafka::replay::ReplayError;
use substrate::kafka::{ConsumeSettings, EventPublisher, KafkaPublisher, PerMessage, run_consumer};
use tokio_util::sync::CancellationToken;

use crate::announced::Announced;
use crate::configuration::{Config, MediaSettings, Settings, Topics};
use crate::deps::Deps;
use crate::handlers::MediaRouter;
use crate::webhooks::WebhookState;
use substrate::events::AvroEventSink;
use substrate::media::{PgMediaFiles, S3ObjectStore};

/// A built, bound, not yet running media-service.
#[derive(Debug)]
pub struct Application {
    server: BoundServer,
    config: Config,
    codec: AvroCodec,
    deps: Deps,
    publisher: KafkaPublisher,
}

impl substrate::app::Service for Application {
    const NAME: &'static str = "media-service";
    const CONFIG_DIR: &'static str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    type Settings = Settings;

    /// Creates clients and binds the listener (port 0 picks a free port).
    async fn build(config: Config) -> Result<Self, BoxError> {
        let (backbone, settings) = (&config.backbone, &config.service);
        let substrate::app::Clients {
            pool,
            codec,
            publisher,
            ..
        } = backbone.clients()?;
        let events = Arc::new(AvroEventSink::new(
            "media-service",
            codec.clone(),
            Arc::new(publisher.clone()),
        ));
        let storage = Arc::new(S3ObjectStore::new(&settings.s3));
        let topics = Arc::new(settings.topics.clone());
        let deps = Deps {
            events: events.clone(),
            storage: storage.clone(),
            files: Arc::new(PgMediaFiles::new(pool.clone())),
            topics: topics.clone(),
            media: Arc::new(settings.media.clone()),
            announced: Arc::new(Announced::default()),
        };
        if settings.webhook.require_token
            && substrate::config::secret_value(&settings.webhook.token).is_none()
        {
            tracing::error!(
                "no webhook token configured (webhook.token): every webhook will answer 401"
            );
        }
        let webhooks = crate::webhooks::router(WebhookState {
            events,
            storage,
            topics,
            bucket: settings.s3.bucket.clone(),
            token: settings.webhook.token.clone(),
            require_token: settings.webhook.require_token,
            move_timeout: Duration::from_millis(settings.webhook.move_timeout_ms),
        });
        let readiness = Readiness::new("error")
            .with(Arc::new(KafkaCheck::new(&backbone.kafka)?))
            .with(Arc::new(PostgresCheck(pool)))
            .with(Arc::new(BucketCheck {
                client: settings.s3.internal_client(),
                bucket: settings.s3.bucket.clone(),
            }));
        // Concurrency and time limits on the webhooks only: health checks keep answering.
        let webhooks = substrate::http::with_request_limits(webhooks, &backbone.http);
        let router = substrate::http::with_edge(
            webhooks.merge(substrate::health::router(readiness)),
            Edge {
                service: "media-service",
                body_limit: settings.webhook.body_limit_bytes,
                // Only the object store calls these routes, never a browser.
                cors: None,
            },
        );
        let server = BoundServer::bind(router, &backbone.http).await?;
        tracing::info!(port = server.port(), "media-service listening");
        Ok(Self {
            server,
            config,
            codec,
            deps,
            publisher,
        })
    }

    /// Runs the webhook server and both consume loops until `shutdown`; then stops fetching,
    /// finishes in-flight handlers and requests, commits offsets and flushes the producer. If any
    /// part stops on its own, everything stops (a half-running service must not look healthy).
    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let stop_all = shutdown.child_token();
        let deps = self.deps.clone();
        let dead_letters: Arc<dyn EventPublisher> = Arc::new(self.publisher.clone());
        let meter = opentelemetry::global::meter("media-service");
        let replay_incomplete = meter
            .u64_counter("kafka.consumer.replay.incomplete.total")
            .with_description(
                "Consume loops started without the outcomes of their replay window, by topic and \
                 reason (timeout, too_many_records, error)",
            )
            .build();
        let server = async {
            let result = self.server.serve(stop_all.clone()).await;
            stop_all.cancel();
            result.map_err(BoxError::from)
        };
        // Each loop's end (error or shutdown) stops the others too.
        let (kafka, service) = (&self.config.backbone.kafka, &self.config.service);
        let consume = |consumer: &'static str, settings: &ConsumeSettings| {
            let (mut deps, codec, dead_letters, meter, stop_all, replay_incomplete) = (
                deps.clone(),
                self.codec.clone(),
                dead_letters.clone(),
                meter.clone(),
                stop_all.clone(),
                replay_incomplete.clone(),
            );
            let settings = settings.clone();
            async move {
                // Before the first record: what was already published for the records this
                // group receives again (announced.rs). Only the saga topics need it.
                let Some(announced) = recover_announced(
                    kafka,
                    &settings,
                    &deps.topics,
                    &codec,
                    &service.media,
                    &replay_incomplete,
                    &stop_all,
                )
                .await
                else {
                    return Ok(());
                };
                deps.announced = Arc::new(announced);
                let router = MediaRouter::new(codec, deps);
                let result = run_consumer(
                    kafka,
                    &settings,
                    PerMessage(router),
                    dead_letters,
                    &meter,
                    stop_all.clone(),
                )
                .await;
                stop_all.cancel();
                result.map_err(|error| BoxError::from(format!("{consumer} consumer: {error}")))
            }
        };
        // One loop per saga topic, all in the saga group: a record that keeps failing holds up
        // only its own topic (its loop backs off), never the other sagas. The group assigns each
        // member the partitions of the topic it subscribed to, as it did for the Go service's
        // single member, so committed offsets carry over unchanged.
        let sagas = futures::future::join_all(service.consumer.topics.iter().map(|topic| {
            let settings = ConsumeSettings {
                topics: vec![topic.clone()],
                ..service.consumer.clone()
            };
            consume("saga", &settings)
        }));
        let retries = consume("delete-retry", &service.retry_consumer);
        let (served, sagas, retried) = tokio::join!(server, sagas, retries);
        let consumed: Result<(), BoxError> = sagas.into_iter().collect();
        if let Err(error) = self.publisher.flush_blocking(Duration::from_secs(5)).await {
            tracing::error!(%error, "producer flush on shutdown failed");
        }
        served?;
        consumed?;
        retried?;
        Ok(())
    }
}

impl Application {
    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }
}

/// [`Announced::recover`], bounded by `media.replay_timeout_ms`; `None` once `shutdown` is
/// cancelled. When the read fails or hits a bound, the loop starts without the outcomes (empty
/// sets) rather than waiting: a warning names the reason and
/// `kafka.consumer.replay.incomplete.total{topic,reason}` counts it. Records the group receives
/// again may then be answered a second time.
async fn recover_announced(
    kafka: &substrate::kafka::KafkaSettings,
    consumer: &ConsumeSettings,
    topics: &Topics,
    codec: &AvroCodec,
    media: &MediaSettings,
    incomplete: &Counter<u64>,
    shutdown: &CancellationToken,
) -> Option<Announced> {
    let timeout = Duration::from_millis(media.replay_timeout_ms);
    let recover = tokio::time::timeout(
        timeout,
        Announced::recover(kafka, consumer, topics, codec, media),
    );
    let (reason, error) = tokio::select! {
        () = shutdown.cancelled() => return None,
        recovered = recover => match recovered {
            Ok(Ok(announced)) => return Some(announced),
            Ok(Err(error)) => {
                let reason = error
                    .downcast_ref::<ReplayError>()
                    .map_or("error", ReplayError::kind);
                (reason, error.to_string())
            }
            Err(_) => ("timeout", format!("not done after {} ms", timeout.as_millis())),
        },
    };
    let topic = consumer.topics.join(",");
    tracing::warn!(
        error, reason, topic, group = %consumer.group_id,
        "outcomes of the replay window not read; the consume loop starts without them, so \
         records it receives again may be answered a second time"
    );
    incomplete.add(
        1,
        &[
            KeyValue::new("topic", topic),
            KeyValue::new("reason", reason),
        ],
    );
    Some(Announced::default())
}
