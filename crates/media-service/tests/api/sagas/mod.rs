//! Saga handlers over fakes, one module per consumed topic: every case of the original service's
//! saga behaviour, adapted to the fixes (errors classified instead of logged-and-committed,
//! rejection events for invalid requests, idempotent keys and deletes, safe keys, growing
//! delete-retry delays).

mod delete;
mod delete_retry;
mod download_signing;
mod expired_cleanup;
mod refusals;
mod upload_retry;
mod upload_signing;

use serde_json::Value;
use substrate::kafka::HandlerError;

pub(crate) fn is_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

pub(crate) fn permanent(result: &Result<(), HandlerError>) -> bool {
    matches!(result, Err(HandlerError::Permanent(_)))
}

pub(crate) fn retryable(result: &Result<(), HandlerError>) -> bool {
    matches!(result, Err(HandlerError::Retryable(_)))
}
