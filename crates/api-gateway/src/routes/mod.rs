//! HTTP routes. Each module exports its handlers; [`router`] assembles them with JSON 404/405
//! answers, the health routes and the shared HTTP edge (request id, span, metrics, CORS, body
//! limit).

pub mod events;
pub mod intents;
pub mod legacy;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::routing::post;
use serde_json::{Map, Value};
use substrate::config::HttpSettings;
use substrate::http::{AllowOrigin, CorsLayer, Edge};

use crate::error::ApiError;
use crate::state::AppState;

/// The gateway's full router.
pub fn router(state: AppState, health: Router, body_limit: usize, http: &HttpSettings) -> Router {
    let api = Router::new()
        .route("/webhooks/{key}", post(events::webhook))
        .route("/webhooks/{key}/{*rest}", post(events::webhook))
        .route("/api/v1/events/{key}", post(events::external))
        .route("/api/v1/events/{key}/batch", post(events::batch))
        .route("/api/v1/events/{key}/{*rest}", post(events::external))
        .route("/api/v1/media/upload-intent", post(intents::upload))
        .route("/api/v1/media/download-intent", post(intents::download))
        .route("/api/v1/media/delete-intent", post(intents::delete))
        .route("/api/v1/media/upload-url", post(legacy::upload_url))
        .route("/api/v1/media/download-url", post(legacy::download_url))
        .route("/api/v1/media/delete", post(legacy::delete))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone());
    let document = Router::new()
        .route("/openapi.json", axum::routing::get(crate::openapi::serve))
        .with_state(state.clone());
    // Concurrency and time limits on the API only: health checks keep answering under load.
    let router = substrate::http::with_request_limits(api, http)
        .merge(health)
        .merge(document)
        .fallback(|| async { ApiError::NotFound("404 page not found".into()) });
    substrate::http::with_edge(
        router,
        Edge {
            service: "api-gateway",
            body_limit,
            cors: Some(cors()),
        },
    )
}

/// The browser API's CORS, as the Go gateway answered it: any origin, and any `OPTIONS` is a preflight
/// answered 200 before routing or authentication.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([
            Method::POST,
            Method::GET,
            Method::OPTIONS,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([
            header::ACCEPT,
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::ACCEPT_ENCODING,
            HeaderName::from_static("x-csrf-token"),
            header::AUTHORIZATION,
            HeaderName::from_static("x-webhook-secret"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
        ])
        .expose_headers([HeaderName::from_static(substrate::http::REQUEST_ID)])
}

/// A request body that must be one JSON object (≤ the body limit).
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest(format!("Error reading request body: {rejection}"))
                }
            })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::BadRequest(
                "Invalid JSON structure: the body must be a JSON object".into(),
            )),
            Err(error) => Err(ApiError::BadRequest(format!(
                "Invalid JSON structure: {error}"
            ))),
        }
    }
}
