//! MinIO-format bucket notifications delivered to webhook targets.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `PutObject`.
    Put,
    /// `CopyObject` (server-side copy; MinIO reports it as created).
    Copy,
    /// `CompleteMultipartUpload`.
    CompleteMultipartUpload,
    /// `DeleteObject` / `DeleteObjects`.
    Delete,
}

impl EventKind {
    /// MinIO's event name.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Put => "s3:ObjectCreated:Put",
            Self::Copy => "s3:ObjectCreated:Copy",
            Self::CompleteMultipartUpload => "s3:ObjectCreated:CompleteMultipartUpload",
            Self::Delete => "s3:ObjectRemoved:Delete",
        }
    }

    fn is_created(self) -> bool {
        !matches!(self, Self::Delete)
    }
}

/// One webhook target, configured like a MinIO bucket notification rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// Only keys starting with this prefix are sent (`uploads/`, `files/`).
    pub prefix: String,
    /// Endpoint to POST to.
    pub url: String,
    /// Send created events (MinIO `put`).
    pub created: bool,
    /// Send removed events (MinIO `delete`).
    pub removed: bool,
}

impl WebhookTarget {
    /// Parses `[put|delete|put,delete:]PREFIX=URL`, e.g. `uploads/=http://127.0.0.1:8090/webhooks/media-upload`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (events, rest) = match spec.split_once(':') {
            Some((events, rest)) if !events.contains('/') && !events.contains('=') => {
                (events, rest)
            }
            _ => ("put", spec),
        };
        let (prefix, url) = rest
            .split_once('=')
            .ok_or_else(|| format!("webhook {spec:?} is not PREFIX=URL"))?;
        let mut target = Self {
            prefix: prefix.to_owned(),
            url: url.to_owned(),
            created: false,
            removed: false,
        };
        for event in events.split(',') {
            match event.trim() {
                "put" => target.created = true,
                "delete" => target.removed = true,
                other => return Err(format!("unknown webhook event {other:?} (put, delete)")),
            }
        }
        Ok(target)
    }

    fn wants(&self, kind: EventKind, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && if kind.is_created() {
                self.created
            } else {
                self.removed
            }
    }
}

/// Facts about the object an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectFacts {
    /// Size in bytes (0 for removals).
    pub size: i64,
    /// ETag without quotes.
    pub etag: String,
    /// Content type, if known.
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*` without the prefix).
    pub user_metadata: BTreeMap<String, String>,
}

/// Queues notifications and delivers them in the background.
#[derive(Debug, Clone)]
pub struct Notifier {
    senders: Vec<(WebhookTarget, mpsc::UnboundedSender<Value>)>,
    access_key: String,
    endpoint: String,
}

impl Notifier {
    /// Starts one delivery task per target. `token`, when set, is sent as `Authorization:
    /// Bearer <token>` (MinIO's webhook `auth_token`).
    pub fn start(
        targets: Vec<WebhookTarget>,
        token: Option<String>,
        access_key: String,
        endpoint: String,
        retry: RetryPolicy,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let senders = targets
            .into_iter()
            .map(|target| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(deliver(
                    rx,
                    target.url.clone(),
                    token.clone(),
                    client.clone(),
                    retry,
                ));
                (target, tx)
            })
            .collect();
        Self {
            senders,
            access_key,
            endpoint,
        }
    }

    /// Queues the event for every target whose rule matches.
    pub fn publish(&self, kind: EventKind, bucket: &str, key: &str, facts: &ObjectFacts) {
        for (target, tx) in &self.senders {
            if target.wants(kind, key) {
                let body = event_body(kind, bucket, key, facts, &self.access_key, &self.endpoint);
                if tx.send(body).is_err() {
                    tracing::error!(url = %target.url, "webhook delivery task is gone");
                }
            }
        }
    }
}

/// How often and how long failed deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per event before it is dropped (logged).
    pub max_attempts: u32,
    /// Delay between attempts.
    pub delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // MinIO redelivers about every 3 s; a faster cadence keeps local tests quick.
        Self {
            max_attempts: 200,
            delay: Duration::from_millis(500),
        }
    }
}

async fn deliver(
    mut rx: mpsc::UnboundedReceiver<Value>,
    url: String,
    token: Option<String>,
    client: reqwest::Client,
    retry: RetryPolicy,
) {
    while let Some(body) = rx.recv().await {
        for attempt in 1..=retry.max_attempts {
            let mut request = client.post(&url).json(&body);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(%url, key = %body["Key"], "webhook delivered");
                    break;
                }
                Ok(response) => {
                    tracing::warn!(%url, status = %response.status(), attempt, "webhook refused; will retry");
                }
                Err(error) => {
                    tracing::warn!(%url, %error, attempt, "webhook delivery failed; will retry");
                }
            }
            if attempt == retry.max_attempts {
                tracing::error!(%url, key = %body["Key"], "webhook dropped after {} attempts", retry.max_attempts);
            } else {
                tokio::time::sleep(retry.delay).await;
            }
        }
    }
}

/// URL-encodes a key the way MinIO does in notifications (Go's `url.QueryEscape`): unreserved
/// characters stay, space becomes `+`, everything else (including `/`) becomes `%XX`.
pub fn query_escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The MinIO notification body for one event.
pub fn event_body(
    kind: EventKind,
    bucket: &str,
    key: &str,
    facts: &ObjectFacts,
    access_key: &str,
    endpoint: &str,
) -> Value {
    let now = Utc::now();
    let mut user_metadata = serde_json::Map::new();
    if let Some(content_type) = &facts.content_type {
        user_metadata.insert("content-type".into(), Value::from(content_type.clone()));
    }
    for (name, value) in &facts.user_metadata {
        user_metadata.insert(
            format!("X-Amz-Meta-{}", canonical(name)),
            Value::from(value.clone()),
        );
    }
    let mut object = json!({
        "key": query_escape(key),
        "sequencer": format!("{:016X}", now.timestamp_nanos_opt().unwrap_or_default()),
    });
    if kind.is_created() {
        object["size"] = Value::from(facts.size);
        object["eTag"] = Value::from(facts.etag.clone());
        object["contentType"] = Value::from(facts.content_type.clone().unwrap_or_default());
        object["userMetadata"] = Value::Object(user_metadata);
    }
    json!({
        "EventName": kind.event_name(),
        "Key": format!("{bucket}/{key}"),
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "eventName": kind.event_name(),
            "userIdentity": { "principalId": access_key },
            "requestParameters": { "principalId": access_key, "region": "", "sourceIPAddress": "127.0.0.1" },
            "responseElements": {
                "x-amz-request-id": uuid::Uuid::new_v4().simple().to_string(),
                "x-minio-origin-endpoint": endpoint,
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": { "principalId": access_key },
                    "arn": format!("arn:aws:s3:::{bucket}"),
                },
                "object": object,
            },
            "source": { "host": "127.0.0.1", "port": "", "userAgent": "local-objectstore" },
        }],
    })
}

/// `email` → `Email`, `content-disposition` → `Content-Disposition` (HTTP header casing, as
/// MinIO reports metadata keys).
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_query_escaped_like_minio() {
        assert_eq!(
            query_escape("uploads/u-1/abc/my photo (1).jpg"),
            "uploads%2Fu-1%2Fabc%2Fmy+photo+%281%29.jpg"
        );
        assert_eq!(query_escape("files/ü"), "files%2F%C3%BC");
    }

    #[test]
    fn targets_parse_with_and_without_event_lists() {
        let plain = WebhookTarget::parse("uploads/=http://h/webhooks/media-upload").unwrap();
        assert_eq!(plain.prefix, "uploads/");
        assert!(plain.created && !plain.removed);
        let both = WebhookTarget::parse("put,delete:files/=http://h:1/x").unwrap();
        assert_eq!(both.url, "http://h:1/x");
        assert!(both.created && both.removed);
        assert!(WebhookTarget::parse("nonsense").is_err());
        assert!(WebhookTarget::parse("get:a/=http://h").is_err());
    }

    #[test]
    fn created_event_body_has_minio_shape() {
        let facts = ObjectFacts {
            size: 204_800,
            etag: "abc".into(),
            content_type: Some("image/jpeg".into()),
            user_metadata: BTreeMap::from([("email".to_owned(), "a@b.c".to_owned())]),
        };
        let body = event_body(
            EventKind::Put,
            "media-uploads",
            "uploads/u/1/a b.jpg",
            &facts,
            "admin",
            "http://127.0.0.1:9000",
        );
        assert_eq!(body["EventName"], "s3:ObjectCreated:Put");
        assert_eq!(body["Key"], "media-uploads/uploads/u/1/a b.jpg");
        let record = &body["Records"][0];
        assert_eq!(record["eventName"], "s3:ObjectCreated:Put");
        assert_eq!(record["s3"]["bucket"]["name"], "media-uploads");
        assert_eq!(record["s3"]["object"]["key"], "uploads%2Fu%2F1%2Fa+b.jpg");
        assert_eq!(record["s3"]["object"]["size"], 204_800);
        assert_eq!(record["s3"]["object"]["contentType"], "image/jpeg");
        assert_eq!(
            record["s3"]["object"]["userMetadata"]["X-Amz-Meta-Email"],
            "a@b.c"
        );
        assert!(
            chrono::DateTime::parse_from_rfc3339(record["eventTime"].as_str().unwrap_or_default())
                .is_ok()
        );
    }

    #[test]
    fn rules_filter_by_prefix_and_event() {
        let target = WebhookTarget::parse("uploads/=http://h").unwrap();
        assert!(target.wants(EventKind::Put, "uploads/a"));
        assert!(target.wants(EventKind::Copy, "uploads/a"));
        assert!(!target.wants(EventKind::Put, "files/a"));
        assert!(!target.wants(EventKind::Delete, "uploads/a"));
    }
}
