//! The saga handlers, one module per consumed topic, and the router that decodes a record and
//! dispatches it by topic.
//!
//! Delivery guarantee: at least once (the shared loop stores an offset only after the handler
//! returned `Ok`). Every effect is idempotent under redelivery: upload keys derive from the
//! `request_id`, soft deletes remember the request that made them, moves tolerate an
//! already-moved object, removals of missing keys succeed; and outcomes published before a
//! restart or cut-over for records delivered again are not published twice ([`Announced`]).
//!
//! Failure classes, decided per error ([`crate::deps::storage_failure`],
//! [`crate::deps::db_failure`]): dependency outages
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

use serde_json::Value;
use substrate::avro::AvroCodec;
use substrate::kafka::{HandlerError, InboundMessage, MessageHandler};

use crate::deps::Deps;
use crate::domain::Fields;

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
