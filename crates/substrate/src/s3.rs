//! Object-store (S3 / MinIO) settings and clients.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
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
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: "127.0.0.1:9000".to_owned(),
            public_endpoint: "127.0.0.1:9000".to_owned(),
            access_key: "admin".to_owned(),
            secret_key: SecretString::from("password"),
            bucket: "media-uploads".to_owned(),
            region: "us-east-1".to_owned(),
            use_ssl: false,
            max_attempts: 3,
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
