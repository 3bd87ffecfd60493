//! Logs, traces and metrics.
//!
//! One call to [`init`] per process sets up a `tracing` registry with an `EnvFilter`, JSON (or
//! human-readable) log lines on stderr and OpenTelemetry spans; when an OTLP endpoint is
//! configured, traces and metrics are exported over OTLP/gRPC with `service.name` set. Without
//! an endpoint nothing is exported and the global meter is a no-op, so tests stay silent and
//! offline.
//!
//! Traces cross process boundaries as W3C trace context: [`continue_trace`] makes a span the
//! child of an incoming `traceparent` (an HTTP header, a record header), [`trace_headers`] gives
//! the current span's context for an outgoing record. Spans exist even without an exporter, so
//! a service that exports nothing still passes the trace on: without an endpoint a trace that
//! starts here is not sampled, one that arrives sampled stays sampled downstream.

use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Telemetry settings shared by every service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// `EnvFilter` directives, e.g. `info,rdkafka=warn`.
    pub log_filter: String,
    /// `json` (one object per line, for collectors) or `pretty` (for people).
    pub log_format: LogFormat,
    /// OTLP/gRPC endpoint such as `http://otel-collector:4317`; unset disables export.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_filter: "info,rdkafka=warn,h2=warn,hyper=warn,tower=warn,aws=warn".to_owned(),
            log_format: LogFormat::Json,
            otlp_endpoint: None,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Multi-line, coloured, for terminals.
    Pretty,
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter directives do not parse.
    #[error("invalid log filter: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Keeps the exporters alive; dropping it flushes and shuts them down.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Flush what was recorded during shutdown; errors here can only be reported on stderr.
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("trace exporter shutdown failed: {error}");
        }
        if let Some(provider) = self.meter_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("metric exporter shutdown failed: {error}");
        }
    }
}

/// Installs the global subscriber (and OTel providers when configured) for `service_name`.
/// Must run inside a Tokio runtime when an OTLP endpoint is set.
pub fn init(
    service_name: &str,
    settings: &TelemetrySettings,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_new(&settings.log_filter)
        .map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let fmt_layer = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };

    let mut guard = TelemetryGuard::default();
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attributes([KeyValue::new("service.namespace", "event-substrate")])
        .build();
    let tracer_provider = match settings.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        None => SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .with_resource(resource)
            .build(),
        Some(endpoint) => {
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            let meter_provider = SdkMeterProvider::builder()
                .with_periodic_exporter(metrics)
                .with_resource(resource.clone())
                .build();
            opentelemetry::global::set_meter_provider(meter_provider.clone());
            guard.meter_provider = Some(meter_provider);
            SdkTracerProvider::builder()
                .with_batch_exporter(spans)
                .with_resource(resource)
                .build()
        }
    };
    let tracer = tracer_provider.tracer(service_name.to_owned());
    guard.tracer_provider = Some(tracer_provider);
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);

    Registry::default()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    Ok(guard)
}

/// The W3C trace context header every platform hop carries (HTTP and record headers).
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header with vendor-specific trace state, passed on beside [`TRACEPARENT`].
pub const TRACESTATE: &str = "tracestate";

/// Makes `span` a child of the trace context that `header` finds (`traceparent`, `tracestate`).
/// Without a valid `traceparent` the span stays where it is (a new trace, or a child of the
/// current span). Trace context is W3C's, fixed here rather than taken from a global setting,
/// because it is part of the wire contract between the services.
pub fn continue_trace<'a>(span: &tracing::Span, header: impl Fn(&str) -> Option<&'a str>) {
    let found = Found {
        traceparent: header(TRACEPARENT),
        tracestate: header(TRACESTATE),
    };
    let parent = TraceContextPropagator::new().extract(&found);
    if opentelemetry::trace::TraceContextExt::span(&parent)
        .span_context()
        .is_valid()
    {
        // Fails only when no OpenTelemetry layer is installed, and then there is no trace to
        // continue either.
        let _ = span.set_parent(parent);
    }
}

/// The current span's trace context as `(name, value)` headers for an outgoing message; empty
/// when there is no current trace.
pub fn trace_headers() -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut Collect(&mut headers));
    headers
}

/// Links `span` to the trace of `other`: for work done once for several records (one insert
/// statement for a batch), whose span has one parent but belongs to every record's trace.
pub fn add_link(span: &tracing::Span, other: &tracing::Span) {
    let context = other.context();
    let linked = opentelemetry::trace::TraceContextExt::span(&context)
        .span_context()
        .clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}

struct Found<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for Found<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent,
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

struct Collect<'a>(&'a mut Vec<(&'static str, String)>);

impl Injector for Collect<'_> {
    fn set(&mut self, key: &str, value: String) {
        let name = match key {
            TRACEPARENT => TRACEPARENT,
            TRACESTATE => TRACESTATE,
            // The W3C propagator writes no other header.
            _ => return,
        };
        self.0.push((name, value));
    }
}

/// Logs an error with its full cause chain in the `error.message` / `error.cause_chain` fields.
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}
