//! The bucket: object_store's S3 client, configured from Confluent's keys, so that AWS,
//! MinIO, Ceph and moto work alike (`store.url` for a custom endpoint, path-style requests).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use sluice_connect::connector::Props;
use sluice_connect::{ConnectError, Result};

/// `s3.bucket.name`.
pub const BUCKET: &str = "s3.bucket.name";
/// `s3.region`.
pub const REGION: &str = "s3.region";
/// `store.url`: a custom endpoint (MinIO, moto, Ceph).
pub const STORE_URL: &str = "store.url";
/// `aws.access.key.id`.
pub const ACCESS_KEY: &str = "aws.access.key.id";
/// `aws.secret.access.key`.
pub const SECRET_KEY: &str = "aws.secret.access.key";
/// `s3.path.style.access.enabled`.
pub const PATH_STYLE: &str = "s3.path.style.access.enabled";
/// `s3.part.size`: the part size of multipart uploads.
pub const PART_SIZE: &str = "s3.part.size";
/// `s3.part.retries`.
pub const RETRIES: &str = "s3.part.retries";
/// `s3.retry.backoff.ms`.
pub const RETRY_BACKOFF_MS: &str = "s3.retry.backoff.ms";

/// A bucket to read and write.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// The bucket's name.
    pub bucket: String,
    /// Where it is (for messages).
    pub endpoint: String,
    part_size: usize,
}

fn get<'a>(props: &'a Props, key: &str) -> Option<&'a str> {
    props.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// A number setting, or its default.
pub fn number(props: &Props, key: &str, default: i64) -> Result<i64> {
    match get(props, key) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| ConnectError::config(key, s, "Not a number")),
    }
}

impl Store {
    /// The bucket the connector's properties name.
    pub fn from_props(props: &Props) -> Result<Store> {
        let bucket = get(props, BUCKET).ok_or_else(|| {
            ConnectError::config(
                BUCKET,
                "",
                "Missing required configuration \"s3.bucket.name\" which has no default value.",
            )
        })?;
        let region = get(props, REGION).unwrap_or("us-west-2");
        let part_size = number(props, PART_SIZE, 26_214_400)?;
        if !(5_242_880..=i64::from(i32::MAX)).contains(&part_size) {
            return Err(ConnectError::config(
                PART_SIZE,
                &part_size.to_string(),
                "Value must be at least 5242880 (5 MiB, S3's smallest part) and at most 2147483647",
            ));
        }
        let retries = number(props, RETRIES, 3)?.max(0) as usize;
        let backoff = Duration::from_millis(number(props, RETRY_BACKOFF_MS, 200)?.max(1) as u64);
        let path_style = get(props, PATH_STYLE).is_none_or(|v| v.eq_ignore_ascii_case("true"));
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_virtual_hosted_style_request(!path_style)
            .with_retry(RetryConfig {
                max_retries: retries,
                retry_timeout: Duration::from_secs(30),
                backoff: object_store::BackoffConfig {
                    init_backoff: backoff,
                    max_backoff: backoff * 16,
                    base: 2.0,
                },
            });
        let endpoint = match get(props, STORE_URL) {
            Some(url) => {
                builder = builder
                    .with_endpoint(url)
                    .with_allow_http(url.starts_with("http://"));
                url.to_string()
            }
            None => format!("https://s3.{region}.amazonaws.com"),
        };
        // A custom endpoint without credentials anywhere is read and written anonymously
        // (a local MinIO or moto), rather than asking the EC2 metadata service for them.
        let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
            || std::env::var_os("AWS_PROFILE").is_some()
            || std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some();
        if get(props, STORE_URL).is_some() && get(props, ACCESS_KEY).is_none() && !env_keys {
            builder = builder.with_skip_signature(true);
        }
        if let Some(key) = get(props, ACCESS_KEY) {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = get(props, SECRET_KEY) {
            builder = builder.with_secret_access_key(secret);
        }
        let inner = builder.build().map_err(|e| {
            ConnectError::config(
                BUCKET,
                bucket,
                format!("cannot configure the S3 client: {e}"),
            )
        })?;
        Ok(Store {
            inner: Arc::new(inner),
            bucket: bucket.to_string(),
            endpoint,
            part_size: part_size as usize,
        })
    }

    fn error(&self, what: &str, err: object_store::Error) -> ConnectError {
        let detail = match &err {
            object_store::Error::NotFound { .. } => format!("not found ({err})"),
            _ => err.to_string(),
        };
        ConnectError::Task(format!(
            "S3 bucket {} at {}: {what}: {detail}",
            self.bucket, self.endpoint
        ))
    }

    /// Checks that the bucket can be listed (it exists, the endpoint answers, the
    /// credentials are good).
    pub async fn check(&self) -> Result<()> {
        self.inner
            .list_with_delimiter(None)
            .await
            .map(drop)
            .map_err(|e| {
                self.error(
                    "cannot list the bucket (does it exist, and is the endpoint right?)",
                    e,
                )
            })
    }

    /// Writes object `key`: at once when small, in parts of `s3.part.size` when larger.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = Path::from(key);
        if bytes.len() <= self.part_size {
            self.inner
                .put(&path, PutPayload::from(bytes))
                .await
                .map(drop)
                .map_err(|e| self.error(&format!("writing {key}"), e))
        } else {
            let upload =
                self.inner.put_multipart(&path).await.map_err(|e| {
                    self.error(&format!("starting the multipart upload of {key}"), e)
                })?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
            writer.write(&bytes);
            writer
                .finish()
                .await
                .map(drop)
                .map_err(|e| self.error(&format!("writing {key} in parts"), e))
        }
    }

    /// The keys (and sizes) under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let prefix = Path::from(prefix);
        let objects: Vec<object_store::ObjectMeta> = self
            .inner
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.error(&format!("listing {prefix}"), e))?;
        Ok(objects
            .into_iter()
            .map(|o| (o.location.to_string(), o.size))
            .collect())
    }

    /// Object `key`'s bytes.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let path = Path::from(key);
        let result = self
            .inner
            .get(&path)
            .await
            .map_err(|e| self.error(&format!("reading {key}"), e))?;
        result
            .bytes()
            .await
            .map_err(|e| self.error(&format!("reading {key}"), e))
    }
}
