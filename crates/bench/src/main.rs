//! Benchmarks of the release binaries against the local stack, each throughput next to a
//! ceiling measured in the same run (see docs/benchmarks.md for what each figure means).
//!
//! `./taskw bench` runs `bench all`: every section below, then writes `docs/benchmarks.json`
//! and the generated block of `docs/benchmarks.md`. A single section (`gateway`, `consumer`,
//! `e2e`, `resources`, `saga`) only prints its figures. `saga` and `all` need the running
//! platform (`./taskw up`, which `./taskw bench` starts with release binaries).

use std::sync::Arc;

use anyhow::{Context, bail};
use substrate::avro::{AvroCodec, SchemaRegistry};
use substrate::testing::{TestStack, unique};

mod bare;
mod consumer;
mod gateway;
mod load;
mod process;
mod report;
mod resources;
mod saga;

use report::Report;

const MESSAGE_SCHEMA: &str = include_str!("../../../avro/public/user/message.events.avsc");
/// HS256 secret of every gateway the bench starts (never the platform's).
const JWT_SECRET: &str = "bench-jwt-secret-with-at-least-32-characters";

/// A fresh topic with the message schema registered under its subject.
async fn message_topic(stack: &TestStack, prefix: &str) -> anyhow::Result<String> {
    let topic = unique(prefix);
    stack.create_topics(&[&topic]).await;
    SchemaRegistry::new(&stack.registry)?
        .register_for_topic(&topic, MESSAGE_SCHEMA)
        .await?;
    Ok(topic)
}

async fn message_codec(stack: &TestStack) -> anyhow::Result<AvroCodec> {
    Ok(AvroCodec::new(Arc::new(SchemaRegistry::new(
        &stack.registry,
    )?)))
}

/// A realistic `message` event body (~200 bytes as JSON).
fn message_body() -> serde_json::Value {
    serde_json::json!({
        "user_id": "ignored: the gateway takes the token's subject",
        "email": "bench@example.com",
        "message": "benchmark message with a realistic length of about sixty bytes",
        "timestamp": "2026-02-25T10:00:00.000Z",
        "visibility": "broadcast",
        "recipient_id": null
    })
}

/// An HS256 token for `user`, valid for an hour.
fn token(user: &str) -> String {
    let claims = serde_json::json!({
        "sub": user, "aud": "authenticated", "role": "authenticated",
        "exp": chrono::Utc::now().timestamp() + 3600
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap_or_default()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Sizes {
    requests: usize,
    concurrency: usize,
    messages: usize,
    e2e_rate: f64,
    e2e_seconds: u64,
    sagas: usize,
}

impl Sizes {
    fn from_env() -> Self {
        Self {
            requests: env_number("BENCH_REQUESTS", 20_000),
            concurrency: env_number("BENCH_CONCURRENCY", 32),
            messages: env_number("BENCH_MESSAGES", 100_000),
            e2e_rate: env_number("BENCH_E2E_RATE", 1_000) as f64,
            e2e_seconds: env_number("BENCH_E2E_SECONDS", 10) as u64,
            sagas: env_number("BENCH_SAGAS", 40),
        }
    }
}

async fn all(sizes: &Sizes) -> anyhow::Result<()> {
    let mut report = Report::default();
    report.add(resources::run().await.context("resources")?);

    let (figures, gateway_load) = gateway::run(sizes.requests, sizes.concurrency)
        .await
        .context("gateway")?;
    report.add(figures);
    let (figures, consumer_peak) = consumer::throughput(sizes.messages)
        .await
        .context("consumer")?;
    report.add(figures);
    let (figures, e2e) = consumer::end_to_end(sizes.e2e_rate, sizes.e2e_seconds)
        .await
        .context("end to end")?;
    report.add(figures);
    let (figures, media) = saga::run(sizes.sagas).await.context("sagas")?;
    report.add(figures);

    let gateway_peak = gateway_load.peak.peak.max(e2e.gateway.peak);
    report.add([
        resources::under_load(
            "api-gateway",
            gateway_peak,
            &format!(
                "the gateway benchmark ({} requests, {} in flight) and the end-to-end run",
                sizes.requests, sizes.concurrency
            ),
        ),
        resources::under_load(
            "message-consumer",
            consumer_peak.peak.max(e2e.consumer.peak),
            &format!("draining {} records and the end-to-end run", sizes.messages),
        ),
    ]);
    match media {
        Some(memory) => report.add([resources::under_load(
            "media-service",
            memory.peak,
            "the platform's release media-service since its start, through the saga run",
        )]),
        None => bail!("no .local/run/media-service.pid: start the platform with ./taskw bench"),
    }

    let docs = process::repo_root().join("docs");
    report.write(&docs)?;
    println!("\nwrote docs/benchmarks.json and docs/benchmarks.md");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "all".into());
    let sizes = Sizes::from_env();
    let figures = match which.as_str() {
        "all" => return all(&sizes).await,
        "gateway" => gateway::run(sizes.requests, sizes.concurrency).await?.0,
        "consumer" => consumer::throughput(sizes.messages).await?.0,
        "e2e" => {
            consumer::end_to_end(sizes.e2e_rate, sizes.e2e_seconds)
                .await?
                .0
        }
        "resources" => resources::run().await?,
        "saga" => saga::run(sizes.sagas).await?.0,
        "bare-server" => {
            let port = args
                .next()
                .and_then(|p| p.parse().ok())
                .context("bare-server PORT [TOPIC]")?;
            return bare::serve(port, args.next()).await;
        }
        other => {
            bail!("unknown benchmark {other:?} (all, gateway, consumer, e2e, resources, saga)")
        }
    };
    // A single section only prints: the files always come from one whole run.
    Report::default().add(figures);
    Ok(())
}
