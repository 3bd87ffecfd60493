//! The gateway's error type and its single mapping to HTTP responses.
//!
//! Every non-2xx answer is JSON: `{"error": <code>, "message": <text>}`. 5xx causes are logged
//! with their cause chain and never shown to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use substrate::http::json_error;

/// What went wrong, named for what the client sees.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or fails validation.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 402: the user has no credit left.
    #[error("insufficient credits")]
    InsufficientCredits,
    /// 403: the route key is not in the allowlist.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource (for this user).
    #[error("{0}")]
    NotFound(String),
    /// 405: wrong method for this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 413: the body exceeds the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 503: a dependency (broker, registry, database) is unavailable; retrying may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// 500: anything else; details go to the log only.
    #[error(transparent)]
    Unexpected(#[from] Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Wraps any error as an unexpected (500) failure.
    pub fn unexpected(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unexpected(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest(message) => {
                json_error(StatusCode::BAD_REQUEST, "bad_request", message)
            }
            Self::Unauthorized(message) => {
                let mut response = json_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
                response.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                response
            }
            // The frontend matches on this exact error code (services spec §8).
            Self::InsufficientCredits => json_error(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_credits",
                "no credits left for an upload",
            ),
            Self::Forbidden(message) => json_error(StatusCode::FORBIDDEN, "forbidden", message),
            Self::NotFound(message) => json_error(StatusCode::NOT_FOUND, "not_found", message),
            Self::MethodNotAllowed => json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            Self::PayloadTooLarge => json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload Too Large",
            ),
            Self::Unavailable(message) => {
                tracing::warn!(message, "dependency unavailable");
                json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            Self::Unexpected(error) => {
                tracing::error!(
                    error.message = %error,
                    error.cause_chain = %substrate::telemetry::cause_chain(&*error),
                    "request failed"
                );
                json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal server error",
                )
            }
        }
    }
}
