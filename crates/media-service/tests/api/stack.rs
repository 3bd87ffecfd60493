//! The media-service against real parts: broker, registry, Postgres, and its own local object
//! store process (with MinIO-style webhooks pointed at this service).

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use substrate::app::Service;

use media_service::configuration::{Config, Settings, Topics};
use media_service::startup::Application;
use secrecy::SecretString;
use serde_json::{Value, json};
use substrate::avro::{AvroCodec, SchemaRegistry};
use substrate::kafka::consume::dlq_headers;
use substrate::kafka::{EventPublisher, InboundMessage, KafkaPublisher, OutboundRecord};
use substrate::s3::S3Settings;
use substrate::testing::{TestDatabase, TestStack, eventually, unique};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "webhook-token-for-tests";

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// The local object store binary, built by the workspace test run.
fn objectstore_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("no target dir"));
    let binary = dir.join("local-objectstore");
    assert!(
        binary.exists(),
        "{} missing: run the workspace tests (cargo builds it)",
        binary.display()
    );
    binary
}

struct Store {
    port: u16,
    root: PathBuf,
    webhooks: String,
    child: Option<Child>,
}

impl Store {
    fn spawn(&mut self) {
        let child = Command::new(objectstore_binary())
            .args([
                "--root",
                &self.root.to_string_lossy(),
                "--port",
                &self.port.to_string(),
                "--bucket",
                "media-uploads",
            ])
            .args([
                "--webhook",
                &format!("uploads/={}/webhooks/media-upload", self.webhooks),
            ])
            .args([
                "--webhook",
                &format!("files/={}/webhooks/file-ready", self.webhooks),
            ])
            .args(["--webhook-token", TOKEN])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    async fn start(&mut self) {
        self.spawn();
        let port = self.port;
        let up = eventually(Duration::from_secs(20), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(up, "object store did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: format!("127.0.0.1:{}", self.port),
            public_endpoint: format!("127.0.0.1:{}", self.port),
            // One attempt per operation: the saga's own delays are what these tests measure.
            max_attempts: 1,
            ..S3Settings::default()
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Fixture {
    stack: TestStack,
    db: TestDatabase,
    topics: Topics,
    codec: AvroCodec,
    publisher: KafkaPublisher,
    store: Store,
    /// The service's configuration (its saga group: `config.service.consumer.group_id`).
    config: Config,
    shutdown: CancellationToken,
    service: Option<tokio::task::JoinHandle<()>>,
}

fn contract(topic: &str) -> String {
    let mut parts = topic.splitn(3, '.');
    let (a, b, rest) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = format!(
        "{}/../../avro/{a}/{b}/{rest}.avsc",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl Fixture {
    /// Everything up and running; `retry_base_ms` is the delete retry base delay.
    async fn start(retry_base_ms: u64) -> Self {
        let mut fixture = Self::prepare(retry_base_ms).await;
        fixture.launch().await;
        fixture
    }

    /// Topics, database and object store ready, the service not started yet (so a test can
    /// leave history behind first).
    async fn prepare(retry_base_ms: u64) -> Self {
        let stack = TestStack::from_env();
        let registry = Arc::new(SchemaRegistry::new(&stack.registry).unwrap());
        let defaults = Topics::default();
        let mut names: HashMap<String, String> = HashMap::new();
        for base in [
            &defaults.upload_approved,
            &defaults.upload_signed,
            &defaults.upload_rejected,
            &defaults.download_intent,
            &defaults.download_signed,
            &defaults.download_rejected,
            &defaults.delete_intent,
            &defaults.delete_events,
            &defaults.delete_rejected,
            &defaults.delete_retry,
            &defaults.delete_dead_letter,
            &defaults.upload_retry,
            &defaults.upload_received,
            &defaults.file_ready,
            &defaults.expired,
        ] {
            let topic = unique(&format!("ms.{base}"));
            stack.create_topics(&[&topic]).await;
            registry
                .register_for_topic(&topic, &contract(base))
                .await
                .unwrap_or_else(|e| panic!("{topic}: {e}"));
            names.insert(base.clone(), topic);
        }
        let t = |base: &String| names[base].clone();
        let topics = Topics {
            upload_approved: t(&defaults.upload_approved),
            upload_signed: t(&defaults.upload_signed),
            upload_rejected: t(&defaults.upload_rejected),
            download_intent: t(&defaults.download_intent),
            download_signed: t(&defaults.download_signed),
            download_rejected: t(&defaults.download_rejected),
            delete_intent: t(&defaults.delete_intent),
            delete_events: t(&defaults.delete_events),
            delete_rejected: t(&defaults.delete_rejected),
            delete_retry: t(&defaults.delete_retry),
            delete_dead_letter: t(&defaults.delete_dead_letter),
            upload_retry: t(&defaults.upload_retry),
            upload_received: t(&defaults.upload_received),
            file_ready: t(&defaults.file_ready),
            expired: t(&defaults.expired),
        };
        let dead_letters = unique("ms.internal.media.consumer.dead-letter");
        stack.create_topics(&[&dead_letters]).await;
        let db = TestDatabase::create(&stack, "media").await;

        let mut store = Store {
            port: free_port(),
            root: std::env::temp_dir().join(unique("ms-objects")),
            webhooks: String::new(),
            child: None,
        };
        let mut backbone = stack.backbone(Some(&db.url));
        // A fixed port, so the object store's webhooks can point at it before the service runs.
        backbone.http.port = free_port();
        let mut settings = Settings::default();
        settings.s3 = store.settings();
        settings.webhook.token = Some(SecretString::from(TOKEN));
        settings.media.delete_retry_base_delay_ms = retry_base_ms;
        settings.consumer.group_id = unique("ms-sagas");
        settings.consumer.topics = vec![
            topics.upload_approved.clone(),
            topics.download_intent.clone(),
            topics.delete_intent.clone(),
            topics.upload_retry.clone(),
            topics.expired.clone(),
        ];
        settings.consumer.dead_letter_topic = dead_letters.clone();
        settings.consumer.retry_initial_backoff_ms = 100;
        settings.consumer.retry_max_backoff_ms = 1_000;
        settings.retry_consumer.group_id = unique("ms-retries");
        settings.retry_consumer.topics = vec![topics.delete_retry.clone()];
        settings.retry_consumer.dead_letter_topic = dead_letters;
        settings.topics = topics.clone();
        store.webhooks = format!("http://127.0.0.1:{}", backbone.http.port);
        store.start().await;
        Self {
            publisher: KafkaPublisher::new(&stack.kafka()).unwrap(),
            codec: AvroCodec::new(registry),
            stack,
            db,
            topics,
            store,
            config: Config {
                backbone,
                service: settings,
            },
            shutdown: CancellationToken::new(),
            service: None,
        }
    }

    /// Starts the service.
    async fn launch(&mut self) {
        let app = Application::build(self.config.clone())
            .await
            .unwrap_or_else(|e| panic!("build: {e}"));
        let token = self.shutdown.clone();
        self.service = Some(tokio::spawn(async move {
            app.run_until_stopped(token)
                .await
                .unwrap_or_else(|e| panic!("media-service: {e}"));
        }));
    }

    async fn stop(mut self) {
        self.halt().await;
    }

    /// Stops the service (it commits its offsets) so that [`Self::launch`] can start it again.
    async fn halt(&mut self) {
        self.shutdown.cancel();
        if let Some(service) = self.service.take() {
            tokio::time::timeout(Duration::from_secs(30), service)
                .await
                .unwrap_or_else(|_| panic!("media-service did not stop"))
                .unwrap();
        }
        self.shutdown = CancellationToken::new();
    }

    async fn produce(&self, topic: &str, event: Value) {
        let bytes = self
            .codec
            .encode_json(topic, &event)
            .await
            .unwrap_or_else(|e| panic!("{topic}: {e}"));
        self.publisher
            .publish(OutboundRecord::new(topic, bytes))
            .await
            .unwrap();
    }

    async fn read(
        &self,
        topic: &str,
        count: usize,
        within: Duration,
    ) -> Vec<(InboundMessage, Value)> {
        let mut out = Vec::new();
        for message in self.stack.read_topic(topic, count, within).await {
            let decoded = self
                .codec
                .decode(message.payload.as_deref().unwrap_or_default())
                .await
                .unwrap_or_else(|e| panic!("{topic}: {e}"));
            out.push((message, decoded.to_json()));
        }
        out
    }

    async fn insert_file(&self, user: &str, path: &str, bytes: &[u8]) {
        sqlx::query(
            "insert into public.media_files (user_id, file_name, file_path, file_size, media_type, upload_time)
             values ($1, 'doc.pdf', $2, $3, 'application/pdf', '2026-02-25T10:00:00Z')",
        )
        .bind(user)
        .bind(path)
        .bind(bytes.len() as i64)
        .execute(&self.db.pool)
        .await
        .unwrap();
        self.store
            .settings()
            .internal_client()
            .put_object()
            .bucket("media-uploads")
            .key(path)
            .body(bytes.to_vec().into())
            .send()
            .await
            .unwrap();
    }

    async fn object_exists(&self, key: &str) -> bool {
        self.store
            .settings()
            .internal_client()
            .head_object()
            .bucket("media-uploads")
            .key(key)
            .send()
            .await
            .is_ok()
    }

    async fn status(&self, user: &str, path: &str) -> Option<String> {
        sqlx::query_scalar(
            "select status from public.media_files where user_id = $1 and file_path = $2",
        )
        .bind(user)
        .bind(path)
        .fetch_optional(&self.db.pool)
        .await
        .unwrap()
    }
}

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn the_upload_saga_runs_end_to_end_on_real_parts() {
    let f = Fixture::start(1_000).await;

    // Approved → signed with a URL.
    f.produce(&f.topics.upload_approved, json!({"user_id":"user-1","file_name":"my photo.jpg","media_type":"image/jpeg","file_size":11,"request_id":"req-up-1","request_time":"2026-02-25T10:00:00Z"})).await;
    let signed = f.read(&f.topics.upload_signed, 1, WAIT).await;
    assert_eq!(signed.len(), 1, "upload.signed produced");
    let signed = &signed[0].1;
    let url = signed["upload_url"].as_str().unwrap_or_default().to_owned();
    let file_path = signed["file_path"].as_str().unwrap_or_default().to_owned();

    // A tampered URL is refused by the store; the genuine one accepts the upload (like curl -T).
    let client = reqwest::Client::new();
    // Same length, one hex digit changed: a well-formed but wrong signature.
    let (head, signature) = url
        .split_once("X-Amz-Signature=")
        .unwrap_or_else(|| panic!("{url}"));
    let flipped: String = signature
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == 'a' { 'b' } else { 'a' }
            } else {
                c
            }
        })
        .collect();
    let tampered = format!("{head}X-Amz-Signature={flipped}");
    let refused = client
        .put(&tampered)
        .header("content-type", "image/jpeg")
        .body("hello world")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let uploaded = client
        .put(&url)
        .header("content-type", "image/jpeg")
        .body("hello world")
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);

    // The store's webhook → upload.received → move to files/ → file-ready webhook → file.ready.
    let received = f.read(&f.topics.upload_received, 1, WAIT).await;
    assert_eq!(received.len(), 1, "upload.received produced");
    let received = &received[0].1;
    assert_eq!(
        received["file_path"],
        file_path.as_str(),
        "the signed path, byte for byte"
    );
    assert_eq!(received["user_id"], "user-1");
    assert_eq!(received["file_name"], "my photo.jpg");
    assert_eq!(received["file_size"], 11);
    let permanent = received["permanent_path"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(permanent, file_path.replacen("uploads/", "files/", 1));
    let ready = f.read(&f.topics.file_ready, 1, WAIT).await;
    assert_eq!(ready.len(), 1, "file.ready produced");
    assert_eq!(ready[0].1["file_path"], permanent.as_str());
    assert!(f.object_exists(&permanent).await, "moved into files/");
    assert!(!f.object_exists(&file_path).await, "staging copy removed");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_move_retry_for_a_file_already_in_place_announces_it_ready() {
    // Arrange: the move finished (the staging object is gone, the permanent one is there) and
    // its file.ready came and went while the saga was timing out; the saga now asks again.
    let f = Fixture::start(1_000).await;
    let staged = "uploads/owner/late/x.png";
    let permanent = "files/owner/late/x.png";
    f.insert_file("owner", permanent, b"late bytes").await;
    let first = f.read(&f.topics.file_ready, 1, WAIT).await;
    assert_eq!(first.len(), 1, "the store announced the object once");

    // Act
    f.produce(&f.topics.upload_retry, json!({"user_id":"owner","email":"o@example.com","file_path":staged,"permanent_path":permanent,"file_name":"x.png","file_size":10,"media_type":"image/png","upload_time":"2026-02-25T10:00:00Z","retry_count":1,"retry_time":"2026-02-25T10:02:00Z"})).await;

    // Assert: the saga gets both halves again, so it can confirm instead of retrying on.
    let received = f.read(&f.topics.upload_received, 1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1["retry_count"], 2);
    let ready = f.read(&f.topics.file_ready, 2, WAIT).await;
    assert_eq!(
        ready.len(),
        2,
        "no file.ready for the object already in place"
    );
    assert_eq!(ready[1].1["file_path"], permanent);
    assert_eq!(ready[1].1["file_size"], 10);
    assert!(f.object_exists(permanent).await);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_are_signed_for_the_owner_and_rejected_for_others() {
    let f = Fixture::start(1_000).await;
    f.insert_file("owner", "files/owner/x/doc.pdf", b"%PDF-bytes")
        .await;
    f.produce(&f.topics.download_intent, json!({"user_id":"owner","file_path":"files/owner/x/doc.pdf","request_id":"rd-1","request_time":"t"})).await;
    f.produce(&f.topics.download_intent, json!({"user_id":"intruder","file_path":"files/owner/x/doc.pdf","request_id":"rd-2","request_time":"t"})).await;

    let signed = f.read(&f.topics.download_signed, 1, WAIT).await;
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].1["request_id"], "rd-1");
    let url = signed[0].1["download_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let body = reqwest::get(&url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_or_default();
    assert_eq!(&body[..], b"%PDF-bytes", "the URL returns the bytes");
    let rejected = f.read(&f.topics.download_rejected, 1, WAIT).await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (
            rejected[0].1["request_id"].as_str(),
            rejected[0].1["reason"].as_str()
        ),
        (Some("rd-2"), Some("not_found"))
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_soft_delete_notify_and_remove_and_survive_a_store_outage() {
    let mut f = Fixture::start(500).await;
    f.insert_file("owner", "files/owner/a/doc.pdf", b"a").await;
    f.insert_file("owner", "files/owner/b/doc.pdf", b"b").await;

    // With the store up: row deleted, event out, object gone.
    f.produce(&f.topics.delete_intent, json!({"user_id":"owner","file_path":"files/owner/a/doc.pdf","request_id":"del-a","request_time":"t"})).await;
    let deleted = f.read(&f.topics.delete_events, 1, WAIT).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].1["file_size"], 1);
    assert_eq!(
        f.status("owner", "files/owner/a/doc.pdf").await.as_deref(),
        Some("deleted")
    );
    assert!(!f.object_exists("files/owner/a/doc.pdf").await);

    // With the store down: retries with growing delays, then the dead letter.
    f.store.stop();
    f.produce(&f.topics.delete_intent, json!({"user_id":"owner","file_path":"files/owner/b/doc.pdf","request_id":"del-b","request_time":"t"})).await;
    let retries = f.read(&f.topics.delete_retry, 4, WAIT).await;
    let counts: Vec<i64> = retries
        .iter()
        .map(|(_, v)| v["retry_count"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(counts, [0, 1, 2, 3]);
    let dead = f.read(&f.topics.delete_dead_letter, 1, WAIT).await;
    assert_eq!(dead.len(), 1, "dead-lettered after the cap");
    assert_eq!(dead[0].1["retry_count"], 3);
    assert!(
        dead[0].1["failure_reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    let stamps: Vec<i64> = retries
        .iter()
        .chain(dead.iter())
        .map(|(m, _)| m.timestamp_ms.unwrap_or_default())
        .collect();
    let gaps: Vec<i64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    // Retry n is due 0.5 s × 2ⁿ after the record announcing failure n was produced, so each
    // gap between producer timestamps is at least that delay; without waiting the whole chain
    // takes milliseconds.
    for (n, gap) in gaps.iter().enumerate() {
        let delay = 500 * (1i64 << n);
        assert!(
            *gap >= delay,
            "retry {} came {gap} ms after the failure, before its {delay} ms delay: {gaps:?}",
            n + 1
        );
    }
    f.store.start().await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_succeeds_once_the_store_is_back() {
    let mut f = Fixture::start(4_000).await;
    f.insert_file("owner", "files/owner/c/doc.pdf", b"c").await;
    f.store.stop();
    f.produce(&f.topics.delete_intent, json!({"user_id":"owner","file_path":"files/owner/c/doc.pdf","request_id":"del-c","request_time":"t"})).await;
    let first = f.read(&f.topics.delete_retry, 1, WAIT).await;
    assert_eq!(first.len(), 1, "the failed removal was scheduled");
    f.store.start().await;
    let gone = eventually(WAIT, || async {
        !f.object_exists("files/owner/c/doc.pdf").await
    })
    .await;
    assert!(gone, "the retry removed the object");
    // Wait past the point where a second retry would have been produced.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        f.read(&f.topics.delete_retry, 2, Duration::from_secs(3))
            .await
            .len(),
        1,
        "no further retries"
    );
    assert!(
        f.read(&f.topics.delete_dead_letter, 1, Duration::from_secs(2))
            .await
            .is_empty()
    );
    f.stop().await;
}

/// A cut-over from the Go media-service, which committed the previous poll's offsets every 5 s:
/// it had signed two approvals (under random keys) and deleted a file, but committed only past
/// the first approval and before the delete. The Rust service resumes at those offsets, so both
/// records come again; neither may be answered twice, and new traffic is served.
#[tokio::test(flavor = "multi_thread")]
async fn records_the_go_service_handled_but_did_not_commit_are_not_answered_twice() {
    let mut f = Fixture::prepare(1_000).await;
    let (approved, deletes) = (
        &f.topics.upload_approved.clone(),
        &f.topics.delete_intent.clone(),
    );
    let approval = |request: &str| json!({"user_id":"user-go","file_name":"cat.png","media_type":"image/png","file_size":3,"request_id":request,"request_time":"2026-11-30T10:00:00Z"});
    let go_signed = |request: &str, key: &str| json!({"user_id":"user-go","file_path":format!("uploads/user-go/{key}/cat.png"),"file_name":"cat.png","upload_url":"http://go.example/signed","expires_in":900,"request_id":request,"signed_time":"2026-11-30T10:00:01Z"});
    let gone = "files/user-go/old/doc.pdf";
    f.insert_file("user-go", gone, b"old").await;
    // What the Go service did: signed go-1 and go-2, deleted `gone` for go-del (row deleted
    // without a request id, FileDeleted published, object removed).
    f.produce(approved, approval("go-1")).await;
    f.produce(approved, approval("go-2")).await;
    f.produce(
        &f.topics.upload_signed,
        go_signed("go-1", "0b6f7c1e-go-random-1"),
    )
    .await;
    f.produce(
        &f.topics.upload_signed,
        go_signed("go-2", "4d1e2a9f-go-random-2"),
    )
    .await;
    f.produce(
        deletes,
        json!({"user_id":"user-go","file_path":gone,"request_id":"go-del","request_time":"t"}),
    )
    .await;
    sqlx::query("update public.media_files set status = 'deleted' where file_path = $1")
        .bind(gone)
        .execute(&f.db.pool)
        .await
        .unwrap();
    f.produce(&f.topics.delete_events, json!({"user_id":"user-go","file_path":gone,"file_name":"doc.pdf","media_type":"application/pdf","file_size":3,"delete_time":"2026-11-30T10:00:02Z"})).await;
    let group = f.config.service.consumer.group_id.clone();
    f.stack.commit_offset(&group, approved, 1);
    f.stack.commit_offset(&group, deletes, 0);

    f.launch().await;
    // Traffic continues: a new approval and a new delete, behind the replayed records.
    let fresh = "files/user-go/new/doc.pdf";
    f.insert_file("user-go", fresh, b"new").await;
    f.produce(approved, approval("rust-1")).await;
    f.produce(
        deletes,
        json!({"user_id":"user-go","file_path":fresh,"request_id":"rust-del","request_time":"t"}),
    )
    .await;

    // One partition is handled in order, so go-2 was handled before rust-1 was signed: a second
    // signing of go-2 would sit between them.
    let signed = f.read(&f.topics.upload_signed, 3, WAIT).await;
    let requests: Vec<&str> = signed
        .iter()
        .map(|(_, v)| v["request_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(requests, ["go-1", "go-2", "rust-1"], "go-2 signed once");
    let deleted = f.read(&f.topics.delete_events, 2, WAIT).await;
    let paths: Vec<&str> = deleted
        .iter()
        .map(|(_, v)| v["file_path"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(paths, [gone, fresh], "one FileDeleted per file");
    // go-del was handled (and acknowledged) before rust-del, so a rejection would be readable.
    let rejected = f
        .read(&f.topics.delete_rejected, 1, Duration::from_secs(3))
        .await;
    assert!(
        rejected.is_empty(),
        "the replayed delete was answered again: {rejected:?}"
    );
    assert!(
        !f.object_exists(fresh).await,
        "the new delete removed its object"
    );
    assert_eq!(f.status("user-go", fresh).await.as_deref(), Some("deleted"));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saga_stuck_on_one_topic_does_not_hold_up_the_others() {
    let f = Fixture::start(1_000).await;
    let path = "files/owner/stuck/doc.pdf";
    f.insert_file("owner", path, b"x").await;
    // The service is consuming (its group joined) before anything gets stuck.
    f.produce(&f.topics.upload_approved, json!({"user_id":"owner","file_name":"w.png","media_type":"image/png","file_size":1,"request_id":"req-warm","request_time":"t"})).await;
    assert_eq!(f.read(&f.topics.upload_signed, 1, WAIT).await.len(), 1);
    let table = |from: &'static str, to: &'static str| {
        let pool = f.db.pool.clone();
        async move {
            sqlx::query(&format!("alter table public.{from} rename to {to}"))
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // Deletes cannot run while media_files is away (a retryable database error, retried with
    // backoff on their topic)...
    table("media_files", "media_files_away").await;
    f.produce(
        &f.topics.delete_intent,
        json!({"user_id":"owner","file_path":path,"request_id":"del-stuck","request_time":"t"}),
    )
    .await;
    // (give the delete loop time to pick its record up first; the assertions do not depend on it)
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...and an approval behind it is signed all the same.
    f.produce(&f.topics.upload_approved, json!({"user_id":"owner","file_name":"a.png","media_type":"image/png","file_size":1,"request_id":"req-free","request_time":"t"})).await;
    let signed = f.read(&f.topics.upload_signed, 2, WAIT).await;
    assert_eq!(signed.len(), 2, "the approval waited for the stuck delete");
    assert_eq!(signed[1].1["request_id"], "req-free");
    assert!(
        f.read(&f.topics.delete_events, 1, Duration::from_secs(1))
            .await
            .is_empty(),
        "the delete cannot have run yet"
    );
    // Once the table is back, the delete completes: nothing was skipped.
    table("media_files_away", "media_files").await;
    let deleted = f.read(&f.topics.delete_events, 1, WAIT).await;
    assert_eq!(deleted.len(), 1, "the stuck delete never completed");
    assert_eq!(deleted[0].1["file_path"], path);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_store_refuses_for_good_is_dead_lettered_instead_of_retried_for_ever() {
    // Arrange: the service holds credentials the store does not accept (a rotated key), so
    // every removal is answered 403 Access Denied, which no retry can change.
    let mut f = Fixture::prepare(1_000).await;
    f.config.service.s3.secret_key = SecretString::from("not-the-store-password");
    f.config.service.consumer.retry_budget_ms = 0;
    f.launch().await;
    let staged = "uploads/owner/refused/x.png";

    // Act: an expired upload whose staged object must be removed.
    f.produce(&f.topics.expired, json!({"user_id":"owner","file_path":staged,"file_name":"x.png","file_size":1,"media_type":"image/png","request_id":"req-refused","request_time":"t","expired_time":"t"})).await;
    let dead = f
        .stack
        .read_topic(&f.config.service.consumer.dead_letter_topic, 1, WAIT)
        .await;
    let expired_topic = f.topics.expired.clone();
    f.stop().await;

    // Assert: recorded with the store's refusal (with unlimited retries, only classifying the
    // refusal as permanent gets it here), the record's bytes kept for a resend.
    assert_eq!(dead.len(), 1, "the refused removal was retried instead");
    let header = |name: &str| {
        dead[0]
            .header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    assert_eq!(header(dlq_headers::SOURCE_TOPIC), expired_topic);
    let reason = header(dlq_headers::ERROR);
    assert!(reason.contains("refused"), "{reason}");
    assert!(dead[0].payload.as_ref().is_some_and(|p| !p.is_empty()));
}

fn approval(request: &str) -> Value {
    json!({"user_id":"user-tx","file_name":"cat.png","media_type":"image/png","file_size":3,"request_id":request,"request_time":"2026-12-01T10:00:00Z"})
}

/// Flink's exactly-once sinks write the approvals in transactions, so once the saga group has
/// handled them its committed offset points at a commit marker, which no consumer ever receives.
/// A restart must not wait for that record: every saga loop joins the group at once (well
/// inside the replay read's 30 s bound) on a quiet topic, and serves the next approval.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_restart_behind_transactional_approvals_every_loop_starts_at_once() {
    // Arrange: two approvals in one committed transaction, signed, offsets committed on stop.
    let mut f = Fixture::prepare(1_000).await;
    let approved = f.topics.upload_approved.clone();
    let mut batch = Vec::new();
    for request in ["tx-1", "tx-2"] {
        batch.push(
            f.codec
                .encode_json(&approved, &approval(request))
                .await
                .unwrap(),
        );
    }
    f.stack
        .produce_in_transactions(&approved, vec![batch])
        .await;
    f.launch().await;
    assert_eq!(f.read(&f.topics.upload_signed, 2, WAIT).await.len(), 2);
    f.halt().await;
    let group = f.config.service.consumer.group_id.clone();
    assert_eq!(
        f.stack.committed_and_end(&group, &approved),
        (Some(2), 3),
        "the group's committed offset points at the commit marker"
    );

    // Act: the restart, with nothing new on the topic (a record produced now would also end a
    // read waiting for the marker, hiding the wait).
    f.launch().await;

    // Assert: one member per saga loop, long before a read waiting for the marker gave up.
    let loops = f.config.service.consumer.topics.len();
    let joined = eventually(Duration::from_secs(15), || {
        let (stack, group) = (f.stack.clone(), group.clone());
        async move {
            tokio::task::spawn_blocking(move || stack.group_members(&group))
                .await
                .unwrap()
                == loops
        }
    })
    .await;
    assert!(
        joined,
        "not every saga loop started within 15 s of the restart"
    );
    f.produce(&approved, approval("after-restart")).await;
    let signed = f.read(&f.topics.upload_signed, 3, WAIT).await;
    let requests: Vec<&str> = signed
        .iter()
        .map(|(_, v)| v["request_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(requests, ["tx-1", "tx-2", "after-restart"]);
    f.stop().await;
}

/// When the replay read hits a bound, the loop starts without the outcomes instead of waiting:
/// here the outcomes are more than `media.replay_max_records`, so the approval the group gets
/// again is signed a second time (the documented price), and new approvals are served.
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_read_over_its_record_bound_starts_the_loop_without_it() {
    let mut f = Fixture::prepare(1_000).await;
    let approved = f.topics.upload_approved.clone();
    f.produce(&approved, approval("old-1")).await;
    for key in ["k1", "k2"] {
        f.produce(&f.topics.upload_signed, json!({"user_id":"user-tx","file_path":format!("uploads/user-tx/{key}/cat.png"),"file_name":"cat.png","upload_url":"http://go.example/signed","expires_in":900,"request_id":"old-1","signed_time":"2026-12-01T10:00:01Z"})).await;
    }
    let group = f.config.service.consumer.group_id.clone();
    f.stack.commit_offset(&group, &approved, 0);
    f.config.service.media.replay_max_records = 1;

    f.launch().await;
    f.produce(&approved, approval("new-1")).await;

    let signed = f
        .read(&f.topics.upload_signed, 4, Duration::from_secs(15))
        .await;
    let requests: Vec<&str> = signed
        .iter()
        .map(|(_, v)| v["request_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(requests, ["old-1", "old-1", "old-1", "new-1"]);
    f.stop().await;
}
