//! `internal.media.upload.retry` → the move again, and `upload.received` with the next count.

use media_service::handlers::upload_retry;
use serde_json::{Value, json};
use substrate::media::ObjectError as StorageError;

use super::{permanent, retryable};
use crate::fakes::{Kit, fields, lock};

pub(crate) fn upload_retry_event() -> Value {
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
