//! `local-supabase`: Supabase Auth, REST and Realtime stand-ins for the local stack only.
//!
//! ```text
//! local-supabase [--host 127.0.0.1] [--port 54321] [--database-url URL] [--jwt-secret S]
//! local-supabase keys      # prints {"url", "anon_key", "service_role_key"} as JSON
//! ```
//! `SUPABASE_JWT_SECRET` and `SUPABASE_DB_URL` are read when the flags are not given.

use std::sync::Arc;

use anyhow::Context;
use local_supabase::keys::{Keys, LOCAL_JWT_SECRET};
use local_supabase::{AppState, realtime, router};
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
struct Options {
    keys_only: bool,
    host: String,
    port: u16,
    database_url: String,
    jwt_secret: String,
}

fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options {
        keys_only: false,
        host: "127.0.0.1".into(),
        port: 54321,
        database_url: std::env::var("SUPABASE_DB_URL")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:54322/substrate".into()),
        jwt_secret: std::env::var("SUPABASE_JWT_SECRET")
            .unwrap_or_else(|_| LOCAL_JWT_SECRET.into()),
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "keys" => options.keys_only = true,
            "--host" => options.host = value()?,
            "--port" => options.port = value()?.parse().context("--port")?,
            "--database-url" => options.database_url = value()?,
            "--jwt-secret" => options.jwt_secret = value()?,
            "--help" | "-h" => {
                println!("see the module docs in crates/local-supabase/src/main.rs");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse(std::env::args().skip(1))?;
    let keys = Keys::new(&options.jwt_secret).context("JWT secret")?;
    let url = format!("http://{}:{}", options.host, options.port);
    if options.keys_only {
        println!(
            "{}",
            serde_json::json!({
                "url": url,
                "anon_key": keys.anon_key(),
                "service_role_key": keys.service_role_key(),
            })
        );
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_lazy(&options.database_url)
        .context("database URL")?;
    let (changes, _) = broadcast::channel(1024);
    let shutdown = CancellationToken::new();
    let capture = tokio::spawn(realtime::capture::run(
        options.database_url.clone(),
        changes.clone(),
        shutdown.clone(),
    ));
    let state = AppState {
        pool,
        keys: Arc::new(keys),
        changes,
        issuer: format!("{url}/auth/v1"),
    };
    let listener = TcpListener::bind((options.host.as_str(), options.port))
        .await
        .with_context(|| format!("bind {}:{}", options.host, options.port))?;
    tracing::info!(%url, "local-supabase listening");
    let stop = shutdown.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            stopped().await;
            stop.cancel();
        })
        .await?;
    shutdown.cancel();
    let _ = capture.await;
    Ok(())
}

/// SIGINT or SIGTERM (how the stack scripts stop it).
async fn stopped() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
