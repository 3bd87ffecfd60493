//! Serving an axum router with graceful shutdown and JSON errors.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting connections
/// and gives in-flight requests up to `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let drain_started = shutdown.clone();
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move { drain_started.cancelled().await })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "in-flight requests did not finish within the shutdown grace period");
            Ok(())
        }
    }
}

/// The platform's error body: `{"error": <code>, "message": <text>}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `unauthorized`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

/// A JSON error response with the given status, code and message.
pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: code.to_owned(),
            message: message.into(),
        }),
    )
        .into_response()
}
