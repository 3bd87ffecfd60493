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
    /// 409: another attempt with the same `Idempotency-Key` is still running.
    #[error("{0}")]
    Conflict(String),
    /// 422: the request is well-formed but cannot be applied as sent (an `Idempotency-Key`
    /// reused for another body).
    #[error("{0}")]
    Unprocessable(String),
    /// 429: the caller's rate limit is spent; `retry_after_secs` says when a request fits.
    #[error("rate limit exceeded")]
    TooManyRequests {
        /// Whole seconds until the next request is allowed.
        retry_after_secs: u64,
    },
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

/// A statement of one of the gateway's own tables failed (the database is unreachable, or
/// refused it).
#[derive(Debug, thiserror::Error)]
#[error("database {operation} failed")]
pub struct StoreError {
    operation: &'static str,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// `operation` failed with `cause`.
    pub fn new(
        operation: &'static str,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            operation,
            source: cause.into(),
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Wraps any error as an unexpected (500) failure.
    pub fn unexpected(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unexpected(error.into())
    }
}

impl ApiError {
    /// What the client is told: status, error code and message. Logs what only the operator
    /// should see (dependency outages, the cause chain of a 500).
    pub fn describe(self) -> (StatusCode, &'static str, String) {
        match self {
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, "bad_request", message),
            Self::Unauthorized(message) => (StatusCode::UNAUTHORIZED, "unauthorized", message),
            // The frontend matches on this exact error code to offer buying credits.
            Self::InsufficientCredits => (
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_credits",
                "no credits left for an upload".into(),
            ),
            Self::Forbidden(message) => (StatusCode::FORBIDDEN, "forbidden", message),
            Self::NotFound(message) => (StatusCode::NOT_FOUND, "not_found", message),
            Self::Conflict(message) => (StatusCode::CONFLICT, "conflict", message),
            Self::Unprocessable(message) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
            }
            Self::TooManyRequests { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("Rate limit exceeded; retry in {retry_after_secs} s"),
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed".into(),
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload Too Large".into(),
            ),
            Self::Unavailable(message) => {
                tracing::warn!(message, "dependency unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            Self::Unexpected(error) => {
                tracing::error!(
                    error.message = %error,
                    error.cause_chain = %substrate::telemetry::cause_chain(&*error),
                    "request failed"
                );
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal server error".into(),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let extra_header = match &self {
            Self::Unauthorized(_) => Some((
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            )),
            Self::TooManyRequests { retry_after_secs } => Some((
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_secs),
            )),
            _ => None,
        };
        let (status, code, message) = self.describe();
        let mut response = json_error(status, code, message);
        if let Some((name, value)) = extra_header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}
