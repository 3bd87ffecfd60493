//! The S3 implementation: s3s-fs for storage, plus notifications after successful writes.

use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput,
    CompleteMultipartUploadOutput, CopyObjectInput, CopyObjectOutput, CreateBucketInput,
    CreateBucketOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput, DeleteBucketInput,
    DeleteBucketOutput, DeleteObjectInput, DeleteObjectOutput, DeleteObjectsInput,
    DeleteObjectsOutput, GetBucketLocationInput, GetBucketLocationOutput, GetObjectInput,
    GetObjectOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput,
    ListBucketsInput, ListBucketsOutput, ListObjectsInput, ListObjectsOutput, ListObjectsV2Input,
    ListObjectsV2Output, ListPartsInput, ListPartsOutput, PutObjectInput, PutObjectOutput,
    UploadPartCopyInput, UploadPartCopyOutput, UploadPartInput, UploadPartOutput,
};
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;

use crate::notify::{EventKind, Notifier, ObjectFacts};

/// s3s-fs with MinIO-style notifications on object creation and removal.
#[derive(Debug)]
pub struct NotifyingStore {
    inner: FileSystem,
    notifier: Notifier,
}

impl NotifyingStore {
    /// Wraps `inner`, notifying through `notifier`.
    pub fn new(inner: FileSystem, notifier: Notifier) -> Self {
        Self { inner, notifier }
    }

    /// Reads size, ETag, content type and user metadata of a freshly written object.
    async fn facts<T>(&self, like: &S3Request<T>, bucket: &str, key: &str) -> ObjectFacts {
        let input = match HeadObjectInput::builder()
            .bucket(bucket.to_owned())
            .key(key.to_owned())
            .build()
        {
            Ok(input) => input,
            Err(error) => {
                tracing::warn!(%error, "could not describe object for notification");
                return ObjectFacts::default();
            }
        };
        let request = S3Request {
            input,
            method: http::Method::HEAD,
            uri: like.uri.clone(),
            headers: http::HeaderMap::new(),
            extensions: http::Extensions::new(),
            credentials: like.credentials.clone(),
            region: like.region.clone(),
            service: like.service.clone(),
            trailing_headers: None,
        };
        match self.inner.head_object(request).await {
            Ok(response) => {
                let output = response.output;
                ObjectFacts {
                    size: output.content_length.unwrap_or_default(),
                    etag: output
                        .e_tag
                        .map(|tag| tag.value().to_owned())
                        .unwrap_or_default(),
                    content_type: output.content_type.map(|ct| ct.to_string()),
                    user_metadata: output
                        .metadata
                        .map(|m| m.into_iter().collect())
                        .unwrap_or_default(),
                }
            }
            Err(error) => {
                tracing::warn!(%error, bucket, key, "could not describe object for notification");
                ObjectFacts::default()
            }
        }
    }

    async fn created<T>(&self, kind: EventKind, like: &S3Request<T>, bucket: &str, key: &str) {
        let facts = self.facts(like, bucket, key).await;
        self.notifier.publish(kind, bucket, key, &facts);
    }
}

// Plain delegation for the operations the platform uses; s3s answers NotImplemented for the rest.
#[async_trait::async_trait]
impl S3 for NotifyingStore {
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let like = shell(&req);
        let response = self.inner.put_object(req).await?;
        self.created(EventKind::Put, &like, &bucket, &key).await;
        Ok(response)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let like = shell(&req);
        let response = self.inner.copy_object(req).await?;
        self.created(EventKind::Copy, &like, &bucket, &key).await;
        Ok(response)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let like = shell(&req);
        let response = self.inner.complete_multipart_upload(req).await?;
        self.created(EventKind::CompleteMultipartUpload, &like, &bucket, &key)
            .await;
        Ok(response)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.inner.delete_object(req).await?;
        self.notifier
            .publish(EventKind::Delete, &bucket, &key, &ObjectFacts::default());
        Ok(response)
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        let response = self.inner.delete_objects(req).await?;
        for deleted in response.output.deleted.iter().flatten() {
            if let Some(key) = &deleted.key {
                self.notifier
                    .publish(EventKind::Delete, &bucket, key, &ObjectFacts::default());
            }
        }
        Ok(response)
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.inner.create_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.inner.delete_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.inner.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.inner.get_object(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.inner.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.inner.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.inner.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.inner.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.inner.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.inner.list_parts(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.inner.abort_multipart_upload(req).await
    }
}

/// The parts of a request needed to issue a follow-up request with the same identity.
fn shell<T>(req: &S3Request<T>) -> S3Request<()> {
    S3Request {
        input: (),
        method: req.method.clone(),
        uri: req.uri.clone(),
        headers: http::HeaderMap::new(),
        extensions: http::Extensions::new(),
        credentials: req.credentials.clone(),
        region: req.region.clone(),
        service: req.service.clone(),
        trailing_headers: None,
    }
}
