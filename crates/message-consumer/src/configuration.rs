//! Settings of the message-consumer (see `config/base.yaml` for every key and its environment name).

use serde::Deserialize;
use substrate::avro::RegistrySettings;
use substrate::config::{ConfigError, HttpSettings};
use substrate::kafka::{ConsumeSettings, KafkaSettings};
use substrate::postgres::{POSTGRES_ALIASES, PostgresSettings};
use substrate::telemetry::TelemetrySettings;

/// Everything the message-consumer is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Health server (default `0.0.0.0:8091`).
    pub http: HttpSettings,
    /// Broker connection.
    pub kafka: KafkaSettings,
    /// Group, topics, dead-letter topic and retry backoff of the consume loop.
    pub consumer: ConsumeSettings,
    /// Schema registry.
    pub registry: RegistrySettings,
    /// Database holding `user_notifications`.
    pub postgres: PostgresSettings,
    /// Logs, traces and metrics.
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings {
                port: 8091,
                ..HttpSettings::default()
            },
            kafka: KafkaSettings::default(),
            consumer: ConsumeSettings {
                // the Go service's group: a cut-over continues from its committed offsets
                group_id: "go-message-consumer".to_owned(),
                topics: vec!["public.user.message.events".to_owned()],
                dead_letter_topic: "internal.user.message.dead-letter".to_owned(),
                // Written in statements of 512 (handler.rs); a backlog drains faster in larger
                // batches (docs/benchmarks.md).
                max_batch: 2048,
                ..ConsumeSettings::default()
            },
            registry: RegistrySettings::default(),
            postgres: PostgresSettings::default(),
            telemetry: TelemetrySettings::default(),
        }
    }
}

impl substrate::app::ServiceSettings for Settings {
    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }
}

impl Settings {
    /// Loads and validates the settings from `config/` and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let settings: Self = substrate::config::load_service(
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            &[POSTGRES_ALIASES],
        )?;
        settings.validate()?;
        Ok(settings)
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.consumer.validate()
    }
}
