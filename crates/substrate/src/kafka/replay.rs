//! What a consume group is about to receive again, and what was already published meanwhile.
//!
//! A group resumes at its committed offsets. Records after them may have been handled already
//! (by this service before a crash, or by the Go service it replaced, which commits every few
//! seconds), and their effects may already sit in an outcome topic. A service whose effects are
//! not keyed by something it can recompute (the Go media-service drew random upload keys) reads
//! those outcomes once at start: [`replay_window_start`] finds when the records the group will
//! see again were produced, [`read_since`] returns an outcome topic's records from then on.
//!
//! Both calls block (librdkafka's metadata, offset and fetch requests); run them on a blocking
//! thread.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::{InboundMessage, KafkaSettings, StartAt, consume::detach};
use crate::BoxError;

/// The earliest producer timestamp (ms since the epoch) among the records `group_id` will be
/// handed again on `topics`: the first record after each partition's committed offset (or
/// where `start_at` puts a group without one). `None` when the group is caught up everywhere,
/// so nothing will be replayed.
pub fn replay_window_start(
    kafka: &KafkaSettings,
    group_id: &str,
    topics: &[String],
    start_at: StartAt,
    timeout: Duration,
) -> Result<Option<i64>, BoxError> {
    // A plain consumer with the group's id reads its committed offsets without joining it.
    let consumer: BaseConsumer = kafka
        .consumer_config(group_id)?
        .set("enable.auto.commit", "false")
        .create()?;
    let mut positions = TopicPartitionList::new();
    for topic in topics {
        for partition in partitions(&consumer, topic, timeout)? {
            positions.add_partition(topic, partition);
        }
    }
    if positions.count() == 0 {
        return Ok(None);
    }
    let committed = consumer.committed_offsets(positions, timeout)?;
    let mut first_replayed = TopicPartitionList::new();
    for element in committed.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        let from = match element.offset() {
            Offset::Offset(committed) => committed.max(low),
            _ if start_at == StartAt::Earliest => low,
            _ => high,
        };
        if from < high {
            first_replayed.add_partition_offset(topic, partition, Offset::Offset(from))?;
        }
    }
    if first_replayed.count() == 0 {
        return Ok(None);
    }
    // The timestamp of the first record to come again on each such partition.
    let wanted = first_replayed.count();
    consumer.assign(&first_replayed)?;
    let deadline = Instant::now() + timeout;
    let mut seen: HashMap<(String, i32), i64> = HashMap::new();
    while seen.len() < wanted {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "reading the first replayed record of {wanted} partitions timed out"
            )
            .into());
        }
        if let Some(message) = consumer.poll(left) {
            let message = detach(&message?);
            seen.entry((message.topic, message.partition))
                .or_insert(message.timestamp_ms.unwrap_or(0));
        }
    }
    Ok(seen.into_values().min())
}

/// Every record of `topic` produced at or after `since_ms` up to the topic's end as of this
/// call, in partition order. Reads with `assign` and never commits, so no group is touched.
pub fn read_since(
    kafka: &KafkaSettings,
    topic: &str,
    since_ms: i64,
    timeout: Duration,
) -> Result<Vec<InboundMessage>, BoxError> {
    let consumer: BaseConsumer = kafka
        .consumer_config("substrate-replay-reader")?
        .set("enable.auto.commit", "false")
        .create()?;
    let mut by_time = TopicPartitionList::new();
    for partition in partitions(&consumer, topic, timeout)? {
        by_time.add_partition_offset(topic, partition, Offset::Offset(since_ms))?;
    }
    if by_time.count() == 0 {
        return Ok(Vec::new());
    }
    let starts = consumer.offsets_for_times(by_time, timeout)?;
    let mut assignment = TopicPartitionList::new();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for element in starts.elements() {
        let partition = element.partition();
        // No record at or after the time: the partition has nothing to read.
        let Offset::Offset(start) = element.offset() else {
            continue;
        };
        let (_, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        if start < high {
            assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
            ends.insert(partition, high);
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    while !ends.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("reading {topic} since {since_ms} timed out").into());
        }
        let Some(message) = consumer.poll(left) else {
            continue;
        };
        let message = detach(&message?);
        let end = ends.get(&message.partition).copied();
        if end.is_some_and(|end| message.offset + 1 >= end) {
            ends.remove(&message.partition);
        }
        if end.is_some() {
            records.push(message);
        }
    }
    Ok(records)
}

/// The partition ids of `topic`; none when the topic does not exist (nothing to replay there).
fn partitions(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}
