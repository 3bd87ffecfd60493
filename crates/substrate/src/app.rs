//! The common `main` of every service: load settings, start telemetry, log the redacted
//! configuration, run until SIGTERM/SIGINT, and report how the process ended.
//!
//! A service is a [`Service`] (how it is built from its [`Config`] and run). Its configuration
//! is the [`Backbone`] every service shares plus its own [`ServiceSettings`], both read from the
//! same layered keys; its `main` is `substrate::app::run::<Application>().await`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::BoxError;
use crate::avro::{AvroCodec, RegistrySettings, SchemaRegistry};
use crate::config::{ConfigError, ConfigSource, HttpSettings};
use crate::kafka::{KafkaPublisher, KafkaSettings};
use crate::postgres::{POSTGRES_ALIASES, PostgresSettings};
use crate::telemetry::TelemetrySettings;

/// Environment variable names of an original service, each mapped to the key it sets.
pub type Aliases = &'static [(&'static str, &'static str)];

/// What every service of the platform is configured with: its HTTP listener (health at least),
/// the broker, the schema registry, the database and telemetry. The keys are top-level
/// (`http.*`, `kafka.*`, `registry.*`, `postgres.*`, `telemetry.*`), beside the service's own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Backbone {
    /// HTTP listener; its port default is in each service's `config/base.yaml`.
    pub http: HttpSettings,
    /// Broker connection.
    pub kafka: KafkaSettings,
    /// Schema registry.
    pub registry: RegistrySettings,
    /// The platform's database.
    pub postgres: PostgresSettings,
    /// Logs, traces and metrics.
    pub telemetry: TelemetrySettings,
}

/// The backbone's clients, created without contacting anything: an unreachable dependency
/// shows in readiness, not as a failed start.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Database pool (connects lazily).
    pub pool: PgPool,
    /// Schema registry client (readiness checks it).
    pub registry: Arc<SchemaRegistry>,
    /// Avro encoder/decoder over that registry.
    pub codec: AvroCodec,
    /// Producer (events, retries and dead letters alike).
    pub publisher: KafkaPublisher,
}

impl Backbone {
    /// Checks the backbone's own cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.registry.validate()
    }

    /// Creates the backbone's clients.
    pub fn clients(&self) -> Result<Clients, BoxError> {
        let registry = Arc::new(SchemaRegistry::new(&self.registry)?);
        Ok(Clients {
            pool: self.postgres.pool()?,
            codec: AvroCodec::new(registry.clone()),
            registry,
            publisher: KafkaPublisher::new(&self.kafka)?,
        })
    }
}

/// The part of the settings that is a service's own (its sections beside the backbone's).
pub trait ServiceSettings: Debug + Default + DeserializeOwned {
    /// The original deployment's environment names this service still accepts, beside the
    /// `APP__…` names and the backbone's: the alias sets of the other shared parts it uses
    /// (e.g. S3), then its own.
    const ALIASES: &'static [Aliases];

    /// Cross-field checks after loading; an error stops the service before it starts.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// A service's whole configuration: the backbone and its own part, read from the same layered
/// keys (`config/` files, legacy variable names, `APP__SECTION__KEY`).
///
/// Read in two passes over one tree rather than with `#[serde(flatten)]`: flattening buffers
/// the values untyped, which loses the config crate's string-to-number conversion of
/// environment variables.
#[derive(Debug, Clone, Default)]
pub struct Config<T> {
    /// The sections every service has.
    pub backbone: Backbone,
    /// The service's own sections.
    pub service: T,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Config<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tree = config::Value::deserialize(deserializer)?;
        Ok(Self {
            backbone: Backbone::deserialize(tree.clone()).map_err(D::Error::custom)?,
            service: T::deserialize(tree).map_err(D::Error::custom)?,
        })
    }
}

impl<T: ServiceSettings> Config<T> {
    /// Loads the configuration from `config_dir` and the process environment, then validates it.
    pub fn load_from(config_dir: &str) -> Result<Self, ConfigError> {
        Self::load_with_env(config_dir, std::env::vars().collect())
    }

    /// Loads the configuration from `config_dir` and the given environment (tests pass their
    /// own, e.g. an empty one to see the shipped defaults), then validates it.
    pub fn load_with_env(
        config_dir: &str,
        env: HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let aliases: Vec<(&'static str, &'static str)> = POSTGRES_ALIASES
            .iter()
            .chain(T::ALIASES.iter().flat_map(|set| set.iter()))
            .copied()
            .collect();
        let loaded: Self =
            crate::config::load_with_env(&ConfigSource::new(config_dir, &aliases), env)?;
        loaded.backbone.validate()?;
        loaded.service.validate()?;
        Ok(loaded)
    }
}

/// A service binary: how it is built from its settings and run until shutdown.
pub trait Service: Sized {
    /// `service.name` in telemetry and log lines.
    const NAME: &'static str;
    /// The crate's `config/` directory (`concat!(env!("CARGO_MANIFEST_DIR"), "/config")`).
    const CONFIG_DIR: &'static str;
    /// Its own settings (beside the backbone).
    type Settings: ServiceSettings;

    /// Creates clients and binds listeners; contacts no dependency, so an unreachable one
    /// shows in readiness rather than as a crash.
    fn build(config: Config<Self::Settings>) -> impl Future<Output = Result<Self, BoxError>>;

    /// Runs until `shutdown` is cancelled, then drains and flushes.
    fn run_until_stopped(
        self,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), BoxError>>;
}

/// The `main` of service `S`: 0 after a clean shutdown, 1 when configuration, startup or the
/// service itself failed.
pub async fn run<S: Service>() -> ExitCode {
    main(
        S::NAME,
        || Config::<S::Settings>::load_from(S::CONFIG_DIR),
        |config, shutdown| async move { S::build(config).await?.run_until_stopped(shutdown).await },
    )
    .await
}

async fn main<S, R, Fut>(
    service: &'static str,
    load: impl FnOnce() -> Result<Config<S>, ConfigError>,
    run: R,
) -> ExitCode
where
    S: ServiceSettings,
    R: FnOnce(Config<S>, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let config = match load() {
        Ok(config) => config,
        Err(error) => {
            // Telemetry is not up yet, so this goes straight to stderr.
            eprintln!("{service}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match crate::telemetry::init(service, &config.backbone.telemetry) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{service}: telemetry: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Secrets are wrapped in `SecretString`, whose Debug output is redacted.
    tracing::info!(service, settings = ?config, "starting");
    let shutdown = crate::shutdown::on_signal();
    match run(config, shutdown).await {
        Ok(()) => {
            tracing::info!(service, "stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(service, error.message = %error, error.cause_chain = %crate::telemetry::cause_chain(&*error), "stopped with an error");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;
    use serde::Deserialize;

    use super::{Aliases, Config, ServiceSettings};
    use crate::config::ConfigError;

    /// A service's own part with a number, a list and a legacy name, as the real ones have.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Own {
        limits: Limits,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Limits {
        per_minute: u32,
        burst: u64,
    }

    impl ServiceSettings for Own {
        const ALIASES: &'static [Aliases] = &[&[("OLD_PER_MINUTE", "limits.per_minute")]];

        fn validate(&self) -> Result<(), ConfigError> {
            if self.limits.burst > 1_000 {
                return Err(ConfigError::Invalid("limits.burst above 1000".into()));
            }
            Ok(())
        }
    }

    fn load(env: &[(&str, &str)]) -> Result<Config<Own>, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load_with_env("/nonexistent-substrate-app-test", env)
    }

    #[test]
    fn both_parts_read_numbers_from_environment_strings_and_legacy_names() {
        let config = load(&[
            ("APP__HTTP__PORT", "9191"),
            ("APP__KAFKA__DELIVERY_TIMEOUT_MS", "1234"),
            ("SUPABASE_DB_URL", "postgres://db.example/x"),
            ("APP__LIMITS__BURST", "40"),
            ("OLD_PER_MINUTE", "7"),
        ])
        .unwrap();
        assert_eq!(config.backbone.http.port, 9191);
        assert_eq!(config.backbone.kafka.delivery_timeout_ms, 1234);
        assert_eq!(
            config.backbone.postgres.url.expose_secret(),
            "postgres://db.example/x"
        );
        assert_eq!(config.service.limits.burst, 40);
        assert_eq!(config.service.limits.per_minute, 7);
    }

    #[test]
    fn registry_credentials_come_from_legacy_or_structured_names_and_go_together() {
        let legacy = load(&[
            ("SCHEMA_REGISTRY_USERNAME", "media-service"),
            ("SCHEMA_REGISTRY_PASSWORD", "registry-secret"),
        ])
        .unwrap();
        assert_eq!(legacy.backbone.registry.username, "media-service");
        assert_eq!(
            crate::config::secret_value(&legacy.backbone.registry.password),
            Some("registry-secret")
        );
        assert!(!format!("{legacy:?}").contains("registry-secret"));
        let structured = load(&[
            ("APP__REGISTRY__USERNAME", "api-gateway"),
            ("APP__REGISTRY__PASSWORD", "pw"),
        ])
        .unwrap();
        assert_eq!(structured.backbone.registry.username, "api-gateway");
        let half = load(&[("APP__REGISTRY__USERNAME", "api-gateway")]).unwrap_err();
        assert!(half.to_string().contains("registry.password"), "{half}");
    }

    #[test]
    fn kafka_tls_is_read_from_the_environment_and_a_missing_ca_file_stops_the_start() {
        let config = load(&[("APP__KAFKA__TLS", "true")]).unwrap();
        assert!(config.backbone.kafka.tls);
        let missing = load(&[
            ("APP__KAFKA__TLS", "true"),
            ("APP__KAFKA__SSL_CA_FILE", "/nonexistent/ca.pem"),
        ])
        .unwrap_err();
        assert!(missing.to_string().contains("ssl_ca_file"), "{missing}");
        let typo = load(&[("APP__KAFKA__TLS", "maybe")]).unwrap_err();
        assert!(typo.to_string().contains("tls"), "{typo}");
    }

    #[test]
    fn each_part_is_validated_and_bad_values_are_named() {
        let own = load(&[("APP__LIMITS__BURST", "5000")]).unwrap_err();
        assert!(own.to_string().contains("limits.burst"), "{own}");
        let number = load(&[("APP__HTTP__PORT", "eighty")]).unwrap_err();
        let message = number.to_string();
        assert!(
            message.contains("http.port") && message.contains("eighty"),
            "{message}"
        );
    }
}
