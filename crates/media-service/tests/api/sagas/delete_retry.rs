//! `internal.media.delete.retry` → removal again after a growing delay, then the dead letter.

use std::time::Duration;

use media_service::configuration::MediaSettings;
use media_service::handlers::delete_retry;
use serde_json::{Value, json};
use substrate::kafka::HandlerError;

use super::{is_rfc3339, permanent};
use crate::fakes::{Kit, fields, lock};

pub(crate) fn retry_event(count: Value) -> Value {
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
