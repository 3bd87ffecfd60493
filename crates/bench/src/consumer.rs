//! message-consumer: draining a pre-filled topic into `user_notifications`, as the release
//! binary, against the lower of two ceilings measured in the same run (a bare rdkafka consumer
//! fetching the same records, and `COPY` of the same rows into a same-shaped table); then the
//! whole write path end to end, gateway request → notification row committed, at a fixed rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use substrate::kafka::{EventPublisher, KafkaPublisher, OutboundRecord};
use substrate::testing::{TestDatabase, TestStack, unique};

use crate::load;
use crate::process::{Memory, Service};
use crate::report::Figure;

/// The consumer's configuration: its own group, topic, dead-letter topic and database.
pub fn overrides(topic: &str, database_url: &str) -> String {
    format!(
        "consumer:\n  group_id: \"{}\"\n  topics: [\"{topic}\"]\n  dead_letter_topic: \"{}\"\n\
         postgres:\n  url: \"{database_url}\"\ntelemetry:\n  log_filter: \"warn\"\n",
        unique("bench-consumer"),
        unique("bench.dead-letter"),
    )
}

async fn rows(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from public.user_notifications")
            .fetch_one(pool)
            .await?,
    )
}

/// Waits until the table holds `count` rows (at most 10 minutes). Polls the identity column's
/// maximum, an index lookup, and counts only once that is high enough: a `count(*)` every 20 ms
/// scanned the growing table and took a third of a core from the database being measured.
async fn wait_rows(pool: &sqlx::PgPool, count: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let highest: i64 =
            sqlx::query_scalar("select coalesce(max(id), 0) from public.user_notifications")
                .fetch_one(pool)
                .await?;
        if highest as usize >= count && rows(pool).await? as usize >= count {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {} of {count} rows after 10 minutes",
                rows(pool).await?
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Drains `count` records; returns the figures and the consumer's peak memory.
pub async fn throughput(count: usize) -> anyhow::Result<(Vec<Figure>, Memory)> {
    let stack = TestStack::from_env();
    let topic = crate::message_topic(&stack, "bench.consumer").await?;
    let codec = crate::message_codec(&stack).await?;
    let db = TestDatabase::create(&stack, "bench").await;

    // Pre-fill: distinct records (each its own ce_id header, as the gateway would send).
    let publisher = KafkaPublisher::new(&stack.kafka)?;
    let bytes = codec.encode_json(&topic, &crate::message_body()).await?;
    load::closed(count, 512, |_| async {
        publisher
            .publish(OutboundRecord {
                headers: vec![(
                    substrate::events::EVENT_ID_HEADER.to_owned(),
                    uuid::Uuid::new_v4().to_string().into_bytes(),
                )],
                ..OutboundRecord::new(topic.clone(), bytes.clone())
            })
            .await?;
        Ok(())
    })
    .await?;

    // Ceiling 1: fetching the same records, nothing else.
    let started = Instant::now();
    let fetched = stack
        .read_topic(&topic, count, Duration::from_secs(300))
        .await
        .len();
    let fetch_rate = fetched as f64 / started.elapsed().as_secs_f64();

    // Ceiling 2: COPY of the same rows into a table with the same indexes and constraints.
    sqlx::query("create table bench_copy (like public.user_notifications including all)")
        .execute(&db.pool)
        .await?;
    let payload = r#"{"email":"bench@example.com","message":"benchmark message with a realistic length of about sixty bytes"}"#;
    let mut text = String::with_capacity(count * 200);
    for n in 0..count {
        text.push_str(&format!(
            "bench-user\tuser.message\t{payload}\t2026-02-25T10:00:00.000Z\tbroadcast\t\\N\t{}:{n}\n",
            uuid::Uuid::new_v4()
        ));
    }
    let mut conn = db.pool.acquire().await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("copy bench_copy (user_id, event_type, payload, event_time, visibility, recipient_id, idempotency_key) from stdin")
        .await?;
    copy.send(text.as_bytes()).await?;
    copy.finish().await?;
    let copy_rate = count as f64 / started.elapsed().as_secs_f64();
    drop(conn);

    // The service: from the moment it is ready (its start is measured on its own).
    let consumer = Service::start("message-consumer", &overrides(&topic, &db.url), &[]).await?;
    let started = Instant::now();
    let profile = consumer.profile("message-consumer")?;
    wait_rows(&db.pool, count).await?;
    profile.finish()?;
    let from_ready = count as f64 / started.elapsed().as_secs_f64();
    // The drain rate between the first and the last commit (each row's created_at is its
    // transaction's start): joining the group and the first fetch are start-up, not throughput.
    // Rows of the last transaction are left out, since the span ends where that one began.
    let (before_last, span): (i64, f64) = sqlx::query_as(
        "select count(*) filter (where created_at < (select max(created_at) from public.user_notifications)),
                extract(epoch from max(created_at) - min(created_at))::float8
           from public.user_notifications",
    )
    .fetch_one(&db.pool)
    .await?;
    let consumer_rate = before_last as f64 / span.max(1e-6);
    let memory = consumer.memory()?;
    consumer.stop().await?;

    let (ceiling_title, ceiling) = if fetch_rate < copy_rate {
        ("fetch only (bare rdkafka consumer)", fetch_rate)
    } else {
        ("Postgres COPY of the same rows", copy_rate)
    };
    let detail = format!("{count} pre-filled records, one partition");
    let drain_detail = format!(
        "{detail}; first to last commit ({from_ready:.0} rows/s counting from /readyz, group join included)"
    );
    Ok((
        vec![
            Figure::new(
                "consumer.throughput",
                "message-consumer (decode, validate, idempotent batched insert, offsets)",
                "rows/s",
                consumer_rate,
                drain_detail,
            )
            .ceiling(ceiling_title, ceiling)
            .ratio_at_least(0.80),
            Figure::new(
                "consumer.copy_ceiling",
                "Postgres COPY of the same rows (same indexes and constraints)",
                "rows/s",
                copy_rate,
                detail.clone(),
            ),
            Figure::new(
                "consumer.fetch_ceiling",
                "bare rdkafka consumer fetching the same records",
                "rows/s",
                fetch_rate,
                detail,
            ),
        ],
        memory,
    ))
}

/// What the end-to-end run measured besides its figures.
pub struct EndToEndLoad {
    /// Peak memory of the gateway and the consumer under this load.
    pub gateway: Memory,
    /// See `gateway`.
    pub consumer: Memory,
}

/// Gateway request → row committed, at `rate` requests per second for `seconds`.
pub async fn end_to_end(rate: f64, seconds: u64) -> anyhow::Result<(Vec<Figure>, EndToEndLoad)> {
    let stack = TestStack::from_env();
    let topic = crate::message_topic(&stack, "bench.e2e").await?;
    let db = TestDatabase::create(&stack, "bench_e2e").await;
    let routes = crate::gateway::routes_file(&topic)?;
    let gateway = Service::start(
        "api-gateway",
        &crate::gateway::overrides(&routes),
        &crate::gateway::jwt_env(),
    )
    .await?;
    let consumer = Service::start("message-consumer", &overrides(&topic, &db.url), &[]).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let url = Arc::new(format!(
        "http://127.0.0.1:{}/api/v1/events/message",
        gateway.port
    ));
    let jwt = Arc::new(crate::token("bench-e2e"));

    let send = |marker: String| {
        let (client, url, jwt) = (client.clone(), url.clone(), jwt.clone());
        async move {
            // The request's own send time travels as the event's timestamp; the row's
            // created_at (the inserting transaction's start) is taken on the same clock.
            let mut body = crate::message_body();
            body["message"] = serde_json::Value::String(marker);
            body["timestamp"] = serde_json::Value::String(
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            );
            crate::gateway::post_event(&client, &url, &jwt, &body).await
        }
    };
    // Warm-up, not counted: connections, schema caches, the consumer's first fetch.
    load::open(rate, Duration::from_secs(2), |n| send(format!("warm-{n}"))).await?;
    load::open(rate, Duration::from_secs(seconds), |n| {
        send(format!("e2e-{n}"))
    })
    .await?;
    let count = (rate * seconds as f64).round() as usize;
    wait_rows(&db.pool, count + (rate * 2.0).round() as usize).await?;
    let latencies: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from (created_at - event_time::timestamptz))::float8 * 1000
           from public.user_notifications where payload like '%\"e2e-%'",
    )
    .fetch_all(&db.pool)
    .await?;
    if latencies.len() != count {
        bail!("{} of {count} rows found", latencies.len());
    }
    let load = EndToEndLoad {
        gateway: gateway.memory()?,
        consumer: consumer.memory()?,
    };
    gateway.stop().await?;
    consumer.stop().await?;
    let detail = format!("open loop, {rate:.0} req/s for {seconds} s ({count} rows)");
    Ok((
        vec![
            Figure::new(
                "end_to_end.p50",
                "gateway request → notification row committed, p50",
                "ms",
                load::quantile(&latencies, 0.50),
                detail.clone(),
            )
            .at_most(15.0),
            Figure::new(
                "end_to_end.p99",
                "gateway request → notification row committed, p99",
                "ms",
                load::quantile(&latencies, 0.99),
                detail,
            )
            .at_most(50.0),
        ],
        load,
    ))
}
