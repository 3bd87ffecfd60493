//! Settings of the media-service (see `config/base.yaml` for every key and its environment name).

use serde::Deserialize;
use substrate::avro::RegistrySettings;
use substrate::config::{ConfigError, ConfigSource, HttpSettings};
use substrate::kafka::KafkaSettings;
use substrate::postgres::{POSTGRES_ALIASES, PostgresSettings};
use substrate::s3::{S3_ALIASES, S3Settings};
use substrate::telemetry::TelemetrySettings;

/// Everything the media-service is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Webhook and health server (default `0.0.0.0:8090`).
    pub http: HttpSettings,
    /// Broker connection.
    pub kafka: KafkaSettings,
    /// Schema registry.
    pub registry: RegistrySettings,
    /// Database holding `media_files`.
    pub postgres: PostgresSettings,
    /// Object store.
    pub s3: S3Settings,
    /// Logs, traces and metrics.
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings {
                port: 8090,
                ..HttpSettings::default()
            },
            kafka: KafkaSettings::default(),
            registry: RegistrySettings::default(),
            postgres: PostgresSettings::default(),
            s3: S3Settings::default(),
            telemetry: TelemetrySettings::default(),
        }
    }
}

impl substrate::app::ServiceSettings for Settings {
    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }
}

/// Legacy variable names of the original media-service.
const ALIASES: &[(&str, &str)] = &[("WEBHOOK_PORT", "http.port")];

impl Settings {
    /// Loads and validates the settings from `config/` and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let aliases: Vec<_> = POSTGRES_ALIASES
            .iter()
            .chain(S3_ALIASES)
            .chain(ALIASES)
            .copied()
            .collect();
        let source = ConfigSource::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config"), &aliases);
        let settings: Self = substrate::config::load(&source)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()
    }
}
