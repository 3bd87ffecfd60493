//! Settings of the message-consumer (see `config/base.yaml` for every key and its environment name).

use serde::Deserialize;
use substrate::app::{Aliases, ServiceSettings};
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
                // Written in statements of 512 (handlers.rs); a backlog drains faster in larger
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

impl ServiceSettings for Settings {
    const ALIASES: &'static [Aliases] = &[POSTGRES_ALIASES];

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }

    /// Cross-field checks.
    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.consumer.validate()
    }
}
