//! The events of the media sagas that the Rust services build, one struct per contract in
//! `avro/` (field names and types exactly as there; `long` is `i64`, `int` is `i32`). A
//! producer fills one in and the sink encodes it with the topic's registered schema; the tests
//! below hold every struct to its `.avsc`, so a field added to a contract and not here (or the
//! other way round) fails before it reaches the broker.
//!
//! The events the services consume arrive from Flink jobs too, whose columns are all nullable;
//! the media-service reads those leniently ([`crate::media`]'s callers validate field by field)
//! and answers them with these.

use serde::{Deserialize, Serialize};

use super::FileRow;

/// An `int` field from a count or a number of seconds: saturates instead of wrapping.
fn int(value: impl TryInto<i32>) -> i32 {
    value.try_into().unwrap_or(i32::MAX)
}

/// `internal.media.upload.intent`: a user asks to upload a file (the credit check's input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadIntent {
    /// Who asks (from the token).
    pub user_id: String,
    /// File name as given.
    pub file_name: String,
    /// MIME type.
    pub media_type: String,
    /// Announced size in bytes.
    pub file_size: i64,
    /// Correlation id the client gets back.
    pub request_id: String,
    /// When the gateway accepted it (RFC 3339).
    pub request_time: String,
}

/// `internal.media.download.intent` and `internal.media.delete.intent`: a user asks to download
/// or delete one of their files (the two contracts have the same fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIntent {
    /// Who asks (from the token).
    pub user_id: String,
    /// The object.
    pub file_path: String,
    /// Correlation id the client gets back.
    pub request_id: String,
    /// When the gateway accepted it (RFC 3339).
    pub request_time: String,
}

/// `public.media.upload.signed`: where to PUT an approved upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSigned {
    /// Owner.
    pub user_id: String,
    /// The upload's key under `uploads/`.
    pub file_path: String,
    /// File name.
    pub file_name: String,
    /// Presigned PUT.
    pub upload_url: String,
    /// Seconds the URL stays valid.
    pub expires_in: i32,
    /// The approved intent.
    pub request_id: String,
    /// When it was signed (RFC 3339).
    pub signed_time: String,
}

impl UploadSigned {
    /// `upload_url` for `file_path`, valid `expires_in_secs`, signed now.
    pub fn now(
        user_id: &str,
        file_path: &str,
        file_name: &str,
        upload_url: String,
        expires_in_secs: u32,
        request_id: &str,
    ) -> Self {
        Self {
            user_id: user_id.to_owned(),
            file_path: file_path.to_owned(),
            file_name: file_name.to_owned(),
            upload_url,
            expires_in: int(expires_in_secs),
            request_id: request_id.to_owned(),
            signed_time: crate::time::now_rfc3339(),
        }
    }
}

/// `public.media.upload.rejected`: an upload approval that cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRejected {
    /// Owner.
    pub user_id: String,
    /// File name as approved (may be unusable: that is why it is rejected).
    pub file_name: String,
    /// MIME type as approved.
    pub media_type: String,
    /// Size as approved.
    pub file_size: i64,
    /// The approved intent.
    pub request_id: String,
    /// Why, e.g. `invalid_request`.
    pub reason: String,
    /// When (RFC 3339).
    pub rejected_time: String,
}

/// `public.media.download.signed`: where to GET a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadSigned {
    /// Owner.
    pub user_id: String,
    /// The object.
    pub file_path: String,
    /// Presigned GET.
    pub download_url: String,
    /// Seconds the URL stays valid.
    pub expires_in: i32,
    /// The download intent.
    pub request_id: String,
    /// When it was signed (RFC 3339).
    pub signed_time: String,
}

impl DownloadSigned {
    /// `download_url` for `intent`, valid `expires_in_secs`, signed now.
    pub fn now(intent: &Answering<'_>, download_url: String, expires_in_secs: u32) -> Self {
        Self {
            user_id: intent.user_id.to_owned(),
            file_path: intent.file_path.to_owned(),
            download_url,
            expires_in: int(expires_in_secs),
            request_id: intent.request_id.to_owned(),
            signed_time: crate::time::now_rfc3339(),
        }
    }
}

/// The intent an outcome answers: who asked, about which path, in which request.
#[derive(Debug, Clone, Copy)]
pub struct Answering<'a> {
    /// Who asked.
    pub user_id: &'a str,
    /// About which object (as given, when it is the reason for a rejection).
    pub file_path: &'a str,
    /// The intent's request id.
    pub request_id: &'a str,
}

/// `public.media.download.rejected` and `public.media.delete.rejected` (same fields): an intent
/// that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// Who asked.
    pub user_id: String,
    /// The object asked about.
    pub file_path: String,
    /// The intent.
    pub request_id: String,
    /// `not_found`, `invalid_request` or `internal_error`.
    pub reason: String,
    /// When (RFC 3339).
    pub rejected_time: String,
}

impl Rejected {
    /// `intent` refused now for `reason`.
    pub fn now(intent: &Answering<'_>, reason: &str) -> Self {
        Self {
            user_id: intent.user_id.to_owned(),
            file_path: intent.file_path.to_owned(),
            request_id: intent.request_id.to_owned(),
            reason: reason.to_owned(),
            rejected_time: crate::time::now_rfc3339(),
        }
    }
}

/// `internal.media.upload.received`: an uploaded object to move from `uploads/` to `files/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReceived {
    /// Owner (from the key).
    pub user_id: String,
    /// Uploader's email from the object metadata (or empty).
    pub email: String,
    /// The object under `uploads/`.
    pub file_path: String,
    /// File name (the key's last segment).
    pub file_name: String,
    /// Size in bytes.
    pub file_size: i64,
    /// Content type.
    pub media_type: String,
    /// When it was uploaded (RFC 3339).
    pub upload_time: String,
    /// Where it goes under `files/`.
    pub permanent_path: String,
    /// Moves attempted before this one.
    pub retry_count: i32,
}

/// `internal.media.upload.retry` (from the move saga): a move to try again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRetry {
    /// Owner.
    pub user_id: String,
    /// Uploader's email (or empty).
    pub email: String,
    /// The object under `uploads/`.
    pub file_path: String,
    /// Where it goes under `files/`.
    pub permanent_path: String,
    /// File name.
    pub file_name: String,
    /// Size in bytes.
    pub file_size: i64,
    /// Content type.
    pub media_type: String,
    /// When it was uploaded (RFC 3339).
    pub upload_time: String,
    /// Moves attempted so far.
    pub retry_count: i32,
    /// When the saga asked again (RFC 3339).
    pub retry_time: String,
}

impl UploadRetry {
    /// The `upload.received` of this attempt: the same upload, one more move attempted.
    pub fn received(&self) -> UploadReceived {
        UploadReceived {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            file_path: self.file_path.clone(),
            file_name: self.file_name.clone(),
            file_size: self.file_size,
            media_type: self.media_type.clone(),
            upload_time: self.upload_time.clone(),
            permanent_path: self.permanent_path.clone(),
            retry_count: self.retry_count.saturating_add(1),
        }
    }

    /// The object is in place now.
    pub fn ready(&self) -> FileReady {
        FileReady {
            file_path: self.permanent_path.clone(),
            file_size: self.file_size,
            upload_time: crate::time::now_rfc3339(),
        }
    }
}

/// `internal.media.file.ready`: an object arrived under `files/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReady {
    /// The object under `files/`.
    pub file_path: String,
    /// Size in bytes.
    pub file_size: i64,
    /// When it arrived (RFC 3339).
    pub upload_time: String,
}

/// `public.media.download.events`: a user was handed a download URL (audit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDownloaded {
    /// Owner.
    pub user_id: String,
    /// The object.
    pub file_path: String,
    /// File name.
    pub file_name: String,
    /// MIME type.
    pub media_type: String,
    /// When (RFC 3339).
    pub download_time: String,
}

impl FileDownloaded {
    /// `user_id` downloads `row` now.
    pub fn now(user_id: &str, row: &FileRow) -> Self {
        Self {
            user_id: user_id.to_owned(),
            file_path: row.file_path.clone(),
            file_name: row.file_name.clone(),
            media_type: row.media_type.clone(),
            download_time: crate::time::now_rfc3339(),
        }
    }
}

/// `public.media.delete.events`: a file left the user's view.
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

/// `internal.media.delete.retry`: an object whose removal failed, for the delete saga's retry
/// loop.
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

    /// This retry failed for the last time, because of `reason`.
    pub fn give_up(self, reason: String) -> DeleteDeadLetter {
        DeleteDeadLetter {
            user_id: self.user_id,
            file_path: self.file_path,
            file_name: self.file_name,
            media_type: self.media_type,
            file_size: self.file_size,
            request_id: self.request_id,
            retry_count: self.retry_count,
            failure_reason: reason,
            dead_letter_time: crate::time::now_rfc3339(),
        }
    }
}

/// `internal.media.delete.dead-letter`: an object whose removal failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteDeadLetter {
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
    /// The delete request it belonged to.
    pub request_id: String,
    /// Retries made.
    pub retry_count: i32,
    /// The last failure.
    pub failure_reason: String,
    /// When it was given up (RFC 3339).
    pub dead_letter_time: String,
}

#[cfg(test)]
mod tests {
    use apache_avro::Schema;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::media::ACTIVE;

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

    fn answering() -> Answering<'static> {
        Answering {
            user_id: "u-1",
            file_path: "files/u-1/7f0c/cat.jpg",
            request_id: "req-1",
        }
    }

    /// Holds `event` to the contract `avro/<contract>.avsc`: it has exactly the contract's
    /// fields, encodes with it, and decodes back to itself.
    fn fits<E: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        contract: &str,
        event: &E,
    ) {
        let path = format!("{}/../../avro/{contract}.avsc", env!("CARGO_MANIFEST_DIR"));
        let schema = Schema::parse_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Schema::Record(record) = &schema else {
            panic!("{contract}: not a record")
        };
        let document = serde_json::to_value(event).unwrap();
        let mut ours: Vec<&str> = document
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut theirs: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "{contract}: fields");
        let value = crate::avro::json_to_avro(&schema, &document).unwrap();
        let bytes = crate::avro::encode_datum(&schema, value).unwrap();
        let decoded = crate::avro::decode_datum(&schema, &mut bytes.as_slice()).unwrap();
        let back: E = serde_json::from_value(crate::avro::avro_to_json(&decoded)).unwrap();
        assert_eq!(&back, event, "{contract}: round trip");
    }

    #[test]
    fn every_event_fits_its_contract() {
        let intent = FileIntent {
            user_id: "u-1".into(),
            file_path: "files/u-1/7f0c/cat.jpg".into(),
            request_id: "req-1".into(),
            request_time: crate::time::now_rfc3339(),
        };
        fits("internal/media/download.intent", &intent);
        fits("internal/media/delete.intent", &intent);
        fits(
            "internal/media/upload.intent",
            &UploadIntent {
                user_id: "u-1".into(),
                file_name: "cat.jpg".into(),
                media_type: "image/jpeg".into(),
                file_size: 2_048_000,
                request_id: "req-1".into(),
                request_time: crate::time::now_rfc3339(),
            },
        );
        fits(
            "public/media/upload.signed",
            &UploadSigned::now(
                "u-1",
                "uploads/u-1/9a/cat.jpg",
                "cat.jpg",
                "http://objects.test/x".into(),
                900,
                "req-1",
            ),
        );
        fits(
            "public/media/upload.rejected",
            &UploadRejected {
                user_id: "u-1".into(),
                file_name: "../cat.jpg".into(),
                media_type: "image/jpeg".into(),
                file_size: 0,
                request_id: "req-1".into(),
                reason: "invalid_request".into(),
                rejected_time: crate::time::now_rfc3339(),
            },
        );
        fits(
            "public/media/download.signed",
            &DownloadSigned::now(&answering(), "http://objects.test/y".into(), 300),
        );
        let rejected = Rejected::now(&answering(), "not_found");
        fits("public/media/download.rejected", &rejected);
        fits("public/media/delete.rejected", &rejected);
        fits(
            "internal/media/upload.received",
            &UploadReceived {
                user_id: "u-1".into(),
                email: "u@example.com".into(),
                file_path: "uploads/u-1/9a/cat.jpg".into(),
                file_name: "cat.jpg".into(),
                file_size: 2_048_000,
                media_type: "image/jpeg".into(),
                upload_time: crate::time::now_rfc3339(),
                permanent_path: "files/u-1/9a/cat.jpg".into(),
                retry_count: 1,
            },
        );
        let retry = UploadRetry {
            user_id: "u-1".into(),
            email: String::new(),
            file_path: "uploads/u-1/9a/cat.jpg".into(),
            permanent_path: "files/u-1/9a/cat.jpg".into(),
            file_name: "cat.jpg".into(),
            file_size: 2_048_000,
            media_type: "image/jpeg".into(),
            upload_time: crate::time::now_rfc3339(),
            retry_count: 2,
            retry_time: crate::time::now_rfc3339(),
        };
        fits("internal/media/upload.retry", &retry);
        assert_eq!(retry.received().retry_count, 3);
        fits("internal/media/upload.received", &retry.received());
        fits("internal/media/file.ready", &retry.ready());
        fits(
            "internal/media/file.ready",
            &FileReady {
                file_path: "files/u-1/9a/cat.jpg".into(),
                file_size: 2_048_000,
                upload_time: crate::time::now_rfc3339(),
            },
        );
        fits(
            "public/media/download.events",
            &FileDownloaded::now("u-1", &row()),
        );
        fits(
            "public/media/delete.events",
            &FileDeleted::now("u-1", &row()),
        );
        let retry = DeleteRetry::first("u-1", &row(), "req-1");
        fits("internal/media/delete.retry", &retry);
        fits("internal/media/delete.retry", &retry.next());
        fits(
            "internal/media/delete.dead-letter",
            &retry.next().give_up("AccessDenied".into()),
        );
    }

    #[test]
    fn retries_count_up_and_keep_their_request() {
        let retry = DeleteRetry::first("u-1", &row(), "req-1");
        assert_eq!(retry.retry_count, 0);
        let again = retry.next().next();
        assert_eq!((again.retry_count, again.request_id.as_str()), (2, "req-1"));
        let dead = again.give_up("gone".into());
        assert_eq!(
            (dead.retry_count, dead.failure_reason.as_str()),
            (2, "gone")
        );
        assert_eq!(int(u32::MAX), i32::MAX, "counts saturate");
    }
}
