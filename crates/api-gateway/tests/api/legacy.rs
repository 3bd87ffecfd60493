//! The legacy synchronous media routes over fakes: a credit buys one presigned PUT, downloads and
//! deletes only of the caller's own active file, a failed removal handed to the delete saga's
//! retry loop (the Go routes' behaviour, with the fixes).

use axum::http::StatusCode;
use serde_json::json;

use crate::client::{FILE, UPLOAD, bearer, call, harness};
use crate::fakes::{FakeCredits, Harness, Options, lock};

fn funded(user: &str, balance: i64) -> Harness {
    Harness::new(Options {
        credits: FakeCredits::default().with_balance(user, balance),
        ..Options::default()
    })
}

#[tokio::test]
async fn upload_url_issues_a_presigned_put_and_spends_one_credit() {
    let h = funded("abc-def-ghi-789", 2);
    let reply = call(
        &h,
        "POST",
        "/api/v1/media/upload-url",
        bearer("abc-def-ghi-789"),
        UPLOAD,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.content_type.contains("application/json"));
    let path = reply.body["file_path"].as_str().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').collect();
    assert_eq!(parts.len(), 4, "{path}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("uploads", "abc-def-ghi-789", "photo.jpg")
    );
    assert!(uuid::Uuid::parse_str(parts[2]).is_ok(), "{path}");
    assert!(
        reply.body["upload_url"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );
    assert_eq!(reply.body["expires_in"], 900);
    let presigned = h
        .objects
        .presigned
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    assert_eq!(presigned.len(), 1);
    assert_eq!(
        (presigned[0].0.as_str(), presigned[0].1.as_str()),
        ("PUT", path)
    );
    assert_eq!(
        presigned[0].2.as_deref(),
        Some("image/jpeg"),
        "the content type is bound into the signature"
    );
    assert_eq!(
        h.credits
            .deductions
            .lock()
            .map(|d| d.len())
            .unwrap_or_default(),
        1,
        "one credit spent"
    );
    let second = call(
        &h,
        "POST",
        "/api/v1/media/upload-url",
        bearer("abc-def-ghi-789"),
        UPLOAD,
    )
    .await;
    assert_eq!(second.status, StatusCode::OK);
    let third = call(
        &h,
        "POST",
        "/api/v1/media/upload-url",
        bearer("abc-def-ghi-789"),
        UPLOAD,
    )
    .await;
    assert_eq!(
        third.status,
        StatusCode::PAYMENT_REQUIRED,
        "two credits buy exactly two uploads"
    );
}

#[tokio::test]
async fn upload_url_accepts_every_supported_media_type_and_rejects_others() {
    for media_type in api_gateway::domain::ALLOWED_MEDIA_TYPES {
        let h = funded("u", 1);
        let body = json!({"file_name":"f","media_type":media_type,"file_size":1}).to_string();
        let reply = call(&h, "POST", "/api/v1/media/upload-url", bearer("u"), &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{media_type}");
    }
    for media_type in [
        "application/pdf",
        "text/plain",
        "image/bmp",
        "video/avi",
        "audio/flac",
        "application/octet-stream",
    ] {
        let h = funded("u", 1);
        let body = json!({"file_name":"f","media_type":media_type,"file_size":1}).to_string();
        let reply = call(&h, "POST", "/api/v1/media/upload-url", bearer("u"), &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{media_type}");
    }
}

#[tokio::test]
async fn upload_url_failure_cases() {
    struct Case {
        name: &'static str,
        balance: Option<i64>,
        body: &'static str,
        fail_db: bool,
        fail_sign: bool,
        status: StatusCode,
        code: &'static str,
    }
    let ok = UPLOAD;
    let cases = [
        Case {
            name: "missing file_name",
            balance: Some(5),
            body: r#"{"media_type":"image/jpeg","file_size":1}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "missing media_type",
            balance: Some(5),
            body: r#"{"file_name":"a","file_size":1}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "missing file_size",
            balance: Some(5),
            body: r#"{"file_name":"a","media_type":"image/jpeg"}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "file_size zero",
            balance: Some(5),
            body: r#"{"file_name":"a","media_type":"image/jpeg","file_size":0}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "file_size negative",
            balance: Some(5),
            body: r#"{"file_name":"a","media_type":"image/jpeg","file_size":-500}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "empty file_name",
            balance: Some(5),
            body: r#"{"file_name":"","media_type":"image/jpeg","file_size":1}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "empty media_type",
            balance: Some(5),
            body: r#"{"file_name":"a","media_type":"","file_size":1}"#,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
        },
        Case {
            name: "zero credits",
            balance: Some(0),
            body: ok,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::PAYMENT_REQUIRED,
            code: "insufficient_credits",
        },
        Case {
            name: "negative credits",
            balance: Some(-5),
            body: ok,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::PAYMENT_REQUIRED,
            code: "insufficient_credits",
        },
        Case {
            name: "no ledger row",
            balance: None,
            body: ok,
            fail_db: false,
            fail_sign: false,
            status: StatusCode::PAYMENT_REQUIRED,
            code: "insufficient_credits",
        },
        Case {
            name: "database error",
            balance: Some(5),
            body: ok,
            fail_db: true,
            fail_sign: false,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
        },
        Case {
            name: "signer error",
            balance: Some(5),
            body: ok,
            fail_db: false,
            fail_sign: true,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
        },
    ];
    for case in cases {
        let credits = match case.balance {
            Some(balance) => FakeCredits::default().with_balance("user-123", balance),
            None => FakeCredits::default(),
        };
        *lock(&credits.fail) = case.fail_db;
        let h = Harness::new(Options {
            credits,
            ..Options::default()
        });
        *h.objects
            .fail_presign
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = case.fail_sign;
        let reply = call(
            &h,
            "POST",
            "/api/v1/media/upload-url",
            bearer("user-123"),
            case.body,
        )
        .await;
        assert_eq!(reply.status, case.status, "{}", case.name);
        assert_eq!(reply.body["error"], case.code, "{}", case.name);
        assert!(
            h.credits
                .deductions
                .lock()
                .map(|d| d.is_empty())
                .unwrap_or(false),
            "{}: no credit spent",
            case.name
        );
    }
}

#[tokio::test]
async fn upload_url_uses_the_configured_expiry() {
    let h = Harness::new(Options {
        expiry_secs: 1800,
        credits: FakeCredits::default().with_balance("u", 1),
        ..Options::default()
    });
    let reply = call(&h, "POST", "/api/v1/media/upload-url", bearer("u"), UPLOAD).await;
    assert_eq!(reply.body["expires_in"], 1800);
    let presigned = h
        .objects
        .presigned
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    assert_eq!(presigned[0].3.as_secs(), 1800);
}

// ---------------------------------------------------------------- download-url and delete

fn with_file(user: &str, path: &str) -> Harness {
    let h = harness();
    h.files
        .insert(user, path, "photo.jpg", "image/jpeg", 999_999);
    h
}

fn is_active(h: &Harness, user: &str, path: &str) -> bool {
    h.files.status(user, path).as_deref() == Some("active")
}

#[tokio::test]
async fn download_url_signs_the_owners_file_and_records_the_download() {
    let h = with_file("user-123", "uploads/user-123/some-uuid/photo.jpg");
    let reply = call(
        &h,
        "POST",
        "/api/v1/media/download-url",
        bearer("user-123"),
        FILE,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.contains("application/json"));
    assert!(reply.body["download_url"].is_string());
    assert_eq!(reply.body["expires_in"], 900);
    let events = h.sink.on("public.media.download.events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["user_id"], "user-123");
    assert_eq!(events[0]["file_name"], "photo.jpg");
}

#[tokio::test]
async fn delete_soft_deletes_notifies_and_removes_the_object() {
    let path = "uploads/user-123/some-uuid/photo.jpg";
    let h = with_file("user-123", path);
    let reply = call(&h, "POST", "/api/v1/media/delete", bearer("user-123"), FILE).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"success": true}));
    assert!(!is_active(&h, "user-123", path));
    let events = h.sink.on("public.media.delete.events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["file_size"], 999_999);
    // The soft delete records its request, as the delete saga's does.
    let row = h.files.row("user-123", path).unwrap();
    assert!(
        row.deleted_by_request_id
            .as_deref()
            .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
        "{row:?}"
    );
    let removed = h
        .objects
        .removed
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    assert_eq!(removed, vec![path.to_owned()]);
    assert!(h.sink.on("internal.media.delete.retry").is_empty());
}

#[tokio::test]
async fn delete_hands_a_failed_removal_to_the_retry_saga() {
    let path = "uploads/user-123/some-uuid/photo.jpg";
    let h = with_file("user-123", path);
    *h.objects
        .fail_remove
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = true;
    let reply = call(&h, "POST", "/api/v1/media/delete", bearer("user-123"), FILE).await;
    assert_eq!(reply.status, StatusCode::OK);
    let retries = h.sink.on("internal.media.delete.retry");
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0]["retry_count"], 0);
    assert_eq!(retries[0]["file_path"], path);
    // The retry belongs to the deletion the row records.
    let row = h.files.row("user-123", path).unwrap();
    assert_eq!(
        retries[0]["request_id"].as_str(),
        row.deleted_by_request_id.as_deref()
    );
}

#[tokio::test]
async fn download_and_delete_failure_cases() {
    let path = "uploads/user-123/some-uuid/photo.jpg";
    for route in ["/api/v1/media/download-url", "/api/v1/media/delete"] {
        for (name, body, status) in [
            ("empty body", "", StatusCode::BAD_REQUEST),
            ("malformed", "{not json", StatusCode::BAD_REQUEST),
            ("missing path", "{}", StatusCode::BAD_REQUEST),
            ("empty path", r#"{"file_path":""}"#, StatusCode::BAD_REQUEST),
            (
                "not found",
                r#"{"file_path":"uploads/user-123/other/x.jpg"}"#,
                StatusCode::NOT_FOUND,
            ),
        ] {
            let h = with_file("user-123", path);
            let reply = call(&h, "POST", route, bearer("user-123"), body).await;
            assert_eq!(reply.status, status, "{route}: {name}");
            assert!(
                h.sink.events().is_empty(),
                "{route}: {name}: nothing published"
            );
        }
        let h = with_file("user-456", path);
        let reply = call(&h, "POST", route, bearer("user-123"), FILE).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{route}: another user's file"
        );
        assert!(
            is_active(&h, "user-456", path),
            "{route}: the owner's file is untouched"
        );

        let h = with_file("user-123", path);
        *lock(&h.files.fail_lookup) = true;
        let reply = call(&h, "POST", route, bearer("user-123"), FILE).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{route}: metadata error"
        );
    }
    let h = with_file("user-123", path);
    *h.objects
        .fail_presign
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = true;
    let reply = call(
        &h,
        "POST",
        "/api/v1/media/download-url",
        bearer("user-123"),
        FILE,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "presign failure"
    );

    let h = with_file("user-123", path);
    *h.files
        .fail_soft_delete
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = true;
    let reply = call(&h, "POST", "/api/v1/media/delete", bearer("user-123"), FILE).await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "soft delete failure"
    );
    assert!(
        h.objects
            .removed
            .lock()
            .map(|r| r.is_empty())
            .unwrap_or(false)
    );
}
