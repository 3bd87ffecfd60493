//! The saga handlers, one module per consumed topic, and the router that decodes a record and
//! dispatches it by topic.
//!
//! Delivery guarantee: at least once (the shared loop stores an offset only after the handler
//! returned `Ok`). Every effect is idempotent under redelivery: upload keys derive from the
//! `request_id`, soft deletes remember the request that made them, moves tolerate an
//! already-moved object, removals of missing keys succeed. Failure classes: dependency outages
//! (database, object store, broker, registry) are retryable and never advance the offset;
//! invalid events produce the saga's rejection event when it has one and the user can be
//! addressed, otherwise they are dead-lettered.

pub mod delete;
pub mod delete_retry;
pub mod download_signing;
pub mod expired_cleanup;
pub mod upload_retry;
pub mod upload_signing;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use substrate::avro::AvroCodec;
use substrate::kafka::{HandlerError, InboundMessage, MessageHandler};
use tokio_util::sync::CancellationToken;

use crate::configuration::{MediaSettings, Topics};
use crate::edges::{EventSink, MediaFiles, ObjectStore, SinkError};
use crate::fields::Fields;

/// What handlers work with.
#[derive(Debug, Clone)]
pub struct Deps {
    /// Where outcome events go.
    pub events: Arc<dyn EventSink>,
    /// Presigning and objects.
    pub storage: Arc<dyn ObjectStore>,
    /// `media_files`.
    pub files: Arc<dyn MediaFiles>,
    /// Topic names.
    pub topics: Arc<Topics>,
    /// Expiries and retry policy.
    pub media: Arc<MediaSettings>,
    /// Cancelled on shutdown (interrupts a delete retry that is waiting for its due time).
    pub shutdown: CancellationToken,
}

impl Deps {
    /// Publishes an outcome event. An outage is retryable; an event that does not fit its
    /// schema is a bug in this service, so it is permanent (dead-lettered, not retried forever).
    pub async fn emit(&self, topic: &str, event: Value) -> Result<(), HandlerError> {
        self.events
            .send(topic, &event)
            .await
            .map_err(|error| match error {
                SinkError::Unavailable(_) | SinkError::UnknownSubject(_) => {
                    HandlerError::retryable(error)
                }
                SinkError::Schema(_) | SinkError::Rejected(_) => HandlerError::permanent(error),
            })
    }

    /// Lifetime of presigned uploads.
    pub fn upload_expiry(&self) -> Duration {
        Duration::from_secs(u64::from(self.media.upload_url_expiry_secs))
    }

    /// Lifetime of presigned downloads.
    pub fn download_expiry(&self) -> Duration {
        Duration::from_secs(u64::from(self.media.download_url_expiry_secs))
    }
}

/// Decodes a record and runs the handler of its topic.
#[derive(Debug, Clone)]
pub struct MediaRouter {
    codec: AvroCodec,
    deps: Deps,
}

impl MediaRouter {
    /// A router decoding with `codec`.
    pub fn new(codec: AvroCodec, deps: Deps) -> Self {
        Self { codec, deps }
    }

    /// Runs the handler for `topic` on an already decoded event.
    pub async fn dispatch(&self, topic: &str, fields: &Fields) -> Result<(), HandlerError> {
        let topics = &self.deps.topics;
        let deps = &self.deps;
        if topic == topics.upload_approved {
            upload_signing::handle(deps, fields).await
        } else if topic == topics.download_intent {
            download_signing::handle(deps, fields).await
        } else if topic == topics.delete_intent {
            delete::handle(deps, fields).await
        } else if topic == topics.delete_retry {
            delete_retry::handle(deps, fields).await
        } else if topic == topics.upload_retry {
            upload_retry::handle(deps, fields).await
        } else if topic == topics.expired {
            expired_cleanup::handle(deps, fields).await
        } else {
            Err(HandlerError::permanent(format!(
                "no handler for topic {topic}"
            )))
        }
    }
}

impl MessageHandler for MediaRouter {
    async fn handle(&self, message: &InboundMessage) -> Result<(), HandlerError> {
        let payload = message.payload.as_deref().unwrap_or_default();
        let decoded = self.codec.decode(payload).await.map_err(|error| {
            if error.is_retryable() {
                HandlerError::retryable(error)
            } else {
                HandlerError::permanent(error)
            }
        })?;
        let Value::Object(fields) = decoded.to_json() else {
            return Err(HandlerError::permanent("event is not a record"));
        };
        self.dispatch(&message.topic, &fields).await
    }
}
