//! The saga handlers, one module per consumed topic, and the router that decodes a record and
//! dispatches it by topic.
//!
//! Delivery guarantee: at least once (the shared loop stores an offset only after the handler
//! returned `Ok`). Every effect is idempotent under redelivery: upload keys derive from the
//! `request_id`, soft deletes remember the request that made them, moves tolerate an
//! already-moved object, removals of missing keys succeed; and outcomes published before a
//! restart or cut-over for records delivered again are not published twice ([`Announced`]).
//!
//! Failure classes, decided per error ([`storage_failure`], [`db_failure`]): dependency outages
//! (database, object store, broker, registry unreachable, timing out or failing on their side)
//! are retryable and never advance the offset, within the loop's retry budget; refusals that
//! no retry can change (access denied, a missing bucket, a presign setting out of range, a
//! constraint violation) are permanent and dead-lettered at once, so they hold up nothing
//! behind them; invalid events produce the saga's rejection event when it has one and the user
//! can be addressed, otherwise they are dead-lettered.

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

use crate::announced::Announced;
use crate::configuration::{MediaSettings, Topics};
use crate::fields::Fields;
use serde::Serialize;
use substrate::events::{EventSink, SinkError};
use substrate::media::events::{Answering, Rejected};
use substrate::media::{DbError, MediaFiles, ObjectError, ObjectStore};

/// An object-store failure as the loop should treat it: a refusal is permanent, anything else
/// retryable.
pub fn storage_failure(error: ObjectError) -> HandlerError {
    if error.is_permanent() {
        HandlerError::permanent(error)
    } else {
        HandlerError::retryable(error)
    }
}

/// A database failure as the loop should treat it: a refused statement is permanent, an outage
/// retryable.
pub fn db_failure(error: DbError) -> HandlerError {
    if error.is_permanent() {
        HandlerError::permanent(error)
    } else {
        HandlerError::retryable(error)
    }
}

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
    /// Outcomes published before this start for intents the saga consumer receives again.
    pub announced: Arc<Announced>,
}

impl Deps {
    /// Publishes an outcome event. An outage is retryable; an event that does not fit its
    /// schema is a bug in this service, so it is permanent (dead-lettered, not retried forever).
    pub async fn emit(
        &self,
        topic: &str,
        event: impl Serialize + Send,
    ) -> Result<(), HandlerError> {
        let event = serde_json::to_value(event).map_err(HandlerError::permanent)?;
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

    /// Publishes a `*.rejected` outcome (download and delete sagas share the record shape).
    pub async fn reject(
        &self,
        topic: &str,
        intent: &PathIntent<'_>,
        file_path: &str,
        reason: &str,
    ) -> Result<(), HandlerError> {
        self.emit(topic, Rejected::now(&intent.answering(file_path), reason))
            .await
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

/// The common part of download and delete intents.
#[derive(Debug)]
pub struct PathIntent<'a> {
    /// Who asks.
    pub user_id: &'a str,
    /// Correlation id of the request.
    pub request_id: &'a str,
    /// The object, or why it is unusable (answered with an `invalid_request` rejection).
    pub file_path: Result<&'a str, crate::fields::Invalid>,
}

impl<'a> PathIntent<'a> {
    /// What an outcome about `file_path` answers.
    pub fn answering(&self, file_path: &'a str) -> Answering<'a> {
        Answering {
            user_id: self.user_id,
            file_path,
            request_id: self.request_id,
        }
    }

    /// Without a user and a request id nobody can be told anything: permanent (dead-letter).
    pub fn parse(f: &'a Fields) -> Result<Self, HandlerError> {
        use crate::fields;
        Ok(Self {
            user_id: fields::required(f, "user_id").map_err(HandlerError::permanent)?,
            request_id: fields::required(f, "request_id").map_err(HandlerError::permanent)?,
            file_path: fields::required(f, "file_path")
                .and_then(|path| fields::safe_key("file_path", path).map(|()| path)),
        })
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
        self.dispatch_record(topic, fields, None).await
    }

    /// Like [`Self::dispatch`], with the record's producer timestamp (millisecond precision),
    /// which times delete retries more exactly than the whole-second `failed_at`.
    pub async fn dispatch_record(
        &self,
        topic: &str,
        fields: &Fields,
        produced_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), HandlerError> {
        let topics = &self.deps.topics;
        let deps = &self.deps;
        if topic == topics.upload_approved {
            upload_signing::handle(deps, fields).await
        } else if topic == topics.download_intent {
            download_signing::handle(deps, fields).await
        } else if topic == topics.delete_intent {
            delete::handle(deps, fields).await
        } else if topic == topics.delete_retry {
            delete_retry::handle_at(deps, fields, produced_at).await
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
        let event = decoded.to_json();
        substrate::kafka::record_event_type(&message.topic, &event);
        let Value::Object(fields) = event else {
            return Err(HandlerError::permanent("event is not a record"));
        };
        let produced_at = message
            .timestamp_ms
            .and_then(chrono::DateTime::from_timestamp_millis);
        self.dispatch_record(&message.topic, &fields, produced_at)
            .await
    }
}
