//! `local-objectstore`: S3 on 127.0.0.1 with MinIO-style webhooks, for the local stack only.
//!
//! ```text
//! local-objectstore --root .local/objectstore --port 9000 \
//!     --access-key admin --secret-key password --bucket media-uploads \
//!     --webhook uploads/=http://127.0.0.1:8090/webhooks/media-upload \
//!     --webhook files/=http://127.0.0.1:8090/webhooks/file-ready [--webhook-token TOKEN] \
//!     [--cors-origin http://127.0.0.1:5173 ...]
//! ```
//!
//! Browsers on the `--cors-origin` origins (default: the frontend's dev server, as the compose
//! MinIO allows it) may GET, PUT and HEAD with any headers and read the ETag.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use local_objectstore::notify::RetryPolicy;
use local_objectstore::{Notifier, NotifyingStore, WebhookTarget};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

#[derive(Debug)]
struct Options {
    root: PathBuf,
    host: String,
    port: u16,
    access_key: String,
    secret_key: String,
    buckets: Vec<String>,
    webhooks: Vec<WebhookTarget>,
    webhook_token: Option<String>,
    cors_origins: Vec<String>,
}

fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options {
        root: PathBuf::from(".local/objectstore"),
        host: "127.0.0.1".into(),
        port: 9000,
        access_key: "admin".into(),
        secret_key: "password".into(),
        buckets: Vec::new(),
        webhooks: Vec::new(),
        webhook_token: None,
        cors_origins: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--root" => options.root = PathBuf::from(value()?),
            "--host" => options.host = value()?,
            "--port" => options.port = value()?.parse().context("--port")?,
            "--access-key" => options.access_key = value()?,
            "--secret-key" => options.secret_key = value()?,
            "--bucket" => options.buckets.push(value()?),
            "--webhook" => options
                .webhooks
                .push(WebhookTarget::parse(&value()?).map_err(anyhow::Error::msg)?),
            "--webhook-token" => options.webhook_token = Some(value()?).filter(|t| !t.is_empty()),
            "--cors-origin" => options.cors_origins.push(value()?),
            "--help" | "-h" => {
                println!("see the module docs in crates/local-objectstore/src/main.rs");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    if options.cors_origins.is_empty() {
        options.cors_origins = vec![
            "http://localhost:5173".into(),
            "http://127.0.0.1:5173".into(),
        ];
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = parse(std::env::args().skip(1))?;

    std::fs::create_dir_all(&options.root)
        .with_context(|| format!("creating {}", options.root.display()))?;
    // s3s-fs maps a bucket to a directory, so creating the directory creates the bucket.
    for bucket in &options.buckets {
        std::fs::create_dir_all(options.root.join(bucket))
            .with_context(|| format!("creating bucket {bucket}"))?;
    }
    let filesystem = s3s_fs::FileSystem::new(&options.root)
        .map_err(|e| anyhow::anyhow!("opening the store: {e:?}"))?;
    let endpoint = format!("http://{}:{}", options.host, options.port);
    let notifier = Notifier::start(
        options.webhooks.clone(),
        options.webhook_token.clone(),
        options.access_key.clone(),
        endpoint.clone(),
        RetryPolicy::default(),
    );
    let mut builder = S3ServiceBuilder::new(NotifyingStore::new(filesystem, notifier));
    // Every request must carry a valid SigV4 signature (header or presigned query) for this key.
    builder.set_auth(SimpleAuth::from_single(
        options.access_key.clone(),
        options.secret_key.clone(),
    ));
    let cors = local_objectstore::cors(&options.cors_origins)?;
    let service = hyper_util::service::TowerToHyperService::new(
        tower::ServiceBuilder::new()
            .layer(cors)
            .service(builder.build()),
    );

    let listener = TcpListener::bind((options.host.as_str(), options.port))
        .await
        .with_context(|| format!("binding {endpoint}"))?;
    tracing::info!(%endpoint, root = %options.root.display(), buckets = ?options.buckets, webhooks = ?options.webhooks, "local object store listening");

    let server = ConnBuilder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = server.serve_connection(TokioIo::new(socket), service.clone());
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(Duration::from_secs(5)) => tracing::warn!("connections still open at shutdown"),
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
