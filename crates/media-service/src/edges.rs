//! Narrow traits in front of the object store and `media_files`, with their real
//! implementations. Handlers depend only on the traits.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use sqlx::PgPool;

pub use substrate::events::{AvroEventSink, EventSink, SinkError};

/// An object-store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The source object of a move does not exist (and the destination does not either).
    #[error("object not found: {0}")]
    NotFound(String),
    /// Anything else (network, permissions, server errors); retrying may help.
    #[error("object store: {0}")]
    Failed(String),
}

/// Presigning and object operations.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Presigned PUT on the public endpoint; the signature binds `content_type`, so the upload
    /// must be sent with exactly that `Content-Type`.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError>;
    /// Presigned GET on the public endpoint.
    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String, StorageError>;
    /// Removes `key`; a missing key is not an error.
    async fn remove(&self, key: &str) -> Result<(), StorageError>;
    /// Server-side copy `from` → `to`, then delete `from`. Idempotent: when `from` is already
    /// gone but `to` exists, the move happened before and counts as done.
    async fn move_object(&self, from: &str, to: &str) -> Result<(), StorageError>;
}

/// [`ObjectStore`] on S3/MinIO.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    presign: aws_sdk_s3::Client,
    internal: aws_sdk_s3::Client,
    bucket: String,
}

impl S3ObjectStore {
    /// Clients from the S3 settings.
    pub fn new(settings: &substrate::s3::S3Settings) -> Self {
        Self {
            presign: settings.presign_client(),
            internal: settings.internal_client(),
            bucket: settings.bucket.clone(),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self
            .internal
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(false),
            Err(e) => Err(StorageError::Failed(DisplayErrorContext(e).to_string())),
        }
    }
}

fn failed<E: std::error::Error + Send + Sync + 'static>(
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError {
    StorageError::Failed(DisplayErrorContext(error).to_string())
}

fn presigning(expires_in: Duration) -> Result<PresigningConfig, StorageError> {
    PresigningConfig::expires_in(expires_in).map_err(|e| StorageError::Failed(e.to_string()))
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError> {
        let request = self
            .presign
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(failed)?;
        Ok(request.uri().to_owned())
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String, StorageError> {
        let request = self
            .presign
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(failed)?;
        Ok(request.uri().to_owned())
    }

    async fn remove(&self, key: &str) -> Result<(), StorageError> {
        self.internal
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn move_object(&self, from: &str, to: &str) -> Result<(), StorageError> {
        // The copy source is `bucket/key`, URL-encoded (keys may contain spaces and more).
        let source = format!(
            "{}/{}",
            self.bucket,
            percent_encoding::utf8_percent_encode(from, COPY_SOURCE)
        );
        let copied = self
            .internal
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .send()
            .await;
        if let Err(error) = copied {
            // A repeated move finds the source gone; if the destination is there, it is done.
            if self.exists(to).await? {
                return Ok(());
            }
            if !self.exists(from).await? {
                return Err(StorageError::NotFound(from.to_owned()));
            }
            return Err(failed(error));
        }
        // The copy is what matters; a leftover source expires with the uploads/ lifecycle rule.
        if let Err(error) = self.remove(from).await {
            tracing::warn!(%error, from, "source not deleted after move");
        }
        Ok(())
    }
}

/// Characters escaped in the `x-amz-copy-source` header: everything but unreserved and `/`.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A `media_files` row as the sagas need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Original file name.
    pub file_name: String,
    /// MIME type.
    pub media_type: String,
    /// Size in bytes.
    pub file_size: i64,
    /// `active` or `deleted`.
    pub status: String,
    /// The delete request that soft-deleted it, if any.
    pub deleted_by_request_id: Option<String>,
}

/// A database failure (always retryable for the sagas: the row is there or it is not, and an
/// outage says nothing about which).
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct DbError(pub String);

/// `media_files` access. Ownership is always `user_id` from the event plus the path.
#[async_trait]
pub trait MediaFiles: Send + Sync + std::fmt::Debug {
    /// The user's row at `file_path` (any status).
    async fn lookup(&self, user_id: &str, file_path: &str) -> Result<Option<FileRow>, DbError>;
    /// Soft-deletes the user's active row on behalf of `request_id`; true when it changed.
    async fn soft_delete(
        &self,
        user_id: &str,
        file_path: &str,
        request_id: &str,
    ) -> Result<bool, DbError>;
}

/// [`MediaFiles`] on Postgres.
#[derive(Debug, Clone)]
pub struct PgMediaFiles {
    pool: PgPool,
}

impl PgMediaFiles {
    /// A store over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl MediaFiles for PgMediaFiles {
    async fn lookup(&self, user_id: &str, file_path: &str) -> Result<Option<FileRow>, DbError> {
        let row: Option<(String, String, i64, String, Option<String>)> = sqlx::query_as(
            "select file_name, media_type, file_size, status, deleted_by_request_id
             from public.media_files where user_id = $1 and file_path = $2",
        )
        .bind(user_id)
        .bind(file_path)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| DbError(e.to_string()))?;
        Ok(row.map(
            |(file_name, media_type, file_size, status, deleted_by_request_id)| FileRow {
                file_name,
                media_type,
                file_size,
                status,
                deleted_by_request_id,
            },
        ))
    }

    async fn soft_delete(
        &self,
        user_id: &str,
        file_path: &str,
        request_id: &str,
    ) -> Result<bool, DbError> {
        let result = sqlx::query(
            "update public.media_files
                set status = 'deleted', deleted_by_request_id = $3
              where user_id = $1 and file_path = $2 and status = 'active'",
        )
        .bind(user_id)
        .bind(file_path)
        .bind(request_id)
        .execute(&self.pool)
        .await
        .map_err(|e| DbError(e.to_string()))?;
        Ok(result.rows_affected() > 0)
    }
}
