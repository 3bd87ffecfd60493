//! The sagas through the whole running platform (`./taskw up`: services, pg_net worker, Flink
//! processors), one user at a time; each latency from the database's own timestamps.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;
use substrate::testing::TestStack;

use crate::load;
use crate::process::Memory;
use crate::report::Figure;

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

/// Runs `count` sagas one after another (one every 250 ms: latency at a light load, not
/// throughput); returns the figures and the platform media-service's peak memory, if its pid
/// file is where `./taskw up` puts it.
pub async fn run(count: usize) -> anyhow::Result<(Vec<Figure>, Option<Memory>)> {
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
    for n in 0..count {
        let started = Instant::now();
        times.push(one_saga(&pool, &client, &gateway, &secret, n).await?);
        if let Some(rest) = Duration::from_millis(250).checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let media =
        std::fs::read_to_string(crate::process::repo_root().join(".local/run/media-service.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .and_then(|pid| Memory::of(pid).ok());
    let detail = format!("{count} users one after another, after one warm-up pass");
    let mut figures = Vec::new();
    for (id, title, values) in [
        (
            "saga.signup_to_balance",
            "signup → credit.balance_changed (+2)",
            times
                .iter()
                .map(|t| t.signup_to_balance)
                .collect::<Vec<_>>(),
        ),
        (
            "saga.intent_to_ready",
            "upload intent → media.upload_ready",
            times.iter().map(|t| t.intent_to_ready).collect(),
        ),
        (
            "saga.put_to_completed",
            "PUT to the signed URL → media.upload_completed",
            times.iter().map(|t| t.put_to_completed).collect(),
        ),
    ] {
        for (quantile, p) in [("p50", 0.50), ("p95", 0.95)] {
            figures.push(Figure::new(
                &format!("{id}.{quantile}"),
                &format!("{title}, {quantile}"),
                "ms",
                load::quantile(&values, p),
                detail.clone(),
            ));
        }
    }
    Ok((figures, media))
}
