//! `internal.media.delete.retry` → remove the object again after a growing delay → nothing on
//! success, the next retry (retry_count + 1) while under the cap, `internal.media.delete.dead-letter`
//! after it.
//!
//! Backoff without blocking other sagas: retry number n is due at `failure + base × 2ⁿ`
//! (capped). This handler runs in its own consumer group on the retry topic only; a record
//! that is not due yet is handed back to the loop as [`HandlerError::Deferred`], which waits
//! (polling, partition paused) and offers it again, so waiting holds back only later retries,
//! never uploads, downloads or deletes. Shutdown interrupts the wait; the record is then
//! redelivered.

use std::time::Duration;

use chrono::{DateTime, Utc};
use substrate::kafka::HandlerError;

use crate::deps::Deps;
use crate::domain::{self, Fields};

/// The delay before retry number `retry_count`.
pub fn delay(deps: &Deps, retry_count: u32) -> Duration {
    let factor = 2u64.saturating_pow(retry_count.min(32));
    Duration::from_millis(
        deps.media
            .delete_retry_base_delay_ms
            .saturating_mul(factor)
            .min(deps.media.delete_retry_max_delay_ms),
    )
}

/// Handles one retry record, timed from its `failed_at`.
pub async fn handle(deps: &Deps, f: &Fields) -> Result<(), HandlerError> {
    handle_at(deps, f, None).await
}

/// Handles one retry record. The retry is due `delay(retry_count)` after the failure: after the
/// record's producer timestamp when known (milliseconds; the record is produced right after the
/// failure), else after `failed_at`, whose whole seconds would make short delays up to 1 s early.
pub async fn handle_at(
    deps: &Deps,
    f: &Fields,
    produced_at: Option<DateTime<Utc>>,
) -> Result<(), HandlerError> {
    let this = domain::delete_retry(f).map_err(HandlerError::permanent)?;
    let file_path = this.file_path.as_str();
    let retry_count = domain::retry_count(f);
    let failed_at = produced_at.unwrap_or_else(|| {
        this.failed_at
            .parse::<DateTime<Utc>>()
            .unwrap_or_else(|_| Utc::now())
    });
    let wait = delay(deps, retry_count);
    let due = failed_at + chrono::Duration::from_std(wait).unwrap_or_default();
    if let Ok(remaining) = (due - Utc::now()).to_std()
        && !remaining.is_zero()
    {
        // The loop waits with the partition paused and keeps polling, so a long delay neither
        // blocks this task nor costs the group membership.
        return Err(HandlerError::Deferred(remaining));
    }

    let Err(error) = deps.storage.remove(file_path).await else {
        tracing::info!(file_path, retry_count, "object removed on retry");
        return Ok(());
    };
    if retry_count < deps.media.delete_max_retries {
        tracing::warn!(%error, file_path, retry_count, "removal failed again; retrying later");
        deps.emit(&deps.topics.delete_retry, this.next()).await
    } else {
        tracing::error!(%error, file_path, retry_count, "removal failed for good; dead-lettering");
        deps.emit(
            &deps.topics.delete_dead_letter,
            this.give_up(error.to_string()),
        )
        .await
    }
}
