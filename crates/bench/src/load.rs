//! Load shapes: a closed loop (N operations, C in flight: the peak rate) and an open loop (a
//! fixed rate whatever the answers take: latency at a given load, free of coordinated omission).

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;

/// Latencies and wall time of a run.
pub struct Run {
    /// Operations completed.
    pub count: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile (0..=1) of the latencies, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies, p)
    }
}

/// The `p` quantile of sorted-or-not durations, in milliseconds (nearest rank).
pub fn percentile_ms(values: &[Duration], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// The `p` quantile of millisecond values.
pub fn quantile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `count` operations with `concurrency` in flight, timing each.
pub async fn closed<F, Fut>(count: usize, concurrency: usize, op: F) -> anyhow::Result<Run>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
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
        count,
        elapsed,
        latencies,
    })
}

/// Starts one operation every `1 / rate` seconds for `duration`, each on its own task, and
/// times each from its scheduled start (so a stall shows as latency of everything it delayed).
pub async fn open<F, Fut>(rate: f64, duration: Duration, op: F) -> anyhow::Result<Run>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let count = (rate * duration.as_secs_f64()).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for n in 0..count {
        let due = started + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let operation = op(n);
        tasks.push(tokio::spawn(async move {
            operation.await?;
            Ok::<_, anyhow::Error>(due.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.push(task.await??);
    }
    Ok(Run {
        count,
        elapsed: started.elapsed(),
        latencies,
    })
}
