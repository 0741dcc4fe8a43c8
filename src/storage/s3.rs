//! `s3://BUCKET[/PREFIX]` URLs through aws-sdk-s3: AWS S3, MinIO, GCS's S3
//! API or any S3-compatible server.
//!
//! Credentials, region and endpoint come from the standard AWS chain
//! (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, web identity on
//! EKS, `AWS_REGION`, `AWS_ENDPOINT_URL`). A custom endpoint switches to
//! path-style addressing, which MinIO and most S3-compatible servers need.
//!
//! Objects up to `PIPELINE_S3_MULTIPART_THRESHOLD_MB` (default 16) go up in
//! one PUT; larger ones in parallel multipart parts, aborted on any failure,
//! so the object appears whole or not at all. Each object carries its hex
//! MD5 as `x-amz-meta-content-md5`, which `stat` reads back with one HEAD.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use std::time::Duration;

use anyhow::Result;
use aws_config::Region;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::RequestChecksumCalculation;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::warn;

use super::{ObjectStat, ObjectStore, hash_then_put_file};
use crate::digest::{file_md5, is_md5_hex};
use crate::exit;
use crate::runtime::runtime;
use crate::settings::S3Tuning;

/// User metadata key holding the content's hex MD5.
const MD5_METADATA: &str = "content-md5";

pub(super) struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    /// The setting the URL came from, named in errors.
    setting: &'static str,
    tuning: S3Tuning,
    /// Set once the bucket is known to exist and accept our credentials.
    bucket_checked: OnceLock<()>,
}

impl S3Store {
    /// Opens `BUCKET[/PREFIX]` (the part after `s3://`).
    pub(super) fn open(location: &str, setting: &'static str, tuning: S3Tuning) -> Result<Self> {
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(exit::config(format!(
                "{setting}: {bucket:?} is not a valid S3 bucket name (s3://BUCKET[/PREFIX])"
            )));
        }
        let client = runtime().block_on(client(tuning));
        Ok(Self {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            setting,
            tuning,
            bucket_checked: OnceLock::new(),
        })
    }

    /// Fails fast, with a configuration error, when the bucket is missing
    /// or the credentials are refused; checked once, before first use.
    async fn check_bucket(&self) -> Result<()> {
        if self.bucket_checked.get().is_some() {
            return Ok(());
        }
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => {
                let _ = self.bucket_checked.set(());
                Ok(())
            }
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Err(exit::config(format!(
                "{}: bucket {:?} does not exist",
                self.setting, self.bucket
            ))),
            Err(e) => Err(self.error(e, "checking")),
        }
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// Maps an SDK error to the exit-code contract: throttling, 5xx and
    /// connection trouble are transient (after the SDK's own retries);
    /// a missing bucket or rejected credentials are configuration errors.
    fn error<E>(&self, err: SdkError<E, HttpResponse>, doing: &str) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let at = format!("{}: {doing} s3://{}", self.setting, self.bucket);
        match &err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().unwrap_or("");
                match code {
                    "NoSuchBucket" => {
                        exit::config(format!("{at}: bucket {:?} does not exist", self.bucket))
                    }
                    "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "AccessDenied"
                    | "InvalidToken"
                    | "ExpiredToken" => exit::config(format!(
                        "{at}: access denied ({code}); check the AWS credentials"
                    )),
                    _ if status >= 500
                        || matches!(status, 408 | 409 | 429)
                        || code == "SlowDown"
                        || code == "RequestTimeout" =>
                    {
                        exit::transient(format!("{at}: server error {status} {code}"))
                    }
                    _ if status == 403 => exit::config(format!(
                        "{at}: access denied (HTTP 403); check the AWS credentials"
                    )),
                    // Any other 4xx: the server refuses this request as set
                    // up, and retrying it unchanged will not help.
                    _ => exit::config(format!(
                        "{at}: the server rejected the request (HTTP {status} {code}); \
                         check the endpoint, region and bucket settings"
                    )),
                }
            }
            SdkError::ConstructionFailure(_) => {
                exit::config(format!("{at}: {}", DisplayErrorContext(&err)))
            }
            SdkError::DispatchFailure(d) if d.is_user() => {
                exit::config(format!("{at}: {}", DisplayErrorContext(&err)))
            }
            _ => exit::transient(format!("{at}: {}", DisplayErrorContext(&err))),
        }
    }

    /// The file at `path` as content to send in parts, or `None` when it is
    /// small enough for one PUT.
    fn multipart_file(&self, path: &Path) -> Result<Option<Content>> {
        let len = std::fs::metadata(path)?.len();
        Ok(
            (len > self.tuning.multipart_threshold_bytes as u64).then(|| Content::File {
                path: path.to_path_buf(),
                len,
            }),
        )
    }

    async fn put_multipart(&self, key: &str, content: Content, md5: &str) -> Result<()> {
        let commit = std::future::ready(Ok(true));
        self.put_multipart_if(key, content, md5, commit)
            .await
            .map(drop)
    }

    /// A multipart upload of `content` with `md5` as its metadata, completed
    /// only if `commit`, awaited once every part is sent, says so; aborted
    /// otherwise and on any error. Whether it was completed.
    async fn put_multipart_if(
        &self,
        key: &str,
        content: Content,
        md5: &str,
        commit: impl Future<Output = Result<bool>>,
    ) -> Result<bool> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .metadata(MD5_METADATA, md5)
            .send()
            .await
            .map_err(|e| self.error(e, "starting a multipart upload to"))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result = self.upload_parts(key, &upload_id, content, commit).await;
        if !matches!(result, Ok(true)) {
            // Never leave half an object behind: drop the parts.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        content: Content,
        commit: impl Future<Output = Result<bool>>,
    ) -> Result<bool> {
        let permits = Arc::new(Semaphore::new(self.tuning.parallel_parts));
        let mut tasks = JoinSet::new();
        let part_size = self.tuning.part_size_bytes as u64;
        let content = Arc::new(content);
        for (index, start) in (0..content.len()).step_by(part_size as usize).enumerate() {
            let end = (start + part_size).min(content.len());
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(index as i32 + 1);
            let (content, permits) = (Arc::clone(&content), Arc::clone(&permits));
            // Parts carry no Content-MD5: TLS protects them in transit and the
            // whole object's MD5 travels as metadata; hashing every part again
            // would cost as much as the upload itself on a fast link. A part
            // of a file is read when its turn comes, so memory holds at most
            // `parallel_parts` of them.
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let sent = match content.part(start, end).await {
                    Ok(body) => Ok(part.body(body).send().await),
                    Err(e) => Err(e),
                };
                (index, sent)
            });
        }
        let mut parts = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (index, sent) = joined?;
            let out = sent?.map_err(|e| self.error(e, "uploading a part to"))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(index as i32 + 1)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
        }
        parts.sort_by_key(|p| p.part_number());
        if !commit.await? {
            return Ok(false);
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.error(e, "completing a multipart upload to"))?;
        Ok(true)
    }

    /// The object, or the byte range `range` of it (an HTTP Range value).
    fn get_range(&self, key: &str, range: Option<String>) -> Result<Option<Vec<u8>>> {
        let key = self.full_key(key);
        runtime().block_on(async {
            self.check_bucket().await?;
            let out = match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .set_range(range)
                .send()
                .await
            {
                Ok(out) => out,
                Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => return Ok(None),
                Err(e) => return Err(self.error(e, &format!("reading {key} from"))),
            };
            let body = out.body.collect().await.map_err(|e| {
                exit::transient(format!(
                    "{}: reading {key} from s3://{}: {e}",
                    self.setting, self.bucket
                ))
            })?;
            Ok(Some(body.to_vec()))
        })
    }
}

/// What a multipart upload sends: bytes in memory, or a local file read a
/// part at a time.
enum Content {
    Memory(Bytes),
    File { path: PathBuf, len: u64 },
}

impl Content {
    fn len(&self) -> u64 {
        match self {
            Content::Memory(bytes) => bytes.len() as u64,
            Content::File { len, .. } => *len,
        }
    }

    async fn part(&self, start: u64, end: u64) -> Result<ByteStream> {
        match self {
            Content::Memory(bytes) => {
                Ok(ByteStream::from(bytes.slice(start as usize..end as usize)))
            }
            Content::File { path, .. } => Ok(ByteStream::read_from()
                .path(path)
                .offset(start)
                .length(Length::Exact(end - start))
                .build()
                .await?),
        }
    }
}

/// An object read in ranged GETs of `RANGE_BYTES`, one window in memory.
struct RangeReader<'a> {
    store: &'a S3Store,
    key: String,
    size: u64,
    offset: u64,
    window: Vec<u8>,
    consumed: usize,
}

/// Bytes one ranged GET of a streamed object asks for.
const RANGE_BYTES: u64 = 16 << 20;

impl Read for RangeReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.consumed == self.window.len() {
            if self.offset >= self.size {
                return Ok(0);
            }
            let end = (self.offset + RANGE_BYTES).min(self.size) - 1;
            let range = format!("bytes={}-{end}", self.offset);
            self.window = match self.store.get_range(&self.key, Some(range)) {
                Ok(Some(window)) if !window.is_empty() => window,
                Ok(_) => {
                    return Err(std::io::Error::other(format!(
                        "{} changed while it was read",
                        self.store.url(&self.key)
                    )));
                }
                Err(e) => return Err(std::io::Error::other(e)),
            };
            self.offset += self.window.len() as u64;
            self.consumed = 0;
        }
        let n = out.len().min(self.window.len() - self.consumed);
        out[..n].copy_from_slice(&self.window[self.consumed..self.consumed + n]);
        self.consumed += n;
        Ok(n)
    }
}

async fn client(tuning: S3Tuning) -> Client {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(tuning.max_attempts)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await;
    let path_style = shared.endpoint_url().is_some();
    let region = shared
        .region()
        .cloned()
        .unwrap_or_else(|| Region::from_static("us-east-1"));
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .region(region)
        .force_path_style(path_style)
        // We send Content-MD5 ourselves; many S3-compatible servers reject
        // the newer streaming checksums.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    Client::from_conf(config)
}

impl ObjectStore for S3Store {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.get_range(key, None)
    }

    fn get_prefix(&self, key: &str, len: usize) -> Result<Option<Vec<u8>>> {
        // A range of an empty object is a 416, not an empty body.
        match self.size(key)? {
            None => Ok(None),
            Some(0) => Ok(Some(Vec::new())),
            Some(_) if len == 0 => Ok(Some(Vec::new())),
            Some(_) => self.get_range(key, Some(format!("bytes=0-{}", len - 1))),
        }
    }

    fn open_read(&self, key: &str) -> Result<Option<Box<dyn Read + Send + '_>>> {
        Ok(self.size(key)?.map(|size| {
            Box::new(RangeReader {
                store: self,
                key: key.to_string(),
                size,
                offset: 0,
                window: Vec::new(),
                consumed: 0,
            }) as Box<dyn Read + Send>
        }))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.put_with_md5(key, bytes, &crate::digest::md5_hex(bytes))
    }

    fn put_file(&self, key: &str, path: &Path, hex: &str) -> Result<()> {
        let Some(content) = self.multipart_file(path)? else {
            return self.put_with_md5(key, &std::fs::read(path)?, hex);
        };
        let key = self.full_key(key);
        runtime().block_on(async {
            self.check_bucket().await?;
            self.put_multipart(&key, content, hex).await
        })
    }

    /// A large file goes up while another thread hashes it, under the
    /// expected MD5, and is completed only if that is its MD5; otherwise
    /// (the file is not what validate recorded) it is sent again under its
    /// own.
    fn put_file_hashing(&self, key: &str, path: &Path, expected: Option<&str>) -> Result<String> {
        // It becomes a header: anything but a hex MD5 is not trusted.
        let expected = expected.filter(|md5| is_md5_hex(md5));
        let (Some(content), Some(expected)) = (self.multipart_file(path)?, expected) else {
            return hash_then_put_file(self, key, path);
        };
        let full = self.full_key(key);
        let source = path.to_path_buf();
        let mut md5 = String::new();
        let completed = runtime().block_on(async {
            self.check_bucket().await?;
            let hashing = tokio::task::spawn_blocking(move || file_md5(&source));
            let matches = async {
                md5 = hashing.await??;
                Ok(md5 == expected)
            };
            self.put_multipart_if(&full, content, expected, matches)
                .await
        })?;
        if !completed {
            warn!(
                key,
                expected,
                md5,
                "the slice is not the one validate recorded; sent again under its own MD5"
            );
            self.put_file(key, path, &md5)?;
        }
        Ok(md5)
    }

    fn put_with_md5(&self, key: &str, bytes: &[u8], hex: &str) -> Result<()> {
        let key = self.full_key(key);
        runtime().block_on(async {
            self.check_bucket().await?;
            if bytes.len() > self.tuning.multipart_threshold_bytes {
                let owned = Content::Memory(Bytes::copy_from_slice(bytes));
                return self.put_multipart(&key, owned, hex).await;
            }
            // The server checks the body against Content-MD5.
            let digest = (0..hex.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Vec<u8>>();
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_md5(aws_smithy_types::base64::encode(digest))
                .metadata(MD5_METADATA, hex)
                .body(ByteStream::from(bytes.to_vec()))
                .send()
                .await
                .map_err(|e| self.error(e, &format!("writing {key} to")))?;
            Ok(())
        })
    }

    fn stat(&self, key: &str) -> Result<Option<ObjectStat>> {
        let key = self.full_key(key);
        runtime().block_on(async {
            self.check_bucket().await?;
            let head = match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
            {
                Ok(head) => head,
                Err(SdkError::ServiceError(e)) if e.err().is_not_found() => return Ok(None),
                Err(e) => return Err(self.error(e, &format!("checking {key} in"))),
            };
            // Metadata is anyone's text: only a well-formed MD5 is taken. A
            // single-part ETag is the MD5; a multipart one ("…-N") is not,
            // and then nothing is known without reading the object.
            let stored = head.metadata().and_then(|m| m.get(MD5_METADATA)).cloned();
            let etag = head.e_tag().map(|t| t.trim_matches('"').to_string());
            let md5 = stored.into_iter().chain(etag).find(|m| is_md5_hex(m));
            Ok(Some(ObjectStat {
                bytes: head.content_length().unwrap_or(0).max(0) as u64,
                md5,
            }))
        })
    }

    fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.stat(key)?.is_some())
    }

    fn delete(&self, key: &str) -> Result<bool> {
        if !self.exists(key)? {
            return Ok(false);
        }
        let full = self.full_key(key);
        runtime().block_on(async {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
                .map_err(|e| self.error(e, &format!("deleting {full} from")))?;
            Ok(true)
        })
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_are_checked_before_any_request() {
        for bad in ["", "ab", "Upper", "under_score/x"] {
            let err = S3Store::open(bad, "PIPELINE_LANDING_URL", S3Tuning::DEFAULT)
                .err()
                .unwrap();
            assert_eq!(exit::code_of(&err), exit::ExitCode::Config, "{bad}");
        }
    }
}
