//! Saga handlers over fakes: every case of services spec §7.7–§7.12, adapted to the fixes
//! (errors classified instead of logged-and-committed, rejection events for invalid requests,
//! idempotent keys and deletes, safe keys, growing delete-retry delays).

use std::time::Duration;

use media_service::announced::Announced;
use media_service::configuration::MediaSettings;
use media_service::handlers::{
    delete, delete_retry, download_signing, expired_cleanup, upload_retry, upload_signing,
};
use serde_json::{Value, json};
use substrate::kafka::HandlerError;
use substrate::media::ObjectError as StorageError;

use crate::fakes::{Kit, SinkMode, fields, insert_video, lock};

fn is_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

fn permanent(result: &Result<(), HandlerError>) -> bool {
    matches!(result, Err(HandlerError::Permanent(_)))
}

fn retryable(result: &Result<(), HandlerError>) -> bool {
    matches!(result, Err(HandlerError::Retryable(_)))
}

// ---------------------------------------------------------------- upload signing (§7.8)

fn approved() -> Value {
    json!({"user_id":"user-abc-123","file_name":"photo.jpg","media_type":"video/mp4","file_size":2048000,"request_id":"req-1","request_time":"2026-02-25T10:00:00Z"})
}

#[tokio::test]
async fn upload_signing_produces_one_signed_event_with_a_request_derived_key() {
    let kit = Kit::new();
    let result = upload_signing::handle(&kit.deps, &fields(approved())).await;
    assert!(result.is_ok(), "{result:?}");
    let signed = kit.on("public.media.upload.signed");
    assert_eq!(kit.sink.events().len(), 1);
    let event = &signed[0];
    for field in [
        "user_id",
        "file_path",
        "file_name",
        "upload_url",
        "request_id",
        "signed_time",
    ] {
        assert!(
            event[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    assert_eq!(event["expires_in"], 900);
    assert!(event["expires_in"].is_u64());
    assert_eq!(event["user_id"], "user-abc-123");
    assert_eq!(event["request_id"], "req-1");
    assert_eq!(event["file_name"], "photo.jpg");
    assert!(is_rfc3339(&event["signed_time"]));
    let path = event["file_path"].as_str().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').collect();
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("uploads", "user-abc-123", "photo.jpg")
    );
    assert!(uuid::Uuid::parse_str(parts[2]).is_ok(), "{path}");
    let presigned = lock(&kit.storage.presigned).clone();
    assert_eq!(presigned.len(), 1);
    let (method, key, content_type, expiry) = &presigned[0];
    assert_eq!(
        (method.as_str(), key.as_str()),
        ("PUT", path),
        "the signed key is the event's path"
    );
    assert_eq!(
        content_type.as_deref(),
        Some("video/mp4"),
        "the content type is bound"
    );
    assert_eq!(expiry.as_secs(), 900);
    assert_eq!(
        event["upload_url"],
        format!("http://objects.test/media-uploads/{path}?sig=put")
    );
}

#[tokio::test]
async fn redelivered_approvals_sign_the_same_key_and_distinct_requests_get_distinct_keys() {
    let kit = Kit::new();
    let mut second = approved();
    second["request_id"] = json!("req-2");
    for event in [approved(), approved(), second] {
        assert!(
            upload_signing::handle(&kit.deps, &fields(event))
                .await
                .is_ok()
        );
    }
    let paths: Vec<Value> = kit
        .on("public.media.upload.signed")
        .iter()
        .map(|e| e["file_path"].clone())
        .collect();
    assert_eq!(paths[0], paths[1], "redelivery keeps the key");
    assert_ne!(paths[0], paths[2], "another request gets another key");
}

#[tokio::test]
async fn an_approval_signed_before_this_start_is_not_signed_again() {
    // req-1 was signed before (by the Go service under a random key, or before a crash).
    let mut announced = Announced::default();
    announced.add_signed("req-1");
    let kit = Kit::announcing(MediaSettings::default(), announced);
    let mut other = approved();
    other["request_id"] = json!("req-2");
    for event in [approved(), other] {
        assert!(
            upload_signing::handle(&kit.deps, &fields(event))
                .await
                .is_ok()
        );
    }
    let signed = kit.on("public.media.upload.signed");
    let requests: Vec<&Value> = signed.iter().map(|e| &e["request_id"]).collect();
    assert_eq!(
        requests,
        [&json!("req-2")],
        "only the new approval is signed"
    );
    assert_eq!(kit.sink.events().len(), 1);
}

#[tokio::test]
async fn upload_signing_uses_the_configured_expiry() {
    let kit = Kit::with(MediaSettings {
        upload_url_expiry_secs: 1800,
        ..MediaSettings::default()
    });
    assert!(
        upload_signing::handle(&kit.deps, &fields(approved()))
            .await
            .is_ok()
    );
    assert_eq!(kit.on("public.media.upload.signed")[0]["expires_in"], 1800);
}

#[tokio::test]
async fn upload_signing_validation() {
    // Without user or request id nobody can be told: permanent (dead-letter), nothing produced.
    for (field, value) in [
        ("user_id", json!(null)),
        ("user_id", json!("")),
        ("user_id", json!(42)),
        ("request_id", json!(null)),
        ("request_id", json!("")),
    ] {
        let kit = Kit::new();
        let mut event = approved();
        event[field] = value.clone();
        let result = upload_signing::handle(&kit.deps, &fields(event)).await;
        assert!(permanent(&result), "{field}={value}: {result:?}");
        assert!(kit.sink.events().is_empty(), "{field}={value}");
    }
    let kit = Kit::new();
    assert!(
        permanent(&upload_signing::handle(&kit.deps, &fields(json!({}))).await),
        "empty payload"
    );
    // A bad file name or media type is answered with the saga's rejection.
    for (field, value) in [
        ("file_name", json!(null)),
        ("file_name", json!("")),
        ("file_name", json!(1.5)),
        ("file_name", json!("../../etc/passwd")),
        ("file_name", json!("a\u{0007}b.jpg")),
        ("media_type", json!(true)),
        ("media_type", json!("")),
    ] {
        let kit = Kit::new();
        let mut event = approved();
        event[field] = value.clone();
        let result = upload_signing::handle(&kit.deps, &fields(event)).await;
        assert!(result.is_ok(), "{field}={value}: {result:?}");
        let rejected = kit.on("public.media.upload.rejected");
        assert_eq!(rejected.len(), 1, "{field}={value}");
        assert_eq!(rejected[0]["reason"], "invalid_request");
        assert_eq!(rejected[0]["request_id"], "req-1");
        assert!(kit.on("public.media.upload.signed").is_empty());
        assert!(
            lock(&kit.storage.presigned).is_empty(),
            "{field}={value}: nothing signed"
        );
    }
}

#[tokio::test]
async fn upload_signing_failures_produce_nothing_and_only_outages_are_retried() {
    // A presign refused by a bad setting can never succeed: dead-lettered, not retried with
    // every approval behind it waiting.
    let kit = Kit::new();
    *lock(&kit.storage.fail_presign) = true;
    let result = upload_signing::handle(&kit.deps, &fields(approved())).await;
    assert!(permanent(&result), "{result:?}");
    assert!(kit.sink.events().is_empty());

    let kit = Kit::new();
    kit.sink.set_mode(SinkMode::Unavailable);
    assert!(retryable(
        &upload_signing::handle(&kit.deps, &fields(approved())).await
    ));
}

#[tokio::test]
async fn upload_signing_edge_cases_keep_names_and_accept_any_media_type() {
    let long = "a".repeat(250) + ".mp4";
    for name in ["my vacation video.mp4", "my file (1).mp4", long.as_str()] {
        let kit = Kit::new();
        let mut event = approved();
        event["file_name"] = json!(name);
        assert!(
            upload_signing::handle(&kit.deps, &fields(event))
                .await
                .is_ok(),
            "{name}"
        );
        let signed = &kit.on("public.media.upload.signed")[0];
        assert_eq!(signed["file_name"], name);
        assert!(
            signed["file_path"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&format!("/{name}"))
        );
    }
    for media_type in [
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "video/mp4",
        "video/webm",
        "audio/mpeg",
        "audio/wav",
        "application/pdf",
    ] {
        let kit = Kit::new();
        let mut event = approved();
        event["media_type"] = json!(media_type);
        event["file_size"] = json!(i64::MAX);
        assert!(
            upload_signing::handle(&kit.deps, &fields(event))
                .await
                .is_ok(),
            "{media_type}"
        );
        assert_eq!(kit.sink.events().len(), 1);
    }
}

// ---------------------------------------------------------------- download signing (§7.9)

fn download_intent() -> Value {
    json!({"user_id":"user-1","file_path":"files/user-1/abc/doc.pdf","request_id":"req-d","request_time":"t"})
}

#[tokio::test]
async fn download_signing_signs_the_owners_active_file() {
    let kit = Kit::with(MediaSettings {
        download_url_expiry_secs: 7200,
        ..MediaSettings::default()
    });
    insert_video(&kit.files, "user-1", "files/user-1/abc/doc.pdf", 10);
    assert!(
        download_signing::handle(&kit.deps, &fields(download_intent()))
            .await
            .is_ok()
    );
    let signed = kit.on("public.media.download.signed");
    assert_eq!(kit.sink.events().len(), 1);
    let event = &signed[0];
    for field in [
        "user_id",
        "file_path",
        "download_url",
        "request_id",
        "signed_time",
    ] {
        assert!(
            event[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    assert_eq!(event["expires_in"], 7200);
    assert_eq!(event["file_path"], "files/user-1/abc/doc.pdf");
    assert_eq!(event["request_id"], "req-d");
    assert!(is_rfc3339(&event["signed_time"]));
    assert_eq!(
        lock(&kit.files.lookups)[0],
        ("user-1".to_owned(), "files/user-1/abc/doc.pdf".to_owned())
    );
    let presigned = lock(&kit.storage.presigned).clone();
    assert_eq!(
        (presigned[0].1.as_str(), presigned[0].3.as_secs()),
        ("files/user-1/abc/doc.pdf", 7200)
    );
    assert_eq!(
        event["download_url"],
        "http://objects.test/media-uploads/files/user-1/abc/doc.pdf?sig=get"
    );
}

#[tokio::test]
async fn download_signing_rejections() {
    // Another user's file, a deleted file and a missing file are all "not_found"; the signer is
    // never asked.
    for (owner, status) in [("someone-else", "active"), ("user-1", "deleted"), ("", "")] {
        let kit = Kit::new();
        if !owner.is_empty() {
            insert_video(&kit.files, owner, "files/user-1/abc/doc.pdf", 10);
            if status == "deleted" {
                lock(&kit.files.rows)
                    .values_mut()
                    .for_each(|r| r.status = "deleted".into());
            }
        }
        assert!(
            download_signing::handle(&kit.deps, &fields(download_intent()))
                .await
                .is_ok()
        );
        let rejected = kit.on("public.media.download.rejected");
        assert_eq!(kit.sink.events().len(), 1, "{owner}/{status}");
        assert_eq!(rejected[0]["reason"], "not_found");
        assert_eq!(rejected[0]["request_id"], "req-d");
        assert!(is_rfc3339(&rejected[0]["rejected_time"]));
        assert!(lock(&kit.storage.presigned).is_empty());
    }
    let kit = Kit::new();
    insert_video(&kit.files, "user-1", "files/user-1/abc/doc.pdf", 10);
    *lock(&kit.storage.fail_presign) = true;
    assert!(
        download_signing::handle(&kit.deps, &fields(download_intent()))
            .await
            .is_ok()
    );
    assert_eq!(
        kit.on("public.media.download.rejected")[0]["reason"],
        "internal_error"
    );
}

#[tokio::test]
async fn download_signing_errors_and_validation() {
    let kit = Kit::new();
    *lock(&kit.files.fail_lookup) = true;
    let result = download_signing::handle(&kit.deps, &fields(download_intent())).await;
    assert!(
        retryable(&result),
        "database errors are retried, not answered"
    );
    assert!(kit.sink.events().is_empty());

    let kit = Kit::new();
    insert_video(&kit.files, "user-1", "files/user-1/abc/doc.pdf", 10);
    kit.sink.set_mode(SinkMode::Unavailable);
    assert!(retryable(
        &download_signing::handle(&kit.deps, &fields(download_intent())).await
    ));

    for (field, value) in [
        ("user_id", json!(null)),
        ("user_id", json!("")),
        ("user_id", json!(7)),
        ("request_id", json!(null)),
    ] {
        let kit = Kit::new();
        let mut event = download_intent();
        event[field] = value.clone();
        assert!(
            permanent(&download_signing::handle(&kit.deps, &fields(event)).await),
            "{field}={value}"
        );
        assert!(kit.sink.events().is_empty());
    }
    for value in [
        json!(null),
        json!(""),
        json!("../etc/passwd"),
        json!("/abs/path"),
    ] {
        let kit = Kit::new();
        let mut event = download_intent();
        event["file_path"] = value.clone();
        assert!(
            download_signing::handle(&kit.deps, &fields(event))
                .await
                .is_ok(),
            "{value}"
        );
        assert_eq!(
            kit.on("public.media.download.rejected")[0]["reason"],
            "invalid_request",
            "{value}"
        );
    }
}

// ---------------------------------------------------------------- delete (§7.10)

fn delete_intent(request: &str) -> Value {
    json!({"user_id":"user-1","file_path":"files/user-1/abc/video.mp4","request_id":request,"request_time":"t"})
}

#[tokio::test]
async fn delete_soft_deletes_then_notifies_then_removes() {
    let kit = Kit::new();
    insert_video(&kit.files, "user-1", "files/user-1/abc/video.mp4", 999_999);
    assert!(
        delete::handle(&kit.deps, &fields(delete_intent("r1")))
            .await
            .is_ok()
    );
    let deleted = kit.on("public.media.delete.events");
    assert_eq!(kit.sink.events().len(), 1);
    let event = &deleted[0];
    assert_eq!(event["file_name"], "video.mp4", "from the row");
    assert_eq!(event["media_type"], "video/mp4", "from the row");
    assert_eq!(event["file_size"], 999_999, "from the row");
    assert_eq!(event["user_id"], "user-1");
    assert_eq!(event["file_path"], "files/user-1/abc/video.mp4");
    assert!(is_rfc3339(&event["delete_time"]));
    assert_eq!(
        lock(&kit.storage.removed).clone(),
        ["files/user-1/abc/video.mp4"]
    );
    assert_eq!(
        kit.files
            .status("user-1", "files/user-1/abc/video.mp4")
            .as_deref(),
        Some("deleted")
    );
    assert_eq!(
        lock(&kit.log).clone(),
        [
            "soft_delete files/user-1/abc/video.mp4",
            "produce public.media.delete.events",
            "remove files/user-1/abc/video.mp4"
        ],
        "strict order"
    );
}

#[tokio::test]
async fn delete_of_a_missing_file_is_rejected_without_side_effects() {
    let kit = Kit::new();
    assert!(
        delete::handle(&kit.deps, &fields(delete_intent("r1")))
            .await
            .is_ok()
    );
    let rejected = kit.on("public.media.delete.rejected");
    assert_eq!(kit.sink.events().len(), 1);
    assert_eq!(rejected[0]["reason"], "not_found");
    assert_eq!(rejected[0]["request_id"], "r1");
    assert!(is_rfc3339(&rejected[0]["rejected_time"]));
    assert!(lock(&kit.storage.removed).is_empty());
    assert!(
        lock(&kit.log)
            .iter()
            .all(|op| !op.starts_with("soft_delete"))
    );
}

#[tokio::test]
async fn delete_is_idempotent_per_request() {
    let kit = Kit::new();
    insert_video(&kit.files, "user-1", "files/user-1/abc/video.mp4", 5);
    assert!(
        delete::handle(&kit.deps, &fields(delete_intent("r1")))
            .await
            .is_ok()
    );
    // The same request again (redelivery): same outcome.
    assert!(
        delete::handle(&kit.deps, &fields(delete_intent("r1")))
            .await
            .is_ok()
    );
    assert_eq!(kit.on("public.media.delete.events").len(), 2);
    assert_eq!(
        lock(&kit.storage.removed).len(),
        2,
        "removal is repeated (a no-op in S3)"
    );
    // A different request for the already deleted file: not found.
    assert!(
        delete::handle(&kit.deps, &fields(delete_intent("r2")))
            .await
            .is_ok()
    );
    assert_eq!(kit.on("public.media.delete.events").len(), 2);
    assert_eq!(
        kit.on("public.media.delete.rejected")[0]["reason"],
        "not_found"
    );
}

/// A row of user-1 already soft-deleted, by `request` or (None) by the Go service.
fn deleted_row(kit: &Kit, path: &str, request: Option<&str>) {
    insert_video(&kit.files, "user-1", path, 5);
    if let Some(row) = lock(&kit.files.rows).get_mut(&("user-1".into(), path.into())) {
        row.status = "deleted".into();
        row.deleted_by_request_id = request.map(str::to_owned);
    }
}

#[tokio::test]
async fn a_deletion_announced_before_this_start_is_not_announced_again() {
    let path = "files/user-1/abc/video.mp4";
    let mut announced = Announced::default();
    announced.add_deleted("user-1", path);
    let kit = Kit::announcing(MediaSettings::default(), announced);
    // The Go service deleted the row (keeping no request id) and published FileDeleted; its
    // intent comes again after the cut-over.
    deleted_row(&kit, path, None);
    assert!(
        delete::handle(&kit.deps, &fields(delete_intent("go-r1")))
            .await
            .is_ok()
    );
    assert!(
        kit.sink.events().is_empty(),
        "no second FileDeleted, no rejection"
    );
    assert_eq!(
        lock(&kit.storage.removed).clone(),
        [path],
        "the removal is repeated"
    );

    // Without the announcement the same intent is answered not_found, as any other request for
    // a file that is already gone.
    let unannounced = Kit::new();
    deleted_row(&unannounced, path, None);
    assert!(
        delete::handle(&unannounced.deps, &fields(delete_intent("go-r1")))
            .await
            .is_ok()
    );
    assert_eq!(
        unannounced.on("public.media.delete.rejected")[0]["reason"],
        "not_found"
    );
}

#[tokio::test]
async fn a_redelivered_delete_whose_event_was_published_only_removes_again() {
    let path = "files/user-1/abc/video.mp4";
    let mut announced = Announced::default();
    announced.add_deleted("user-1", path);
    let kit = Kit::announcing(MediaSettings::default(), announced);
    // This service deleted it for r1 and published FileDeleted, then crashed before committing;
    // r1 comes again (twice), then another request r2.
    deleted_row(&kit, path, Some("r1"));
    for request in ["r1", "r1", "r2"] {
        assert!(
            delete::handle(&kit.deps, &fields(delete_intent(request)))
                .await
                .is_ok()
        );
    }
    assert!(kit.on("public.media.delete.events").is_empty());
    assert_eq!(lock(&kit.storage.removed).len(), 2);
    let rejected = kit.on("public.media.delete.rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["request_id"], "r2");
}

#[tokio::test]
async fn a_failed_removal_schedules_retry_zero_after_the_notification() {
    let kit = Kit::new();
    insert_video(
        &kit.files,
        "user-1",
        "files/user-1/abc/video.mp4",
        50_000_000,
    );
    *lock(&kit.storage.fail_remove) = true;
    assert!(
        delete::handle(&kit.deps, &fields(delete_intent("r1")))
            .await
            .is_ok()
    );
    let topics: Vec<String> = kit.sink.events().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        topics,
        ["public.media.delete.events", "internal.media.delete.retry"]
    );
    let retry = &kit.on("internal.media.delete.retry")[0];
    assert_eq!(retry["retry_count"], 0);
    assert!(retry["retry_count"].is_u64());
    assert_eq!(retry["file_size"], 50_000_000);
    for (field, value) in [
        ("user_id", "user-1"),
        ("file_path", "files/user-1/abc/video.mp4"),
        ("file_name", "video.mp4"),
        ("media_type", "video/mp4"),
        ("request_id", "r1"),
    ] {
        assert_eq!(retry[field], value, "{field}");
    }
    assert!(is_rfc3339(&retry["failed_at"]));
}

#[tokio::test]
async fn delete_failures_are_retryable_and_stop_the_saga_where_they_happen() {
    let kit = Kit::new();
    *lock(&kit.files.fail_lookup) = true;
    assert!(retryable(
        &delete::handle(&kit.deps, &fields(delete_intent("r1"))).await
    ));
    assert!(kit.sink.events().is_empty() && lock(&kit.storage.removed).is_empty());

    let kit = Kit::new();
    insert_video(&kit.files, "user-1", "files/user-1/abc/video.mp4", 5);
    *lock(&kit.files.fail_soft_delete) = true;
    assert!(retryable(
        &delete::handle(&kit.deps, &fields(delete_intent("r1"))).await
    ));
    assert!(kit.sink.events().is_empty() && lock(&kit.storage.removed).is_empty());

    let kit = Kit::new();
    insert_video(&kit.files, "user-1", "files/user-1/abc/video.mp4", 5);
    kit.sink.set_mode(SinkMode::Unavailable);
    assert!(retryable(
        &delete::handle(&kit.deps, &fields(delete_intent("r1"))).await
    ));
    assert!(
        lock(&kit.storage.removed).is_empty(),
        "no removal before the notification is out"
    );

    for (field, value) in [
        ("user_id", json!(null)),
        ("request_id", json!("")),
        ("user_id", json!(3)),
    ] {
        let kit = Kit::new();
        let mut event = delete_intent("r1");
        event[field] = value.clone();
        assert!(
            permanent(&delete::handle(&kit.deps, &fields(event)).await),
            "{field}={value}"
        );
    }
    let kit = Kit::new();
    assert!(
        permanent(&delete::handle(&kit.deps, &fields(json!({}))).await),
        "empty payload"
    );
}

// ---------------------------------------------------------------- delete retry (§7.11)

fn retry_event(count: Value) -> Value {
    json!({"user_id":"user-1","file_path":"files/user-1/abc/video.mp4","file_name":"video.mp4","media_type":"video/mp4","file_size":50000000i64,"request_id":"r1","retry_count":count,"failed_at":"2026-02-25T10:00:00Z"})
}

#[tokio::test]
async fn a_successful_retry_removes_the_object_and_produces_nothing() {
    let kit = Kit::new();
    assert!(
        delete_retry::handle(&kit.deps, &fields(retry_event(json!(1))))
            .await
            .is_ok()
    );
    assert!(kit.sink.events().is_empty());
    assert_eq!(
        lock(&kit.storage.removed).clone(),
        ["files/user-1/abc/video.mp4"]
    );
}

#[tokio::test]
async fn failed_retries_count_up_then_dead_letter() {
    let cases = [
        (json!(0), Some(1)),
        (json!(1), Some(2)),
        (json!(2), Some(3)),
        (json!(2.0), Some(3)),
        (json!("1"), Some(2)),
        (json!(3), None),
        (json!(4), None),
    ];
    for (count, next) in cases {
        let kit = Kit::new();
        *lock(&kit.storage.fail_remove) = true;
        assert!(
            delete_retry::handle(&kit.deps, &fields(retry_event(count.clone())))
                .await
                .is_ok(),
            "{count}"
        );
        assert_eq!(kit.sink.events().len(), 1, "{count}");
        match next {
            Some(next) => {
                let retry = &kit.on("internal.media.delete.retry")[0];
                assert_eq!(retry["retry_count"], next, "{count}");
                assert!(retry["retry_count"].is_u64());
                assert_ne!(
                    retry["failed_at"], "2026-02-25T10:00:00Z",
                    "a fresh failed_at"
                );
                assert!(is_rfc3339(&retry["failed_at"]));
                for field in [
                    "user_id",
                    "file_path",
                    "file_name",
                    "media_type",
                    "request_id",
                    "file_size",
                ] {
                    assert_eq!(retry[field], retry_event(count.clone())[field], "{field}");
                }
            }
            None => {
                let dead = &kit.on("internal.media.delete.dead-letter")[0];
                assert_eq!(
                    dead["retry_count"],
                    count.as_i64().unwrap_or_default(),
                    "unchanged"
                );
                assert!(
                    dead["failure_reason"]
                        .as_str()
                        .is_some_and(|r| !r.is_empty())
                );
                assert!(is_rfc3339(&dead["dead_letter_time"]));
                assert_eq!(dead["file_size"], 50_000_000);
            }
        }
    }
}

#[tokio::test]
async fn retries_missing_pass_through_fields_are_dead_lettered_up_front() {
    for field in [
        "user_id",
        "file_name",
        "media_type",
        "request_id",
        "file_size",
    ] {
        let kit = Kit::new();
        let mut event = retry_event(json!(0));
        event[field] = Value::Null;
        assert!(
            permanent(&delete_retry::handle(&kit.deps, &fields(event)).await),
            "{field}"
        );
        assert!(lock(&kit.storage.removed).is_empty(), "{field}");
    }
}

#[tokio::test]
async fn retry_delays_grow_with_the_count_and_a_retry_waits_until_due() {
    let kit = Kit::with(MediaSettings {
        delete_retry_base_delay_ms: 1_000,
        delete_retry_max_delay_ms: 5_000,
        ..MediaSettings::default()
    });
    let delays: Vec<u128> = (0..5)
        .map(|n| delete_retry::delay(&kit.deps, n).as_millis())
        .collect();
    assert_eq!(delays, [1_000, 2_000, 4_000, 5_000, 5_000]);

    // Failed just now with a 1 h base delay: not due. The handler does not wait itself (that
    // would stop its loop from polling for an hour); it hands the record back with the time
    // left, and the object is not touched early.
    let kit = Kit::with(MediaSettings {
        delete_retry_base_delay_ms: 3_600_000,
        delete_retry_max_delay_ms: 3_600_000,
        ..MediaSettings::default()
    });
    let mut event = retry_event(json!(0));
    event["failed_at"] = json!(substrate::time::now_rfc3339());
    let result = delete_retry::handle(&kit.deps, &fields(event)).await;
    let Err(HandlerError::Deferred(left)) = result else {
        panic!("not deferred: {result:?}")
    };
    assert!(
        left > Duration::from_secs(3_500) && left <= Duration::from_secs(3_600),
        "{left:?}"
    );
    assert!(lock(&kit.storage.removed).is_empty() && lock(&kit.log).is_empty());
}

// ---------------------------------------------------------------- upload move retry (§7.7)

fn upload_retry_event() -> Value {
    json!({"user_id":"user-123","email":"a@b.c","file_path":"uploads/user-123/uuid-1/photo.jpg","permanent_path":"files/user-123/uuid-1/photo.jpg","file_name":"photo.jpg","file_size":204800,"media_type":"image/jpeg","upload_time":"2026-02-25T10:00:00Z","retry_count":1,"retry_time":"2026-02-25T10:02:00Z"})
}

#[tokio::test]
async fn upload_retry_moves_then_reproduces_upload_received_with_the_next_count() {
    let kit = Kit::new();
    assert!(
        upload_retry::handle(&kit.deps, &fields(upload_retry_event()))
            .await
            .is_ok()
    );
    assert_eq!(
        lock(&kit.storage.moved).clone(),
        [(
            "uploads/user-123/uuid-1/photo.jpg".to_owned(),
            "files/user-123/uuid-1/photo.jpg".to_owned()
        )]
    );
    let received = kit.on("internal.media.upload.received");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["retry_count"], 2);
    assert_eq!(received[0]["user_id"], "user-123");
    assert_eq!(received[0]["email"], "a@b.c");
    assert_eq!(received[0]["file_size"], 204_800);
}

#[tokio::test]
async fn a_retry_that_finds_the_file_already_moved_announces_it_ready() {
    // The saga timed out before an earlier move finished: nothing is copied now, so the store
    // sends no notification, and without this file.ready the saga would retry to a dead letter.
    let kit = Kit::new();
    *lock(&kit.storage.already_moved) = true;
    assert!(
        upload_retry::handle(&kit.deps, &fields(upload_retry_event()))
            .await
            .is_ok()
    );
    assert_eq!(kit.on("internal.media.upload.received").len(), 1);
    let ready = kit.on("internal.media.file.ready");
    assert_eq!(ready.len(), 1, "{:?}", kit.sink.events());
    assert_eq!(ready[0]["file_path"], "files/user-123/uuid-1/photo.jpg");
    assert_eq!(ready[0]["file_size"], 204_800);

    // A move that copied leaves file.ready to the store's notification.
    let kit = Kit::new();
    assert!(
        upload_retry::handle(&kit.deps, &fields(upload_retry_event()))
            .await
            .is_ok()
    );
    assert!(kit.on("internal.media.file.ready").is_empty());
}

#[tokio::test]
async fn upload_retry_failures() {
    let kit = Kit::new();
    *lock(&kit.storage.move_result) = Some(StorageError::Failed("timeout".into()));
    assert!(retryable(
        &upload_retry::handle(&kit.deps, &fields(upload_retry_event())).await
    ));
    assert!(
        kit.sink.events().is_empty(),
        "nothing produced when the move failed"
    );

    let kit = Kit::new();
    *lock(&kit.storage.move_result) = Some(StorageError::NotFound("gone".into()));
    assert!(permanent(
        &upload_retry::handle(&kit.deps, &fields(upload_retry_event())).await
    ));

    for (field, value) in [
        ("file_size", json!(null)),
        ("media_type", json!(null)),
        ("permanent_path", json!("files/other/x.jpg")),
        ("file_path", json!("uploads/../x")),
    ] {
        let kit = Kit::new();
        let mut event = upload_retry_event();
        event[field] = value.clone();
        assert!(
            permanent(&upload_retry::handle(&kit.deps, &fields(event)).await),
            "{field}={value}"
        );
        assert!(lock(&kit.storage.moved).is_empty(), "{field}={value}");
    }
}

// ---------------------------------------------------------------- expired cleanup (§7.12)

#[tokio::test]
async fn expired_uploads_are_removed_and_unusable_events_skipped() {
    let kit = Kit::new();
    let event = json!({"user_id":"u","file_path":"uploads/u/1/a.jpg","file_name":"a.jpg","file_size":0,"media_type":"","request_id":"r","request_time":"t","expired_time":"t"});
    assert!(
        expired_cleanup::handle(&kit.deps, &fields(event))
            .await
            .is_ok()
    );
    assert_eq!(lock(&kit.storage.removed).clone(), ["uploads/u/1/a.jpg"]);
    assert!(kit.sink.events().is_empty(), "cleanup never produces");

    let no_user = json!({"file_path":"uploads/u/1/b.jpg"});
    assert!(
        expired_cleanup::handle(&kit.deps, &fields(no_user))
            .await
            .is_ok()
    );
    assert_eq!(lock(&kit.storage.removed).len(), 2, "user_id is not needed");

    for event in [
        json!({}),
        json!({"file_path":""}),
        json!({"file_path":42}),
        json!({"file_path":"files/u/1/a.jpg"}),
    ] {
        let kit = Kit::new();
        assert!(
            expired_cleanup::handle(&kit.deps, &fields(event.clone()))
                .await
                .is_ok(),
            "{event}"
        );
        assert!(lock(&kit.log).is_empty(), "{event}: no removal");
    }

    let kit = Kit::new();
    *lock(&kit.storage.fail_remove) = true;
    let result =
        expired_cleanup::handle(&kit.deps, &fields(json!({"file_path":"uploads/u/1/a.jpg"}))).await;
    assert!(retryable(&result), "an outage is retried, not ignored");
    assert_eq!(lock(&kit.log).len(), 1, "exactly one attempt per call");
}

#[tokio::test]
async fn refusals_of_the_store_and_the_database_are_permanent_and_outages_retryable() {
    // The store refuses a removal for good (access denied): the cleanup is dead-lettered.
    let expired = json!({"user_id":"user-1","file_path":"uploads/user-1/abc/x.png","file_name":"x.png","file_size":1,"media_type":"image/png","request_id":"r","request_time":"t","expired_time":"t"});
    let kit = Kit::new();
    *lock(&kit.storage.refuse_remove) = true;
    let result = expired_cleanup::handle(&kit.deps, &fields(expired.clone())).await;
    assert!(permanent(&result), "{result:?}");
    // ...while a store that is away is waited for.
    let kit = Kit::new();
    *lock(&kit.storage.fail_remove) = true;
    let result = expired_cleanup::handle(&kit.deps, &fields(expired)).await;
    assert!(retryable(&result), "{result:?}");

    // A move the store refuses is permanent too.
    let kit = Kit::new();
    *lock(&kit.storage.move_result) = Some(StorageError::Refused("AccessDenied".into()));
    let result = upload_retry::handle(&kit.deps, &fields(upload_retry_event())).await;
    assert!(permanent(&result), "{result:?}");
    assert!(kit.sink.events().is_empty());

    // The database refusing the soft delete (a constraint) is permanent; nothing is announced.
    let kit = Kit::new();
    insert_video(&kit.files, "user-1", "files/user-1/abc/video.mp4", 5);
    *lock(&kit.files.refuse_soft_delete) = true;
    let result = delete::handle(&kit.deps, &fields(delete_intent("r1"))).await;
    assert!(permanent(&result), "{result:?}");
    assert!(kit.sink.events().is_empty() && lock(&kit.storage.removed).is_empty());
}
