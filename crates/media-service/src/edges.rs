//! Narrow traits in front of the object store and `media_files`, with their real
//! implementations. Handlers depend only on the traits.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use substrate::s3::ObjectClient;

pub use substrate::events::{AvroEventSink, EventSink, SinkError};

pub use substrate::s3::{Moved, ObjectError as StorageError};

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
    /// Moves `from` → `to`; idempotent (an already moved object counts as moved, and says so).
    async fn move_object(&self, from: &str, to: &str) -> Result<Moved, StorageError>;
}

/// [`ObjectStore`] on S3/MinIO, in the configured bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: ObjectClient,
    bucket: String,
}

impl S3ObjectStore {
    /// Clients from the S3 settings.
    pub fn new(settings: &substrate::s3::S3Settings) -> Self {
        Self {
            client: ObjectClient::new(settings),
            bucket: settings.bucket.clone(),
        }
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError> {
        self.client
            .presign_put(&self.bucket, key, Some(content_type), expires_in)
            .await
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String, StorageError> {
        self.client.presign_get(&self.bucket, key, expires_in).await
    }

    async fn remove(&self, key: &str) -> Result<(), StorageError> {
        self.client.remove(&self.bucket, key).await
    }

    async fn move_object(&self, from: &str, to: &str) -> Result<Moved, StorageError> {
        self.client.move_object(&self.bucket, from, to).await
    }
}

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

/// A database failure: an outage (retry; it says nothing about whether the row is there) or,
/// rarely, a statement the database refuses for this data (a constraint), which no retry fixes.
#[derive(Debug, thiserror::Error)]
#[error("database: {message}")]
pub struct DbError {
    /// What failed.
    pub message: String,
    /// Whether the same statement will always be refused ([`substrate::postgres::is_permanent`]).
    pub permanent: bool,
}

impl DbError {
    /// The database is unreachable or failing; retrying later may work.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        Self {
            permanent: substrate::postgres::is_permanent(&error),
            message: error.to_string(),
        }
    }
}

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
        .map_err(DbError::from)?;
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
        .map_err(DbError::from)?;
        Ok(result.rows_affected() > 0)
    }
}
