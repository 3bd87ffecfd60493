//! Outcomes already published for the intents the saga consumer will receive again.
//!
//! The consumer resumes at its group's committed offsets, and the records after them may have
//! been handled already: by this service before a crash, or, on the day of a cut-over, by the
//! Go media-service, which committed every 5 s and signed uploads under random keys. Replaying
//! such an approval would sign the upload a second time under another key (the TTL saga then
//! expires the unused one and refunds a credit that was spent); replaying such a delete would
//! find the row already deleted by a request the Go service did not record and answer
//! `not_found` after the user was told the file is gone.
//!
//! So at start the service reads the outcome topics from just before the first record it will
//! see again (a margin covers clock skew between producers) and remembers what was announced:
//! the request ids of `upload.signed`, the files of `delete.events`. The handlers skip those
//! effects. The sets hold only the replay window's outcomes, usually seconds of traffic.
//!
//! The read is bounded: it stops at the end of what the topics hold when it starts (it never
//! waits for a record, so commit markers of transactional producers cannot stall it), takes at
//! most `media.replay_timeout_ms` and keeps at most `media.replay_max_records` outcome records.
//! When it fails or hits a bound, the consume loop starts without the sets (startup.rs logs and
//! counts it): the records it receives again may then be answered a second time.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use substrate::BoxError;
use substrate::avro::AvroCodec;
use substrate::kafka::replay::{read_since, replay_window_start};
use substrate::kafka::{ConsumeSettings, InboundMessage, KafkaSettings};

use crate::configuration::{MediaSettings, Topics};

/// What the outcome topics already say about the replay window.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Announced {
    signed_requests: HashSet<String>,
    deleted_files: HashSet<(String, String)>,
}

impl Announced {
    /// An upload was already signed for this approval.
    pub fn upload_signed(&self, request_id: &str) -> bool {
        self.signed_requests.contains(request_id)
    }

    /// `FileDeleted` was already published for this file.
    pub fn file_deleted(&self, user_id: &str, file_path: &str) -> bool {
        self.deleted_files
            .contains(&(user_id.to_owned(), file_path.to_owned()))
    }

    /// Records an announced signing (tests and [`Self::recover`]).
    pub fn add_signed(&mut self, request_id: impl Into<String>) {
        self.signed_requests.insert(request_id.into());
    }

    /// Records an announced deletion (tests and [`Self::recover`]).
    pub fn add_deleted(&mut self, user_id: impl Into<String>, file_path: impl Into<String>) {
        self.deleted_files
            .insert((user_id.into(), file_path.into()));
    }

    /// How many outcomes are remembered.
    pub fn len(&self) -> usize {
        self.signed_requests.len() + self.deleted_files.len()
    }

    /// Nothing remembered (the group had nothing to replay).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the outcomes of the replay window of `consumer` (the saga group), within the
    /// bounds of `media`: `replay_margin_secs` is subtracted from the window's first producer
    /// timestamp, the reads share `replay_timeout_ms` and `replay_max_records`. An error when a
    /// bound was hit or a read failed (the caller starts without the sets).
    pub async fn recover(
        kafka: &KafkaSettings,
        consumer: &ConsumeSettings,
        topics: &Topics,
        codec: &AvroCodec,
        media: &MediaSettings,
    ) -> Result<Self, BoxError> {
        let margin = Duration::from_secs(media.replay_margin_secs);
        let deadline = Instant::now() + Duration::from_millis(media.replay_timeout_ms);
        let left = || deadline.saturating_duration_since(Instant::now());
        let watched: Vec<String> = [&topics.upload_approved, &topics.delete_intent]
            .into_iter()
            .filter(|topic| consumer.topics.contains(topic))
            .cloned()
            .collect();
        if watched.is_empty() {
            return Ok(Self::default());
        }
        let (kafka_for_start, group, start_at) =
            (kafka.clone(), consumer.group_id.clone(), consumer.start_at);
        let timeout = left();
        let start = tokio::task::spawn_blocking(move || {
            replay_window_start(&kafka_for_start, &group, &watched, start_at, timeout)
        })
        .await??;
        let mut announced = Self::default();
        let Some(start) = start else {
            return Ok(announced);
        };
        let since = start.saturating_sub(i64::try_from(margin.as_millis()).unwrap_or(i64::MAX));
        // The record bound is shared by both outcome topics.
        let mut budget = media.replay_max_records;
        for topic in [&topics.upload_signed, &topics.delete_events] {
            let (kafka, name, timeout) = (kafka.clone(), topic.clone(), left());
            let records = tokio::task::spawn_blocking(move || {
                read_since(&kafka, &name, since, timeout, budget)
            })
            .await??;
            budget -= records.len();
            for record in &records {
                match decode(codec, record).await {
                    Ok(fields) if topic == &topics.upload_signed => {
                        if let Some(id) = text(&fields, "request_id") {
                            announced.add_signed(id);
                        }
                    }
                    Ok(fields) => {
                        if let (Some(user), Some(path)) =
                            (text(&fields, "user_id"), text(&fields, "file_path"))
                        {
                            announced.add_deleted(user, path);
                        }
                    }
                    // One unreadable outcome only means its intent may be handled again.
                    Err(error) => tracing::warn!(
                        %error, topic = %record.topic, offset = record.offset,
                        "outcome record not decodable; ignored"
                    ),
                }
            }
        }
        tracing::info!(
            since_ms = since,
            signed = announced.signed_requests.len(),
            deleted = announced.deleted_files.len(),
            "outcomes of the replay window read"
        );
        Ok(announced)
    }
}

async fn decode(codec: &AvroCodec, record: &InboundMessage) -> Result<Value, BoxError> {
    let decoded = codec
        .decode(record.payload.as_deref().unwrap_or_default())
        .await?;
    Ok(decoded.to_json())
}

fn text(fields: &Value, name: &str) -> Option<String> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
