//! Settings of the media-service (see `config/base.yaml` for every key and its environment name).
//! Beside the backbone every service has (`substrate::app::Backbone`: the webhook and health
//! listener, broker, registry, the database holding `media_files`, telemetry), it has the
//! sections below.

use secrecy::SecretString;
use serde::Deserialize;
use substrate::app::{Aliases, ServiceSettings};
use substrate::config::ConfigError;
use substrate::kafka::{ConsumeSettings, StartAt};
use substrate::s3::{S3_ALIASES, S3Settings};

/// The whole configuration of the media-service.
pub type Config = substrate::app::Config<Settings>;

/// The media-service's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The main saga consumer (group `media-service-consumer`, the Go service's).
    pub consumer: ConsumeSettings,
    /// The delete-retry consumer: a separate group, because it waits out each retry's backoff
    /// and must not hold up the other sagas while it does.
    pub retry_consumer: ConsumeSettings,
    /// Object store.
    pub s3: S3Settings,
    /// Webhook authentication and limits.
    pub webhook: WebhookSettings,
    /// Saga behaviour.
    pub media: MediaSettings,
    /// Topic names.
    pub topics: Topics,
}

/// Webhook settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// Bearer token MinIO sends (`auth_token` of the webhook target).
    pub token: Option<SecretString>,
    /// Refuse every webhook when no token is configured (production); when false and no token
    /// is set, webhooks are accepted unauthenticated (local development only).
    pub require_token: bool,
    /// Largest accepted webhook body, in bytes.
    pub body_limit_bytes: usize,
    /// How long the synchronous `uploads/` → `files/` move may take, in milliseconds.
    pub move_timeout_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            token: None,
            require_token: true,
            body_limit_bytes: 256 * 1024,
            move_timeout_ms: 30_000,
        }
    }
}

/// Saga behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MediaSettings {
    /// Lifetime of presigned PUT URLs, in seconds.
    pub upload_url_expiry_secs: u32,
    /// Lifetime of presigned GET URLs, in seconds.
    pub download_url_expiry_secs: u32,
    /// Removal retries after the first failure before the file is dead-lettered.
    pub delete_max_retries: u32,
    /// Delay before delete retry number n (0-based) is `base × 2ⁿ`, in milliseconds.
    pub delete_retry_base_delay_ms: u64,
    /// Cap of the delete retry delay, in milliseconds.
    pub delete_retry_max_delay_ms: u64,
    /// At start, outcome topics are read from this many seconds before the first record the
    /// saga group will receive again (covers clock skew between the producers of intents and
    /// outcomes; see `announced.rs`).
    pub replay_margin_secs: u64,
    /// Longest time, in milliseconds, the start-up read of those outcomes may take per consume
    /// loop. Past it the loop starts without them (a warning and
    /// `kafka.consumer.replay.incomplete.total`), so a slow or failing read delays the loop's
    /// start by at most this much.
    pub replay_timeout_ms: u64,
    /// Most outcome records the start-up read keeps (both outcome topics together; each is a
    /// decoded record of a few hundred bytes while it is read). More means the window is not
    /// "seconds of traffic" any more: the loop starts without them, as on a timeout.
    pub replay_max_records: usize,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            upload_url_expiry_secs: 900,
            download_url_expiry_secs: 3600,
            delete_max_retries: 3,
            delete_retry_base_delay_ms: 5_000,
            delete_retry_max_delay_ms: 300_000,
            replay_margin_secs: 300,
            replay_timeout_ms: 30_000,
            replay_max_records: 50_000,
        }
    }
}

/// Topic names (the defaults are the platform's contract).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
#[allow(missing_docs)] // one field per topic; the names say it all
pub struct Topics {
    pub upload_approved: String,
    pub upload_signed: String,
    pub upload_rejected: String,
    pub download_intent: String,
    pub download_signed: String,
    pub download_rejected: String,
    pub delete_intent: String,
    pub delete_events: String,
    pub delete_rejected: String,
    pub delete_retry: String,
    pub delete_dead_letter: String,
    pub upload_retry: String,
    pub upload_received: String,
    pub file_ready: String,
    pub expired: String,
}

impl Default for Topics {
    fn default() -> Self {
        let t = str::to_owned;
        Self {
            upload_approved: t("public.media.upload.approved"),
            upload_signed: t("public.media.upload.signed"),
            upload_rejected: t("public.media.upload.rejected"),
            download_intent: t("internal.media.download.intent"),
            download_signed: t("public.media.download.signed"),
            download_rejected: t("public.media.download.rejected"),
            delete_intent: t("internal.media.delete.intent"),
            delete_events: t("public.media.delete.events"),
            delete_rejected: t("public.media.delete.rejected"),
            delete_retry: t("internal.media.delete.retry"),
            delete_dead_letter: t("internal.media.delete.dead-letter"),
            upload_retry: t("internal.media.upload.retry"),
            upload_received: t("internal.media.upload.received"),
            file_ready: t("internal.media.file.ready"),
            expired: t("public.media.expired.events"),
        }
    }
}

/// Where permanently failing records of topics without a rejection event go.
pub const DEAD_LETTER_TOPIC: &str = "internal.media.consumer.dead-letter";

impl Default for Settings {
    fn default() -> Self {
        let topics = Topics::default();
        Self {
            consumer: ConsumeSettings {
                // the Go service's group: a cut-over continues from its committed offsets
                group_id: "media-service-consumer".to_owned(),
                topics: vec![
                    topics.upload_approved.clone(),
                    topics.download_intent.clone(),
                    topics.delete_intent.clone(),
                    topics.upload_retry.clone(),
                    topics.expired.clone(),
                ],
                dead_letter_topic: DEAD_LETTER_TOPIC.to_owned(),
                max_batch: 16,
                ..ConsumeSettings::default()
            },
            retry_consumer: ConsumeSettings {
                group_id: "media-service-delete-retry".to_owned(),
                topics: vec![topics.delete_retry.clone()],
                dead_letter_topic: DEAD_LETTER_TOPIC.to_owned(),
                max_batch: 1,
                // A group the Go service did not have: on its first start it must not replay the
                // retry topic's history (retries the Go service already ran). docs/cutover.md
                // says how to hand over retries still in flight.
                start_at: StartAt::Latest,
                ..ConsumeSettings::default()
            },
            s3: S3Settings::default(),
            webhook: WebhookSettings::default(),
            media: MediaSettings::default(),
            topics,
        }
    }
}

/// Legacy variable names of the original media-service.
const ALIASES: &[(&str, &str)] = &[
    ("WEBHOOK_PORT", "http.port"),
    ("UPLOAD_URL_EXPIRY", "media.upload_url_expiry_secs"),
    ("DOWNLOAD_URL_EXPIRY", "media.download_url_expiry_secs"),
    ("MEDIA_WEBHOOK_TOKEN", "webhook.token"),
];

impl ServiceSettings for Settings {
    const ALIASES: &'static [Aliases] = &[S3_ALIASES, ALIASES];

    fn validate(&self) -> Result<(), ConfigError> {
        self.consumer.validate()?;
        self.retry_consumer.validate()?;
        if self.retry_consumer.group_id == self.consumer.group_id {
            return Err(ConfigError::Invalid(
                "retry_consumer.group_id must differ from consumer.group_id".into(),
            ));
        }
        Ok(())
    }
}
