use std::sync::Arc;
use std::time::Duration;
use substrate::app::Service;

use message_consumer::configuration::{Config, Settings};
use message_consumer::startup::Application;
use serde_json::{Value, json};
use substrate::avro::{AvroCodec, SchemaRegistry};
use substrate::events::EVENT_ID_HEADER;
use substrate::kafka::consume::dlq_headers;
use substrate::kafka::{EventPublisher, KafkaPublisher, OutboundRecord};
use substrate::testing::{TestDatabase, TestStack, eventually, unique};
use tokio_util::sync::CancellationToken;

const SCHEMA: &str = include_str!("../../../../avro/public/user/message.events.avsc");

struct Fixture {
    stack: TestStack,
    db: TestDatabase,
    topic: String,
    dead_letters: String,
    codec: AvroCodec,
    publisher: KafkaPublisher,
}

struct Running {
    port: u16,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .unwrap_or_else(|_| panic!("the consumer did not stop after shutdown"))
            .unwrap();
        assert!(result.is_ok(), "clean shutdown: {result:?}");
    }

    async fn readyz(&self) -> u16 {
        reqwest::get(format!("http://127.0.0.1:{}/readyz", self.port))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

impl Fixture {
    async fn new() -> Self {
        let stack = TestStack::from_env();
        let topic = unique("mc.public.user.message.events");
        let dead_letters = unique("mc.internal.user.message.dead-letter");
        stack.create_topics(&[&topic, &dead_letters]).await;
        let registry = Arc::new(SchemaRegistry::new(&stack.registry).unwrap());
        registry.register_for_topic(&topic, SCHEMA).await.unwrap();
        let db = TestDatabase::create(&stack, "consumer").await;
        let publisher = KafkaPublisher::new(&stack.kafka()).unwrap();
        Self {
            codec: AvroCodec::new(registry),
            stack,
            db,
            topic,
            dead_letters,
            publisher,
        }
    }

    fn config(&self, group: &str) -> Config {
        let mut backbone = self.stack.backbone(Some(&self.db.url));
        backbone.postgres.acquire_timeout_ms = 500;
        let mut settings = Settings::default();
        settings.consumer.group_id = group.to_owned();
        settings.consumer.topics = vec![self.topic.clone()];
        settings.consumer.dead_letter_topic = self.dead_letters.clone();
        settings.consumer.retry_initial_backoff_ms = 50;
        settings.consumer.retry_max_backoff_ms = 500;
        Config {
            backbone,
            service: settings,
        }
    }

    async fn start(&self, group: &str) -> Running {
        let app = Application::build(self.config(group))
            .await
            .unwrap_or_else(|e| panic!("build: {e}"));
        let port = app.port();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            app.run_until_stopped(token)
                .await
                .map_err(|e| e.to_string())
        });
        Running {
            port,
            shutdown,
            handle,
        }
    }

    async fn produce(&self, event: Value) -> Vec<u8> {
        let bytes = self.codec.encode_json(&self.topic, &event).await.unwrap();
        self.produce_raw(bytes.clone()).await;
        bytes
    }

    async fn produce_raw(&self, bytes: Vec<u8>) {
        self.publisher
            .publish(OutboundRecord::new(self.topic.clone(), bytes))
            .await
            .unwrap();
    }

    /// Produces `bytes` carrying the event identity `event_id` (the `ce_id` header the gateway
    /// sets on every event).
    async fn produce_identified(&self, bytes: Vec<u8>, event_id: &str) {
        self.publisher
            .publish(OutboundRecord {
                headers: vec![(EVENT_ID_HEADER.to_owned(), event_id.as_bytes().to_vec())],
                ..OutboundRecord::new(self.topic.clone(), bytes)
            })
            .await
            .unwrap();
    }

    /// Starts the built binary (as deployed: production consumer settings) in the test's group,
    /// configured through a config directory of its own.
    fn spawn_binary(&self, group: &str, dir: &std::path::Path) -> std::process::Child {
        let config = json!({
            "http": {"host": "127.0.0.1", "port": 0},
            "consumer": {
                "group_id": group,
                "topics": [self.topic],
                "dead_letter_topic": self.dead_letters,
            },
            "kafka": {"brokers": self.stack.kafka.brokers},
            "registry": {"url": self.stack.registry.url},
        });
        std::fs::write(dir.join("base.yaml"), config.to_string()).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_message-consumer"))
            .env("APP_CONFIG_DIR", dir)
            .env("APP__POSTGRES__URL", &self.db.url)
            .env("APP__TELEMETRY__LOG_FORMAT", "json")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn message-consumer: {e}"))
    }

    async fn rows(&self) -> Vec<(String, String, String, String, String, Option<String>)> {
        sqlx::query_as(
            "select user_id, event_type, payload, event_time, visibility, recipient_id
             from public.user_notifications order by id",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    async fn wait_rows(&self, count: usize) -> bool {
        eventually(Duration::from_secs(60), || async {
            self.rows().await.len() >= count
        })
        .await
    }

    /// Messages visible to `user` through RLS, as the frontend (role authenticated) sees them.
    async fn visible_to(&self, user: &str) -> Vec<String> {
        let mut tx = self.db.pool.begin().await.unwrap();
        sqlx::query("select set_config('request.jwt.claims', $1, true)")
            .bind(json!({"sub": user, "role": "authenticated"}).to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("set local role authenticated")
            .execute(&mut *tx)
            .await
            .unwrap();
        let rows: Vec<(String,)> =
            sqlx::query_as("select payload from public.user_notifications order by id")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        rows.into_iter()
            .map(|(payload,)| {
                serde_json::from_str::<Value>(&payload).unwrap_or_default()["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}

fn message(user: &str, text: &str, visibility: &str, recipient: Option<&str>) -> Value {
    json!({"user_id": user, "email": format!("{user}@example.com"), "message": text,
           "timestamp": "2026-02-25T10:00:00.123Z", "visibility": visibility, "recipient_id": recipient})
}

#[tokio::test(flavor = "multi_thread")]
async fn broadcast_and_direct_messages_become_rows_visible_to_exactly_the_right_users() {
    // Arrange
    let f = Fixture::new().await;
    let (alice, bob, carol) = (
        "a1111111-0000-0000-0000-000000000001",
        "b2222222-0000-0000-0000-000000000002",
        "c3333333-0000-0000-0000-000000000003",
    );
    f.produce(message(alice, "hello all <3", "broadcast", None))
        .await;
    f.produce(message(alice, "psst bob", "direct", Some(bob)))
        .await;

    // Act
    let running = f.start(&unique("g-rls")).await;
    let written = f.wait_rows(2).await;
    running.stop().await;

    // Assert: rows exactly as the original wrote them, and RLS exposes them correctly.
    assert!(written, "rows: {:?}", f.rows().await);
    let rows = f.rows().await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, alice);
    assert_eq!(rows[0].1, "user.message");
    assert_eq!(
        rows[0].2,
        format!(r#"{{"email":"{alice}@example.com","message":"hello all \u003c3"}}"#)
    );
    assert_eq!(rows[0].3, "2026-02-25T10:00:00.123Z");
    assert_eq!(
        (rows[0].4.as_str(), rows[0].5.as_deref()),
        ("broadcast", None)
    );
    assert_eq!(
        (rows[1].4.as_str(), rows[1].5.as_deref()),
        ("direct", Some(bob))
    );
    assert_eq!(
        f.visible_to(alice).await,
        ["hello all <3", "psst bob"],
        "the sender sees both"
    );
    assert_eq!(
        f.visible_to(bob).await,
        ["hello all <3", "psst bob"],
        "the recipient sees the direct message"
    );
    assert_eq!(
        f.visible_to(carol).await,
        ["hello all <3"],
        "others see only the broadcast"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_consumed_twice_create_each_row_once() {
    let f = Fixture::new().await;
    for n in 0..5 {
        f.produce(message("u1", &format!("m{n}"), "broadcast", None))
            .await;
    }
    let first = f.start(&unique("g-first")).await;
    assert!(f.wait_rows(5).await);
    first.stop().await;

    // A second group reads the whole topic again (a full redelivery); a sentinel produced after
    // it started proves it went past every earlier record.
    let second = f.start(&unique("g-second")).await;
    f.produce(message("u1", "sentinel", "broadcast", None))
        .await;
    assert!(f.wait_rows(6).await);
    second.stop().await;

    let texts: Vec<String> = f.rows().await.into_iter().map(|r| r.2).collect();
    assert_eq!(texts.len(), 6, "{texts:?}");
    for n in 0..5 {
        let needle = format!("\"message\":\"m{n}\"");
        assert_eq!(
            texts.iter().filter(|t| t.contains(&needle)).count(),
            1,
            "m{n} exactly once"
        );
    }
}

/// A row exactly as the Go service wrote it: no conflict clause, no key, the payload JSON with
/// `<`, `>` and `&` escaped.
async fn insert_as_the_go_service(f: &Fixture, user: &str, text: &str) {
    let escaped = text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    sqlx::query(
        "insert into public.user_notifications
             (user_id, event_type, payload, event_time, visibility, recipient_id)
         values ($1, 'user.message', $2, '2026-02-25T10:00:00.123Z', 'broadcast', null)",
    )
    .bind(user)
    .bind(format!(
        "{{\"email\":\"{user}@example.com\",\"message\":\"{escaped}\"}}"
    ))
    .execute(&f.db.pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_the_go_service_wrote_before_the_cut_over_are_not_written_again() {
    // Arrange: four records in retention; the Go service wrote the rows of the first two and
    // stopped before committing their offsets (it commits the previous poll's, every 5 s).
    let f = Fixture::new().await;
    let texts = ["m0 <b>&", "m1", "m2", "m3"];
    for text in texts {
        f.produce(message("u1", text, "broadcast", None)).await;
    }
    insert_as_the_go_service(&f, "u1", texts[0]).await;
    insert_as_the_go_service(&f, "u1", texts[1]).await;
    // the same user and time with another text is another message, not a duplicate
    insert_as_the_go_service(&f, "u1", "an older message").await;

    // Act: the Rust consumer takes over and is redelivered all four; a sentinel produced after
    // it started proves it went past them.
    let running = f.start(&unique("g-cutover")).await;
    f.produce(message("u1", "sentinel", "broadcast", None))
        .await;
    let sentinel_landed = eventually(Duration::from_secs(60), || async {
        f.rows().await.iter().any(|r| r.2.contains("sentinel"))
    })
    .await;
    running.stop().await;

    // Assert: every message exactly once; the Go rows kept, the rest written by the consumer.
    assert!(sentinel_landed, "the sentinel never landed");
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "select payload, idempotency_key from public.user_notifications order by id",
    )
    .fetch_all(&f.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    for (n, text) in texts.iter().enumerate() {
        let expected = serde_json::to_string(text).unwrap_or_default();
        let matching: Vec<&(String, Option<String>)> = rows
            .iter()
            .filter(|(payload, _)| {
                serde_json::from_str::<Value>(payload).unwrap_or_default()["message"]
                    == Value::String((*text).to_owned())
            })
            .collect();
        assert_eq!(matching.len(), 1, "{expected} exactly once: {rows:?}");
        assert_eq!(
            matching[0].1.is_none(),
            n < 2,
            "{expected}: Go rows keep no key, new rows have one"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_records_are_dead_lettered_with_their_bytes_and_good_ones_still_land() {
    // Arrange: good, not Avro at all, valid Avro with an invalid visibility, good.
    let f = Fixture::new().await;
    f.produce(message("u1", "first", "broadcast", None)).await;
    let garbage = b"\x00\x00\x00\xff\xffnot a registered schema".to_vec();
    f.produce_raw(garbage.clone()).await;
    let invalid = f.produce(message("u1", "shouting", "everyone", None)).await;
    f.produce(message("u1", "last", "broadcast", None)).await;

    // Act
    let running = f.start(&unique("g-poison")).await;
    let written = f.wait_rows(2).await;
    running.stop().await;

    // Assert
    assert!(written);
    let texts: Vec<String> = f.rows().await.into_iter().map(|r| r.2).collect();
    assert!(
        texts[0].contains("first") && texts[1].contains("last"),
        "{texts:?}"
    );
    let dead = f
        .stack
        .read_topic(&f.dead_letters, 2, Duration::from_secs(30))
        .await;
    assert_eq!(dead.len(), 2, "both poison records dead-lettered");
    assert_eq!(dead[0].payload.as_deref(), Some(garbage.as_slice()));
    assert_eq!(dead[1].payload.as_deref(), Some(invalid.as_slice()));
    let reason = |i: usize| {
        dead[i]
            .headers
            .iter()
            .find(|(k, _)| k == dlq_headers::ERROR)
            .and_then(|(_, v)| v.clone())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    };
    assert!(reason(1).contains("visibility"), "{}", reason(1));
    assert!(!reason(0).is_empty());
}

async fn set_connections(f: &Fixture, allowed: bool) {
    let admin =
        f.db.url
            .rsplit_once('/')
            .map(|(server, _)| format!("{server}/postgres"))
            .unwrap_or_default();
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(&format!(
        "alter database \"{}\" allow_connections {allowed}",
        f.db.name
    ))
    .execute(&pool)
    .await
    .unwrap();
    if !allowed {
        sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
            .bind(&f.db.name)
            .execute(&pool)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_loses_nothing_and_never_stops_the_process() {
    // Arrange: a running consumer that has written three rows.
    let f = Fixture::new().await;
    let running = f.start(&unique("g-outage")).await;
    for n in 0..3 {
        f.produce(message("u1", &format!("before-{n}"), "broadcast", None))
            .await;
    }
    assert!(f.wait_rows(3).await);
    assert_eq!(running.readyz().await, 200);

    // Act: Postgres refuses connections (existing ones killed) while more messages arrive.
    set_connections(&f, false).await;
    for n in 0..3 {
        f.produce(message("u1", &format!("during-{n}"), "broadcast", None))
            .await;
    }
    let not_ready = eventually(Duration::from_secs(30), || async {
        running.readyz().await == 503
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !running.handle.is_finished(),
        "the process must keep running through the outage"
    );
    set_connections(&f, true).await;

    // Assert: ready again, every message written exactly once.
    assert!(not_ready, "/readyz reports the outage");
    let ready = eventually(Duration::from_secs(30), || async {
        running.readyz().await == 200
    })
    .await;
    assert!(ready, "/readyz recovers");
    assert!(f.wait_rows(6).await, "rows: {:?}", f.rows().await);
    running.stop().await;
    let texts: Vec<String> = f.rows().await.into_iter().map(|r| r.2).collect();
    assert_eq!(texts.len(), 6, "{texts:?}");
    for label in [
        "before-0", "before-1", "before-2", "during-0", "during-1", "during-2",
    ] {
        assert_eq!(
            texts.iter().filter(|t| t.contains(label)).count(),
            1,
            "{label} exactly once"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_event_is_written_once_by_its_identity_even_when_records_repeat_or_look_alike() {
    // Arrange: two different events whose values happen to be byte-identical (the same text in
    // the same millisecond), then a redelivered copy of the first one at a new offset (a
    // producer retry, a mirror) and a record without an identity.
    let f = Fixture::new().await;
    let bytes = f
        .codec
        .encode_json(&f.topic, &message("u1", "same words", "broadcast", None))
        .await
        .unwrap();
    f.produce_identified(bytes.clone(), "event-1").await;
    f.produce_identified(bytes.clone(), "event-2").await;
    f.produce_identified(bytes.clone(), "event-1").await;
    f.produce(message("u1", "no identity", "broadcast", None))
        .await;

    // Act
    let running = f.start(&unique("g-identity")).await;
    let written = f.wait_rows(3).await;
    f.produce(message("u1", "sentinel", "broadcast", None))
        .await;
    let sentinel = f.wait_rows(4).await;
    running.stop().await;

    // Assert: one row per event, keyed by the event's identity, not the record's position.
    assert!(written && sentinel, "rows: {:?}", f.rows().await);
    let keys: Vec<(String,)> =
        sqlx::query_as("select idempotency_key from public.user_notifications order by id")
            .fetch_all(&f.db.pool)
            .await
            .unwrap();
    let keys: Vec<String> = keys.into_iter().map(|(k,)| k).collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(keys[0], "user.message:event-1");
    assert_eq!(keys[1], "user.message:event-2");
    assert!(
        keys[2].starts_with("user.message:content:")
            && keys[3].starts_with("user.message:content:"),
        "records without an identity are keyed by their content: {keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recreated_topic_does_not_make_new_events_collide_with_old_rows() {
    // Arrange: an event consumed from the topic, then the topic deleted and created again, so
    // its offsets start from 0 once more.
    let f = Fixture::new().await;
    f.produce(message("u1", "before", "broadcast", None)).await;
    let first = f.start(&unique("g-before")).await;
    assert!(f.wait_rows(1).await, "the first event never landed");
    first.stop().await;
    f.stack.recreate_topic(&f.topic).await;

    // Act: a new event at the same position as the old one.
    f.produce(message("u1", "after", "broadcast", None)).await;
    let second = f.start(&unique("g-after")).await;
    let written = f.wait_rows(2).await;
    second.stop().await;

    // Assert: the new event is a new row (an offset key would have silently dropped it).
    assert!(written, "the new event was dropped: {:?}", f.rows().await);
    assert_eq!(f.rows().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_killed_and_restarted_gets_its_partition_back_within_a_minute() {
    // Arrange: the built binary consuming, with the settings it is deployed with.
    let f = Fixture::new().await;
    let group = unique("g-kill");
    let dir = std::env::temp_dir().join(unique("mc-kill"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut first = f.spawn_binary(&group, &dir);
    f.produce(message("u1", "before the kill", "broadcast", None))
        .await;
    let consumed = f.wait_rows(1).await;

    // Act: SIGKILL (no goodbye to the group), restart at once, and send another message.
    let _ = first.kill();
    let _ = first.wait();
    let mut second = f.spawn_binary(&group, &dir);
    f.produce(message("u1", "after the restart", "broadcast", None))
        .await;
    // The platform's recovery objective: effects flow again within 60 s of a restart.
    let recovered = eventually(Duration::from_secs(60), || async {
        f.rows().await.len() >= 2
    })
    .await;
    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_dir_all(&dir);

    // Assert
    assert!(consumed, "the first consumer never wrote its row");
    assert!(
        recovered,
        "the restarted consumer did not get its partition back within 60 s: {:?}",
        f.rows().await
    );
    assert_eq!(f.rows().await.len(), 2, "each message exactly once");
}

fn row(n: usize, payload: &str) -> message_consumer::domain::Notification {
    message_consumer::domain::Notification {
        user_id: format!("user-{}", n % 7),
        payload: payload.to_owned(),
        event_time: format!("2026-02-25T10:00:{:02}.{:03}Z", n % 60, n % 1000),
        visibility: "broadcast".to_owned(),
        recipient_id: n.is_multiple_of(5).then(|| "someone".to_owned()),
        idempotency_key: format!("user.message:bench-{n}"),
    }
}

async fn keys_and_payloads(db: &TestDatabase) -> Vec<(Option<String>, String)> {
    sqlx::query_as("select idempotency_key, payload from public.user_notifications order by id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// A backlog-sized batch skips exactly what is already there (keys present, pre-cut-over rows
/// by their content, a key twice in the same batch) and stores text verbatim, tabs, newlines,
/// backslashes and non-ASCII included.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_batch_is_written_once_and_verbatim_like_a_small_one() {
    use message_consumer::store::{StoreError, insert_batch};
    let stack = TestStack::from_env();
    let db = TestDatabase::create(&stack, "consumer_copy").await;
    let tricky = r#"{"email":"a@example.com","message":"tab	newline
backslash \\ quote \" \N ü 🦀"}"#;
    let rows: Vec<_> = (0..300)
        .map(|n| {
            row(
                n,
                if n % 3 == 0 {
                    tricky
                } else {
                    r#"{"email":"e","message":"m"}"#
                },
            )
        })
        .collect();

    // Already present: keys 0..50 (written earlier), and row 60 as the Go service wrote it.
    let earlier: Vec<_> = rows[..50].iter().collect();
    assert_eq!(insert_batch(&db.pool, &earlier).await.ok(), Some(50));
    let go = &rows[60];
    sqlx::query(
        "insert into public.user_notifications
             (user_id, event_type, payload, event_time, visibility, recipient_id)
         values ($1, 'user.message', $2, $3, $4, $5)",
    )
    .bind(&go.user_id)
    .bind(&go.payload)
    .bind(&go.event_time)
    .bind(&go.visibility)
    .bind(&go.recipient_id)
    .execute(&db.pool)
    .await
    .unwrap();

    let mut batch: Vec<_> = rows.iter().collect();
    batch.push(&rows[100]);
    assert_eq!(
        insert_batch(&db.pool, &batch).await.ok(),
        Some(300 - 50 - 1)
    );
    // Redelivered: nothing more.
    assert_eq!(insert_batch(&db.pool, &batch).await.ok(), Some(0));

    let stored = keys_and_payloads(&db).await;
    assert_eq!(stored.len(), 300, "50 earlier + 1 Go row + 249 new");
    let mut expected: Vec<(Option<String>, String)> = rows[..50]
        .iter()
        .map(|r| (Some(r.idempotency_key.clone()), r.payload.clone()))
        .collect();
    expected.push((None, go.payload.clone()));
    expected.extend(
        rows[50..]
            .iter()
            .filter(|r| r.idempotency_key != go.idempotency_key)
            .map(|r| (Some(r.idempotency_key.clone()), r.payload.clone())),
    );
    assert_eq!(stored, expected);
    let recipients: Vec<Option<String>> = sqlx::query_scalar(
        "select recipient_id from public.user_notifications where idempotency_key is not null order by id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let wanted: Vec<Option<String>> = rows
        .iter()
        .filter(|r| r.idempotency_key != go.idempotency_key)
        .map(|r| r.recipient_id.clone())
        .collect();
    assert_eq!(recipients, wanted);

    // A value the database refuses (NUL in text) fails the whole batch as rejected, writes
    // nothing, and leaves isolating the bad row to the handler.
    let mut bad: Vec<_> = (1000..1200).map(|n| row(n, "{}")).collect();
    bad[150].payload = "nul \u{0} inside".to_owned();
    let bad_batch: Vec<_> = bad.iter().collect();
    assert!(matches!(
        insert_batch(&db.pool, &bad_batch).await,
        Err(StoreError::Rejected(_))
    ));
    assert_eq!(keys_and_payloads(&db).await.len(), 300);
}

/// A backlog larger than one insert statement (512 records) is written chunk after chunk,
/// the next decoded while the previous one is written: every good record lands once and in
/// fetch order, and a poison record in a later chunk is dead-lettered without holding back
/// the chunks around it.
#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_spanning_several_statements_lands_in_order_with_poison_set_aside() {
    let f = Fixture::new().await;
    let poison_at = [700usize, 1100];
    for n in 0..1300usize {
        if poison_at.contains(&n) {
            f.produce_raw(b"\x00\x00\x00\xff\xffnot a registered schema".to_vec())
                .await;
        } else {
            f.produce(message("u1", &format!("m{n:04}"), "broadcast", None))
                .await;
        }
    }
    let mut config = f.config(&unique("g-backlog"));
    config.service.consumer.max_batch = 2048;
    let app = Application::build(config)
        .await
        .unwrap_or_else(|e| panic!("build: {e}"));
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move { app.run_until_stopped(token).await });

    let written = f.wait_rows(1298).await;
    shutdown.cancel();
    let _ = handle.await;

    assert!(written);
    let texts: Vec<String> = f.rows().await.into_iter().map(|r| r.2).collect();
    let expected: Vec<String> = (0..1300usize)
        .filter(|n| !poison_at.contains(n))
        .map(|n| format!("m{n:04}"))
        .collect();
    assert_eq!(texts.len(), expected.len());
    for (text, want) in texts.iter().zip(&expected) {
        assert!(text.contains(want.as_str()), "{text} should carry {want}");
    }
    let dead = f
        .stack
        .read_topic(&f.dead_letters, 2, Duration::from_secs(30))
        .await;
    assert_eq!(dead.len(), 2);
}
