//! `kafka::replay` on the real broker: where a group's replay window starts, and reading an
//! outcome topic from a time on.

use std::time::Duration;

use substrate::kafka::replay::{read_since, replay_window_start};
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
            tokio::task::spawn_blocking(move || read_since(&kafka, &topic, since, TIMEOUT))
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
