//! Serving an axum router with graceful shutdown, connection and request limits, and JSON
//! errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
pub use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::HttpSettings;

/// How a server treats its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Time in-flight requests get to finish after the shutdown signal.
    pub grace: Duration,
    /// Time a client gets to send a request's headers before its connection is closed.
    pub header_read_timeout: Duration,
}

impl From<&HttpSettings> for ServeLimits {
    fn from(settings: &HttpSettings) -> Self {
        Self {
            grace: Duration::from_millis(settings.shutdown_grace_ms),
            header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
        }
    }
}

/// A service's router bound to its listener, not serving yet.
#[derive(Debug)]
pub struct BoundServer {
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    port: u16,
}

impl BoundServer {
    /// Binds `settings`' address (port 0 picks a free port) for `router`.
    pub async fn bind(router: Router, settings: &HttpSettings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.address()).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            router,
            limits: ServeLimits::from(settings),
            port,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// [`serve`]s until `shutdown` is cancelled, then drains within the grace period.
    pub async fn serve(self, shutdown: CancellationToken) -> std::io::Result<()> {
        serve(self.listener, self.router, shutdown, self.limits).await
    }
}

/// Serves `router` on `listener` (HTTP/1.1 and HTTP/2) until `shutdown` is cancelled, then
/// stops accepting connections and gives in-flight requests up to `limits.grace` to finish.
/// A client that does not send its headers within `limits.header_read_timeout` is
/// disconnected, so idle or slow connections cannot pile up.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    limits: ServeLimits,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut accept_failures = 0u32;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                accept_failures = 0;
                stream
            }
            Err(error) => {
                // Out of file descriptors and the like: pause instead of spinning, keep serving
                // the connections that exist.
                accept_failures += 1;
                tracing::warn!(%error, "accepting a connection failed");
                let pause = Duration::from_millis(10 * u64::from(accept_failures.min(100)));
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Clients that vanish or time out mid-request end up here; nothing to act on.
                tracing::debug!(error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => Ok(()),
        () = tokio::time::sleep(limits.grace) => {
            tracing::warn!(grace_ms = limits.grace.as_millis() as u64, "in-flight requests did not finish within the shutdown grace period");
            Ok(())
        }
    }
}

/// Applies the request limits of `settings` to every route of `router`: at most
/// `max_concurrent_requests` at once, each at most `request_timeout_ms` long. A request over
/// either limit is answered `503` with `Retry-After: 1` and the platform's error body, at once
/// rather than queued, so callers back off while a dependency is slow. Apply it to the API
/// routes only: health checks must keep answering under load.
pub fn with_request_limits(router: Router, settings: &HttpSettings) -> Router {
    let permits = Arc::new(Semaphore::new(settings.max_concurrent_requests.max(1)));
    let timeout = Duration::from_millis(settings.request_timeout_ms);
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let permits = permits.clone();
            async move {
                let Ok(_permit) = permits.try_acquire_owned() else {
                    return retry_later("overloaded", "too many requests in flight; retry shortly");
                };
                match tokio::time::timeout(timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => retry_later(
                        "timeout",
                        format!(
                            "the request did not complete within {} ms; retry shortly",
                            timeout.as_millis()
                        ),
                    ),
                }
            }
        },
    ))
}

fn retry_later(code: &str, message: impl Into<String>) -> Response {
    let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, code, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// A client builder for outbound HTTP (JWKS, schema registry): HTTPS verified against the
/// system trust store, plus the CA certificates in the PEM file `extra_ca` when one is given
/// (a private CA of the cluster), with a per-request timeout.
pub fn client_builder(
    timeout: Duration,
    extra_ca: Option<&str>,
) -> Result<reqwest::ClientBuilder, crate::BoxError> {
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(path) = extra_ca.filter(|path| !path.is_empty()) {
        let pem = std::fs::read(path).map_err(|e| format!("CA file {path}: {e}"))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("CA file {path}: {e}"))?;
        if certificates.is_empty() {
            return Err(format!("CA file {path}: no PEM certificate in it").into());
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder)
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

/// The request id header: the caller's when it sent a usable one, otherwise a new UUID; it is
/// echoed on the response and recorded on the request's span, so a client's bug report can
/// name the trace.
pub const REQUEST_ID: &str = "x-request-id";

/// The shape of a service's HTTP edge ([`with_edge`]).
#[derive(Debug, Clone)]
pub struct Edge {
    /// Service name: the meter of `http.server.request.duration`.
    pub service: &'static str,
    /// Largest request body accepted; larger ones are answered 413 by the extractors.
    pub body_limit: usize,
    /// CORS for browser callers; `None` for services no browser calls.
    pub cors: Option<CorsLayer>,
}

/// Wraps every route of `router` (fallback included) in the edge the HTTP services share,
/// outermost first:
/// - a request id ([`REQUEST_ID`]), echoed on the response;
/// - one span per request, `http.request`, with method, route template, status and request id,
///   continuing the caller's W3C `traceparent` when it sent one;
/// - `http.server.request.duration` (seconds, OpenTelemetry HTTP conventions:
///   `http.request.method`, `http.route`, `http.response.status_code`);
/// - CORS when configured: preflights (any `OPTIONS`) are answered before routing or
///   authentication, and every response, errors included, allows the origin;
/// - the body limit.
///
/// Concurrency and time limits are not part of it: [`with_request_limits`] applies them to the
/// API routes alone, before this, so health checks keep answering under load.
pub fn with_edge(router: Router, edge: Edge) -> Router {
    let router = router.layer(DefaultBodyLimit::max(edge.body_limit));
    let router = match edge.cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let request_id = HeaderName::from_static(REQUEST_ID);
    with_request_metrics(router, edge.service)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(record_status)
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The route template, never the raw path: paths carry ids, which would make every request a
/// span name and a metric series of its own.
fn route_of<B>(request: &axum::http::Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let route = route_of(request);
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http.request",
        "otel.name" = %format_args!("{} {route}", request.method()),
        "otel.kind" = "server",
        "otel.status_code" = tracing::field::Empty,
        "http.request.method" = %request.method(),
        "http.route" = route,
        "http.response.status_code" = tracing::field::Empty,
        "request_id" = request_id,
    );
    crate::telemetry::continue_trace(&span, |name| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    });
    span
}

fn record_status<B>(response: &axum::http::Response<B>, _latency: Duration, span: &tracing::Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

fn with_request_metrics(router: Router, service: &'static str) -> Router {
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
                let route = route_of(&request).to_owned();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::routing::get;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::*;

    /// `/slow` tells `entered` it started, then waits for `gate`.
    fn limited(max: usize, timeout_ms: u64, gate: Arc<Notify>, entered: Arc<Notify>) -> Router {
        let app = Router::new().route(
            "/slow",
            get(move || {
                let (gate, entered) = (gate.clone(), entered.clone());
                async move {
                    entered.notify_one();
                    gate.notified().await;
                    "done"
                }
            }),
        );
        with_request_limits(
            app,
            &HttpSettings {
                max_concurrent_requests: max,
                request_timeout_ms: timeout_ms,
                ..HttpSettings::default()
            },
        )
    }

    fn get_slow() -> Request {
        Request::builder().uri("/slow").body(Body::empty()).unwrap()
    }

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn requests_over_the_concurrency_limit_are_shed_with_retry_after() {
        let (gate, entered) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let app = limited(1, 60_000, gate.clone(), entered.clone());
        let first = tokio::spawn(app.clone().oneshot(get_slow()));
        // The first request holds the only permit while it waits on the gate.
        entered.notified().await;
        let shed = app
            .clone()
            .oneshot(get_slow())
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        assert_eq!(body_json(shed).await["error"], "overloaded");
        gate.notify_one();
        let served = first.await.unwrap().unwrap_or_else(|e| match e {});
        assert_eq!(served.status(), StatusCode::OK);
        // the permit is back
        gate.notify_one();
        let again = app.oneshot(get_slow()).await.unwrap_or_else(|e| match e {});
        assert_eq!(again.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_disconnected() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let app = Router::new().route("/", get(|| async { "hello" }));
        let limits = ServeLimits {
            grace: Duration::from_secs(1),
            header_read_timeout: Duration::from_millis(200),
        };
        let server = tokio::spawn(serve(listener, app, shutdown.clone(), limits));

        // A complete request is served.
        let mut whole = tokio::net::TcpStream::connect(address).await.unwrap();
        whole
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        whole.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        // Half a request: the server hangs up (without the timeout it would wait forever; the
        // deadline only bounds the test).
        let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the connection was still open");

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_request_over_the_time_limit_is_answered_503() {
        let gate = Arc::new(Notify::new());
        let response = limited(4, 250, gate, Arc::new(Notify::new()))
            .oneshot(get_slow())
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = body_json(response).await;
        assert_eq!(body["error"], "timeout");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("250 ms"))
        );
    }
}
