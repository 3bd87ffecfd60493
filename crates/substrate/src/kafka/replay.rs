//! What a consume group is about to receive again, and what was already published meanwhile.
//!
//! A group resumes at its committed offsets. Records after them may have been handled already
//! (by this service before a crash, or by the Go service it replaced, which commits every few
//! seconds), and their effects may already sit in an outcome topic. A service whose effects are
//! not keyed by something it can recompute (the Go media-service drew random upload keys) reads
//! those outcomes once at start: [`replay_window_start`] finds when the records the group will
//! see again were produced, [`read_since`] returns an outcome topic's records from then on.
//!
//! Both reads stop at the end of what exists when they start, and never wait for a record that
//! may not come: on a topic written in transactions the last offsets before the end are commit
//! markers, which no consumer ever receives, so "the record after the committed offset" or "the
//! record just before the high watermark" can be a marker. A partition is done when a record at
//! or past its end arrives, when librdkafka reports the partition's end (`enable.partition.eof`,
//! reached after markers and aborted records are skipped), or when its position has reached the
//! end. Both are bounded by a deadline, and [`read_since`] by a record count; past either they
//! fail ([`ReplayError`]) instead of returning a partial answer.
//!
//! Both calls block (librdkafka's metadata, offset and fetch requests); run them on a blocking
//! thread.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::{InboundMessage, KafkaSettings, StartAt, consume::detach};
use crate::config::ConfigError;

/// Longest single wait for a record, so partition positions are re-checked regularly.
const POLL_SLICE: Duration = Duration::from_millis(200);

/// Why a replay read gave up.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The deadline passed before every partition was read to its end.
    #[error("replay read timed out: {0}")]
    TimedOut(String),
    /// More records than the read may hold.
    #[error("replay read of {topic} stopped: more than {limit} records")]
    TooManyRecords {
        /// The topic being read.
        topic: String,
        /// The bound that was hit.
        limit: usize,
    },
    /// The client could not be configured.
    #[error("replay reader not configured: {0}")]
    Config(#[from] ConfigError),
    /// The broker refused or did not answer a request.
    #[error("replay read failed: {0}")]
    Kafka(#[from] KafkaError),
}

impl ReplayError {
    /// A short label for metrics and logs: `timeout`, `too_many_records` or `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TimedOut(_) => "timeout",
            Self::TooManyRecords { .. } => "too_many_records",
            Self::Config(_) | Self::Kafka(_) => "error",
        }
    }
}

/// The time left until a read's deadline; an error once it has passed.
#[derive(Debug, Clone, Copy)]
struct Deadline(Instant);

impl Deadline {
    fn left(self, what: &str) -> Result<Duration, ReplayError> {
        let left = self.0.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(ReplayError::TimedOut(what.to_owned()))
        } else {
            Ok(left)
        }
    }
}

/// The earliest producer timestamp (ms since the epoch) among the records `group_id` will be
/// handed again on `topics`: the first record after each partition's committed offset (or
/// where `start_at` puts a group without one). `None` when the group will not be handed any
/// record again (caught up everywhere, or only commit markers or aborted records follow its
/// offsets). The whole call takes at most about `timeout`.
pub fn replay_window_start(
    kafka: &KafkaSettings,
    group_id: &str,
    topics: &[String],
    start_at: StartAt,
    timeout: Duration,
) -> Result<Option<i64>, ReplayError> {
    let deadline = Deadline(Instant::now() + timeout);
    // A plain consumer with the group's id reads its committed offsets without joining it.
    let consumer = reader(kafka, group_id)?;
    let mut positions = TopicPartitionList::new();
    for topic in topics {
        for partition in partitions(&consumer, topic, deadline)? {
            positions.add_partition(topic, partition);
        }
    }
    if positions.count() == 0 {
        return Ok(None);
    }
    let committed =
        consumer.committed_offsets(positions, deadline.left("reading committed offsets")?)?;
    let mut ranges: HashMap<String, Vec<Range>> = HashMap::new();
    for element in committed.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let (low, high) =
            consumer.fetch_watermarks(topic, partition, deadline.left("reading watermarks")?)?;
        let from = match element.offset() {
            Offset::Offset(committed) => committed.max(low),
            _ if start_at == StartAt::Earliest => low,
            _ => high,
        };
        if from < high {
            ranges.entry(topic.to_owned()).or_default().push(Range {
                partition,
                from,
                end: high,
            });
        }
    }
    // One reader per topic: librdkafka reports a partition's end by partition number only.
    let mut earliest: Option<i64> = None;
    for (topic, ranges) in ranges {
        let reader = reader(kafka, group_id)?;
        let mut first: HashMap<i32, i64> = HashMap::new();
        read_ranges(&reader, &topic, &ranges, deadline, |message| {
            // Any record from `from` on comes again, so the first one (even one produced after
            // `end` was read) bounds the window; the partition needs nothing more.
            first
                .entry(message.partition)
                .or_insert(message.timestamp_ms.unwrap_or(0));
            Ok(Next::PartitionDone)
        })?;
        earliest = first.into_values().chain(earliest).min();
    }
    Ok(earliest)
}

/// Every record of `topic` produced at or after `since_ms` up to the topic's end as of this
/// call, in partition order. Reads with `assign` and never commits, so no group is touched.
/// Fails when the call takes longer than about `timeout` or the records are more than
/// `max_records`.
pub fn read_since(
    kafka: &KafkaSettings,
    topic: &str,
    since_ms: i64,
    timeout: Duration,
    max_records: usize,
) -> Result<Vec<InboundMessage>, ReplayError> {
    let deadline = Deadline(Instant::now() + timeout);
    let consumer = reader(kafka, "substrate-replay-reader")?;
    let mut by_time = TopicPartitionList::new();
    for partition in partitions(&consumer, topic, deadline)? {
        by_time.add_partition_offset(topic, partition, Offset::Offset(since_ms))?;
    }
    if by_time.count() == 0 {
        return Ok(Vec::new());
    }
    let starts = consumer.offsets_for_times(by_time, deadline.left("finding offsets by time")?)?;
    let mut ranges = Vec::new();
    for element in starts.elements() {
        let partition = element.partition();
        // No record at or after the time: the partition has nothing to read.
        let Offset::Offset(from) = element.offset() else {
            continue;
        };
        let (_, high) =
            consumer.fetch_watermarks(topic, partition, deadline.left("reading watermarks")?)?;
        if from < high {
            ranges.push(Range {
                partition,
                from,
                end: high,
            });
        }
    }
    let mut records = Vec::new();
    read_ranges(&consumer, topic, &ranges, deadline, |message| {
        if records.len() >= max_records {
            return Err(ReplayError::TooManyRecords {
                topic: topic.to_owned(),
                limit: max_records,
            });
        }
        records.push(message);
        Ok(Next::More)
    })?;
    Ok(records)
}

/// Offsets `from..end` of one partition.
#[derive(Debug, Clone, Copy)]
struct Range {
    partition: i32,
    from: i64,
    end: i64,
}

/// What [`read_ranges`] does after a record.
enum Next {
    /// Keep reading the partition up to its end.
    More,
    /// The partition is done.
    PartitionDone,
}

/// A consumer for `assign`-only reads: never commits, reports partition ends, and sees only
/// committed transactions (the records a group will be handed).
fn reader(kafka: &KafkaSettings, group_id: &str) -> Result<BaseConsumer, ReplayError> {
    Ok(kafka
        .consumer_config(group_id)?
        .set("enable.auto.commit", "false")
        // A partition's end is reported as an event, also when only markers lead up to it.
        .set("enable.partition.eof", "true")
        // Records of open or aborted transactions are never handed to a group reading
        // committed data; the end of what it will see is the last stable offset.
        .set("isolation.level", "read_committed")
        .create()?)
}

/// Reads each range of `topic` from its `from` until the partition is done: a record at or past
/// `end - 1` arrived (records past `end` are not handed to `on_record`), librdkafka reported the
/// partition's end, its position reached `end`, or `on_record` said so.
fn read_ranges(
    consumer: &BaseConsumer,
    topic: &str,
    ranges: &[Range],
    deadline: Deadline,
    mut on_record: impl FnMut(InboundMessage) -> Result<Next, ReplayError>,
) -> Result<(), ReplayError> {
    let mut pending: HashMap<i32, i64> = ranges.iter().map(|r| (r.partition, r.end)).collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut assignment = TopicPartitionList::new();
    for range in ranges {
        assignment.add_partition_offset(topic, range.partition, Offset::Offset(range.from))?;
    }
    consumer.assign(&assignment)?;
    let result = loop {
        if pending.is_empty() {
            break Ok(());
        }
        let left = match deadline.left(&format!(
            "{topic}: partitions {:?} not read to their end",
            pending.keys().collect::<Vec<_>>()
        )) {
            Ok(left) => left,
            Err(error) => break Err(error),
        };
        match consumer.poll(left.min(POLL_SLICE)) {
            Some(Ok(message)) => {
                let message = detach(&message);
                let Some(&end) = pending.get(&message.partition) else {
                    continue;
                };
                if message.offset >= end {
                    pending.remove(&message.partition);
                    continue;
                }
                let last = message.offset + 1 >= end;
                let partition = message.partition;
                match on_record(message) {
                    Ok(Next::PartitionDone) => {
                        pending.remove(&partition);
                    }
                    Ok(Next::More) if last => {
                        pending.remove(&partition);
                    }
                    Ok(Next::More) => {}
                    Err(error) => break Err(error),
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                pending.remove(&partition);
            }
            Some(Err(error)) => break Err(error.into()),
            None => {}
        }
        // Markers and aborted records move the position without producing a record.
        if let Ok(positions) = consumer.position() {
            for element in positions.elements_for_topic(topic) {
                if let Offset::Offset(position) = element.offset()
                    && pending
                        .get(&element.partition())
                        .is_some_and(|&end| position >= end)
                {
                    pending.remove(&element.partition());
                }
            }
        }
    };
    // Stop fetching; the consumer is dropped by the caller.
    let _ = consumer.unassign();
    result
}

/// The partition ids of `topic`; none when the topic does not exist (nothing to replay there).
fn partitions(
    consumer: &BaseConsumer,
    topic: &str,
    deadline: Deadline,
) -> Result<Vec<i32>, ReplayError> {
    let metadata = consumer.fetch_metadata(Some(topic), deadline.left("reading metadata")?)?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}
