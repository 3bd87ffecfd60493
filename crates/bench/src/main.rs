//! Benchmarks against the running local stack, each next to the ceiling measured in the same run:
//!
//! - `gateway`: authenticated `POST /api/v1/events/message` (HTTP → JWT → Avro → acked produce)
//!   vs. producing the same Avro bytes straight to the broker with the same concurrency.
//! - `consumer`: draining a pre-filled topic of N messages into `user_notifications` vs. `COPY`
//!   of the same rows; then end-to-end latency (produce → row committed) at a steady rate.
//!
//! - `saga`: against the running platform (`./taskw up`, processors included): signup →
//!   `credit.balance_changed`, upload intent → `media.upload_ready`, PUT → `media.upload_completed`,
//!   each latency taken from the database's own timestamps.
//!
//! `cargo run --release -p bench -- gateway|consumer|saga|all` (or `./taskw bench`). Prints a
//! Markdown table; numbers go to docs/benchmarks.md by hand, with the machine they came from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::json;
use substrate::avro::{AvroCodec, SchemaRegistry};
use substrate::kafka::{EventPublisher, KafkaPublisher, OutboundRecord};
use substrate::testing::{TestDatabase, TestStack, unique};
use tokio_util::sync::CancellationToken;

const MESSAGE_SCHEMA: &str = include_str!("../../../avro/public/user/message.events.avsc");
const JWT_SECRET: &str = "bench-jwt-secret-with-at-least-32-characters";

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

struct Run {
    name: &'static str,
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    fn row(&mut self) -> String {
        self.latencies.sort();
        format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} |",
            self.name,
            self.count,
            self.rate(),
            percentile(&self.latencies, 0.50),
            percentile(&self.latencies, 0.99)
        )
    }
}

/// Runs `count` operations with `concurrency` in flight, timing each.
async fn drive<F, Fut>(
    name: &'static str,
    count: usize,
    concurrency: usize,
    op: F,
) -> anyhow::Result<Run>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = futures::stream::iter(0..count)
        .map(|n| {
            let op = &op;
            async move {
                let t = Instant::now();
                op(n).await?;
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let latencies = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Run {
        name,
        count,
        elapsed,
        latencies,
    })
}

async fn message_topic(stack: &TestStack) -> anyhow::Result<(String, AvroCodec)> {
    let topic = unique("bench.public.user.message.events");
    stack.create_topics(&[&topic]).await;
    let registry = Arc::new(SchemaRegistry::new(&stack.registry)?);
    registry.register_for_topic(&topic, MESSAGE_SCHEMA).await?;
    Ok((topic, AvroCodec::new(registry)))
}

async fn gateway(count: usize, concurrency: usize) -> anyhow::Result<()> {
    let stack = TestStack::from_env();
    let (topic, codec) = message_topic(&stack).await?;
    let routes_dir = std::env::temp_dir().join(unique("bench-routes"));
    std::fs::create_dir_all(&routes_dir)?;
    std::fs::write(
        routes_dir.join("routes.yaml"),
        format!("externalRoutes:\n  message: {topic}\n"),
    )?;

    let mut settings = api_gateway::configuration::Settings::default();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.kafka = stack.kafka();
    settings.registry = stack.registry.clone();
    settings.auth.jwt_secret = Some(SecretString::from(JWT_SECRET));
    settings.gateway.routes_file = Some(routes_dir.join("routes.yaml"));
    settings.telemetry.log_filter = "error".into();
    let app = api_gateway::startup::Application::build(settings)
        .await
        .map_err(anyhow::Error::msg)?;
    let url = format!("http://127.0.0.1:{}/api/v1/events/message", app.port());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move { app.run_until_stopped(token).await });

    let claims = json!({"sub": "bench-user", "aud": "authenticated", "exp": chrono::Utc::now().timestamp() + 3600});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let body = json!({"user_id":"ignored","email":"bench@example.com","message":"benchmark message with a realistic length of about sixty bytes","timestamp":"2026-02-25T10:00:00.000Z","visibility":"broadcast","recipient_id":null});

    // Warm-up: schema cache, connections, producer metadata.
    drive("warm-up", 200, concurrency, |_| async {
        let status = client
            .post(&url)
            .bearer_auth(&jwt)
            .json(&body)
            .send()
            .await?
            .status();
        if status != 204 {
            bail!("gateway answered {status}");
        }
        Ok(())
    })
    .await?;
    let mut http = drive(
        "gateway POST /api/v1/events/message",
        count,
        concurrency,
        |_| async {
            let status = client
                .post(&url)
                .bearer_auth(&jwt)
                .json(&body)
                .send()
                .await?
                .status();
            if status != 204 {
                bail!("gateway answered {status}");
            }
            Ok(())
        },
    )
    .await?;

    let bytes = codec.encode_json(&topic, &body).await?;
    let publisher = KafkaPublisher::new(&stack.kafka())?;
    let mut raw = drive(
        "raw rdkafka produce (same bytes, acked)",
        count,
        concurrency,
        |_| async {
            publisher
                .publish(OutboundRecord::new(topic.clone(), bytes.clone()))
                .await?;
            Ok(())
        },
    )
    .await?;
    shutdown.cancel();

    println!("\n### Gateway ({count} requests, {concurrency} in flight)\n");
    println!("| path | requests | per second | p50 ms | p99 ms |\n|---|---|---|---|---|");
    println!("{}", http.row());
    println!("{}", raw.row());
    println!(
        "\nratio gateway / raw produce throughput: {:.2}",
        http.rate() / raw.rate()
    );
    Ok(())
}

async fn consumer(count: usize) -> anyhow::Result<()> {
    let stack = TestStack::from_env();
    let (topic, codec) = message_topic(&stack).await?;
    let dead_letters = unique("bench.dead-letter");
    stack.create_topics(&[&dead_letters]).await;
    let db = TestDatabase::create(&stack, "bench").await;

    // Pre-fill the topic.
    let publisher = KafkaPublisher::new(&stack.kafka())?;
    let template = json!({"user_id":"u","email":"bench@example.com","message":"m","timestamp":"2026-02-25T10:00:00.000Z","visibility":"broadcast","recipient_id":null});
    let bytes = codec.encode_json(&topic, &template).await?;
    let fill = drive("fill", count, 512, |_| async {
        publisher
            .publish(OutboundRecord::new(topic.clone(), bytes.clone()))
            .await?;
        Ok(())
    })
    .await?;
    eprintln!(
        "pre-filled {count} messages in {:.1} s",
        fill.elapsed.as_secs_f64()
    );

    // Broker-side ceiling: only fetching the same records (no decoding, no database).
    let raw_started = Instant::now();
    let fetched = stack
        .read_topic(&topic, count, Duration::from_secs(300))
        .await
        .len();
    let raw_fetch = raw_started.elapsed();

    let mut settings = message_consumer::configuration::Settings::default();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.kafka = stack.kafka();
    settings.registry = stack.registry.clone();
    settings.postgres.url = SecretString::from(db.url.clone());
    settings.consumer.group_id = unique("bench-consumer");
    settings.consumer.topics = vec![topic.clone()];
    settings.consumer.dead_letter_topic = dead_letters;
    let app = message_consumer::startup::Application::build(settings)
        .await
        .map_err(anyhow::Error::msg)?;
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let started = Instant::now();
    tokio::spawn(async move { app.run_until_stopped(token).await });
    let rows = loop {
        let rows: i64 = sqlx::query_scalar("select count(*) from public.user_notifications")
            .fetch_one(&db.pool)
            .await?;
        if rows as usize >= count || started.elapsed() > Duration::from_secs(600) {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let drain = started.elapsed();

    // Ceiling: COPY the same rows into a same-shaped table.
    sqlx::query("create table bench_copy (like public.user_notifications including all)")
        .execute(&db.pool)
        .await?;
    let mut text = String::with_capacity(count * 120);
    for n in 0..count {
        text.push_str(&format!(
            "u\tuser.message\t{{\"email\":\"bench@example.com\",\"message\":\"m\"}}\t2026-02-25T10:00:00.000Z\tbroadcast\t\\N\tbench:0:{n}\n"
        ));
    }
    let mut conn = db.pool.acquire().await?;
    let copy_started = Instant::now();
    let mut copy = conn
        .copy_in_raw("copy bench_copy (user_id, event_type, payload, event_time, visibility, recipient_id, idempotency_key) from stdin")
        .await?;
    copy.send(text.as_bytes()).await?;
    copy.finish().await?;
    let copy_elapsed = copy_started.elapsed();
    drop(conn);

    // End-to-end latency at a steady moderate rate (produce → row committed).
    let rate = 200u64;
    let seconds = 10u64;
    let mut sent = Vec::new();
    let interval = Duration::from_micros(1_000_000 / rate);
    let e2e_started = Instant::now();
    for n in 0..rate * seconds {
        let event = json!({"user_id":"latency","email":"e","message":format!("lat-{n}"),"timestamp":chrono::Utc::now().to_rfc3339(),"visibility":"broadcast","recipient_id":null});
        let bytes = codec.encode_json(&topic, &event).await?;
        publisher
            .publish(OutboundRecord::new(topic.clone(), bytes))
            .await?;
        sent.push(n);
        let next = interval * (n as u32 + 1);
        if let Some(wait) = next.checked_sub(e2e_started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let latencies: Vec<(f64,)> = sqlx::query_as(
        "select extract(epoch from (created_at - event_time::timestamptz))::float8 * 1000
           from public.user_notifications where user_id = 'latency'",
    )
    .fetch_all(&db.pool)
    .await?;
    shutdown.cancel();
    let mut ms: Vec<f64> = latencies.into_iter().map(|(v,)| v).collect();
    ms.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        ms.get(((ms.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };

    println!("\n### Consumer ({count} pre-filled messages)\n");
    println!("| path | rows | seconds | rows per second |\n|---|---|---|---|");
    let consumer_rate = rows as f64 / drain.as_secs_f64();
    let copy_rate = count as f64 / copy_elapsed.as_secs_f64();
    println!(
        "| message-consumer (decode, validate, batched insert, offsets) | {rows} | {:.1} | {consumer_rate:.0} |",
        drain.as_secs_f64()
    );
    println!(
        "| Postgres COPY of the same rows | {count} | {:.1} | {copy_rate:.0} |",
        copy_elapsed.as_secs_f64()
    );
    println!(
        "| fetch only (rdkafka consumer, no decode, no database) | {fetched} | {:.1} | {:.0} |",
        raw_fetch.as_secs_f64(),
        fetched as f64 / raw_fetch.as_secs_f64()
    );
    println!("\nratio consumer / COPY: {:.2}", consumer_rate / copy_rate);
    println!(
        "\nend-to-end latency at {rate} msg/s for {seconds} s ({} rows): p50 {:.1} ms, p99 {:.1} ms",
        ms.len(),
        pick(0.50),
        pick(0.99)
    );
    Ok(())
}

/// One user's pass through the sagas; every latency in milliseconds.
struct SagaTimes {
    signup_to_balance: f64,
    intent_to_ready: f64,
    put_to_completed: f64,
}

/// Waits (polling every 20 ms, at most 60 s) for the user's `event_type` notification whose
/// payload contains `needle`; returns how long after `since` its row was created, in
/// milliseconds, and its payload.
async fn wait_notification(
    pool: &sqlx::PgPool,
    user: &str,
    event_type: &str,
    needle: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(f64, serde_json::Value)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row: Option<(f64, String)> = sqlx::query_as(
            "select extract(epoch from (created_at - $4))::float8 * 1000, payload
               from public.user_notifications
              where user_id = $1 and event_type = $2 and payload like $3
              order by id limit 1",
        )
        .bind(user)
        .bind(event_type)
        .bind(format!("%{needle}%"))
        .bind(since)
        .fetch_optional(pool)
        .await?;
        if let Some((ms, payload)) = row {
            return Ok((ms, serde_json::from_str(&payload)?));
        }
        if Instant::now() > deadline {
            bail!(
                "no {event_type} for {user} within 60 s (are the processors running? ./taskw status)"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn one_saga(
    pool: &sqlx::PgPool,
    client: &reqwest::Client,
    gateway: &str,
    secret: &str,
    n: usize,
) -> anyhow::Result<SagaTimes> {
    let user = uuid::Uuid::new_v4().to_string();
    let email = format!("bench-saga-{n}-{}@example.com", &user[..8]);
    // What Supabase Auth does on signup; the auth trigger posts the webhook from here on.
    let created: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "insert into auth.users (id, email, email_confirmed_at) values ($1::uuid, $2, now())
         returning created_at",
    )
    .bind(&user)
    .bind(&email)
    .fetch_one(pool)
    .await?;
    let (signup_to_balance, _) = wait_notification(
        pool,
        &user,
        "credit.balance_changed",
        "signup_bonus",
        created,
    )
    .await?;

    let claims = json!({"sub": user, "email": email, "aud": "authenticated", "role": "authenticated",
        "exp": chrono::Utc::now().timestamp() + 3600});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?;
    let sent_at = chrono::Utc::now();
    let response = client
        .post(format!("{gateway}/api/v1/media/upload-intent"))
        .bearer_auth(&jwt)
        .json(&json!({"file_name": "bench.png", "media_type": "image/png", "file_size": 4}))
        .send()
        .await?;
    if response.status() != 202 {
        bail!("upload intent answered {}", response.status());
    }
    let request_id = response.json::<serde_json::Value>().await?["request_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (intent_to_ready, ready) =
        wait_notification(pool, &user, "media.upload_ready", &request_id, sent_at).await?;
    let upload_url = ready["upload_url"].as_str().unwrap_or_default();
    let permanent = ready["file_path"]
        .as_str()
        .unwrap_or_default()
        .replacen("uploads/", "files/", 1);
    let put = client
        .put(upload_url)
        .header("content-type", "image/png")
        .body(vec![0x89, b'P', b'N', b'G'])
        .send()
        .await?;
    let put_at = chrono::Utc::now();
    if !put.status().is_success() {
        bail!("PUT to the signed URL answered {}", put.status());
    }
    let (put_to_completed, _) =
        wait_notification(pool, &user, "media.upload_completed", &permanent, put_at).await?;
    Ok(SagaTimes {
        signup_to_balance,
        intent_to_ready,
        put_to_completed,
    })
}

async fn saga(count: usize) -> anyhow::Result<()> {
    let stack = TestStack::from_env();
    let pool = stack.postgres.pool()?;
    let gateway =
        std::env::var("BENCH_GATEWAY_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let secret = std::env::var("SUPABASE_JWT_SECRET")
        .unwrap_or_else(|_| "super-secret-jwt-token-with-at-least-32-characters-long".into());
    let client = reqwest::Client::new();
    // One warm-up pass: the first records of a fresh job pay for class loading and metadata.
    one_saga(&pool, &client, &gateway, &secret, usize::MAX).await?;
    let mut times = Vec::with_capacity(count);
    // Sagas one after another, one every 250 ms: latency at a light load, not throughput.
    for n in 0..count {
        let started = Instant::now();
        times.push(one_saga(&pool, &client, &gateway, &secret, n).await?);
        if let Some(rest) = Duration::from_millis(250).checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let pick = |mut ms: Vec<f64>, p: f64| {
        ms.sort_by(f64::total_cmp);
        ms.get(((ms.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!("\n### Sagas ({count} users, one at a time)\n");
    println!("| step | p50 ms | p95 ms | max ms |\n|---|---|---|---|");
    for (name, values) in [
        (
            "signup → credit.balance_changed (+2)",
            times
                .iter()
                .map(|t| t.signup_to_balance)
                .collect::<Vec<_>>(),
        ),
        (
            "upload intent → media.upload_ready",
            times.iter().map(|t| t.intent_to_ready).collect(),
        ),
        (
            "PUT → media.upload_completed",
            times.iter().map(|t| t.put_to_completed).collect(),
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            pick(values.clone(), 0.50),
            pick(values.clone(), 0.95),
            pick(values, 1.0)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let messages: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    match which.as_str() {
        "gateway" => gateway(requests, concurrency).await,
        "consumer" => consumer(messages).await,
        "saga" => {
            let sagas = std::env::var("BENCH_SAGAS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(40);
            saga(sagas).await
        }
        "all" => {
            gateway(requests, concurrency)
                .await
                .context("gateway benchmark")?;
            consumer(messages).await.context("consumer benchmark")
        }
        other => bail!("unknown benchmark {other:?} (gateway, consumer, saga, all)"),
    }
}
