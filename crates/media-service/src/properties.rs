//! Properties of the object store's webhook bodies, checked by the property tests below (in CI)
//! and by the `minio_webhook` fuzz target (`fuzz/`, feature `fuzzing`), which feed them inputs of
//! their own. The check panics when the property does not hold.

use crate::webhooks::{created_objects, upload_received};

/// The bucket the checks parse notifications for.
pub const BUCKET: &str = "media-uploads";

/// Whatever the body, parsing it never panics, and an upload event is only ever made for a key
/// that cannot escape its place: under `uploads/`, every segment a plain name, the user id and
/// file name taken from it, and a permanent path that is the same key under `files/`.
pub fn webhook_body_yields_only_safe_uploads(body: &[u8]) {
    let Ok(objects) = created_objects(body, BUCKET) else {
        return;
    };
    for object in &objects {
        let Some(received) = upload_received(object) else {
            continue;
        };
        // Checked as the JSON document the sink encodes, field by field.
        let event = serde_json::to_value(&received).unwrap_or_default();
        let field = |name: &str| {
            event[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} is not a string: {event}"))
                .to_owned()
        };
        let path = field("file_path");
        assert_eq!(path, object.key, "{event}");
        let rest = path
            .strip_prefix("uploads/")
            .unwrap_or_else(|| panic!("an upload outside uploads/: {event}"));
        substrate::keys::check_key(&path).unwrap_or_else(|e| panic!("unsafe key ({e}): {event}"));
        let permanent = field("permanent_path");
        assert_eq!(permanent, format!("files/{rest}"), "{event}");
        substrate::keys::check_key(&permanent)
            .unwrap_or_else(|e| panic!("unsafe permanent key ({e}): {event}"));
        let user = field("user_id");
        assert!(!user.is_empty(), "{event}");
        substrate::keys::check_segment(&user)
            .unwrap_or_else(|e| panic!("unsafe user id ({e}): {event}"));
        assert_eq!(Some(user.as_str()), rest.split('/').next(), "{event}");
        let name = field("file_name");
        assert_eq!(Some(name.as_str()), path.rsplit('/').next(), "{event}");
        assert!(!field("media_type").is_empty(), "{event}");
        assert_eq!(event["file_size"], object.size, "{event}");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Keys built to hit the edges: traversal segments, encoded slashes and dots, `+` for
    /// spaces, control characters, empty segments, other prefixes.
    fn key() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            "[a-z0-9]{1,6}",
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just("%2E%2E".to_owned()),
            Just("%2F".to_owned()),
            Just("a%2Fb".to_owned()),
            Just("a+b".to_owned()),
            Just("%00".to_owned()),
            Just("%0A".to_owned()),
            Just("%ZZ".to_owned()),
            Just(String::new()),
            "\\PC{1,4}",
        ];
        (
            prop_oneof![
                Just("uploads"),
                Just("files"),
                Just("Uploads"),
                Just("uploads%2F")
            ],
            prop::collection::vec(segment, 0..5),
        )
            .prop_map(|(prefix, segments)| {
                std::iter::once(prefix.to_owned())
                    .chain(segments)
                    .collect::<Vec<_>>()
                    .join("/")
            })
    }

    fn record() -> impl Strategy<Value = Value> {
        (
            key(),
            any::<i64>(),
            prop::option::of(prop_oneof![Just("image/png"), Just("")]),
            prop_oneof![
                Just("s3:ObjectCreated:Put"),
                Just("s3:ObjectRemoved:Delete")
            ],
            prop_oneof![Just(BUCKET), Just("other")],
        )
            .prop_map(|(key, size, content_type, event, bucket)| {
                json!({
                    "EventName": event,
                    "EventTime": "2026-02-25T10:00:00Z",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": key, "size": size, "contentType": content_type,
                                   "userMetadata": {"X-Amz-Meta-Email": "a@b.c"}}
                    }
                })
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn notifications_yield_upload_events_only_for_safe_keys(
            records in prop::collection::vec(record(), 0..4)
        ) {
            let body = json!({"Records": records}).to_string();
            webhook_body_yields_only_safe_uploads(body.as_bytes());
        }

        #[test]
        fn any_bytes_are_parsed_or_refused_without_panicking(body in prop::collection::vec(any::<u8>(), 0..256)) {
            webhook_body_yields_only_safe_uploads(&body);
        }
    }

    #[test]
    fn a_plain_upload_yields_its_event_so_the_check_is_exercised() {
        let body = json!({"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": BUCKET}, "object": {"key": "uploads/u1/r1/a+b.png", "size": 3}}}]});
        let objects = created_objects(body.to_string().as_bytes(), BUCKET).unwrap();
        let event = upload_received(&objects[0]).unwrap_or_else(|| panic!("no event"));
        assert_eq!(event.file_name, "a b.png");
        webhook_body_yields_only_safe_uploads(body.to_string().as_bytes());
    }
}
