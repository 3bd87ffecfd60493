//! The local object store as the platform uses it: real SigV4 (presigned URLs included) and
//! MinIO-format webhooks with the bearer token. Each test runs its own store process.

// A test fails by panicking, and an unwrapped error says what went wrong; the workspace's
// unwrap lints are for service code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use secrecy::SecretString;
use serde_json::Value;
use substrate::s3::S3Settings;
use substrate::testing::{eventually, unique};

type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

/// A webhook receiver recording (path, authorization, body).
async fn receiver() -> (String, Seen) {
    async fn record(
        State(seen): State<Seen>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> &'static str {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        seen.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((uri.path().to_owned(), auth, body));
        "ok"
    }
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/upload", post(record))
        .route("/ready", post(record))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}"), seen)
}

struct Store {
    child: Child,
    settings: S3Settings,
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_store(webhooks: &str) -> Store {
    let port = StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let root = std::env::temp_dir().join(unique("objectstore"));
    let child = Command::new(env!("CARGO_BIN_EXE_local-objectstore"))
        .args([
            "--root",
            &root.to_string_lossy(),
            "--port",
            &port.to_string(),
            "--bucket",
            "media-uploads",
        ])
        .args(["--webhook", &format!("uploads/={webhooks}/upload")])
        .args(["--webhook", &format!("files/={webhooks}/ready")])
        .args(["--webhook-token", "t0k3n"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = eventually(Duration::from_secs(20), || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    assert!(up, "store did not start");
    let settings = S3Settings {
        endpoint: format!("127.0.0.1:{port}"),
        public_endpoint: format!("127.0.0.1:{port}"),
        ..S3Settings::default()
    };
    Store { child, settings }
}

async fn presigned_put(
    settings: &S3Settings,
    key: &str,
    content_type: &str,
    expires: Duration,
) -> String {
    settings
        .presign_client()
        .put_object()
        .bucket("media-uploads")
        .key(key)
        .content_type(content_type)
        .presigned(PresigningConfig::expires_in(expires).unwrap())
        .await
        .unwrap()
        .uri()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_presigned_upload_is_stored_and_announced_in_minio_format_with_the_token() {
    let (hooks, seen) = receiver().await;
    let store = start_store(&hooks).await;
    let key = "uploads/user-1/abc/my photo (1).jpg";
    let url = presigned_put(&store.settings, key, "image/jpeg", Duration::from_secs(60)).await;

    let client = reqwest::Client::new();
    let response = client
        .put(&url)
        .header("content-type", "image/jpeg")
        .body(b"jpeg-bytes".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let announced = eventually(Duration::from_secs(10), || async {
        !seen.lock().map(|s| s.is_empty()).unwrap_or(true)
    })
    .await;
    assert!(announced, "no webhook received");
    let (path, auth, body) = seen.lock().map(|s| s[0].clone()).unwrap();
    assert_eq!(path, "/upload");
    assert_eq!(auth.as_deref(), Some("Bearer t0k3n"));
    assert_eq!(body["EventName"], "s3:ObjectCreated:Put");
    let object = &body["Records"][0]["s3"]["object"];
    assert_eq!(
        object["key"],
        "uploads%2Fuser-1%2Fabc%2Fmy+photo+%281%29.jpg"
    );
    assert_eq!(object["size"], 10);
    assert_eq!(object["contentType"], "image/jpeg");
    assert_eq!(body["Records"][0]["s3"]["bucket"]["name"], "media-uploads");

    // A server-side copy into files/ is a created object too (MinIO's "put" covers copies).
    store
        .settings
        .internal_client()
        .copy_object()
        .bucket("media-uploads")
        .key("files/user-1/abc/copy.jpg")
        .copy_source("media-uploads/uploads/user-1/abc/my%20photo%20%281%29.jpg")
        .send()
        .await
        .unwrap();
    let copied = eventually(Duration::from_secs(10), || async {
        seen.lock()
            .map(|s| s.iter().any(|(p, _, _)| p == "/ready"))
            .unwrap_or(false)
    })
    .await;
    assert!(copied, "copy into files/ was not announced");
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_expired_and_wrongly_keyed_requests_are_refused() {
    let (hooks, seen) = receiver().await;
    let store = start_store(&hooks).await;
    let client = reqwest::Client::new();
    let put = |url: String, content_type: &'static str| {
        let client = client.clone();
        async move {
            client
                .put(url)
                .header("content-type", content_type)
                .body(b"x".to_vec())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let url = presigned_put(
        &store.settings,
        "uploads/u/1/a.jpg",
        "image/jpeg",
        Duration::from_secs(60),
    )
    .await;
    let tampered = url.replace("uploads/u/1/a.jpg", "uploads/u/1/b.jpg");
    assert_eq!(
        put(tampered, "image/jpeg").await,
        403,
        "another key with the same signature"
    );
    assert_eq!(
        put(url.clone(), "text/html").await,
        403,
        "the signed content type is bound"
    );

    let short = presigned_put(
        &store.settings,
        "uploads/u/1/c.jpg",
        "image/jpeg",
        Duration::from_secs(1),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(put(short, "image/jpeg").await, 403, "expired");

    let wrong = S3Settings {
        secret_key: SecretString::from("not-the-password"),
        ..store.settings.clone()
    };
    let forged = presigned_put(
        &wrong,
        "uploads/u/1/d.jpg",
        "image/jpeg",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(put(forged, "image/jpeg").await, 403, "wrong secret");

    assert_eq!(
        put(url, "image/jpeg").await,
        200,
        "the genuine URL still works"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let announced: Vec<String> = seen
        .lock()
        .map(|s| {
            s.iter()
                .map(|(_, _, b)| b["Key"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        announced,
        ["media-uploads/uploads/u/1/a.jpg"],
        "refused requests store and announce nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_frontend_origin_may_put_from_a_browser_and_read_the_etag_and_others_may_not() {
    let (hooks, _seen) = receiver().await;
    let store = start_store(&hooks).await;
    let base = format!("http://{}", store.settings.endpoint);
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}/media-uploads/uploads/u/1/a.png"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
    };

    let allowed = preflight("http://127.0.0.1:5173").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some("http://127.0.0.1:5173")
    );
    let methods = header(&allowed, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("PUT"), "{methods}");
    let foreign = preflight("http://evil.example").await.unwrap();
    assert_eq!(header(&foreign, "access-control-allow-origin"), None);

    // The signed PUT itself: stored, and the browser may read its ETag.
    let url = presigned_put(
        &store.settings,
        "uploads/u/1/a.png",
        "image/png",
        Duration::from_secs(60),
    )
    .await;
    let put = client
        .put(&url)
        .header("origin", "http://localhost:5173")
        .header("content-type", "image/png")
        .body(b"png".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(
        header(&put, "access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
    let exposed = header(&put, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.to_lowercase().contains("etag"), "{exposed}");
    assert!(header(&put, "etag").is_some());
}
