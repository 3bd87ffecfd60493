//! Settings of the api-gateway (see `config/base.yaml` for every key and its environment name).

use serde::Deserialize;
use substrate::avro::RegistrySettings;
use substrate::config::{ConfigError, ConfigSource, HttpSettings};
use substrate::kafka::KafkaSettings;
use substrate::telemetry::TelemetrySettings;

/// Everything the gateway is configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// HTTP listener (default `0.0.0.0:8080`).
    pub http: HttpSettings,
    /// Broker connection.
    pub kafka: KafkaSettings,
    /// Schema registry.
    pub registry: RegistrySettings,
    /// Logs, traces and metrics.
    pub telemetry: TelemetrySettings,
}

impl substrate::app::ServiceSettings for Settings {
    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }
}

impl Settings {
    /// Loads and validates the settings from `config/` and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let source = ConfigSource::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config"), &[]);
        let settings: Self = substrate::config::load(&source)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()
    }
}
