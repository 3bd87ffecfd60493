//! Stored media as both the gateway's legacy routes and the media-service's sagas see it: the
//! `media_files` table ([`MediaFiles`]), the bucket ([`ObjectStore`]) and the events a
//! deletion produces ([`FileDeleted`], [`DeleteRetry`]). One adapter of each, so a soft delete
//! means the same on both paths: it records the request that made it, which is what lets a
//! redelivered delete intent recognise its own earlier effect.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
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

/// `public.media.delete.events` (`avro/public/media/delete.events.avsc`): a file left the
/// user's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDeleted {
    /// Owner.
    pub user_id: String,
    /// Object key.
    pub file_path: String,
    /// Original file name.
    pub file_name: String,
    /// MIME type.
    pub media_type: String,
    /// Size in bytes.
    pub file_size: i64,
    /// When it was deleted (RFC 3339).
    pub delete_time: String,
}

impl FileDeleted {
    /// `user_id`'s file `row`, deleted now.
    pub fn now(user_id: &str, row: &FileRow) -> Self {
        Self {
            user_id: user_id.to_owned(),
            file_path: row.file_path.clone(),
            file_name: row.file_name.clone(),
            media_type: row.media_type.clone(),
            file_size: row.file_size,
            delete_time: crate::time::now_rfc3339(),
        }
    }
}

/// `internal.media.delete.retry` (`avro/internal/media/delete.retry.avsc`): an object whose
/// removal failed, for the delete saga's retry loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRetry {
    /// Owner.
    pub user_id: String,
    /// Object key.
    pub file_path: String,
    /// Original file name.
    pub file_name: String,
    /// MIME type.
    pub media_type: String,
    /// Size in bytes.
    pub file_size: i64,
    /// The delete request it belongs to.
    pub request_id: String,
    /// Retries attempted so far.
    pub retry_count: i32,
    /// When the last attempt failed (RFC 3339).
    pub failed_at: String,
}

impl DeleteRetry {
    /// The first retry of removing `user_id`'s `row` for `request_id`, after a failure now.
    pub fn first(user_id: &str, row: &FileRow, request_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            file_path: row.file_path.clone(),
            file_name: row.file_name.clone(),
            media_type: row.media_type.clone(),
            file_size: row.file_size,
            request_id: request_id.to_owned(),
            retry_count: 0,
            failed_at: crate::time::now_rfc3339(),
        }
    }

    /// This retry failed again now: the next one.
    pub fn next(&self) -> Self {
        Self {
            retry_count: self.retry_count.saturating_add(1),
            failed_at: crate::time::now_rfc3339(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::Schema;
    use serde::Serialize;

    use super::*;

    fn row() -> FileRow {
        FileRow {
            file_path: "files/u-1/7f0c/cat.jpg".into(),
            file_name: "cat.jpg".into(),
            media_type: "image/jpeg".into(),
            file_size: 2_048_000,
            status: ACTIVE.into(),
            deleted_by_request_id: None,
        }
    }

    /// Encodes `event` with the topic's contract and decodes it back: every field the contract
    /// has is there with its type, and nothing else is.
    fn through_contract<
        E: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    >(
        contract: &str,
        event: &E,
    ) {
        let path = format!("{}/../../avro/{contract}", env!("CARGO_MANIFEST_DIR"));
        let schema = Schema::parse_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let document = serde_json::to_value(event).unwrap();
        let value = crate::avro::json_to_avro(&schema, &document).unwrap();
        let bytes = crate::avro::encode_datum(&schema, value).unwrap();
        let decoded = crate::avro::decode_datum(&schema, &mut bytes.as_slice()).unwrap();
        let back: E = serde_json::from_value(crate::avro::avro_to_json(&decoded)).unwrap();
        assert_eq!(&back, event, "{contract}");
    }

    #[test]
    fn the_deletion_events_fit_their_contracts() {
        let deleted = FileDeleted::now("u-1", &row());
        assert_eq!(deleted.file_path, "files/u-1/7f0c/cat.jpg");
        through_contract("public/media/delete.events.avsc", &deleted);
        let retry = DeleteRetry::first("u-1", &row(), "req-1");
        assert_eq!((retry.retry_count, retry.request_id.as_str()), (0, "req-1"));
        through_contract("internal/media/delete.retry.avsc", &retry);
        let again = retry.next();
        assert_eq!(again.retry_count, 1);
        through_contract("internal/media/delete.retry.avsc", &again);
    }
}
