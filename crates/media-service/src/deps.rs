//! What the saga handlers work with ([`Deps`]) and how their failures are classified for the
//! consume loop: one module beside the handlers, so that no handler imports its parent.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use substrate::events::{EventSink, SinkError};
use substrate::kafka::HandlerError;
use substrate::media::events::{Answering, Rejected};
use substrate::media::{DbError, MediaFiles, ObjectError, ObjectStore};

use crate::announced::Announced;
use crate::configuration::{MediaSettings, Topics};
use crate::domain::Fields;

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
    pub file_path: Result<&'a str, crate::domain::Invalid>,
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
        use crate::domain;
        Ok(Self {
            user_id: domain::required(f, "user_id").map_err(HandlerError::permanent)?,
            request_id: domain::required(f, "request_id").map_err(HandlerError::permanent)?,
            file_path: domain::required(f, "file_path")
                .and_then(|path| domain::safe_key("file_path", path).map(|()| path)),
        })
    }
}
