//! `kafka::replay` on the real broker: where a group's replay window starts, and reading an
//! outcome topic from a time on.

use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use substrate::kafka::replay::{ReplayError, read_since, replay_window_start};
use substrate::kafka::{EventPublisher, InboundMessage, OutboundRecord, StartAt};
use substrate::testing::unique;

use crate::helpers::Stack;

const TIMEOUT: Duration = Duration::from_secs(20);

/// A topic holding `count` raw records, read back (with the timestamps the broker keeps).
async fn topic_with(stack: &Stack, base: &str, count: usize) -> (String, Vec<InboundMessage>) {
    let topic = unique(base);
    stack.stack.create_topics(&[&topic]).await;
    for n in 0..count {
        stack
            .publisher
            .publish(OutboundRecord::new(
                &topic,
                format!("record {n}").into_bytes(),
            ))
            .await
            .unwrap();
        // distinct create times, so "from this time on" has one right answer per record
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let records = stack.stack.read_topic(&topic, count, TIMEOUT).await;
    assert_eq!(records.len(), count);
    (topic, records)
}

async fn window(stack: &Stack, group: &str, topic: &str, start_at: StartAt) -> Option<i64> {
    let (kafka, group, topics) = (
        stack.stack.kafka(),
        group.to_owned(),
        vec![topic.to_owned()],
    );
    tokio::task::spawn_blocking(move || {
        replay_window_start(&kafka, &group, &topics, start_at, TIMEOUT)
    })
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replay_window_starts_at_the_first_record_after_the_committed_offset() {
    let stack = Stack::connect();
    let (topic, records) = topic_with(&stack, "replay.input", 3).await;
    let stamp = |n: usize| records[n].timestamp_ms;

    let group = unique("replay-group");
    // no committed offset: from the beginning, or nothing at all for a group starting at latest
    assert_eq!(
        window(&stack, &group, &topic, StartAt::Earliest).await,
        stamp(0)
    );
    assert_eq!(window(&stack, &group, &topic, StartAt::Latest).await, None);
    // committed past the first record: the second comes again
    stack.stack.commit_offset(&group, &topic, 1);
    assert_eq!(
        window(&stack, &group, &topic, StartAt::Earliest).await,
        stamp(1)
    );
    // caught up: nothing comes again
    stack.stack.commit_offset(&group, &topic, 3);
    assert_eq!(
        window(&stack, &group, &topic, StartAt::Earliest).await,
        None
    );
    // a topic that does not exist replays nothing
    assert_eq!(
        window(&stack, &group, &unique("replay.missing"), StartAt::Earliest).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_since_a_time_returns_the_records_from_then_to_the_end() {
    let stack = Stack::connect();
    let (topic, records) = topic_with(&stack, "replay.outcomes", 4).await;
    let read = |since: i64| {
        let (kafka, topic) = (stack.stack.kafka(), topic.clone());
        async move {
            tokio::task::spawn_blocking(move || read_since(&kafka, &topic, since, TIMEOUT, 100))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let payloads = |messages: &[InboundMessage]| -> Vec<Vec<u8>> {
        messages
            .iter()
            .map(|m| m.payload.clone().unwrap_or_default())
            .collect()
    };
    let since = records[2]
        .timestamp_ms
        .unwrap_or_else(|| panic!("no timestamp"));
    assert_eq!(payloads(&read(since).await), payloads(&records[2..]));
    assert_eq!(payloads(&read(0).await), payloads(&records));
    let after_all = records[3].timestamp_ms.unwrap_or_default() + 1;
    assert!(read(after_all).await.is_empty());
}

/// Consumes `count` records of `topic` as a member of `group` and commits after the last one,
/// as a consume loop does (the offset after the last record handled).
async fn consume_and_commit(stack: &Stack, group: &str, topic: &str, count: usize) {
    let consumer: StreamConsumer = stack
        .stack
        .kafka()
        .consumer_config(group)
        .unwrap()
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    for n in 1..=count {
        let message = tokio::time::timeout(TIMEOUT, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{group} received fewer than {count} records"))
            .unwrap();
        if n == count {
            consumer.commit_message(&message, CommitMode::Sync).unwrap();
        }
    }
}

/// Three committed transactions of two records each: offsets 0-1, 3-4 and 6-7 hold the records,
/// 2, 5 and 8 the commit markers.
async fn transactional_topic(stack: &Stack, base: &str) -> String {
    let topic = unique(base);
    stack.stack.create_topics(&[&topic]).await;
    let batches = (0..3)
        .map(|t| {
            (0..2)
                .map(|n| format!("tx {t} record {n}").into_bytes())
                .collect()
        })
        .collect();
    stack.stack.produce_in_transactions(&topic, batches).await;
    topic
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_caught_up_on_a_transactional_topic_has_nothing_to_replay_and_is_told_at_once() {
    // Arrange: the group handled every record; its offset is the last record's + 1, which is
    // where the last commit marker sits, one short of the end.
    let stack = Stack::connect();
    let topic = transactional_topic(&stack, "replay.tx-input").await;
    let group = unique("replay-tx-group");
    consume_and_commit(&stack, &group, &topic, 6).await;
    let (committed, end) = stack.stack.committed_and_end(&group, &topic);
    assert_eq!(
        (committed, end),
        (Some(8), 9),
        "the committed offset points at the last commit marker"
    );

    // Act
    let started = Instant::now();
    let window = window(&stack, &group, &topic, StartAt::Earliest).await;

    // Assert: nothing comes again, and the read did not wait for the marker to arrive.
    assert_eq!(window, None);
    assert!(
        started.elapsed() < TIMEOUT / 4,
        "took {:?} of its {TIMEOUT:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_a_transactional_topic_stops_at_its_end_and_within_the_record_bound() {
    let stack = Stack::connect();
    let topic = transactional_topic(&stack, "replay.tx-outcomes").await;
    let read = |max_records: usize| {
        let (kafka, topic) = (stack.stack.kafka(), topic.clone());
        async move {
            tokio::task::spawn_blocking(move || read_since(&kafka, &topic, 0, TIMEOUT, max_records))
                .await
                .unwrap()
        }
    };

    // The end (9) is a commit marker: the read returns the six records without waiting for it.
    let started = Instant::now();
    let records = read(6).await.unwrap();
    assert!(
        started.elapsed() < TIMEOUT / 4,
        "took {:?} of its {TIMEOUT:?}",
        started.elapsed()
    );
    let offsets: Vec<i64> = records.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [0, 1, 3, 4, 6, 7]);
    assert_eq!(records[5].payload.as_deref(), Some(&b"tx 2 record 1"[..]));

    // One record more than it may hold: an error, never a partial answer.
    match read(5).await {
        Err(error @ ReplayError::TooManyRecords { .. }) => {
            assert_eq!(error.kind(), "too_many_records");
        }
        other => panic!("expected the record bound to stop the read, got {other:?}"),
    }
}
