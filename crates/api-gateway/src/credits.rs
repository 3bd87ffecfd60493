//! The credit ledger of the legacy upload route ([`CreditLedger`], on Postgres). The route's
//! other dependencies are shared with the media-service: `substrate::media` (`media_files`, the
//! bucket) and `substrate::events` (the broker).

use async_trait::async_trait;
use sqlx::PgPool;

use crate::error::StoreError;

/// Outcome of the atomic credit check-and-deduct of the legacy upload route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOutcome {
    /// One credit was deducted.
    Deducted,
    /// The balance was zero or negative (or the user has no ledger); nothing changed.
    Insufficient,
}

/// The credit ledger as the legacy upload route spends it.
#[async_trait]
pub trait CreditLedger: Send + Sync + std::fmt::Debug {
    /// Checks the balance and deducts one credit in one transaction (no free uploads).
    async fn deduct_upload_credit(
        &self,
        user_id: &str,
        file_name: &str,
        request_id: &str,
    ) -> Result<CreditOutcome, StoreError>;
}

/// Prefix of the per-user advisory lock that serialises every credit spend: the lock key is
/// `hashtextextended(CREDIT_LOCK_PREFIX || user_id, 0)`. The upload saga's credit check
/// (`LOCK_SQL` in `pyflink_jobs/credit_check_processor.py`) takes the same lock, so the legacy
/// route and the saga can never both spend a user's last credit; change both together
/// (`tests/e2e/test_credit_lock.py` holds them to it).
pub const CREDIT_LOCK_PREFIX: &str = "credit_ledger:";

/// [`CreditLedger`] on Postgres.
#[derive(Debug, Clone)]
pub struct PgCreditLedger {
    pool: PgPool,
}

impl PgCreditLedger {
    /// A ledger over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn store_error(error: sqlx::Error) -> StoreError {
    StoreError::new("credit deduction", error)
}

#[async_trait]
impl CreditLedger for PgCreditLedger {
    async fn deduct_upload_credit(
        &self,
        user_id: &str,
        file_name: &str,
        request_id: &str,
    ) -> Result<CreditOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        sqlx::query("select pg_advisory_xact_lock(hashtextextended($1 || $2, 0))")
            .bind(CREDIT_LOCK_PREFIX)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let balance: i64 = sqlx::query_scalar(
            "select coalesce(sum(amount), 0)::bigint from public.credit_ledger where user_id = $1",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        if balance <= 0 {
            return Ok(CreditOutcome::Insufficient);
        }
        let now = substrate::time::now_rfc3339();
        let deducted = sqlx::query(
            "insert into public.credit_ledger
                 (user_id, amount, event_type, description, event_time, idempotency_key)
             values ($1, -1, 'credit.upload_deducted', 'Upload: ' || $2, $3, $4)
             on conflict (idempotency_key) do nothing",
        )
        .bind(user_id)
        .bind(file_name)
        .bind(&now)
        .bind(format!("legacy_upload_deducted:{request_id}"))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if deducted.rows_affected() > 0 {
            // The same notification the saga's credit check writes with its deduction, in the
            // same transaction, so the browser's credit badge refreshes whichever path spent.
            let payload = serde_json::json!({
                "amount": -1,
                "reason": "upload_deducted",
                "file_name": file_name,
                "request_id": request_id,
            });
            sqlx::query(
                "insert into public.user_notifications
                     (user_id, event_type, payload, event_time, idempotency_key)
                 values ($1, 'credit.balance_changed', $2, $3, $4)
                 on conflict (idempotency_key) do nothing",
            )
            .bind(user_id)
            .bind(payload.to_string())
            .bind(&now)
            .bind(format!(
                "credit.balance_changed:legacy_upload_deducted:{request_id}"
            ))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(CreditOutcome::Deducted)
    }
}
