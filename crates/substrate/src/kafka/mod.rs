//! Kafka clients: settings that build producer/consumer configs, the [`EventPublisher`] edge trait
//! with its rdkafka implementation, and the at-least-once [`consume`] loop.
//!
//! The raw librdkafka keys appear only in [`KafkaSettings::producer_config`] and
//! [`KafkaSettings::consumer_config`], each with a comment saying why it is set.

pub mod consume;
mod context;
mod publisher;
pub mod replay;

use std::time::Duration;

use rdkafka::ClientConfig;
use secrecy::SecretString;
use serde::Deserialize;

pub use consume::{
    BatchHandler, ConsumeError, ConsumeSettings, HandlerError, InboundMessage, MessageHandler,
    PerMessage, StartAt, record_event_type, run_consumer,
};
pub use context::LoggingContext;
pub use publisher::{Delivered, EventPublisher, KafkaPublisher, OutboundRecord, PublishError};

use crate::config::{ConfigError, secret_value};

/// Connection and client settings for the Kafka-compatible broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KafkaSettings {
    /// Comma-separated bootstrap servers, e.g. `redpanda-0:9092,redpanda-1:9092`.
    pub brokers: String,
    /// Empty for no authentication, or `SCRAM-SHA-256` / `SCRAM-SHA-512`.
    pub sasl_mechanism: String,
    /// SASL user name (required with a mechanism).
    pub sasl_username: String,
    /// SASL password.
    pub sasl_password: Option<SecretString>,
    /// TLS to the brokers. With a SASL mechanism the protocol is `SASL_SSL`, without one `SSL`;
    /// when false, `SASL_PLAINTEXT` or `PLAINTEXT`.
    pub tls: bool,
    /// PEM file of the CA certificates the brokers' certificates are verified against (a
    /// private CA); unset: the system trust store. Only with `tls`; the file must exist.
    pub ssl_ca_file: Option<String>,
    /// `client.id` reported to the broker (shows up in broker logs and quotas).
    pub client_id: String,
    /// Upper bound in milliseconds for a produce to be acknowledged, retries included. A produce
    /// that is not acknowledged in time fails, which the gateway turns into a 503.
    pub delivery_timeout_ms: u64,
    /// Producer compression codec: `none`, `gzip`, `lz4` or `zstd`.
    pub compression: String,
    /// Idempotent producer (no duplicates from internal retries; implies acks=all).
    pub idempotence: bool,
    /// Consumer group session timeout in milliseconds: how long the group waits for a member
    /// that stopped heartbeating (killed, partitioned) before giving its partitions to the
    /// others, so the longest a crash can hold a partition. 10 s keeps recovery well inside the
    /// platform's 60 s objective; brokers refuse values below their minimum (6 s by default).
    pub session_timeout_ms: u64,
    /// Longest time in milliseconds a consumer may go without polling before it is taken out of
    /// its group (`max.poll.interval.ms`). The consume loop keeps polling while it waits, so only
    /// a handler stuck this long in one call hits it.
    pub max_poll_interval_ms: u64,
    /// Interval in milliseconds at which stored offsets are committed in the background.
    pub auto_commit_interval_ms: u64,
    /// Longest time in milliseconds a fetch waits for data on the broker. Lower means lower
    /// latency when traffic is light (some brokers only answer a waiting fetch when it expires),
    /// at the cost of more idle fetch requests.
    pub fetch_wait_max_ms: u64,
    /// Milliseconds (fractions allowed) a producer waits to gather records into one request
    /// (`linger.ms`). Under load batching happens anyway, because records queue while a request
    /// is in flight; at a light load the wait is pure latency.
    pub linger_ms: f64,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: crate::local_stack::kafka_brokers().to_owned(),
            sasl_mechanism: String::new(),
            sasl_username: String::new(),
            sasl_password: None,
            tls: false,
            ssl_ca_file: None,
            client_id: "event-substrate".to_owned(),
            delivery_timeout_ms: 5_000,
            compression: "none".to_owned(),
            idempotence: true,
            session_timeout_ms: 10_000,
            max_poll_interval_ms: 300_000,
            auto_commit_interval_ms: 1_000,
            fetch_wait_max_ms: 50,
            linger_ms: 2.0,
        }
    }
}

/// SASL mechanisms the platform supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// SCRAM with SHA-256 (the Redpanda default).
    ScramSha256,
    /// SCRAM with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    fn as_str(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// How clients talk to the brokers (librdkafka's `security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL over an unencrypted connection.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

impl KafkaSettings {
    /// Parsed broker list (comma-separated, whitespace trimmed, empty entries dropped).
    pub fn broker_list(&self) -> Vec<String> {
        self.brokers
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The configured SASL mechanism, if any. Unknown names are an error rather than a silent
    /// fallback to plaintext (the original connected without SASL on a typo).
    pub fn sasl(&self) -> Result<Option<SaslMechanism>, ConfigError> {
        match self.sasl_mechanism.trim().to_ascii_uppercase().as_str() {
            "" => Ok(None),
            "SCRAM-SHA-256" => Ok(Some(SaslMechanism::ScramSha256)),
            "SCRAM-SHA-512" => Ok(Some(SaslMechanism::ScramSha512)),
            other => Err(ConfigError::Invalid(format!(
                "kafka.sasl_mechanism must be empty, SCRAM-SHA-256 or SCRAM-SHA-512, not {other:?}"
            ))),
        }
    }

    /// The protocol every client of these settings uses: SASL when a mechanism is set, TLS
    /// when `tls` is.
    pub fn security_protocol(&self) -> Result<SecurityProtocol, ConfigError> {
        Ok(match (self.sasl()?.is_some(), self.tls) {
            (false, false) => SecurityProtocol::Plaintext,
            (false, true) => SecurityProtocol::Ssl,
            (true, false) => SecurityProtocol::SaslPlaintext,
            (true, true) => SecurityProtocol::SaslSsl,
        })
    }

    /// The CA file, when one is configured (empty counts as unset).
    fn ca_file(&self) -> Option<&str> {
        self.ssl_ca_file
            .as_deref()
            .map(str::trim)
            .filter(|path| !path.is_empty())
    }

    /// Checks the settings hang together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.broker_list().is_empty() {
            return Err(ConfigError::Invalid("kafka.brokers is empty".into()));
        }
        if self.sasl()?.is_some()
            && (self.sasl_username.is_empty() || secret_value(&self.sasl_password).is_none())
        {
            return Err(ConfigError::Invalid(
                "kafka.sasl_mechanism is set but sasl_username or sasl_password is empty".into(),
            ));
        }
        if let Some(path) = self.ca_file() {
            // A CA for a plaintext connection is a misconfiguration, not something to ignore.
            if !self.tls {
                return Err(ConfigError::Invalid(
                    "kafka.ssl_ca_file is set but kafka.tls is false".into(),
                ));
            }
            if !std::path::Path::new(path).is_file() {
                return Err(ConfigError::Invalid(format!(
                    "kafka.ssl_ca_file {path:?} does not exist or is not a file"
                )));
            }
        }
        if !matches!(
            self.compression.as_str(),
            "none" | "gzip" | "lz4" | "zstd" | "snappy"
        ) {
            return Err(ConfigError::Invalid(format!(
                "kafka.compression {:?} is not a librdkafka codec",
                self.compression
            )));
        }
        Ok(())
    }

    /// The produce timeout as a `Duration`.
    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_millis(self.delivery_timeout_ms)
    }

    fn base_config(&self) -> Result<ClientConfig, ConfigError> {
        self.validate()?;
        let mut config = ClientConfig::new();
        // Every entry is a seed; librdkafka discovers the rest of the cluster from any of them.
        config.set("bootstrap.servers", self.broker_list().join(","));
        config.set("client.id", &self.client_id);
        // Every client built from these settings (producers, consumers, the replay readers, the
        // readiness probe, admin clients) gets the same protocol, so none can fall back to
        // plaintext or skip authentication.
        let protocol = self.security_protocol()?;
        config.set("security.protocol", protocol.as_str());
        if protocol.is_tls()
            && let Some(path) = self.ca_file()
        {
            // Brokers' certificates are verified against this CA instead of the system store.
            config.set("ssl.ca.location", path);
        }
        if let Some(mechanism) = self.sasl()? {
            config.set("sasl.mechanism", mechanism.as_str());
            config.set("sasl.username", &self.sasl_username);
            config.set(
                "sasl.password",
                secret_value(&self.sasl_password).unwrap_or_default(),
            );
        }
        Ok(config)
    }

    /// Producer config: durable (acks=all), idempotent when enabled, bounded delivery time.
    pub fn producer_config(&self) -> Result<ClientConfig, ConfigError> {
        let mut config = self.base_config()?;
        // Only a write acknowledged by all in-sync replicas counts as delivered.
        config.set("acks", "all");
        // Broker-side de-duplication of librdkafka's own retries.
        config.set("enable.idempotence", self.idempotence.to_string());
        // Bounds how long a record may sit in the queue plus retries before it fails.
        config.set("message.timeout.ms", self.delivery_timeout_ms.to_string());
        // The codec is configurable because not every Kafka-compatible broker supports each one.
        config.set("compression.type", &self.compression);
        config.set("linger.ms", self.linger_ms.to_string());
        Ok(config)
    }

    /// Consumer config for `group_id` with manual offset storing (at-least-once).
    pub fn consumer_config(&self, group_id: &str) -> Result<ClientConfig, ConfigError> {
        let mut config = self.base_config()?;
        config.set("group.id", group_id);
        // Offsets are committed in the background, but only the ones we stored explicitly after
        // the message's effect succeeded, so a crash can redeliver but never lose a message.
        config.set("enable.auto.commit", "true");
        config.set("enable.auto.offset.store", "false");
        config.set(
            "auto.commit.interval.ms",
            self.auto_commit_interval_ms.to_string(),
        );
        // A group without committed offsets starts from the beginning of the topic, as the
        // original services did; a consume loop may override it (ConsumeSettings::start_at).
        config.set("auto.offset.reset", "earliest");
        config.set("session.timeout.ms", self.session_timeout_ms.to_string());
        config.set(
            "max.poll.interval.ms",
            self.max_poll_interval_ms.to_string(),
        );
        // A third of the session, as the protocol recommends: three missed heartbeats end it.
        config.set(
            "heartbeat.interval.ms",
            (self.session_timeout_ms / 3).max(100).to_string(),
        );
        // Bounds how long a quiet partition's newest record can wait in the broker (light-traffic
        // latency).
        config.set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string());
        // librdkafka prefetches up to 64 MiB per partition by default, which made a consumer
        // draining a backlog 70 MiB resident (docs/benchmarks.md). 8 MiB is still about half a
        // second of records at the consumer's full drain rate.
        config.set("queued.max.messages.kbytes", "8192");
        // Once that buffer is full librdkafka waits this long before fetching again (1 s by
        // default), which with a small buffer cut the fetch rate to a third.
        config.set("fetch.queue.backoff.ms", "10");
        // Cooperative rebalancing lets members join without stopping everyone (and matches the
        // original Go members, so a rolling migration can share the group).
        config.set("partition.assignment.strategy", "cooperative-sticky");
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_lists_are_split_and_trimmed() {
        let settings = KafkaSettings {
            brokers: " a:9092, b:9092 ,,c:9092".into(),
            ..Default::default()
        };
        assert_eq!(settings.broker_list(), ["a:9092", "b:9092", "c:9092"]);
        let config = settings.producer_config().unwrap();
        assert_eq!(
            config.get("bootstrap.servers"),
            Some("a:9092,b:9092,c:9092")
        );
    }

    #[test]
    fn both_scram_mechanisms_configure_sasl() {
        for mechanism in ["SCRAM-SHA-256", "scram-sha-512"] {
            let settings = KafkaSettings {
                sasl_mechanism: mechanism.into(),
                sasl_username: "api-gateway".into(),
                sasl_password: Some(SecretString::from("pw")),
                ..Default::default()
            };
            let config = settings.consumer_config("g").unwrap();
            assert_eq!(config.get("security.protocol"), Some("SASL_PLAINTEXT"));
            assert_eq!(
                config.get("sasl.mechanism"),
                Some(mechanism.to_ascii_uppercase().as_str())
            );
            assert_eq!(config.get("sasl.username"), Some("api-gateway"));
        }
    }

    #[test]
    fn scram_clients_can_actually_be_created() {
        // librdkafka rejects SCRAM at client creation when it was built without OpenSSL; this
        // guards the `ssl` feature of the rdkafka dependency.
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let settings = KafkaSettings {
                sasl_mechanism: mechanism.into(),
                sasl_username: "media-service".into(),
                sasl_password: Some(SecretString::from("pw")),
                ..Default::default()
            };
            let created = KafkaPublisher::new(&settings);
            assert!(created.is_ok(), "{mechanism}: {:?}", created.err());
            let consumer: Result<rdkafka::consumer::BaseConsumer, _> =
                settings.consumer_config("g").unwrap().create();
            assert!(consumer.is_ok(), "{mechanism}: {:?}", consumer.err());
        }
    }

    #[test]
    fn unknown_mechanisms_and_missing_credentials_are_rejected() {
        let typo = KafkaSettings {
            sasl_mechanism: "SCRAM-SHA-1".into(),
            ..Default::default()
        };
        assert!(typo.producer_config().is_err());
        let no_password = KafkaSettings {
            sasl_mechanism: "SCRAM-SHA-256".into(),
            sasl_username: "u".into(),
            ..Default::default()
        };
        assert!(no_password.producer_config().is_err());
    }

    /// A PEM file holding a freshly generated CA certificate (librdkafka parses the file when a
    /// client is created, so it must be a real certificate).
    fn ca_file() -> String {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let path = std::env::temp_dir().join(format!("kafka-ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&path, params.self_signed(&key).unwrap().pem()).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn secured(sasl: bool, tls: bool, ca: Option<String>) -> KafkaSettings {
        KafkaSettings {
            sasl_mechanism: if sasl {
                "SCRAM-SHA-512".into()
            } else {
                String::new()
            },
            sasl_username: if sasl {
                "media-service".into()
            } else {
                String::new()
            },
            sasl_password: sasl.then(|| SecretString::from("pw")),
            tls,
            ssl_ca_file: ca,
            ..Default::default()
        }
    }

    #[test]
    fn producers_and_consumers_get_the_protocol_of_every_sasl_and_tls_combination() {
        let ca = ca_file();
        let cases = [
            (false, false, "PLAINTEXT"),
            (false, true, "SSL"),
            (true, false, "SASL_PLAINTEXT"),
            (true, true, "SASL_SSL"),
        ];
        for (sasl, tls, protocol) in cases {
            let settings = secured(sasl, tls, tls.then(|| ca.clone()));
            for (client, config) in [
                ("producer", settings.producer_config().unwrap()),
                ("consumer", settings.consumer_config("g").unwrap()),
            ] {
                let case = format!("{client} with sasl={sasl} tls={tls}");
                assert_eq!(config.get("security.protocol"), Some(protocol), "{case}");
                let expected_ca = tls.then_some(ca.as_str());
                assert_eq!(config.get("ssl.ca.location"), expected_ca, "{case}");
                let expected_mechanism = sasl.then_some("SCRAM-SHA-512");
                assert_eq!(config.get("sasl.mechanism"), expected_mechanism, "{case}");
                assert_eq!(
                    config.get("sasl.username"),
                    sasl.then_some("media-service"),
                    "{case}"
                );
            }
            // librdkafka accepts the combination (and, with TLS, loads the CA) at creation.
            let producer = KafkaPublisher::new(&settings);
            assert!(producer.is_ok(), "{protocol}: {:?}", producer.err());
            let consumer: Result<rdkafka::consumer::BaseConsumer, _> =
                settings.consumer_config("g").unwrap().create();
            assert!(consumer.is_ok(), "{protocol}: {:?}", consumer.err());
        }
        // TLS without a CA file verifies against the system trust store.
        let system = secured(true, true, None).producer_config().unwrap();
        assert_eq!(system.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(system.get("ssl.ca.location"), None);
    }

    #[test]
    fn a_ca_file_needs_tls_and_must_exist() {
        let without_tls = secured(true, false, Some(ca_file()));
        let error = without_tls.producer_config().unwrap_err().to_string();
        assert!(error.contains("kafka.tls"), "{error}");
        let missing = secured(false, true, Some("/nonexistent/kafka-ca.pem".into()));
        let error = missing.consumer_config("g").unwrap_err().to_string();
        assert!(error.contains("/nonexistent/kafka-ca.pem"), "{error}");
        // An empty path (an unset environment variable) counts as no CA file.
        let empty = secured(false, true, Some(String::new()));
        assert_eq!(
            empty.producer_config().unwrap().get("ssl.ca.location"),
            None
        );
    }

    #[test]
    fn consumers_store_offsets_manually() {
        let config = KafkaSettings::default().consumer_config("group-a").unwrap();
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("group.id"), Some("group-a"));
    }
}
