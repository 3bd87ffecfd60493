//! `internal.media.delete.intent` → soft delete, then the announcement, then the removal; idempotent per request.

use media_service::announced::Announced;
use media_service::configuration::MediaSettings;
use media_service::handlers::delete;
use serde_json::{Value, json};

use super::{is_rfc3339, permanent, retryable};
use crate::fakes::{Kit, SinkMode, fields, insert_video, lock};

pub(crate) fn delete_intent(request: &str) -> Value {
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
