//! Consumes `public.user.message.events` into `user_notifications`.
//!
//! Delivery guarantee: at least once from the broker, exactly once in the table. Each batch of
//! already-fetched records is decoded, validated and inserted with one statement; the insert
//! skips records whose event key ([`event_key`]) is already present, so redelivery after a crash
//! or rebalance, a second group reading the topic, or a mirrored or recreated topic never
//! duplicates (nor silently drops) a row. Offsets are stored by the shared loop only after
//! the statement committed.
//!
//! Failures: undecodable or invalid records are permanent (dead-lettered with their original
//! bytes); an unreachable database or registry is retryable (the loop backs off and retries the
//! same records, never skipping them). Records are written in fetch order within a partition.

use serde_json::Value;
use sqlx::PgPool;
use substrate::avro::AvroCodec;
use substrate::kafka::{BatchHandler, HandlerError, InboundMessage};
use tracing::Instrument;

use crate::domain::Notification;
use crate::store::{StoreError, insert_batch};

/// The idempotency key of a message event: its producer-given identity (`ce_id`, set by the
/// gateway on every event) when it has one. A record without one (from a producer that sets no
/// identity, such as the Go gateway during a cut-over) is identified by its content, a digest of
/// the exact value bytes, which carry the sender, the gateway's timestamp and the text: the same
/// event read twice gives the same key, two different events never do. The record's position
/// (`topic:partition:offset`) is not an identity: a recreated topic starts its offsets again and
/// new events would collide with old rows and be dropped.
pub fn event_key(message: &InboundMessage, payload: &[u8]) -> String {
    match message.event_id() {
        Some(id) => format!("user.message:{id}"),
        None => format!(
            "user.message:content:{}",
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, payload)
        ),
    }
}

/// The batch handler.
#[derive(Debug, Clone)]
pub struct NotificationWriter {
    codec: AvroCodec,
    pool: PgPool,
}

/// Decoded records of one insert statement, with their spans.
struct Chunk {
    prepared: Vec<Prepared>,
    spans: Vec<tracing::Span>,
}

enum Prepared {
    Row(Notification),
    Invalid(HandlerError),
    /// The registry is unreachable: stop here and retry from this record.
    Retry(HandlerError),
}

impl NotificationWriter {
    /// A writer decoding with `codec` and inserting into `pool`.
    pub fn new(codec: AvroCodec, pool: PgPool) -> Self {
        Self { codec, pool }
    }

    async fn prepare(&self, message: &InboundMessage) -> Prepared {
        let Some(payload) = message.payload.as_deref() else {
            return Prepared::Invalid(HandlerError::permanent("record has no value"));
        };
        let decoded = match self.codec.decode(payload).await {
            Ok(decoded) => decoded,
            Err(error) if error.is_retryable() => {
                return Prepared::Retry(HandlerError::retryable(error));
            }
            Err(error) => return Prepared::Invalid(HandlerError::permanent(error)),
        };
        let event: Value = decoded.to_json();
        substrate::kafka::record_event_type(&message.topic, &event);
        match Notification::from_event(&event, event_key(message, payload)) {
            Ok(row) => Prepared::Row(row),
            Err(error) => Prepared::Invalid(HandlerError::permanent(error)),
        }
    }

    /// Inserts rows one by one to find which one the database rejects (rare: input is
    /// validated first), so one bad row cannot hold back its batch forever.
    async fn isolate(
        &self,
        rows: &[(usize, &Notification)],
        results: &mut [Option<Result<(), HandlerError>>],
    ) {
        for (index, row) in rows {
            results[*index] = Some(match insert_batch(&self.pool, &[row]).await {
                Ok(_) => Ok(()),
                Err(StoreError::Transient(error)) => Err(HandlerError::retryable(error)),
                Err(StoreError::Rejected(error)) => Err(HandlerError::permanent(error)),
            });
            if matches!(results[*index], Some(Err(HandlerError::Retryable(_)))) {
                return;
            }
        }
    }
}

impl NotificationWriter {
    /// Decodes and validates `messages`, stopping after the first one the registry could not
    /// serve (retried from there). Each record's span ([`InboundMessage::span`]) comes back with
    /// it, to stay open until the record's row is written.
    async fn prepare_chunk(&self, messages: &[InboundMessage]) -> Chunk {
        let mut chunk = Chunk {
            prepared: Vec::with_capacity(messages.len()),
            spans: Vec::with_capacity(messages.len()),
        };
        for message in messages {
            let span = message.span();
            let item = self.prepare(message).instrument(span.clone()).await;
            let stop = matches!(item, Prepared::Retry(_));
            chunk.prepared.push(item);
            chunk.spans.push(span);
            if stop {
                break;
            }
        }
        chunk
    }

    /// Inserts the valid rows of `prepared` in one statement; one result per record, in order,
    /// ending at the first record whose effect is not known to be done.
    async fn write_chunk(&self, chunk: Chunk) -> Vec<Result<(), HandlerError>> {
        let Chunk {
            mut prepared,
            spans,
        } = chunk;
        let mut results: Vec<Option<Result<(), HandlerError>>> = Vec::with_capacity(prepared.len());
        let mut rows = Vec::new();
        for (index, item) in prepared.iter_mut().enumerate() {
            match item {
                Prepared::Row(row) => {
                    rows.push((index, &*row));
                    results.push(None);
                }
                Prepared::Invalid(error) | Prepared::Retry(error) => {
                    let taken = std::mem::replace(error, HandlerError::permanent("taken"));
                    results.push(Some(Err(taken)));
                }
            }
        }
        let only_rows: Vec<&Notification> = rows.iter().map(|(_, row)| *row).collect();
        // One statement for many records: its span is a child of the first record's (so with
        // one record in flight, the usual case at low traffic, HTTP request, record and row are
        // one trace) and linked to the others' (OpenTelemetry's way for batches).
        let insert = tracing::info_span!(
            parent: spans.first().and_then(tracing::Span::id),
            "user_notifications.insert",
            "otel.kind" = "client",
            "db.system.name" = "postgresql",
            "db.operation.batch.size" = only_rows.len(),
        );
        for span in spans.iter().skip(1) {
            substrate::telemetry::add_link(&insert, span);
        }
        match insert_batch(&self.pool, &only_rows)
            .instrument(insert)
            .await
        {
            Ok(inserted) => {
                tracing::debug!(rows = only_rows.len(), inserted, "batch written");
                for (index, _) in &rows {
                    results[*index] = Some(Ok(()));
                }
            }
            Err(StoreError::Transient(error)) => {
                // Nothing was written; the first row (and everything after it) is retried.
                if let Some((first, _)) = rows.first() {
                    results[*first] = Some(Err(HandlerError::retryable(error)));
                }
            }
            Err(StoreError::Rejected(error)) => {
                tracing::warn!(%error, "batch rejected; inserting row by row to isolate the bad record");
                self.isolate(&rows, &mut results).await;
            }
        }
        // The loop stops at the first retryable result or the first record without a result.
        results.into_iter().map_while(|result| result).collect()
    }
}

/// Records per insert statement. A fetched batch is written in chunks of this size, one after
/// the other (fetch order is kept), and the next chunk is decoded while the database writes the
/// previous one. Decoding and writing one after the other drained 45–49 k rows/s; overlapped,
/// with batches of 2 048, 54–56 k (docs/benchmarks.md).
const WRITE_CHUNK: usize = 512;

impl BatchHandler for NotificationWriter {
    async fn handle_batch(&self, batch: &[InboundMessage]) -> Vec<Result<(), HandlerError>> {
        let mut results = Vec::with_capacity(batch.len());
        let mut chunks = batch.chunks(WRITE_CHUNK);
        let Some(first) = chunks.next() else {
            return results;
        };
        let mut pending = self.prepare_chunk(first).await;
        loop {
            let prepared = pending.prepared.len();
            let stopped = matches!(pending.prepared.last(), Some(Prepared::Retry(_)));
            let next = if stopped { None } else { chunks.next() };
            let (written, prepared_next) = tokio::join!(self.write_chunk(pending), async {
                match next {
                    Some(chunk) => Some(self.prepare_chunk(chunk).await),
                    None => None,
                }
            });
            // Go on only when every record of this chunk is done; decoding the next chunk had
            // no effect, so otherwise it is simply dropped and redone on the retry.
            let whole = written.len() == prepared
                && !written
                    .iter()
                    .any(|r| matches!(r, Err(HandlerError::Retryable(_))));
            results.extend(written);
            match prepared_next {
                Some(next) if whole => pending = next,
                _ => return results,
            }
        }
    }
}
