//! The at-least-once loop on the real broker: poison messages are dead-lettered with their
//! original bytes, retryable failures never advance the offset, shutdown commits what succeeded,
//! and a restart loses nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use substrate::avro::AvroCodec;
use substrate::kafka::consume::dlq_headers;
use substrate::kafka::{
    ConsumeSettings, Delivered, EventPublisher, HandlerError, InboundMessage, KafkaPublisher,
    KafkaSettings, MessageHandler, OutboundRecord, PerMessage, PublishError, StartAt, run_consumer,
};
use substrate::testing::{eventually, unique};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Stack, USER_MESSAGE};

/// How a [`Recorder`] answers a message, given its text and how often it was tried before.
type Rule = Arc<dyn Fn(&str, usize) -> Result<(), HandlerError> + Send + Sync>;

/// Decodes each message and records it; fails as its rule says.
#[derive(Clone)]
struct Recorder {
    codec: AvroCodec,
    seen: Arc<Mutex<Vec<(i64, String)>>>,
    attempts: Arc<Mutex<Vec<i64>>>,
    rule: Rule,
}

impl Recorder {
    /// Messages whose text equals `fail_retryable_on` fail as retryable.
    fn new(codec: AvroCodec, fail_retryable_on: Option<&str>) -> Self {
        let failing = fail_retryable_on.map(str::to_owned);
        Self::with_rule(
            codec,
            Arc::new(move |text, _| {
                if failing.as_deref() == Some(text) {
                    Err(HandlerError::retryable("simulated database outage"))
                } else {
                    Ok(())
                }
            }),
        )
    }

    fn with_rule(codec: AvroCodec, rule: Rule) -> Self {
        Self {
            codec,
            seen: Arc::default(),
            attempts: Arc::default(),
            rule,
        }
    }

    fn seen(&self) -> Vec<(i64, String)> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn attempts_at(&self, offset: i64) -> usize {
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|o| **o == offset)
            .count()
    }
}

impl MessageHandler for Recorder {
    async fn handle(&self, message: &InboundMessage) -> Result<(), HandlerError> {
        let tried_before = self.attempts_at(message.offset);
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message.offset);
        let payload = message.payload.as_deref().unwrap_or_default();
        let decoded = self.codec.decode(payload).await.map_err(|e| {
            if e.is_retryable() {
                HandlerError::retryable(e)
            } else {
                HandlerError::permanent(e)
            }
        })?;
        let text = decoded.to_json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (self.rule)(&text, tried_before)?;
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((message.offset, text));
        Ok(())
    }
}

async fn produce_messages(stack: &Stack, topic: &str, texts: &[&str]) {
    for text in texts {
        let bytes = stack
            .codec
            .encode_json(
                topic,
                &serde_json::json!({"user_id":"u","email":"e","message":text,"timestamp":"t"}),
            )
            .await
            .unwrap();
        stack
            .publisher
            .publish(OutboundRecord::new(topic, bytes))
            .await
            .unwrap();
    }
}

fn settings(topic: &str, group: &str, dead_letter_topic: &str) -> ConsumeSettings {
    ConsumeSettings {
        group_id: group.to_owned(),
        topics: vec![topic.to_owned()],
        dead_letter_topic: dead_letter_topic.to_owned(),
        max_batch: 16,
        retry_initial_backoff_ms: 20,
        retry_max_backoff_ms: 100,
        start_at: StartAt::Earliest,
        ..ConsumeSettings::default()
    }
}

/// Starts the loop in the background; returns its stop token and join handle.
fn spawn_loop(
    stack: &Stack,
    settings: ConsumeSettings,
    handler: Recorder,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let kafka = stack.stack.kafka();
    let dead_letters: Arc<dyn EventPublisher> = Arc::new(KafkaPublisher::new(&kafka).unwrap());
    spawn_loop_with(kafka, settings, handler, dead_letters)
}

/// [`spawn_loop`] with explicit client settings and dead-letter publisher.
fn spawn_loop_with(
    kafka: KafkaSettings,
    settings: ConsumeSettings,
    handler: Recorder,
    dead_letters: Arc<dyn EventPublisher>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        let meter = opentelemetry::global::meter("substrate-tests");
        run_consumer(
            &kafka,
            &settings,
            PerMessage(handler),
            dead_letters,
            &meter,
            token,
        )
        .await
        .unwrap_or_else(|e| panic!("consume loop: {e}"));
    });
    (shutdown, handle)
}

async fn stop(shutdown: CancellationToken, handle: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .unwrap_or_else(|_| panic!("the loop did not stop after shutdown"))
        .unwrap_or_else(|e| panic!("the loop panicked: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_message_is_dead_lettered_with_its_original_bytes_and_the_loop_moves_on() {
    // Arrange: good, poison (not Confluent-framed), good.
    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.loop.poison", USER_MESSAGE)
        .await;
    let dead_letter_topic = unique("substrate.loop.poison.dlq");
    stack.stack.create_topics(&[&dead_letter_topic]).await;
    produce_messages(&stack, &topic, &["first"]).await;
    let poison = b"\x07definitely not avro".to_vec();
    stack
        .publisher
        .publish(OutboundRecord {
            headers: vec![("origin".into(), b"test".to_vec())],
            ..OutboundRecord::new(topic.clone(), poison.clone())
        })
        .await
        .unwrap();
    produce_messages(&stack, &topic, &["third"]).await;

    // Act
    let handler = Recorder::new(stack.codec.clone(), None);
    let (shutdown, handle) = spawn_loop(
        &stack,
        settings(&topic, &unique("g-poison"), &dead_letter_topic),
        handler.clone(),
    );
    let processed = eventually(Duration::from_secs(60), || async {
        handler.seen().len() == 2
    })
    .await;
    stop(shutdown, handle).await;

    // Assert: both good messages handled, in order; the poison one in the DLQ, byte for byte.
    assert!(processed, "good messages handled: {:?}", handler.seen());
    assert_eq!(
        handler.seen(),
        vec![(0, "first".to_owned()), (2, "third".to_owned())]
    );
    let dead = stack
        .stack
        .read_topic(&dead_letter_topic, 1, Duration::from_secs(30))
        .await;
    assert_eq!(dead.len(), 1, "exactly one dead letter");
    let dead = &dead[0];
    assert_eq!(dead.payload.as_deref(), Some(poison.as_slice()));
    let header = |name: &str| {
        dead.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    assert_eq!(
        header("origin").as_deref(),
        Some("test"),
        "original headers kept"
    );
    assert_eq!(
        header(dlq_headers::SOURCE_TOPIC).as_deref(),
        Some(topic.as_str())
    );
    assert_eq!(header(dlq_headers::SOURCE_OFFSET).as_deref(), Some("1"));
    let reason = header(dlq_headers::ERROR).unwrap_or_default();
    assert!(reason.contains("magic byte"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_group_that_starts_at_latest_never_sees_the_topics_history() {
    // Arrange: history the group must not replay (what a cut-over leaves in retention).
    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.loop.latest", USER_MESSAGE)
        .await;
    let dead_letter_topic = unique("substrate.loop.latest.dlq");
    stack.stack.create_topics(&[&dead_letter_topic]).await;
    produce_messages(&stack, &topic, &["history-0", "history-1"]).await;

    // Act: a group without committed offsets, starting at latest. When it has resolved its
    // position is not observable from outside, so new records are produced until one arrives
    // (any produced before that moment may be skipped, which is what "latest" means).
    let handler = Recorder::new(stack.codec.clone(), None);
    let (shutdown, handle) = spawn_loop(
        &stack,
        ConsumeSettings {
            start_at: StartAt::Latest,
            ..settings(&topic, &unique("g-latest"), &dead_letter_topic)
        },
        handler.clone(),
    );
    let mut produced = 0;
    let arrived = eventually(Duration::from_secs(60), || {
        produced += 1;
        let text = format!("after-{produced}");
        let stack = &stack;
        let topic = &topic;
        let handler = &handler;
        async move {
            if handler.seen().is_empty() {
                produce_messages(stack, topic, &[text.as_str()]).await;
            }
            !handler.seen().is_empty()
        }
    })
    .await;
    stop(shutdown, handle).await;

    // Assert: only records produced after the group joined, never the history.
    assert!(arrived, "no record reached the new group");
    let seen = handler.seen();
    assert!(
        seen.iter()
            .all(|(offset, text)| *offset >= 2 && text.starts_with("after-")),
        "history replayed: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retryable_failure_never_advances_and_a_restart_loses_nothing() {
    // Arrange: five messages; the third fails with a retryable error for the first consumer.
    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.loop.retry", USER_MESSAGE)
        .await;
    let dead_letter_topic = unique("substrate.loop.retry.dlq");
    stack.stack.create_topics(&[&dead_letter_topic]).await;
    produce_messages(&stack, &topic, &["m0", "m1", "m2", "m3", "m4"]).await;
    let group = unique("g-retry");

    // Act 1: the first consumer handles m0, m1 and then keeps retrying m2.
    let first = Recorder::new(stack.codec.clone(), Some("m2"));
    let (shutdown, handle) = spawn_loop(
        &stack,
        settings(&topic, &group, &dead_letter_topic),
        first.clone(),
    );
    let retried = eventually(Duration::from_secs(60), || async {
        first.attempts_at(2) >= 3
    })
    .await;
    stop(shutdown, handle).await;

    // Assert 1: m2 was retried, nothing after it was touched.
    assert!(
        retried,
        "m2 retried: attempts {:?}",
        first.attempts.lock().map(|a| a.clone())
    );
    assert_eq!(
        first.seen(),
        vec![(0, "m0".to_owned()), (1, "m1".to_owned())]
    );
    assert_eq!(first.attempts_at(3), 0, "m3 must wait for m2");

    // Act 2: a restarted consumer in the same group, with the outage over.
    let second = Recorder::new(stack.codec.clone(), None);
    let (shutdown, handle) = spawn_loop(
        &stack,
        settings(&topic, &group, &dead_letter_topic),
        second.clone(),
    );
    let caught_up = eventually(Duration::from_secs(60), || async {
        second.seen().len() >= 3
    })
    .await;
    stop(shutdown, handle).await;

    // Assert 2: it resumes exactly at m2 (m0, m1 were committed on shutdown), nothing lost.
    assert!(caught_up, "second consumer saw {:?}", second.seen());
    assert_eq!(
        second.seen(),
        vec![
            (2, "m2".to_owned()),
            (3, "m3".to_owned()),
            (4, "m4".to_owned())
        ]
    );
    let dead = stack
        .stack
        .read_topic(&dead_letter_topic, 1, Duration::from_secs(2))
        .await;
    assert!(
        dead.is_empty(),
        "retryable failures are never dead-lettered"
    );
    let all: HashSet<i64> = first
        .seen()
        .into_iter()
        .chain(second.seen())
        .map(|(offset, _)| offset)
        .collect();
    assert_eq!(all, (0..5).collect::<HashSet<i64>>());
}

fn header(record: &InboundMessage, name: &str) -> Option<String> {
    record
        .header(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_keeps_failing_is_dead_lettered_once_its_retry_budget_is_spent() {
    // Arrange: m1 fails as retryable on every attempt (a bug, or a dependency that refuses
    // only this record in a way that looks temporary).
    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.loop.budget", USER_MESSAGE)
        .await;
    let dead_letter_topic = unique("substrate.loop.budget.dlq");
    stack.stack.create_topics(&[&dead_letter_topic]).await;
    produce_messages(&stack, &topic, &["m0", "m1", "m2"]).await;

    // Act
    let handler = Recorder::new(stack.codec.clone(), Some("m1"));
    let (shutdown, handle) = spawn_loop(
        &stack,
        ConsumeSettings {
            retry_budget_ms: 1_000,
            ..settings(&topic, &unique("g-budget"), &dead_letter_topic)
        },
        handler.clone(),
    );
    let moved_on = eventually(Duration::from_secs(60), || async {
        handler.seen().len() == 2
    })
    .await;
    stop(shutdown, handle).await;

    // Assert: m1 retried, then recorded in the dead-letter topic; m2 no longer held back.
    assert!(moved_on, "seen {:?}", handler.seen());
    assert_eq!(
        handler.seen(),
        vec![(0, "m0".to_owned()), (2, "m2".to_owned())]
    );
    assert!(
        handler.attempts_at(1) >= 2,
        "m1 was retried before giving up"
    );
    let dead = stack
        .stack
        .read_topic(&dead_letter_topic, 1, Duration::from_secs(30))
        .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0], dlq_headers::SOURCE_OFFSET).as_deref(),
        Some("1")
    );
    let reason = header(&dead[0], dlq_headers::ERROR).unwrap_or_default();
    assert!(
        reason.contains("retries exhausted") && reason.contains("simulated database outage"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_is_not_due_waits_without_counting_as_a_failure() {
    // Arrange: m0 asks to wait 1 s the first time it is seen (a scheduled retry), with a retry
    // budget shorter than that wait.
    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.loop.deferred", USER_MESSAGE)
        .await;
    let dead_letter_topic = unique("substrate.loop.deferred.dlq");
    stack.stack.create_topics(&[&dead_letter_topic]).await;
    produce_messages(&stack, &topic, &["m0", "m1"]).await;
    let handler = Recorder::with_rule(
        stack.codec.clone(),
        Arc::new(|text, tried_before| {
            if text == "m0" && tried_before == 0 {
                Err(HandlerError::Deferred(Duration::from_secs(1)))
            } else {
                Ok(())
            }
        }),
    );

    // Act
    let (shutdown, handle) = spawn_loop(
        &stack,
        ConsumeSettings {
            retry_budget_ms: 100,
            ..settings(&topic, &unique("g-deferred"), &dead_letter_topic)
        },
        handler.clone(),
    );
    let done = eventually(Duration::from_secs(60), || async {
        handler.seen().len() == 2
    })
    .await;
    stop(shutdown, handle).await;

    // Assert: handled after its wait, in order, and nothing dead-lettered.
    assert!(done, "seen {:?}", handler.seen());
    assert_eq!(
        handler.seen(),
        vec![(0, "m0".to_owned()), (1, "m1".to_owned())]
    );
    assert_eq!(handler.attempts_at(0), 2);
    let dead = stack
        .stack
        .read_topic(&dead_letter_topic, 1, Duration::from_secs(2))
        .await;
    assert!(dead.is_empty(), "a wait is not a failure: {dead:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backing_off_longer_than_the_poll_interval_keeps_the_member_in_its_group() {
    // Arrange: m2 fails for 15 s, well past the 6 s poll interval this member is given. A
    // member that stops polling that long is taken out of its group; when it comes back it
    // starts again from the last commit and handles m2, m3 and m4 a second time.
    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.loop.pollinterval", USER_MESSAGE)
        .await;
    let dead_letter_topic = unique("substrate.loop.pollinterval.dlq");
    stack.stack.create_topics(&[&dead_letter_topic]).await;
    produce_messages(&stack, &topic, &["m0", "m1", "m2", "m3", "m4"]).await;
    let first_failure: Arc<Mutex<Option<std::time::Instant>>> = Arc::default();
    let failing_since = first_failure.clone();
    let handler = Recorder::with_rule(
        stack.codec.clone(),
        Arc::new(move |text, _| {
            if text != "m2" {
                return Ok(());
            }
            let mut since = failing_since.lock().unwrap_or_else(|p| p.into_inner());
            let since = *since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() < Duration::from_secs(15) {
                Err(HandlerError::retryable("simulated outage"))
            } else {
                Ok(())
            }
        }),
    );
    let kafka = KafkaSettings {
        session_timeout_ms: 6_000,
        max_poll_interval_ms: 6_000,
        ..stack.stack.kafka()
    };
    let dead_letters: Arc<dyn EventPublisher> = Arc::new(KafkaPublisher::new(&kafka).unwrap());

    // Act: backoff of up to 2 s between attempts, for 15 s.
    let (shutdown, handle) = spawn_loop_with(
        kafka,
        ConsumeSettings {
            retry_max_backoff_ms: 2_000,
            ..settings(&topic, &unique("g-pollinterval"), &dead_letter_topic)
        },
        handler.clone(),
        dead_letters,
    );
    let all = eventually(Duration::from_secs(90), || async {
        handler.seen().len() >= 5
    })
    .await;
    // A member that lost its place replays from its last commit, so anything replayed comes
    // before a record produced now.
    produce_messages(&stack, &topic, &["sentinel"]).await;
    let sentinel = eventually(Duration::from_secs(60), || async {
        handler.seen().iter().any(|(_, text)| text == "sentinel")
    })
    .await;
    stop(shutdown, handle).await;

    // Assert: every message handled successfully exactly once.
    assert!(all && sentinel, "seen {:?}", handler.seen());
    let texts: Vec<String> = handler.seen().into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        texts,
        ["m0", "m1", "m2", "m3", "m4", "sentinel"],
        "replayed after eviction"
    );
}

/// A dead-letter topic that refuses any record with a value (as a broker refuses one larger
/// than the topic's limit); records what it accepted.
#[derive(Debug, Default)]
struct RefusesValues(Mutex<Vec<OutboundRecord>>);

#[async_trait::async_trait]
impl EventPublisher for RefusesValues {
    async fn publish(&self, record: OutboundRecord) -> Result<Delivered, PublishError> {
        if !record.payload.is_empty() {
            return Err(PublishError::Rejected(
                "Broker: Message size too large".into(),
            ));
        }
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
        Ok(Delivered {
            partition: 0,
            offset: 0,
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_copy_the_broker_refuses_is_recorded_without_its_value() {
    // Arrange: a poison record, and a dead-letter topic that cannot take its value.
    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.loop.dlqrefused", USER_MESSAGE)
        .await;
    stack
        .publisher
        .publish(OutboundRecord::new(topic.clone(), b"\x07not avro".to_vec()))
        .await
        .unwrap();
    produce_messages(&stack, &topic, &["after"]).await;
    let dead_letters = Arc::new(RefusesValues::default());

    // Act
    let handler = Recorder::new(stack.codec.clone(), None);
    let (shutdown, handle) = spawn_loop_with(
        stack.stack.kafka(),
        settings(&topic, &unique("g-dlqrefused"), "unused.dlq"),
        handler.clone(),
        dead_letters.clone(),
    );
    let moved_on = eventually(Duration::from_secs(60), || async {
        handler.seen().len() == 1
    })
    .await;
    stop(shutdown, handle).await;

    // Assert: the loop did not retry for ever; the record points at the original.
    assert!(moved_on, "the loop is stuck on the refused dead letter");
    let recorded = dead_letters
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert_eq!(recorded.len(), 1);
    let headers: std::collections::HashMap<&str, String> = recorded[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    assert_eq!(headers[dlq_headers::SOURCE_TOPIC], topic);
    assert_eq!(headers[dlq_headers::SOURCE_OFFSET], "0");
    assert!(
        headers[dlq_headers::VALUE_OMITTED].contains("too large"),
        "{headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_paused_when_the_member_lost_it_is_fetched_again_once_reassigned() {
    // Arrange: a member pauses its partition (as the loop does while it backs off) and then
    // loses it: here by not polling past its poll interval, in the chaos run by a broker
    // restart that ended its membership. librdkafka keeps a partition's pause flag across the
    // loss and the re-assignment, so unless the context resumes what it is given, the member
    // holds the partition and never fetches from it again.
    use rdkafka::Message as _;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use substrate::kafka::LoggingContext;

    let stack = Stack::connect();
    let (topic, _) = stack
        .topic_with_schema("substrate.loop.repause", USER_MESSAGE)
        .await;
    produce_messages(&stack, &topic, &["before"]).await;
    let kafka = KafkaSettings {
        session_timeout_ms: 6_000,
        max_poll_interval_ms: 6_000,
        ..stack.stack.kafka()
    };
    let consumer: StreamConsumer<LoggingContext> = kafka
        .consumer_config(&unique("g-repause"))
        .unwrap()
        .create_with_context(LoggingContext)
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let text_of = |payload: Option<&[u8]>| {
        let codec = stack.codec.clone();
        let payload = payload.unwrap_or_default().to_vec();
        async move {
            codec
                .decode(&payload)
                .await
                .map(|decoded| {
                    decoded.to_json()["message"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned()
                })
                .unwrap_or_default()
        }
    };
    let first = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .unwrap_or_else(|_| panic!("nothing fetched"))
        .unwrap();
    assert_eq!(text_of(first.payload()).await, "before");
    drop(first);
    let assignment = consumer.assignment().unwrap();
    consumer.pause(&assignment).unwrap();

    // Act: no poll for longer than the poll interval (the member leaves the group), then a new
    // record, then polling again (the member rejoins and is given the partition back).
    tokio::time::sleep(Duration::from_secs(9)).await;
    produce_messages(&stack, &topic, &["after"]).await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !seen.iter().any(|t| t == "after") {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => seen.push(text_of(message.payload()).await),
            Ok(Err(error)) => tracing::debug!(%error, "poll failed"),
            Err(_) => break,
        }
    }

    // Assert: fetched again (from the last commit: nothing was stored, so `before` comes first).
    assert!(
        seen.iter().any(|t| t == "after"),
        "the re-assigned partition stayed paused; fetched {seen:?}"
    );
}
