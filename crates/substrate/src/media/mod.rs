//! Stored media as both the gateway and the media-service see it: the `media_files` table
//! ([`MediaFiles`]), the bucket ([`ObjectStore`]) and the events of the media sagas
//! ([`events`]). One adapter of each, so a soft delete means the same on both paths: it records
//! the request that made it, which is what lets a redelivered delete intent recognise its own
//! earlier effect.

pub mod events;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;

use crate::BoxError;
pub use crate::s3::{Moved, ObjectError};
use crate::s3::{ObjectClient, S3Settings};

/// `media_files.status` of a file the user still sees.
pub const ACTIVE: &str = "active";

/// A `media_files` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Object key (`files/<user>/<uuid>/<name>`).
    pub file_path: String,
    /// Original file name.
    pub file_name: String,
    /// MIME type.
    pub media_type: String,
    /// Size in bytes.
    pub file_size: i64,
    /// `active` or `deleted`.
    pub status: String,
    /// The delete request that soft-deleted it; `None` while active, and for rows the Go
    /// services deleted (they kept no request id).
    pub deleted_by_request_id: Option<String>,
}

impl FileRow {
    /// Whether the user still sees the file.
    pub fn is_active(&self) -> bool {
        self.status == ACTIVE
    }
}

/// A `media_files` statement failed: an outage (retry; it says nothing about whether the row
/// is there) or, rarely, a statement the database refuses for this data (a constraint), which
/// no retry fixes.
#[derive(Debug, thiserror::Error)]
#[error("media_files {operation} failed")]
pub struct DbError {
    operation: &'static str,
    permanent: bool,
    #[source]
    source: BoxError,
}

impl DbError {
    /// `operation` failed with `error`; permanent when the database refused the statement
    /// itself ([`crate::postgres::is_permanent`]).
    pub fn new(operation: &'static str, error: sqlx::Error) -> Self {
        Self {
            operation,
            permanent: crate::postgres::is_permanent(&error),
            source: Box::new(error),
        }
    }

    /// `operation` failed because the database is unreachable or failing; retrying later may
    /// work.
    pub fn unavailable(operation: &'static str, cause: impl Into<BoxError>) -> Self {
        Self {
            operation,
            permanent: false,
            source: cause.into(),
        }
    }

    /// `operation` was refused for this data (a constraint): retrying cannot help.
    pub fn refused(operation: &'static str, cause: impl Into<BoxError>) -> Self {
        Self {
            operation,
            permanent: true,
            source: cause.into(),
        }
    }

    /// Whether the same statement will always be refused.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

/// `media_files` access. Ownership is always the caller's `user_id` plus the path: a row of
/// another user is as good as missing.
#[async_trait]
pub trait MediaFiles: Send + Sync + std::fmt::Debug {
    /// The user's row at `file_path`, whatever its status.
    async fn lookup(&self, user_id: &str, file_path: &str) -> Result<Option<FileRow>, DbError>;

    /// The user's row at `file_path` if it is active.
    async fn active(&self, user_id: &str, file_path: &str) -> Result<Option<FileRow>, DbError> {
        Ok(self
            .lookup(user_id, file_path)
            .await?
            .filter(FileRow::is_active))
    }

    /// Soft-deletes the user's active row on behalf of `request_id`; true when this call
    /// changed it.
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
        .map_err(|error| DbError::new("lookup", error))?;
        Ok(row.map(
            |(file_name, media_type, file_size, status, deleted_by_request_id)| FileRow {
                file_path: file_path.to_owned(),
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
        .map_err(|error| DbError::new("soft delete", error))?;
        Ok(result.rows_affected() > 0)
    }
}

/// The media bucket: presigning for browsers and the object operations of the sagas.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Presigned PUT on the public endpoint; the signature binds `content_type`, so the upload
    /// must be sent with exactly that `Content-Type`.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, ObjectError>;

    /// Presigned GET on the public endpoint.
    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String, ObjectError>;

    /// Removes `key`; a missing key is not an error.
    async fn remove(&self, key: &str) -> Result<(), ObjectError>;

    /// Moves `from` → `to`; idempotent (an already moved object counts as moved, and says so).
    async fn move_object(&self, from: &str, to: &str) -> Result<Moved, ObjectError>;
}

/// [`ObjectStore`] on S3/MinIO, in the configured bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: ObjectClient,
    bucket: String,
}

impl S3ObjectStore {
    /// Clients from the S3 settings.
    pub fn new(settings: &S3Settings) -> Self {
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
    ) -> Result<String, ObjectError> {
        self.client
            .presign_put(&self.bucket, key, Some(content_type), expires_in)
            .await
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String, ObjectError> {
        self.client.presign_get(&self.bucket, key, expires_in).await
    }

    async fn remove(&self, key: &str) -> Result<(), ObjectError> {
        self.client.remove(&self.bucket, key).await
    }

    async fn move_object(&self, from: &str, to: &str) -> Result<Moved, ObjectError> {
        self.client.move_object(&self.bucket, from, to).await
    }
}
