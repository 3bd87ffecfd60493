//! Start-up time, idle memory and binary size of each release binary, with the stack up.

use std::time::Duration;

use secrecy::ExposeSecret;
use substrate::testing::{TestStack, unique};

use crate::load;
use crate::process::{Service, binary_size};
use crate::report::Figure;

/// Starts of each service measured (the median is reported, the worst in the detail).
const STARTS: usize = 5;

/// How long a started service is left alone before its idle memory is read.
const SETTLE: Duration = Duration::from_secs(3);

/// media-service on its production topics, but in groups of its own that start at the end
/// of each topic, so it neither takes partitions from a running platform nor replays history.
fn media_overrides() -> String {
    let topics = [
        "public.media.upload.approved",
        "internal.media.download.intent",
        "internal.media.delete.intent",
        "internal.media.upload.retry",
        "public.media.expired.events",
    ];
    let list = topics.map(|t| format!("\"{t}\"")).join(", ");
    format!(
        "consumer:\n  group_id: \"{}\"\n  topics: [{list}]\n  dead_letter_topic: \"internal.media.consumer.dead-letter\"\n  max_batch: 16\n  start_at: latest\n\
         retry_consumer:\n  group_id: \"{}\"\n  topics: [\"internal.media.delete.retry\"]\n  dead_letter_topic: \"internal.media.consumer.dead-letter\"\n  max_batch: 1\n  start_at: latest\n\
         telemetry:\n  log_filter: \"warn\"\n",
        unique("bench-media"),
        unique("bench-media-retry"),
    )
}

/// Figures for one service: start → ready (median of [`STARTS`]), idle RSS, binary size.
async fn service(
    name: &'static str,
    overrides: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Vec<Figure>> {
    let mut starts = Vec::with_capacity(STARTS);
    let mut idle = Vec::with_capacity(STARTS);
    let mut anonymous = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let service = Service::start(name, overrides, env).await?;
        starts.push(service.ready_after);
        tokio::time::sleep(SETTLE).await;
        let memory = service.memory()?;
        idle.push(memory.now);
        anonymous.push(memory.anonymous);
        service.stop().await?;
    }
    let id = name.replace('-', "_");
    Ok(vec![
        Figure::new(
            &format!("{id}.start_to_ready"),
            &format!("{name}: process start → GET /readyz 200"),
            "ms",
            load::percentile_ms(&starts, 0.5),
            format!(
                "median of {STARTS} starts, worst {:.0} ms",
                load::percentile_ms(&starts, 1.0)
            ),
        )
        .at_most(300.0),
        Figure::new(
            &format!("{id}.rss_idle"),
            &format!("{name}: resident memory, idle"),
            "MiB",
            load::quantile(&idle, 0.5),
            format!(
                "VmRSS {} s after ready, median of {STARTS}",
                SETTLE.as_secs()
            ),
        )
        .at_most(20.0),
        Figure::new(
            &format!("{id}.rss_idle_anonymous"),
            &format!("{name}: anonymous resident memory, idle (heap and stacks, no code pages)"),
            "MiB",
            load::quantile(&anonymous, 0.5),
            format!(
                "RssAnon {} s after ready, median of {STARTS}",
                SETTLE.as_secs()
            ),
        ),
        Figure::new(
            &format!("{id}.binary_size"),
            &format!("{name}: release binary size"),
            "MiB",
            binary_size(name)?,
            "release profile (thin LTO), not stripped".to_owned(),
        ),
    ])
}

/// Start, idle memory and size of the three services.
pub async fn run() -> anyhow::Result<Vec<Figure>> {
    let stack = TestStack::from_env();
    let topic = crate::message_topic(&stack, "bench.resources").await?;
    let routes = crate::gateway::routes_file(&topic)?;
    let mut figures = service(
        "api-gateway",
        &crate::gateway::overrides(&routes),
        &crate::gateway::jwt_env(),
    )
    .await?;
    figures.extend(
        service(
            "message-consumer",
            &crate::consumer::overrides(&topic, stack.postgres.url.expose_secret()),
            &[],
        )
        .await?,
    );
    figures.extend(
        service(
            "media-service",
            &media_overrides(),
            &[("MEDIA_WEBHOOK_TOKEN", "bench-webhook-token")],
        )
        .await?,
    );
    Ok(figures)
}

/// A figure for a service's peak memory under a benchmark's load.
pub fn under_load(name: &str, peak: f64, load: &str) -> Figure {
    Figure::new(
        &format!("{}.rss_under_load", name.replace('-', "_")),
        &format!("{name}: peak resident memory under load"),
        "MiB",
        peak,
        format!("VmHWM over {load}"),
    )
    .at_most(64.0)
}
