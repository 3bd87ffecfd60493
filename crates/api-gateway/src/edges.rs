//! Narrow traits in front of the gateway's dependencies, with their real implementations:
//! [`EventSink`] (JSON → Avro → broker, acknowledged; from `substrate`), [`MediaStore`] (Postgres) and
//! [`ObjectStore`] (S3 presigning and removal). Handlers depend only on the traits.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
pub use substrate::events::{AvroEventSink, EventSink, SinkError};
use substrate::s3::{ObjectClient, ObjectError};

/// A `media_files` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Object key (`files/<user>/<uuid>/<name>`).
    pub file_path: String,
    /// Original file name.
    pub file_name: String,
    /// MIME type.
    pub media_type: String,
    /// Size in bytes.
    pub file_size: i64,
}

/// Outcome of the atomic credit check-and-deduct of the legacy upload route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOutcome {
    /// One credit was deducted.
    Deducted,
    /// The balance was zero or negative (or the user has no ledger); nothing changed.
    Insufficient,
}

/// A database failure.
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct StoreError(pub String);

/// Credits and file metadata.
#[async_trait]
pub trait MediaStore: Send + Sync + std::fmt::Debug {
    /// Checks the balance and deducts one credit in one transaction (no free uploads).
    async fn deduct_upload_credit(
        &self,
        user_id: &str,
        file_name: &str,
        request_id: &str,
    ) -> Result<CreditOutcome, StoreError>;
    /// The caller's active file at `file_path`, if any.
    async fn active_file(
        &self,
        user_id: &str,
        file_path: &str,
    ) -> Result<Option<FileRecord>, StoreError>;
    /// Marks the caller's active file deleted; true when a row changed.
    async fn soft_delete(&self, user_id: &str, file_path: &str) -> Result<bool, StoreError>;
}

/// [`MediaStore`] on Postgres.
/// Prefix of the per-user advisory lock that serialises every credit spend: the lock key is
/// `hashtextextended(CREDIT_LOCK_PREFIX || user_id, 0)`. The upload saga's credit check
/// (`LOCK_SQL` in `pyflink_jobs/credit_check_processor.py`) takes the same lock, so the legacy
/// route and the saga can never both spend a user's last credit; change both together
/// (`tests/e2e/test_credit_lock.py` holds them to it).
pub const CREDIT_LOCK_PREFIX: &str = "credit_ledger:";

#[derive(Debug, Clone)]
pub struct PgMediaStore {
    pool: PgPool,
}

impl PgMediaStore {
    /// A store over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn store_error(error: sqlx::Error) -> StoreError {
    StoreError(error.to_string())
}

#[async_trait]
impl MediaStore for PgMediaStore {
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

    async fn active_file(
        &self,
        user_id: &str,
        file_path: &str,
    ) -> Result<Option<FileRecord>, StoreError> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "select file_path, file_name, media_type, file_size from public.media_files
             where file_path = $1 and user_id = $2 and status = 'active'
             limit 1",
        )
        .bind(file_path)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(
            row.map(|(file_path, file_name, media_type, file_size)| FileRecord {
                file_path,
                file_name,
                media_type,
                file_size,
            }),
        )
    }

    async fn soft_delete(&self, user_id: &str, file_path: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "update public.media_files set status = 'deleted'
             where file_path = $1 and user_id = $2 and status = 'active'",
        )
        .bind(file_path)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(result.rows_affected() > 0)
    }
}

/// An object-store failure.
#[derive(Debug, thiserror::Error)]
#[error("object store: {0}")]
pub struct StorageError(pub String);

impl From<ObjectError> for StorageError {
    fn from(error: ObjectError) -> Self {
        Self(error.to_string())
    }
}

/// Presigning and removal.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// A URL that lets its holder PUT `key` into `bucket` until `expires_in` passes; the
    /// signature binds `content_type`.
    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError>;
    /// A URL that lets its holder GET `key` from `bucket` until `expires_in` passes.
    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError>;
    /// Removes `key`; a missing key is not an error.
    async fn remove(&self, bucket: &str, key: &str) -> Result<(), StorageError>;
}

/// [`ObjectStore`] on S3/MinIO through the shared client.
#[derive(Debug, Clone)]
pub struct S3ObjectStore(ObjectClient);

impl S3ObjectStore {
    /// Clients from the S3 settings.
    pub fn new(settings: &substrate::s3::S3Settings) -> Self {
        Self(ObjectClient::new(settings))
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError> {
        Ok(self
            .0
            .presign_put(bucket, key, Some(content_type), expires_in)
            .await?)
    }

    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError> {
        Ok(self.0.presign_get(bucket, key, expires_in).await?)
    }

    async fn remove(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        Ok(self.0.remove(bucket, key).await?)
    }
}
