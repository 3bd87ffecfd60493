//! `local-supabase`: the parts of Supabase the platform's browser frontend and tests use,
//! served on 127.0.0.1 over the local stack's Postgres. Dev-only, like `local-objectstore`;
//! production uses Supabase itself.
//!
//! - `/auth/v1/*`: a GoTrue subset ([`auth`]), writing `auth.*` so the project's triggers fire;
//! - `/rest/v1/<table>`: a PostgREST read subset ([`rest`]) under the caller's role and RLS;
//! - `/realtime/v1/websocket`: Realtime `postgres_changes` ([`realtime`]).
//!
//! Every route but the websocket (which takes it in its query) wants an `apikey` header
//! holding the anon or service-role key, as Supabase's gateway does.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub mod auth;
pub mod keys;
pub mod realtime;
pub mod rest;

use keys::Keys;
use realtime::capture::Change;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Connections as `postgres`; each request switches role inside its transaction.
    pub pool: PgPool,
    /// Token signing and verification.
    pub keys: Arc<Keys>,
    /// Captured row changes, fanned out to the websocket sessions.
    pub changes: broadcast::Sender<Arc<Change>>,
    /// `iss` of issued access tokens.
    pub issuer: String,
}

/// The whole server.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .nest("/auth/v1", auth::router())
        .route(
            "/rest/v1/{table}",
            get(rest::read)
                .post(rest::read_only)
                .patch(rest::read_only)
                .put(rest::read_only)
                .delete(rest::read_only),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    Router::new()
        .route("/realtime/v1/websocket", get(realtime::socket::upgrade))
        .merge(api)
        .layer(cors())
        .with_state(state)
}

/// Browsers on any local origin (the Vite dev server, Playwright) may call it; no cookies are
/// involved, so a wildcard origin gives nothing away.
fn cors() -> CorsLayer {
    let headers = [
        "apikey",
        "authorization",
        "content-type",
        "x-client-info",
        "x-supabase-api-version",
        "prefer",
        "accept-profile",
        "content-profile",
        "range",
    ]
    .map(HeaderName::from_static);
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(headers)
        .expose_headers([
            header::CONTENT_RANGE,
            HeaderName::from_static("x-total-count"),
            HeaderName::from_static("x-supabase-api-version"),
        ])
}

async fn require_api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("apikey")
        .and_then(|value: &HeaderValue| value.to_str().ok());
    match key.map(|key| state.keys.verify(key)) {
        Some(Ok(_)) => next.run(request).await,
        Some(Err(_)) => unauthorized("Invalid API key"),
        None => unauthorized("No API key found in request"),
    }
}

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"message": message})),
    )
        .into_response()
}
