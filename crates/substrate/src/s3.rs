//! Object-store (S3 / MinIO) settings and clients.

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Legacy variables of the original services for the object store.
pub const S3_ALIASES: &[(&str, &str)] = &[
    ("MINIO_ENDPOINT", "s3.endpoint"),
    ("MINIO_PUBLIC_ENDPOINT", "s3.public_endpoint"),
    ("MINIO_ACCESS_KEY", "s3.access_key"),
    ("MINIO_SECRET_KEY", "s3.secret_key"),
    ("MINIO_BUCKET", "s3.bucket"),
    ("MINIO_USE_SSL", "s3.use_ssl"),
];

/// Object-store settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct S3Settings {
    /// Endpoint the service itself talks to (copy, delete, head), e.g. `minio:9000`.
    pub endpoint: String,
    /// Browser-reachable endpoint used only for presigning; SigV4 signs the host, so a URL signed
    /// for the internal host would not verify when the browser uses the public one.
    pub public_endpoint: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: SecretString,
    /// Bucket holding `uploads/` and `files/`.
    pub bucket: String,
    /// Signing region.
    pub region: String,
    /// Use https for endpoints given without a scheme.
    pub use_ssl: bool,
    /// Attempts per request inside the SDK (its own short retries with backoff) before an
    /// operation fails to the caller; the sagas add their own, longer retries on top.
    pub max_attempts: u32,
    /// Longest time to open a connection to the store, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest time one attempt of an operation may take, in milliseconds (a store that
    /// accepts the connection and never answers must not hang a saga or a request).
    pub attempt_timeout_ms: u64,
    /// Longest time an operation may take with all its attempts, in milliseconds.
    pub operation_timeout_ms: u64,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: crate::local_stack::s3_endpoint().to_owned(),
            public_endpoint: crate::local_stack::s3_endpoint().to_owned(),
            access_key: "admin".to_owned(),
            secret_key: SecretString::from("password"),
            bucket: "media-uploads".to_owned(),
            region: "us-east-1".to_owned(),
            use_ssl: false,
            max_attempts: 3,
            connect_timeout_ms: 3_000,
            attempt_timeout_ms: 10_000,
            operation_timeout_ms: 30_000,
        }
    }
}

impl S3Settings {
    fn url(&self, endpoint: &str) -> String {
        if endpoint.contains("://") {
            endpoint.to_owned()
        } else if self.use_ssl {
            format!("https://{endpoint}")
        } else {
            format!("http://{endpoint}")
        }
    }

    fn client(&self, endpoint: &str) -> aws_sdk_s3::Client {
        let credentials = Credentials::new(
            self.access_key.clone(),
            self.secret_key.expose_secret().to_owned(),
            None,
            None,
            "substrate-settings",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(self.url(endpoint))
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials)
            // MinIO and the local store serve buckets as paths, not virtual hosts.
            .force_path_style(true)
            .retry_config(
                aws_sdk_s3::config::retry::RetryConfig::standard()
                    .with_max_attempts(self.max_attempts.max(1)),
            )
            // The SDK sets no operation timeout of its own.
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(self.connect_timeout_ms))
                    .operation_attempt_timeout(Duration::from_millis(self.attempt_timeout_ms))
                    .operation_timeout(Duration::from_millis(self.operation_timeout_ms))
                    .build(),
            )
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Client for object operations on the internal endpoint.
    pub fn internal_client(&self) -> aws_sdk_s3::Client {
        self.client(&self.endpoint)
    }

    /// Client whose presigned URLs carry the public host.
    pub fn presign_client(&self) -> aws_sdk_s3::Client {
        self.client(&self.public_endpoint)
    }
}

/// An object-store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// The source object of a move does not exist (and the destination does not either).
    #[error("object not found: {0}")]
    NotFound(String),
    /// The store is unreachable, slow or failing on its side (connection errors, timeouts,
    /// 5xx, throttling); retrying later may work.
    #[error("object store: {0}")]
    Failed(String),
    /// The store refused the request itself (access denied, a missing bucket, an invalid key)
    /// or the request could not be made (a presign setting out of range): the same request
    /// will be refused again, so retrying only holds up everything behind it.
    #[error("object store refused the request: {0}")]
    Refused(String),
}

/// What a successful [`ObjectClient::move_object`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// This call copied the object to its destination.
    Copied,
    /// The destination already held the object and the source was gone: an earlier call (or
    /// an earlier attempt of this one) made the move. The store's notification for the
    /// destination went out then, not now.
    AlreadyMoved,
}

impl ObjectError {
    /// Whether retrying the same request cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

/// Classifies an SDK failure: the store's 4xx answers are refusals except the ones that mean
/// "try again" (408 timeout, 429 and 503 slow down); a request that could not even be built is
/// refused too. Everything else (connect, timeout, 5xx, unreadable answers) may pass.
fn failed<E: std::error::Error + Send + Sync + 'static>(
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> ObjectError {
    let refused = match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            (400..500).contains(&status) && !matches!(status, 408 | 429)
        }
        SdkError::ConstructionFailure(_) => true,
        _ => false,
    };
    let text = DisplayErrorContext(error).to_string();
    if refused {
        ObjectError::Refused(text)
    } else {
        ObjectError::Failed(text)
    }
}

fn presigning(expires_in: Duration) -> Result<PresigningConfig, ObjectError> {
    PresigningConfig::expires_in(expires_in).map_err(|e| ObjectError::Refused(e.to_string()))
}

/// Characters escaped in the `x-amz-copy-source` header: everything but unreserved and `/`.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The object operations the services share: presigning on the public endpoint (SigV4 binds the
/// host the browser will use), everything else on the internal one.
#[derive(Debug, Clone)]
pub struct ObjectClient {
    presign: aws_sdk_s3::Client,
    internal: aws_sdk_s3::Client,
}

impl ObjectClient {
    /// Both clients from the settings; no request is made here.
    pub fn new(settings: &S3Settings) -> Self {
        Self {
            presign: settings.presign_client(),
            internal: settings.internal_client(),
        }
    }

    /// A URL to PUT `key` until `expires_in` passes. With a `content_type` the signature binds
    /// it, so the upload must be sent with exactly that `Content-Type`.
    pub async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: Option<&str>,
        expires_in: Duration,
    ) -> Result<String, ObjectError> {
        let request = self
            .presign
            .put_object()
            .bucket(bucket)
            .key(key)
            .set_content_type(content_type.map(str::to_owned))
            .presigned(presigning(expires_in)?)
            .await
            .map_err(failed)?;
        Ok(request.uri().to_owned())
    }

    /// A URL to GET `key` until `expires_in` passes.
    pub async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> Result<String, ObjectError> {
        let request = self
            .presign
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(failed)?;
        Ok(request.uri().to_owned())
    }

    /// Removes `key`; a missing key is not an error (S3 semantics).
    pub async fn remove(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.internal
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(failed)
    }

    /// Whether `key` exists.
    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, ObjectError> {
        match self
            .internal
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    /// Server-side copy `from` → `to`, then delete `from`. Idempotent: when `from` is already
    /// gone but `to` exists, the move happened before and counts as done.
    pub async fn move_object(
        &self,
        bucket: &str,
        from: &str,
        to: &str,
    ) -> Result<Moved, ObjectError> {
        // The copy source is `bucket/key`, URL-encoded (keys may contain spaces and more).
        let source = format!(
            "{bucket}/{}",
            percent_encoding::utf8_percent_encode(from, COPY_SOURCE)
        );
        let copied = self
            .internal
            .copy_object()
            .bucket(bucket)
            .key(to)
            .copy_source(source)
            .send()
            .await;
        if let Err(error) = copied {
            if self.exists(bucket, to).await? {
                return Ok(Moved::AlreadyMoved);
            }
            if !self.exists(bucket, from).await? {
                return Err(ObjectError::NotFound(from.to_owned()));
            }
            return Err(failed(error));
        }
        // The copy is what matters; a leftover source expires with the uploads/ lifecycle rule.
        if let Err(error) = self.remove(bucket, from).await {
            tracing::warn!(%error, from, "source not deleted after move");
        }
        Ok(Moved::Copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_that_never_answers_fails_the_operation_instead_of_hanging() {
        // Accepts connections and reads nothing back: a stuck store.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let settings = S3Settings {
            endpoint: address.to_string(),
            max_attempts: 1,
            attempt_timeout_ms: 200,
            operation_timeout_ms: 500,
            ..S3Settings::default()
        };
        // The bound only ends the test if the timeouts are missing (it would hang otherwise).
        let outcome = tokio::time::timeout(
            Duration::from_secs(20),
            ObjectClient::new(&settings).remove("bucket", "key"),
        )
        .await;
        held.abort();
        let result = outcome.unwrap_or_else(|_| panic!("the operation hung"));
        assert!(matches!(result, Err(ObjectError::Failed(_))), "{result:?}");
    }
}
