//! `public.media.expired.events` → expired uploads removed, unusable events skipped.

use media_service::handlers::expired_cleanup;
use serde_json::json;

use super::retryable;
use crate::fakes::{Kit, fields, lock};

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
