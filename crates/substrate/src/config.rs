//! Layered, typed configuration.
//!
//! Every service describes its settings as a tree of `serde` structs whose `Default` impls are the
//! built-in defaults, and loads them once at startup with [`load`]. Layers, lowest priority first:
//!
//! 1. the struct defaults;
//! 2. `<dir>/base.yaml` (optional);
//! 3. `<dir>/<environment>.yaml` (optional), where the environment comes from `APP_ENVIRONMENT`
//!    (default `local`) and the directory from `APP_CONFIG_DIR` (default: the service's own);
//! 4. legacy environment variables of the original platform (`REDPANDA_BROKERS`,
//!    `SCHEMA_REGISTRY_URL`, …), mapped onto the tree through an alias table, so existing
//!    deployments keep working unchanged;
//! 5. `APP__`-prefixed environment variables with `__` as the nesting separator
//!    (`APP__KAFKA__BROKERS=…`), which win over everything.
//!
//! This module is the only place in the workspace that reads the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat, Map, Source, Value, ValueKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Prefix of the structured environment variables (`APP__KAFKA__BROKERS`).
pub const ENV_PREFIX: &str = "APP";
/// Variable that selects the environment-specific YAML file.
pub const ENVIRONMENT_VAR: &str = "APP_ENVIRONMENT";
/// Variable that overrides the directory holding the YAML files.
pub const CONFIG_DIR_VAR: &str = "APP_CONFIG_DIR";

/// Legacy variable names of the original services, shared by all three (the names their
/// deployments still set). Each maps to a key of the settings tree.
pub const COMMON_ALIASES: &[(&str, &str)] = &[
    ("REDPANDA_BROKERS", "kafka.brokers"),
    ("KAFKA_SASL_MECHANISM", "kafka.sasl_mechanism"),
    ("KAFKA_SASL_USERNAME", "kafka.sasl_username"),
    ("KAFKA_SASL_PASSWORD", "kafka.sasl_password"),
    ("SCHEMA_REGISTRY_URL", "registry.url"),
    ("SCHEMA_REGISTRY_USERNAME", "registry.username"),
    ("SCHEMA_REGISTRY_PASSWORD", "registry.password"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint"),
    ("LOG_LEVEL", "telemetry.log_filter"),
];

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or variable could not be read or did not fit the settings types.
    #[error("configuration could not be loaded: {0}")]
    Load(#[from] config::ConfigError),
    /// Values were read but are not acceptable together.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Where to read a service's configuration from.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// Directory with `base.yaml` and `<environment>.yaml`.
    pub dir: PathBuf,
    /// Legacy variable → settings key, applied below the `APP__` variables.
    pub aliases: Vec<(&'static str, &'static str)>,
}

impl ConfigSource {
    /// Files from `dir`, the common aliases plus `extra_aliases`.
    pub fn new(dir: impl AsRef<Path>, extra_aliases: &[(&'static str, &'static str)]) -> Self {
        let mut aliases = COMMON_ALIASES.to_vec();
        aliases.extend_from_slice(extra_aliases);
        Self {
            dir: dir.as_ref().to_path_buf(),
            aliases,
        }
    }
}

/// Loads settings from files and the real process environment.
pub fn load<T: DeserializeOwned>(source: &ConfigSource) -> Result<T, ConfigError> {
    load_with_env(source, std::env::vars().collect())
}

/// Loads settings from files and the given environment (tests pass their own map).
pub fn load_with_env<T: DeserializeOwned>(
    source: &ConfigSource,
    env: HashMap<String, String>,
) -> Result<T, ConfigError> {
    let environment = env
        .get(ENVIRONMENT_VAR)
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| "local".to_owned());
    let aliases = AliasSource::from_env(&source.aliases, &env);
    let dir = env
        .get(CONFIG_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map_or_else(|| source.dir.clone(), PathBuf::from);
    let config = Config::builder()
        .add_source(
            File::from(dir.join("base.yaml"))
                .format(FileFormat::Yaml)
                .required(false),
        )
        .add_source(
            File::from(dir.join(format!("{environment}.yaml")))
                .format(FileFormat::Yaml)
                .required(false),
        )
        .add_source(aliases)
        .add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(Some(env.into_iter().collect())),
        )
        .build()?;
    Ok(config.try_deserialize()?)
}

/// The legacy variables, as a config source that sits between the files and `APP__` variables.
/// Empty values count as unset, as they did in the original services.
#[derive(Debug, Clone)]
struct AliasSource {
    values: Vec<(String, String)>,
}

impl AliasSource {
    fn from_env(aliases: &[(&str, &str)], env: &HashMap<String, String>) -> Self {
        let values = aliases
            .iter()
            .filter_map(|(var, key)| {
                env.get(*var)
                    .filter(|v| !v.is_empty())
                    .map(|v| ((*key).to_owned(), v.clone()))
            })
            .collect();
        Self { values }
    }
}

impl Source for AliasSource {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        let origin = "legacy environment variable".to_owned();
        Ok(self
            .values
            .iter()
            .map(|(key, value)| {
                (
                    key.clone(),
                    Value::new(Some(&origin), ValueKind::String(value.clone())),
                )
            })
            .collect())
    }
}

/// The value of an optional secret, treating an empty string as absent.
pub fn secret_value(secret: &Option<SecretString>) -> Option<&str> {
    secret
        .as_ref()
        .map(|s| s.expose_secret())
        .filter(|s| !s.is_empty())
}

/// Listener settings of a service's HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Interface to bind, e.g. `0.0.0.0` in containers or `127.0.0.1` locally.
    pub host: String,
    /// TCP port; `0` picks a free port (tests).
    pub port: u16,
    /// Longest time a request may take end to end, in milliseconds; then it is answered 503
    /// (applied to the API routes, not to health checks).
    pub request_timeout_ms: u64,
    /// Longest time a client may take to send a request's headers, in milliseconds; then the
    /// connection is closed (a slow client cannot hold a connection open for free).
    pub header_read_timeout_ms: u64,
    /// Requests handled at once by the API routes; more are answered 503 with `Retry-After`
    /// at once instead of queueing (load shedding while a dependency is slow).
    pub max_concurrent_requests: usize,
    /// Longest time in-flight requests get to finish after a shutdown signal, in milliseconds.
    pub shutdown_grace_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: 8080,
            request_timeout_ms: 30_000,
            header_read_timeout_ms: 10_000,
            max_concurrent_requests: 1024,
            shutdown_grace_ms: 10_000,
        }
    }
}

impl HttpSettings {
    /// `host:port` for binding.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct Sample {
        kafka: SampleKafka,
        http: HttpSettings,
    }

    #[derive(Debug, Deserialize)]
    #[serde(default)]
    struct SampleKafka {
        brokers: String,
        delivery_timeout_ms: u64,
        sasl_password: Option<SecretString>,
    }

    impl Default for SampleKafka {
        fn default() -> Self {
            Self {
                brokers: "default:9092".into(),
                delivery_timeout_ms: 5000,
                sasl_password: None,
            }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn source(dir: &Path) -> ConfigSource {
        ConfigSource::new(dir, &[])
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("substrate-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
        dir
    }

    #[test]
    fn defaults_apply_when_nothing_is_configured() {
        let dir = temp_dir();
        let s: Sample = load_with_env(&source(&dir), env(&[])).unwrap();
        assert_eq!(s.kafka.brokers, "default:9092");
        assert_eq!(s.http.port, 8080);
    }

    #[test]
    fn layers_override_in_order_defaults_files_aliases_prefixed_env() {
        let dir = temp_dir();
        std::fs::write(
            dir.join("base.yaml"),
            "kafka:\n  brokers: base:9092\n  delivery_timeout_ms: 100\nhttp:\n  port: 1\n",
        )
        .unwrap();
        std::fs::write(dir.join("production.yaml"), "http:\n  port: 2\n").unwrap();

        let s: Sample = load_with_env(
            &source(&dir),
            env(&[
                ("APP_ENVIRONMENT", "production"),
                ("REDPANDA_BROKERS", "legacy:9092"),
            ]),
        )
        .unwrap();
        assert_eq!(s.kafka.brokers, "legacy:9092", "alias beats files");
        assert_eq!(s.kafka.delivery_timeout_ms, 100, "base file beats defaults");
        assert_eq!(s.http.port, 2, "environment file beats base file");

        let s: Sample = load_with_env(
            &source(&dir),
            env(&[
                ("REDPANDA_BROKERS", "legacy:9092"),
                ("APP__KAFKA__BROKERS", "structured:9092"),
                ("APP__KAFKA__DELIVERY_TIMEOUT_MS", "250"),
            ]),
        )
        .unwrap();
        assert_eq!(s.kafka.brokers, "structured:9092", "APP__ beats alias");
        assert_eq!(s.kafka.delivery_timeout_ms, 250, "numbers parse from env");
        assert_eq!(
            s.http.port, 1,
            "no APP_ENVIRONMENT means local, which has no file"
        );
    }

    #[test]
    fn empty_legacy_variables_count_as_unset() {
        let dir = temp_dir();
        let s: Sample = load_with_env(&source(&dir), env(&[("REDPANDA_BROKERS", "")])).unwrap();
        assert_eq!(s.kafka.brokers, "default:9092");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let dir = temp_dir();
        let s: Sample = load_with_env(
            &source(&dir),
            env(&[("KAFKA_SASL_PASSWORD", "hunter2-very-secret")]),
        )
        .unwrap();
        assert_eq!(
            secret_value(&s.kafka.sasl_password),
            Some("hunter2-very-secret")
        );
        let dump = format!("{s:?}");
        assert!(!dump.contains("hunter2"), "secret leaked into {dump}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_a_load_error() {
        let dir = temp_dir();
        let err = load_with_env::<Sample>(
            &source(&dir),
            env(&[("APP__KAFKA__DELIVERY_TIMEOUT_MS", "soon")]),
        )
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
        assert!(err.to_string().contains("delivery_timeout_ms"), "{err}");
    }
}
