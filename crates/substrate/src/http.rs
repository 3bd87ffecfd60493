//! Serving an axum router with graceful shutdown and JSON errors.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
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

/// Records `http.server.request.duration` (seconds, OpenTelemetry HTTP semantic conventions:
/// `http.request.method`, `http.route`, `http.response.status_code`) for every request of
/// `router`, on the meter named `service`.
pub fn with_request_metrics(router: Router, service: &'static str) -> Router {
    let duration = opentelemetry::global::meter(service)
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .with_description("Duration of HTTP server requests")
        .build();
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let duration: Histogram<f64> = duration.clone();
            async move {
                let method = request.method().as_str().to_owned();
                // The route template, never the raw path: paths carry ids and would explode the
                // number of series.
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
                let started = Instant::now();
                let response = next.run(request).await;
                duration.record(
                    started.elapsed().as_secs_f64(),
                    &[
                        KeyValue::new("http.request.method", method),
                        KeyValue::new("http.route", route),
                        KeyValue::new(
                            "http.response.status_code",
                            i64::from(response.status().as_u16()),
                        ),
                    ],
                );
                response
            }
        },
    ))
}
