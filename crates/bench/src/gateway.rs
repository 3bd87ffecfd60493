//! api-gateway: authenticated `POST /api/v1/events/message`, as the release binary, against
//! the same Avro bytes produced straight to the broker (same acks, idempotence, concurrency),
//! and against a bare axum process doing only the JWT check (with and without the produce).

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use substrate::kafka::{EventPublisher, KafkaPublisher, OutboundRecord};
use substrate::testing::TestStack;

use crate::load;
use crate::process::{Memory, Service};
use crate::report::Figure;

/// What `gateway` measured besides its figures, for the resource section.
pub struct GatewayLoad {
    /// Peak RSS of the gateway process over the whole benchmark.
    pub peak: Memory,
}

/// The gateway's configuration for a run on `topic` (rate limits off: one user at full speed).
pub fn overrides(routes_file: &std::path::Path) -> String {
    format!(
        "gateway:\n  routes_file: \"{}\"\n  rate_limits:\n    events: {{per_second: 0, burst: 1}}\n\
         telemetry:\n  log_filter: \"warn\"\n",
        routes_file.display()
    )
}

/// A routes file sending `message` to `topic`, in a fresh directory.
pub fn routes_file(topic: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(substrate::testing::unique("bench-routes"));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("routes.yaml");
    std::fs::write(&path, format!("externalRoutes:\n  message: {topic}\n"))?;
    Ok(path)
}

/// The secrets of every spawned gateway (tokens; the webhook secret only keeps it quiet).
pub fn jwt_env() -> [(&'static str, &'static str); 2] {
    [
        ("SUPABASE_JWT_SECRET", crate::JWT_SECRET),
        ("WEBHOOK_SECRET", "bench-webhook-secret"),
    ]
}

/// One authenticated `POST` of `body`; anything but 204 is an error.
pub async fn post_event(
    client: &reqwest::Client,
    url: &str,
    jwt: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let status = client
        .post(url)
        .bearer_auth(jwt)
        .json(body)
        .send()
        .await?
        .status();
    if status != 204 {
        bail!("{url} answered {status}");
    }
    Ok(())
}

async fn post_all(
    client: &reqwest::Client,
    url: &str,
    jwt: &str,
    body: &serde_json::Value,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<load::Run> {
    load::closed(count, concurrency, |_| post_event(client, url, jwt, body)).await
}

/// Runs the gateway benchmark; returns its figures.
pub async fn run(count: usize, concurrency: usize) -> anyhow::Result<(Vec<Figure>, GatewayLoad)> {
    let stack = TestStack::from_env();
    let topic = crate::message_topic(&stack, "bench.gateway").await?;
    let routes = routes_file(&topic)?;
    let gateway = Service::start("api-gateway", &overrides(&routes), &jwt_env()).await?;
    let jwt = crate::token("bench-user");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()?;
    let body = crate::message_body();
    let url = |port: u16| format!("http://127.0.0.1:{port}/api/v1/events/message");

    // Warm-up: schema cache, connections, producer metadata, allocator arenas.
    post_all(&client, &url(gateway.port), &jwt, &body, 2_000, concurrency).await?;
    let profile = gateway.profile("api-gateway")?;
    let peak = post_all(&client, &url(gateway.port), &jwt, &body, count, concurrency).await?;
    profile.finish()?;

    // Latency at half the peak rate, open loop.
    let half = peak.rate() / 2.0;
    let paced = {
        let client = client.clone();
        let target = url(gateway.port);
        let jwt = Arc::new(jwt.clone());
        let body = Arc::new(body.clone());
        load::open(half, Duration::from_secs(10), move |_| {
            let (client, target, jwt, body) =
                (client.clone(), target.clone(), jwt.clone(), body.clone());
            async move { post_event(&client, &target, &jwt, &body).await }
        })
        .await?
    };
    let memory = gateway.memory()?;
    gateway.stop().await?;

    // The same Avro bytes, produced by a plain rdkafka producer with the same settings.
    let codec = crate::message_codec(&stack).await?;
    let bytes = codec.encode_json(&topic, &body).await?;
    let publisher = KafkaPublisher::new(&stack.kafka)?;
    let produce = |_| async {
        publisher
            .publish(OutboundRecord::new(topic.clone(), bytes.clone()))
            .await?;
        Ok(())
    };
    load::closed(2_000, concurrency, produce).await?;
    let raw = load::closed(count, concurrency, produce).await?;
    // The broker's own latency at the rate the gateway was paced at: the floor of its p99.
    let raw_paced = {
        let publisher = Arc::new(publisher);
        let record = OutboundRecord::new(topic.clone(), bytes.clone());
        load::open(half, Duration::from_secs(10), move |_| {
            let (publisher, record) = (publisher.clone(), record.clone());
            async move {
                publisher.publish(record).await?;
                Ok(())
            }
        })
        .await?
    };

    // Bare axum with the same JWT check: without and with the produce.
    let bare = Service::bare(None).await?;
    post_all(&client, &url(bare.port), &jwt, &body, 2_000, concurrency).await?;
    let bare_only = post_all(&client, &url(bare.port), &jwt, &body, count, concurrency).await?;
    bare.stop().await?;
    let bare = Service::bare(Some(&topic)).await?;
    post_all(&client, &url(bare.port), &jwt, &body, 2_000, concurrency).await?;
    let bare_produce = post_all(&client, &url(bare.port), &jwt, &body, count, concurrency).await?;
    bare.stop().await?;

    let closed = format!("{count} requests, {concurrency} in flight, acks=all, idempotent");
    let figures = vec![
        Figure::new(
            "gateway.throughput",
            "api-gateway POST /api/v1/events/message (JWT, allowlist, JSON→Avro, acked produce)",
            "req/s",
            peak.rate(),
            closed.clone(),
        )
        .ceiling("raw rdkafka produce of the same bytes", raw.rate())
        .ratio_at_least(0.70),
        Figure::new(
            "gateway.p50_at_peak",
            "api-gateway p50 latency at peak",
            "ms",
            peak.percentile_ms(0.50),
            closed.clone(),
        ),
        Figure::new(
            "gateway.p99_at_peak",
            "api-gateway p99 latency at peak",
            "ms",
            peak.percentile_ms(0.99),
            closed.clone(),
        ),
        Figure::new(
            "gateway.p50_at_half_peak",
            "api-gateway p50 latency at half the peak rate",
            "ms",
            paced.percentile_ms(0.50),
            format!("open loop, {half:.0} req/s for 10 s"),
        ),
        Figure::new(
            "gateway.p99_at_half_peak",
            "api-gateway p99 latency at half the peak rate",
            "ms",
            paced.percentile_ms(0.99),
            format!("open loop, {half:.0} req/s for 10 s"),
        )
        .at_most(5.0),
        Figure::new(
            "gateway.raw_produce_p99_at_half_peak",
            "raw rdkafka produce p99 latency at the same paced rate (no HTTP)",
            "ms",
            raw_paced.percentile_ms(0.99),
            format!("open loop, {half:.0} records/s for 10 s"),
        ),
        Figure::new(
            "gateway.bare_axum_jwt",
            "bare axum + the same JWT check, no broker (framework cost)",
            "req/s",
            bare_only.rate(),
            closed.clone(),
        ),
        Figure::new(
            "gateway.bare_axum_jwt_produce",
            "bare axum + JWT + acked produce of pre-encoded bytes",
            "req/s",
            bare_produce.rate(),
            closed.clone(),
        )
        .ceiling("raw rdkafka produce of the same bytes", raw.rate()),
    ];
    Ok((figures, GatewayLoad { peak: memory }))
}
