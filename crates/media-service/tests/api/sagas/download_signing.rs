//! `internal.media.download.intent` → the owner's active file signed for download, or a rejection.

use media_service::configuration::MediaSettings;
use media_service::handlers::download_signing;
use serde_json::{Value, json};

use super::{is_rfc3339, permanent, retryable};
use crate::fakes::{Kit, SinkMode, fields, insert_video, lock};

pub(crate) fn download_intent() -> Value {
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
