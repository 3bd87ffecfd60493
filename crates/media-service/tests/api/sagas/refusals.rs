//! Failure classes across the sagas: refusals of the store or the database are permanent,
//! outages retryable.

use media_service::handlers::{delete, expired_cleanup, upload_retry};
use serde_json::json;
use substrate::media::ObjectError as StorageError;

use super::delete::delete_intent;
use super::upload_retry::upload_retry_event;
use super::{permanent, retryable};
use crate::fakes::{Kit, fields, insert_video, lock};

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
