//! S3 (and S3-compatible stores such as Garage, MinIO, Ceph) as an object store.
//!
//! Large objects are multipart uploads with a bounded number of parts in
//! flight; every upload we start is tracked so that a failure or Ctrl-C can
//! abort it and leave no orphaned parts in the bucket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use tokio::io::AsyncRead;
use tokio::task::JoinSet;

use super::location::join_key;
use super::ObjectMeta;
use crate::exit::usage;
use crate::redact;

/// S3's limits: at most 10,000 parts, each at least 5 MiB (we use 8 MiB) except the last.
pub const MAX_PARTS: u64 = 10_000;
pub const MIN_PART_SIZE: u64 = 8 << 20;
/// Parts uploading at once per object: bounds memory at about this many part buffers.
pub const PARTS_IN_FLIGHT: usize = 3;

/// Endpoint, region and addressing style, from flags or the config file.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
}

#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    root: String,
    endpoint: String,
    /// upload id → full key, for every multipart upload not yet completed or aborted.
    pending: Arc<Mutex<HashMap<String, String>>>,
}

/// Part size for an object of about `estimate` bytes: large enough that it fits in
/// MAX_PARTS parts with a margin for estimates that run low, rounded to whole MiB.
pub fn part_size_for(estimate: u64) -> u64 {
    let needed = estimate.saturating_mul(2) / (MAX_PARTS - 1000) + 1;
    let mib = 1 << 20;
    needed.div_ceil(mib).max(MIN_PART_SIZE / mib) * mib
}

impl S3Store {
    pub async fn connect(bucket: &str, prefix: &str, settings: &S3Settings) -> Result<S3Store> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = &settings.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        let creds = match sdk.credentials_provider() {
            Some(p) => {
                use aws_credential_types::provider::ProvideCredentials;
                p.provide_credentials().await.ok()
            }
            None => None,
        };
        let Some(creds) = creds else {
            return Err(usage(
                "no AWS credentials found for S3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 or AWS_PROFILE, or run where an instance/container role is available",
            ));
        };
        // Whatever the chain found is a secret from here on, wherever it would be printed.
        redact::register_secret(creds.secret_access_key());
        if let Some(t) = creds.session_token() {
            redact::register_secret(t);
        }
        let mut b = aws_sdk_s3::config::Builder::from(&sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            // We checksum every object ourselves (SHA-256 in the manifest); the SDK's
            // extra CRC trailers only cost CPU and trip some S3-compatible stores.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if sdk.region().is_none() {
            b = b.region(Region::new("us-east-1"));
        }
        if let Some(e) = &settings.endpoint {
            b = b.endpoint_url(e);
        }
        if settings.path_style {
            b = b.force_path_style(true);
        }
        let endpoint = settings.endpoint.clone().unwrap_or_else(|| {
            format!(
                "AWS S3 ({})",
                sdk.region()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "us-east-1".into())
            )
        });
        Ok(S3Store {
            client: Client::from_conf(b.build()),
            bucket: bucket.to_string(),
            root: prefix.to_string(),
            endpoint,
            pending: Arc::default(),
        })
    }

    pub fn child(&self, name: &str) -> S3Store {
        S3Store {
            root: join_key(&self.root, name),
            ..self.clone()
        }
    }

    fn full_key(&self, key: &str) -> String {
        join_key(&self.root, key)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }

    /// Fail early, with a clear reason, when the bucket is missing or not ours.
    pub async fn check_bucket(&self) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| {
                self.explain(e, "checking the bucket", &format!("s3://{}", self.bucket))
            })?;
        Ok(())
    }

    /// One paragraph for an S3 failure: what we were doing, what went wrong, what to check.
    fn explain<E>(
        &self,
        err: SdkError<E, aws_smithy_runtime_api::http::Response>,
        doing: &str,
        what: &str,
    ) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().unwrap_or_default().to_string();
        let detail = redact::scrub(&DisplayErrorContext(&err).to_string());
        let endpoint = &self.endpoint;
        match (&err, status, code.as_str()) {
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _, _) => anyhow::anyhow!(
                "{doing} {what}: cannot connect to the S3 endpoint {endpoint} ({}). \
                 Check --s3-endpoint / storage.s3.endpoint and that the service is running and reachable",
                connect_reason(&detail)
            ),
            // A bucket that does not exist is a wrong location, like a missing folder:
            // invalid input (exit 2), whichever command named it.
            (_, _, "NoSuchBucket") | (_, Some(404), "NotFound" | "") if doing.contains("bucket") => usage(format!(
                "{doing} {what}: the bucket '{}' does not exist at {endpoint}. Create it, or fix the bucket name in the location",
                self.bucket
            )),
            (_, _, "NoSuchBucket") => usage(format!(
                "{doing} {what}: the bucket '{}' does not exist at {endpoint}. Create it, or fix the bucket name in the location",
                self.bucket
            )),
            (_, _, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied" | "Forbidden")
            | (_, Some(401 | 403), _) => anyhow::anyhow!(
                "{doing} {what}: access denied by {endpoint} ({}). Check the access key and secret \
                 (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE), the region (--s3-region), \
                 and that the key may read and write this bucket",
                if code.is_empty() { format!("HTTP {}", status.unwrap_or(403)) } else { code.clone() }
            ),
            _ => anyhow::anyhow!("{doing} {what}: {detail}"),
        }
    }

    pub async fn create(&self, key: &str, size_estimate: u64) -> S3Writer {
        S3Writer {
            store: self.clone(),
            key: key.to_string(),
            part_size: part_size_for(size_estimate) as usize,
            buf: Vec::new(),
            upload_id: None,
            next_part: 1,
            inflight: JoinSet::new(),
            done: Vec::new(),
            written: 0,
        }
    }

    pub async fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.explain(e, "uploading", &self.url(key)))?;
        Ok(())
    }

    async fn get_object(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.explain(e, "downloading", &self.url(key)))
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let data = self
            .get_object(key)
            .await?
            .body
            .collect()
            .await
            .with_context(|| format!("downloading {}", self.url(key)))?;
        Ok(data.into_bytes().to_vec())
    }

    pub async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
        Ok(Box::new(self.get_object(key).await?.body.into_async_read()))
    }

    pub async fn head(&self, key: &str) -> Result<Option<u64>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(r) => Ok(Some(r.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => Ok(None),
            Err(e) => Err(self.explain(e, "checking", &self.url(key))),
        }
    }

    /// Every object below `prefix`, keys relative to the store root, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let full = dir_prefix(&self.full_key(prefix));
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.explain(e, "listing", &self.url(prefix)))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(ObjectMeta {
                        key: self.relative(k),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Immediate "sub-folders" (common prefixes) of `prefix`.
    pub async fn list_children(&self, prefix: &str) -> Result<Vec<String>> {
        let full = dir_prefix(&self.full_key(prefix));
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.explain(e, "listing", &self.url(prefix)))?;
            for p in page.common_prefixes() {
                if let Some(p) = p.prefix() {
                    let name = p[full.len()..].trim_end_matches('/');
                    if !name.is_empty() {
                        out.push(name.to_string());
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn relative(&self, full_key: &str) -> String {
        let root = dir_prefix(&self.root);
        full_key.strip_prefix(&root).unwrap_or(full_key).to_string()
    }

    /// Multipart uploads started below `prefix` and never completed: (key, upload id).
    pub async fn pending_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let full = dir_prefix(&self.full_key(prefix));
        let mut out = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let resp = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&full)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| self.explain(e, "listing multipart uploads in", &self.url(prefix)))?;
            for u in resp.uploads() {
                if let (Some(k), Some(id)) = (u.key(), u.upload_id()) {
                    out.push((self.relative(k), id.to_string()));
                }
            }
            if resp.is_truncated() == Some(true) {
                key_marker = resp.next_key_marker().map(str::to_string);
                id_marker = resp.next_upload_id_marker().map(str::to_string);
            } else {
                break;
            }
        }
        Ok(out)
    }

    pub async fn abort_uploads_under(&self, prefix: &str) -> Result<()> {
        for (key, id) in self.pending_uploads(prefix).await? {
            self.abort_upload(&self.full_key(&key), &id).await;
        }
        Ok(())
    }

    /// Delete every object below `prefix` and abort its unfinished uploads.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        self.abort_uploads_under(prefix).await?;
        let keys = self.list(prefix).await?;
        for chunk in keys.chunks(1000) {
            let objects: Vec<ObjectIdentifier> = chunk
                .iter()
                .map(|o| {
                    ObjectIdentifier::builder()
                        .key(self.full_key(&o.key))
                        .build()
                })
                .collect::<std::result::Result<_, _>>()?;
            self.client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(
                    Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()?,
                )
                .send()
                .await
                .map_err(|e| self.explain(e, "deleting objects in", &self.url(prefix)))?;
        }
        Ok(())
    }

    async fn abort_upload(&self, full_key: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(full_key)
            .upload_id(upload_id)
            .send()
            .await;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(upload_id);
    }

    /// Abort every multipart upload this process started and has not finished.
    pub async fn abort_pending(&self) {
        let pending: Vec<(String, String)> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, k)| (id.clone(), k.clone()))
            .collect();
        for (id, key) in pending {
            self.abort_upload(&key, &id).await;
        }
    }
}

/// The SDK's dispatch errors nest the OS error deep inside; surface the part people act on.
fn connect_reason(detail: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    for (needle, reason) in [
        ("connection refused", "connection refused"),
        ("dns error", "host name does not resolve"),
        ("failed to lookup", "host name does not resolve"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("certificate", "TLS certificate rejected"),
    ] {
        if lower.contains(needle) {
            return reason.to_string();
        }
    }
    detail.chars().take(200).collect()
}

fn dir_prefix(p: &str) -> String {
    if p.is_empty() || p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

/// A streaming upload: a single PUT when the object turns out small, a
/// multipart upload otherwise.
pub struct S3Writer {
    store: S3Store,
    key: String,
    part_size: usize,
    buf: Vec<u8>,
    upload_id: Option<String>,
    next_part: i32,
    inflight: JoinSet<Result<CompletedPart>>,
    done: Vec<CompletedPart>,
    written: u64,
}

impl S3Writer {
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.part_size + (1 << 20));
        }
        self.buf.extend_from_slice(data);
        self.written += data.len() as u64;
        if self.buf.len() >= self.part_size {
            self.send_part().await?;
        }
        Ok(())
    }

    async fn start(&mut self) -> Result<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let full = self.store.full_key(&self.key);
        let resp = self
            .store
            .client
            .create_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| {
                self.store
                    .explain(e, "starting the upload of", &self.store.url(&self.key))
            })?;
        let id = resp
            .upload_id()
            .context("the S3 server returned no upload id")?
            .to_string();
        self.store
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), full);
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    async fn send_part(&mut self) -> Result<()> {
        let upload_id = self.start().await?;
        while self.inflight.len() >= PARTS_IN_FLIGHT {
            self.reap_one().await?;
        }
        let body = std::mem::take(&mut self.buf);
        let number = self.next_part;
        self.next_part += 1;
        let client = self.store.client.clone();
        let bucket = self.store.bucket.clone();
        let key = self.store.full_key(&self.key);
        let url = self.store.url(&self.key);
        let store = self.store.clone();
        self.inflight.spawn(async move {
            let resp = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| store.explain(e, &format!("uploading part {number} of"), &url))?;
            // Only ETag and part number: per-part checksums make some stores refuse the completion.
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(resp.e_tag().map(str::to_string))
                .build())
        });
        Ok(())
    }

    async fn reap_one(&mut self) -> Result<()> {
        if let Some(r) = self.inflight.join_next().await {
            self.done.push(r.context("part upload task failed")??);
        }
        Ok(())
    }

    /// Complete the object; returns its size in bytes.
    pub async fn finish(mut self) -> Result<u64> {
        if self.upload_id.is_none() {
            let data = std::mem::take(&mut self.buf);
            self.store.put(&self.key, data).await?;
            return Ok(self.written);
        }
        if !self.buf.is_empty() {
            self.send_part().await?;
        }
        while !self.inflight.is_empty() {
            self.reap_one().await?;
        }
        self.done.sort_by_key(|p| p.part_number());
        let id = self.upload_id.clone().unwrap_or_default();
        let full = self.store.full_key(&self.key);
        self.store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&full)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.done)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                self.store
                    .explain(e, "completing the upload of", &self.store.url(&self.key))
            })?;
        self.store
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        Ok(self.written)
    }

    pub async fn abort(mut self) {
        self.inflight.abort_all();
        if let Some(id) = self.upload_id.take() {
            let full = self.store.full_key(&self.key);
            self.store.abort_upload(&full, &id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_s3_limits() {
        assert_eq!(part_size_for(0), MIN_PART_SIZE);
        assert_eq!(part_size_for(20 << 20), MIN_PART_SIZE);
        for est in [2u64 << 30, 100 << 30, 5 << 40] {
            let p = part_size_for(est);
            // Even if the estimate is off by 2x, the object fits in MAX_PARTS parts.
            assert!((2 * est).div_ceil(p) <= MAX_PARTS, "{est} -> {p}");
            assert_eq!(p % (1 << 20), 0);
        }
    }
}
