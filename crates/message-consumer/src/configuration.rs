//! Settings of the message-consumer (see `config/base.yaml` for every key and its environment name).
//! Beside the backbone every service has (`substrate::app::Backbone`: health listener, broker,
//! registry, the database holding `user_notifications`, telemetry), it has its consume loop.

use serde::Deserialize;
use substrate::app::{Aliases, ServiceSettings};
use substrate::config::ConfigError;
use substrate::kafka::ConsumeSettings;

/// The whole configuration of the message-consumer.
pub type Config = substrate::app::Config<Settings>;

/// The message-consumer's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Group, topics, dead-letter topic and retry backoff of the consume loop.
    pub consumer: ConsumeSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
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
        }
    }
}

impl ServiceSettings for Settings {
    const ALIASES: &'static [Aliases] = &[];

    fn validate(&self) -> Result<(), ConfigError> {
        self.consumer.validate()
    }
}
