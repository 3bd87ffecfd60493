//! Calling the gateway's router in-process, as the handler tests over fakes do.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::fakes::{Harness, Options};
use crate::tokens::token;

pub const UPLOAD: &str =
    r#"{"file_name":"photo.jpg","media_type":"image/jpeg","file_size":2048000}"#;
pub const FILE: &str = r#"{"file_path":"uploads/user-123/some-uuid/photo.jpg"}"#;

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

pub async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    auth: Option<String>,
    body: &str,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let request = request
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    send(h, request).await
}

pub async fn send(h: &Harness, request: Request<Body>) -> Reply {
    let response = h.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}

pub fn bearer(sub: &str) -> Option<String> {
    Some(format!("Bearer {}", token(sub)))
}

pub fn harness() -> Harness {
    Harness::new(Options::default())
}
