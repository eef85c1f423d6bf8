//! The S3 adapter of the object-store port (aws-sdk-s3), verified against Ceph RGW 16.2.15.
//!
//! Every SDK call goes through [`S3Store::send_or_absent`], which times it, maps a failure to
//! a [`StoreError`] with a closed [`ErrorCategory`] and a message that names the bucket, the
//! operation and the key (never credentials), and tells the [`RequestObserver`].
//!
//! Compatibility notes (each verified against RGW 16.2.15):
//! - Checksums are computed and validated only "when required": RGW 16 does not understand
//!   the aws-chunked trailing checksums that newer SDKs send by default. Operations whose
//!   model requires a checksum (PutObjectTagging, PutBucketLifecycleConfiguration,
//!   DeleteObjects, PutObjectLegalHold) still get one, and RGW accepts it.
//! - `HeadBucket` answers without a body, so a 403 cannot tell a bad key from a missing
//!   permission; [`S3Store::bucket_info`] asks `GetBucketVersioning` for the precise code.
//! - A DeleteObjects of an Object-Lock-held version (legal hold or retention) answers 200 with
//!   a per-key `AccessDenied` error: partial failures live in the body, never in the status. A
//!   DeleteObject of one answers 403 AccessDenied ("forbidden by object lock").
//! - DeleteObject ignores `If-Match`: a wrong ETag deletes all the same and answers 204.
//! - A DeleteObjects batch with a key that XML 1.0 cannot carry (e.g. U+0001) is refused
//!   whole (400); DeleteObject deletes that key.
//! - PutObject with an Object Lock retention: RGW keeps the retain-until date to the
//!   microsecond; a bucket without Object Lock answers 400 InvalidRequest.
//!
//! The contract suite also runs on moto 5.1.22 (AWS S3's semantics, issue 13), which needs:
//! a HEAD of a delete marker's version id answers 405 with `x-amz-delete-marker: true` (as
//! AWS does), read as "no such object"; object operations on a delete marker answer 405
//! MethodNotAllowed, read as NotFound; an 11th tag is refused with 403 `BadRequest`, read by
//! its code as a bad request (Other), not as a permission problem.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
};
use aws_sdk_s3::config::retry::RetryPartition;
use aws_sdk_s3::config::{
    ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents,
};
use aws_sdk_s3::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::types as sdk;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle_map;
use super::{
    BucketInfo, DeleteFailure, ErrorCategory, ListAhead, ListedObject, ListingTask, ObjectHead,
    ObjectId, ObjectStore, Operation, Page, RequestObserver, StoreError, StoreResult, StoredRule,
};
use crate::retention::lifecycle::LifecycleRule;

/// S3 accepts at most this many keys in one DeleteObjects request.
pub const MAX_DELETE_BATCH: usize = 1000;
/// S3 returns at most this many entries per listing page.
const MAX_PAGE_SIZE: i32 = 1000;
/// Cap on the backoff between two attempts; bounds the operation timeout too.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Static credentials, e.g. read from a Kubernetes Secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How to reach one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// A custom endpoint (MinIO, Ceph RGW); `None` for AWS.
    pub endpoint: Option<String>,
    /// `None`: the default region chain (`AWS_REGION`, the profile), else `us-east-1`. A
    /// bucket in another region is found by its first pass: AWS answers HeadBucket with a 301
    /// naming the bucket's region (`x-amz-bucket-region`), and the store signs for that
    /// region from then on (issue 13). Set it to save that round trip.
    pub region: Option<String>,
    /// Path-style addressing; `None` means "yes when a custom endpoint is set", which is what
    /// MinIO and RGW need without wildcard DNS.
    pub force_path_style: Option<bool>,
    /// `None`: the default credential chain (environment, web identity / IRSA, profile, ...).
    pub static_credentials: Option<StaticCredentials>,
    /// Attempts per request, including the first (SDK adaptive retry: backoff with jitter,
    /// and client-side rate limiting once the store throttles).
    pub max_attempts: u32,
    /// Timeout of one attempt. The whole operation, retries included, is bounded by
    /// `max_attempts` such timeouts plus the backoff between them.
    pub request_timeout: Duration,
}

impl S3Settings {
    /// Settings with the default chains, 5 attempts and a 30 s attempt timeout.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Settings {
            bucket: bucket.into(),
            endpoint: None,
            region: None,
            force_path_style: None,
            static_credentials: None,
            max_attempts: 5,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The S3 adapter. Cheap to clone and share across tasks.
#[derive(Clone)]
pub struct S3Store {
    /// Shared by clones and replaced when the bucket turns out to be in another region than
    /// the client signs for (see [`S3Store::bucket_info`]).
    client: Arc<RwLock<Client>>,
    bucket: String,
    observer: Arc<dyn RequestObserver>,
    server_date: ServerDate,
    bucket_region: BucketRegion,
}

/// A lifecycle configuration as read right before a write.
#[derive(Debug, Default)]
struct CurrentLifecycle {
    rules: Vec<StoredRule>,
    transition_default_minimum_object_size: Option<sdk::TransitionDefaultMinimumObjectSize>,
    raw: String,
}

/// Keeps the body of one answer, before the SDK reads it into its model.
#[derive(Debug, Clone, Default)]
struct RawBody(Arc<Mutex<Vec<u8>>>);

impl RawBody {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Intercept for RawBody {
    fn name(&self) -> &'static str {
        "GallringRawBody"
    }

    /// After deserialization: the answer's body has been read into memory by then.
    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = bytes.to_vec();
        }
        Ok(())
    }
}

/// The region the store last named for the bucket (`x-amz-bucket-region`, which AWS sends on
/// HeadBucket answers, and on the body-less 301 to a client that signs for another region).
#[derive(Debug, Clone, Default)]
struct BucketRegion(Arc<Mutex<Option<String>>>);

impl BucketRegion {
    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Intercept for BucketRegion {
    fn name(&self) -> &'static str {
        "GallringBucketRegion"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(region) = context.response().headers().get("x-amz-bucket-region")
            && !region.is_empty()
        {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(region.to_string());
        }
        Ok(())
    }
}

/// The `Date` of the latest response the client received, and the local instant it arrived:
/// an interceptor that sees every attempt's response, errors and retries included.
#[derive(Debug, Clone, Default)]
struct ServerDate(Arc<Mutex<Option<DateSeen>>>);

/// A response's `Date` and the local instant the response arrived.
type DateSeen = (DateTime<Utc>, Instant);

impl ServerDate {
    fn record(&self, date: &str) {
        // An IMF-fixdate ("Wed, 25 Nov 2026 19:00:00 GMT") is an RFC 2822 date.
        if let Ok(t) = DateTime::parse_from_rfc2822(date) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((t.with_timezone(&Utc), Instant::now()));
        }
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        let (date, at) = (*self.0.lock().unwrap_or_else(|e| e.into_inner()))?;
        let elapsed = chrono::TimeDelta::from_std(at.elapsed()).unwrap_or(chrono::TimeDelta::MAX);
        date.checked_add_signed(elapsed)
    }
}

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "GallringServerDate"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            self.record(date);
        }
        Ok(())
    }
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Builds the client. Nothing is sent: credentials are resolved, and failures reported,
    /// on the first request.
    pub async fn connect(settings: S3Settings, observer: Arc<dyn RequestObserver>) -> S3Store {
        let max_attempts = settings.max_attempts.max(1);
        let retry = RetryConfig::adaptive()
            .with_max_attempts(max_attempts)
            .with_max_backoff(MAX_BACKOFF);
        let attempts = max_attempts.min(100);
        let operation_timeout = settings.request_timeout.saturating_mul(attempts)
            + MAX_BACKOFF.saturating_mul(attempts - 1);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .operation_attempt_timeout(settings.request_timeout)
            .operation_timeout(operation_timeout)
            .build();
        let region = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
            .or_default_provider()
            .or_else(Region::new("us-east-1"));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .retry_config(retry.clone())
            .timeout_config(timeouts.clone());
        if let Some(creds) = &settings.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                creds.access_key_id.clone(),
                creds.secret_access_key.clone(),
                creds.session_token.clone(),
                None,
                "gallring-static",
            ));
        }
        let shared = loader.load().await;
        // The SDK shares the retry token bucket and the adaptive rate limiter of every client
        // in the process by partition name (default: "s3"), so one throttling store would
        // slow down requests to every bucket. Give each endpoint + bucket its own: stores
        // re-created for the same bucket still share what was learnt about it.
        let partition = RetryPartition::new(format!(
            "gallring:{}:{}",
            settings.endpoint.as_deref().unwrap_or("aws"),
            settings.bucket
        ));
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .retry_config(retry)
            .retry_partition(partition)
            .timeout_config(timeouts)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .force_path_style(
                settings
                    .force_path_style
                    .unwrap_or(settings.endpoint.is_some()),
            );
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        let server_date = ServerDate::default();
        let bucket_region = BucketRegion::default();
        config = config
            .interceptor(server_date.clone())
            .interceptor(bucket_region.clone());
        S3Store {
            client: Arc::new(RwLock::new(Client::from_conf(config.build()))),
            bucket: settings.bucket,
            observer,
            server_date,
            bucket_region,
        }
    }

    /// The underlying SDK client (tests and tooling).
    /// A plain SDK client configured exactly as the adapter's (endpoint, path style,
    /// checksums, retries), for tools and tests that set up or inspect a bucket directly.
    pub async fn sdk_client(endpoint: Option<String>) -> Client {
        let mut settings = S3Settings::new("any");
        settings.endpoint = endpoint;
        S3Store::connect(settings, Arc::new(super::NoopObserver))
            .await
            .client()
    }

    /// The SDK client the adapter sends with now (a cheap handle).
    pub fn client(&self) -> Client {
        self.client
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The region requests are signed for.
    pub fn region(&self) -> Option<String> {
        self.client().config().region().map(|r| r.to_string())
    }

    /// Signs for `region` from now on, in this store and its clones.
    fn switch_region(&self, region: &str) {
        let mut client = self.client.write().unwrap_or_else(|e| e.into_inner());
        let config = client
            .config()
            .to_builder()
            .region(Region::new(region.to_string()))
            .build();
        *client = Client::from_conf(config);
    }

    fn error(
        &self,
        operation: Operation,
        key: Option<&str>,
        category: ErrorCategory,
        message: String,
    ) -> StoreError {
        StoreError {
            bucket: self.bucket.clone(),
            operation,
            key: key.map(str::to_string),
            category,
            message,
            request_id: None,
        }
    }

    /// Sends one request. A failure for which `absent(code, status)` holds is an answer, not
    /// an error ("no such configuration"): `Ok(None)`, observed as `ok`.
    async fn send_or_absent<T, E>(
        &self,
        operation: Operation,
        key: Option<&str>,
        absent: fn(Option<&str>, u16) -> bool,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> StoreResult<Option<T>>
    where
        E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let result = match request.await {
            Ok(out) => Ok(Some(out)),
            Err(SdkError::ServiceError(ctx))
                if absent(
                    error_code(ctx.err().code(), ctx.raw()),
                    ctx.raw().status().as_u16(),
                ) =>
            {
                Ok(None)
            }
            Err(err) => {
                let (category, message, request_id) = describe(operation, &err);
                let mut e = self.error(operation, key, category, message);
                e.request_id = request_id;
                Err(e)
            }
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.category.as_str(),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.observer.observe(operation, outcome, seconds);
        tracing::trace!(bucket = %self.bucket, ?operation, key, outcome, seconds, "s3 request");
        result
    }

    /// `send` for a request about one object version: errors name the version too.
    async fn send_object<T, E>(
        &self,
        operation: Operation,
        id: &ObjectId,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> StoreResult<T>
    where
        E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
    {
        self.send(operation, Some(&id.key), request)
            .await
            .map_err(|mut e| {
                e.message = with_version(e.message, id);
                e
            })
    }

    async fn send<T, E>(
        &self,
        operation: Operation,
        key: Option<&str>,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> StoreResult<T>
    where
        E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
    {
        self.send_or_absent(operation, key, |_, _| false, request)
            .await?
            .ok_or_else(|| {
                self.error(
                    operation,
                    key,
                    ErrorCategory::Other,
                    "no response".to_string(),
                )
            })
    }

    /// The bucket's lifecycle configuration as the store answers it now: the rules, the
    /// bucket-wide TransitionDefaultMinimumObjectSize and the answer's raw XML (to see what
    /// the SDK's model leaves out).
    async fn current_lifecycle(&self) -> StoreResult<CurrentLifecycle> {
        let op = Operation::GetBucketLifecycle;
        let raw = RawBody::default();
        let out = self
            .send_or_absent(
                op,
                None,
                no_lifecycle_configuration,
                self.client()
                    .get_bucket_lifecycle_configuration()
                    .bucket(&self.bucket)
                    .customize()
                    .interceptor(raw.clone())
                    .send(),
            )
            .await?;
        let Some(out) = out else {
            return Ok(CurrentLifecycle::default());
        };
        let rules = lifecycle_map::from_sdk_rules(out.rules())
            .map_err(|e| self.error(op, None, ErrorCategory::Malformed, e.to_string()))?;
        Ok(CurrentLifecycle {
            rules,
            transition_default_minimum_object_size: out
                .transition_default_minimum_object_size()
                .cloned(),
            raw: raw.text(),
        })
    }

    async fn head_bucket(&self) -> StoreResult<()> {
        self.send(
            Operation::HeadBucket,
            None,
            self.client().head_bucket().bucket(&self.bucket).send(),
        )
        .await?;
        Ok(())
    }

    async fn versioning(&self) -> StoreResult<bool> {
        let out = self
            .send(
                Operation::GetBucketVersioning,
                None,
                self.client()
                    .get_bucket_versioning()
                    .bucket(&self.bucket)
                    .send(),
            )
            .await?;
        Ok(matches!(
            out.status(),
            Some(sdk::BucketVersioningStatus::Enabled | sdk::BucketVersioningStatus::Suspended)
        ))
    }

    async fn list_current(
        &self,
        prefix: Option<&str>,
        continuation: Option<String>,
        after: Option<&str>,
        page_size: i32,
    ) -> StoreResult<Page> {
        let op = Operation::ListObjects;
        let out = self
            .send(
                op,
                None,
                self.client()
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .set_prefix(prefix.map(str::to_string))
                    .max_keys(page_size)
                    .set_continuation_token(continuation)
                    .set_start_after(after.map(str::to_string))
                    .send(),
            )
            .await?;
        let mut objects = Vec::with_capacity(out.contents().len());
        for o in out.contents() {
            let key = o.key().unwrap_or_default();
            objects.push(ListedObject {
                key: key.to_string(),
                version_id: None,
                last_modified: self.timestamp(op, key, o.last_modified())?,
                size: size(o.size()),
                delete_marker: false,
                is_latest: true,
                etag: unquote(o.e_tag()),
            });
        }
        let next = match (out.is_truncated(), out.next_continuation_token()) {
            (Some(true), Some(token)) => Some(token.to_string()),
            (Some(true), None) => {
                return Err(self.error(
                    op,
                    None,
                    ErrorCategory::Malformed,
                    "truncated listing without a continuation token".to_string(),
                ));
            }
            _ => None,
        };
        Ok(Page { objects, next })
    }

    async fn list_versions(
        &self,
        prefix: Option<&str>,
        continuation: Option<String>,
        page_size: i32,
    ) -> StoreResult<Page> {
        let op = Operation::ListObjectVersions;
        let marker = match continuation {
            None => VersionMarker::default(),
            Some(token) => serde_json::from_str::<VersionMarker>(&token).map_err(|e| {
                self.error(
                    op,
                    None,
                    ErrorCategory::Other,
                    format!("invalid continuation token for a version listing: {e}"),
                )
            })?,
        };
        let out = self
            .send(
                op,
                None,
                self.client()
                    .list_object_versions()
                    .bucket(&self.bucket)
                    .set_prefix(prefix.map(str::to_string))
                    .max_keys(page_size)
                    .set_key_marker(marker.key)
                    .set_version_id_marker(marker.version)
                    .send(),
            )
            .await?;
        let mut objects = Vec::with_capacity(out.versions().len() + out.delete_markers().len());
        for v in out.versions() {
            let key = v.key().unwrap_or_default();
            objects.push(ListedObject {
                key: key.to_string(),
                version_id: v.version_id().map(str::to_string),
                last_modified: self.timestamp(op, key, v.last_modified())?,
                size: size(v.size()),
                delete_marker: false,
                is_latest: v.is_latest().unwrap_or(false),
                etag: unquote(v.e_tag()),
            });
        }
        for m in out.delete_markers() {
            let key = m.key().unwrap_or_default();
            objects.push(ListedObject {
                key: key.to_string(),
                version_id: m.version_id().map(str::to_string),
                last_modified: self.timestamp(op, key, m.last_modified())?,
                size: 0,
                delete_marker: true,
                is_latest: m.is_latest().unwrap_or(false),
                etag: None,
            });
        }
        // The SDK splits the interleaved <Version>/<DeleteMarker> list in two; restore S3's
        // order (key ascending, newest version first) so a page reads like the bucket.
        objects.sort_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then(b.is_latest.cmp(&a.is_latest))
                .then(b.last_modified.cmp(&a.last_modified))
        });
        let next = if out.is_truncated() == Some(true) {
            let marker = VersionMarker {
                key: out.next_key_marker().map(str::to_string),
                version: out.next_version_id_marker().map(str::to_string),
            };
            if marker.key.is_none() {
                return Err(self.error(
                    op,
                    None,
                    ErrorCategory::Malformed,
                    "truncated listing without a key marker".to_string(),
                ));
            }
            Some(
                serde_json::to_string(&marker)
                    .map_err(|e| self.error(op, None, ErrorCategory::Other, e.to_string()))?,
            )
        } else {
            None
        };
        Ok(Page { objects, next })
    }

    /// An entry without a modification time cannot be given a deadline; treating it as old
    /// could delete it early, so the page fails instead.
    fn timestamp(
        &self,
        op: Operation,
        key: &str,
        t: Option<&aws_sdk_s3::primitives::DateTime>,
    ) -> StoreResult<DateTime<Utc>> {
        t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .ok_or_else(|| {
                self.error(
                    op,
                    Some(key),
                    ErrorCategory::Malformed,
                    "listing entry without a valid LastModified".to_string(),
                )
            })
    }
}

/// The two markers of a version listing, carried in the port's opaque continuation string.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct VersionMarker {
    #[serde(rename = "k", skip_serializing_if = "Option::is_none", default)]
    key: Option<String>,
    #[serde(rename = "v", skip_serializing_if = "Option::is_none", default)]
    version: Option<String>,
}

fn size(s: Option<i64>) -> u64 {
    s.and_then(|s| u64::try_from(s).ok()).unwrap_or(0)
}

/// An ETag without the quotes S3 puts around it (`"abc"` → `abc`), otherwise unchanged.
fn unquote(etag: Option<&str>) -> Option<String> {
    etag.map(|e| {
        e.strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or(e)
            .to_string()
    })
}

/// An ETag for `If-Match`: quoted as HTTP wants it, unless it already is or is `*`.
fn quote_etag(etag: &str) -> String {
    if etag == "*" || (etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"')) {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

fn with_version(message: String, id: &ObjectId) -> String {
    match &id.version_id {
        Some(v) => format!("version {v}: {message}"),
        None => message,
    }
}

/// "No Object Lock configuration" answers of the stores: AWS's code, RGW's code, or a bare 404.
fn no_lock_configuration(code: Option<&str>, status: u16) -> bool {
    match code {
        Some("ObjectLockConfigurationNotFoundError" | "NoSuchObjectLockConfiguration") => true,
        Some("NoSuchBucket") => false,
        _ => status == 404,
    }
}

fn no_lifecycle_configuration(code: Option<&str>, _status: u16) -> bool {
    code == Some("NoSuchLifecycleConfiguration")
}

fn no_such_key(code: Option<&str>, status: u16) -> bool {
    code == Some("NoSuchKey") || (code.is_none() && status == 404)
}

/// A HEAD of a missing key or version, or of a delete marker: a bare 404 (no body, so no
/// code). AWS (and moto) answer 405 with `x-amz-delete-marker: true` to a HEAD of a delete
/// marker's version id, which [`error_code`] reads as `MethodNotAllowed`.
fn no_such_object(code: Option<&str>, status: u16) -> bool {
    (status == 404 && code != Some("NoSuchBucket")) || code == Some("MethodNotAllowed")
}

/// The S3 error code of a failed answer. A HEAD answer has no body, so a 405 that carries
/// `x-amz-delete-marker: true` (AWS's answer for a delete marker's version id) is given the
/// code the same request would have in a body, `MethodNotAllowed`.
fn error_code<'a>(code: Option<&'a str>, raw: &HttpResponse) -> Option<&'a str> {
    code.or_else(|| {
        (raw.status().as_u16() == 405 && raw.headers().get("x-amz-delete-marker") == Some("true"))
            .then_some("MethodNotAllowed")
    })
}

/// A version that never had a legal hold: AWS and RGW 16 answer 404 with one of these codes.
fn no_legal_hold(code: Option<&str>, status: u16) -> bool {
    matches!(
        code,
        Some("NoSuchObjectLockConfiguration") | Some("ObjectLockConfigurationNotFoundError")
    ) || (code.is_none() && status == 404)
}

/// The category of a service error from its S3 error code, else its HTTP status.
pub(crate) fn categorize(operation: Operation, status: u16, code: Option<&str>) -> ErrorCategory {
    use ErrorCategory::*;
    match code {
        Some("NoSuchBucket") => return NoSuchBucket,
        Some("AccessDenied" | "AllAccessDisabled" | "AccountProblem") => return AccessDenied,
        Some(
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "InvalidSecurity",
        ) => return InvalidCredentials,
        Some(
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequests"
            | "RequestLimitExceeded",
        ) => {
            return Throttled;
        }
        Some("RequestTimeout") => return Timeout,
        // moto 5.1.22 answers a request AWS refuses with 400 (e.g. an 11th tag) with 403
        // BadRequest: the code says what it is, and it is no permission problem.
        Some("BadRequest" | "InvalidTag" | "InvalidArgument" | "MalformedXML") => return Other,
        // The addressed version is a delete marker (AWS answers object operations on one
        // with 405): for gallring, like a missing version.
        Some("MethodNotAllowed") if operation.is_on_an_object() => return NotFound,
        Some("PreconditionFailed") => return PreconditionFailed,
        Some("NoSuchKey" | "NoSuchVersion" | "NotFound" | "NoSuchTagSet") => {
            return if operation == Operation::HeadBucket {
                NoSuchBucket
            } else {
                NotFound
            };
        }
        _ => {}
    }
    match status {
        // HEAD answers carry no body, so the status is all there is.
        404 if operation == Operation::HeadBucket => NoSuchBucket,
        404 => NotFound,
        // A success status with an error: the SDK could not read the answer's body.
        200..=299 => Malformed,
        401 | 403 => AccessDenied,
        408 => Timeout,
        412 => PreconditionFailed,
        429 | 503 => Throttled,
        500..=599 => ServerError,
        _ => Other,
    }
}

/// Category and message of an SDK failure. The message carries the store's code, message,
/// status and request id, or the transport error chain; never request headers or credentials.
fn describe<E>(
    operation: Operation,
    err: &SdkError<E, HttpResponse>,
) -> (ErrorCategory, String, Option<String>)
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = error_code(ctx.err().code(), ctx.raw());
            let category = categorize(operation, status, code);
            let mut message = match category {
                ErrorCategory::NoSuchBucket => "the bucket does not exist".to_string(),
                ErrorCategory::InvalidCredentials => "the credentials were rejected".to_string(),
                ErrorCategory::AccessDenied => "access denied".to_string(),
                ErrorCategory::NotFound => "not found".to_string(),
                ErrorCategory::Throttled => "throttled by the store".to_string(),
                ErrorCategory::ServerError => "the store failed".to_string(),
                ErrorCategory::Timeout => "timed out".to_string(),
                ErrorCategory::PreconditionFailed => "precondition failed".to_string(),
                _ => "request failed".to_string(),
            };
            match (code, ctx.err().message()) {
                (Some(code), Some(msg)) if !msg.is_empty() && msg != code => {
                    message.push_str(&format!(": {code}: {msg}"))
                }
                (Some(code), _) => message.push_str(&format!(": {code}")),
                (None, _) => {}
            }
            message.push_str(&format!(" (HTTP {status})"));
            let request_id = ctx.err().request_id().map(str::to_string);
            (category, message, request_id)
        }
        SdkError::TimeoutError(_) => (
            ErrorCategory::Timeout,
            "timed out (after all attempts)".to_string(),
            None,
        ),
        SdkError::DispatchFailure(failure) => {
            let chain = error_chain(err);
            let category = if failure.is_timeout() {
                ErrorCategory::Timeout
            } else if failure.is_io() {
                ErrorCategory::Unreachable
            } else if chain.contains("credential") {
                // Identity resolution fails before anything is sent: no (usable) credentials.
                ErrorCategory::InvalidCredentials
            } else {
                ErrorCategory::Unreachable
            };
            (
                category,
                format!("request not sent or not answered: {chain}"),
                None,
            )
        }
        SdkError::ResponseError(resp) => {
            let status = resp.raw().status().as_u16();
            let category = if (500..=599).contains(&status) {
                categorize(operation, status, None)
            } else {
                ErrorCategory::Malformed
            };
            (
                category,
                format!("unreadable response (HTTP {status}): {}", error_chain(err)),
                None,
            )
        }
        SdkError::ConstructionFailure(_) => (
            ErrorCategory::Other,
            format!("request could not be built: {}", error_chain(err)),
            None,
        ),
        _ => (ErrorCategory::Other, error_chain(err), None),
    }
}

/// `a: b: c` from an error and its sources, without the Debug dump that
/// `DisplayErrorContext` appends.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        source = e.source();
    }
    out
}

impl ObjectStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Also finds the bucket's region: a bucket in another region than the client signs for
    /// answers HeadBucket with a body-less 301 (AWS) that names its region in
    /// `x-amz-bucket-region`; the store then signs for that region (this store and its
    /// clones) and asks again. Without the header, the error says the region is wrong.
    async fn bucket_info(&self) -> StoreResult<BucketInfo> {
        let mut head = self.head_bucket().await;
        if let Err(e) = &head
            && let Some(region) = self.bucket_region.get()
            && self.region().as_deref() != Some(region.as_str())
        {
            tracing::info!(
                bucket = %self.bucket,
                from = self.region().as_deref().unwrap_or("none"),
                to = %region,
                error = %e,
                "the bucket is in another region (x-amz-bucket-region): signing for it; set spec.s3.region to skip this"
            );
            self.switch_region(&region);
            head = self.head_bucket().await;
        }
        if let Err(mut head) = head {
            if head.message.contains("(HTTP 301)") {
                head.message.push_str(&match self.bucket_region.get() {
                    Some(r) => format!(
                        ": the bucket is in region {r} (x-amz-bucket-region), requests were signed for {}",
                        self.region().as_deref().unwrap_or("no region")
                    ),
                    None => format!(
                        ": the bucket is in another region than {} (the answer does not say which): set spec.s3.region",
                        self.region().as_deref().unwrap_or("the default")
                    ),
                });
            }
            if head.category == ErrorCategory::AccessDenied {
                // A body-less 403: the versioning call's error body tells a bad key or
                // signature (InvalidCredentials) from a missing permission.
                self.versioning().await?;
            }
            return Err(head);
        }
        let versioned = self.versioning().await?;
        let lock = self
            .send_or_absent(
                Operation::GetObjectLockConfiguration,
                None,
                no_lock_configuration,
                self.client()
                    .get_object_lock_configuration()
                    .bucket(&self.bucket)
                    .send(),
            )
            .await?;
        let object_lock = lock
            .as_ref()
            .and_then(|out| out.object_lock_configuration())
            .and_then(|c| c.object_lock_enabled())
            == Some(&sdk::ObjectLockEnabled::Enabled);
        Ok(BucketInfo {
            versioned,
            object_lock,
        })
    }

    async fn list_page(
        &self,
        prefix: Option<&str>,
        versions: bool,
        continuation: Option<String>,
        page_size: i32,
    ) -> StoreResult<Page> {
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let prefix = prefix.filter(|p| !p.is_empty());
        if versions {
            self.list_versions(prefix, continuation, page_size).await
        } else {
            self.list_current(prefix, continuation, None, page_size)
                .await
        }
    }

    async fn list_page_after(
        &self,
        prefix: Option<&str>,
        after: &str,
        page_size: i32,
    ) -> StoreResult<Page> {
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let prefix = prefix.filter(|p| !p.is_empty());
        self.list_current(prefix, None, Some(after), page_size)
            .await
    }

    async fn get_tags(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        let out = self
            .send_object(
                Operation::GetObjectTagging,
                id,
                self.client()
                    .get_object_tagging()
                    .bucket(&self.bucket)
                    .key(&id.key)
                    .set_version_id(id.version_id.clone())
                    .send(),
            )
            .await?;
        Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn put_tags(&self, id: &ObjectId, tags: &BTreeMap<String, String>) -> StoreResult<()> {
        let op = Operation::PutObjectTagging;
        let build = || -> Result<sdk::Tagging, aws_sdk_s3::error::BuildError> {
            let set = tags
                .iter()
                .map(|(k, v)| sdk::Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()?;
            sdk::Tagging::builder().set_tag_set(Some(set)).build()
        };
        let tagging = build()
            .map_err(|e| self.error(op, Some(&id.key), ErrorCategory::Other, e.to_string()))?;
        self.send_object(
            op,
            id,
            self.client()
                .put_object_tagging()
                .bucket(&self.bucket)
                .key(&id.key)
                .set_version_id(id.version_id.clone())
                .tagging(tagging)
                .send(),
        )
        .await?;
        Ok(())
    }

    async fn head_object(&self, id: &ObjectId) -> StoreResult<Option<ObjectHead>> {
        let op = Operation::HeadObject;
        let Some(out) = self
            .send_or_absent(
                op,
                Some(&id.key),
                no_such_object,
                self.client()
                    .head_object()
                    .bucket(&self.bucket)
                    .key(&id.key)
                    .set_version_id(id.version_id.clone())
                    .send(),
            )
            .await
            .map_err(|mut e| {
                e.message = with_version(e.message, id);
                e
            })?
        else {
            return Ok(None);
        };
        let last_modified = out
            .last_modified()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .ok_or_else(|| {
                self.error(
                    op,
                    Some(&id.key),
                    ErrorCategory::Malformed,
                    with_version("HEAD answer without a valid Last-Modified".to_string(), id),
                )
            })?;
        Ok(Some(ObjectHead {
            etag: unquote(out.e_tag()),
            last_modified,
            size: size(out.content_length()),
        }))
    }

    async fn get_metadata(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        let out = self
            .send_object(
                Operation::HeadObject,
                id,
                self.client()
                    .head_object()
                    .bucket(&self.bucket)
                    .key(&id.key)
                    .set_version_id(id.version_id.clone())
                    .send(),
            )
            .await?;
        Ok(out
            .metadata()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn get_lifecycle(&self) -> StoreResult<Option<Vec<StoredRule>>> {
        let op = Operation::GetBucketLifecycle;
        let Some(out) = self
            .send_or_absent(
                op,
                None,
                no_lifecycle_configuration,
                self.client()
                    .get_bucket_lifecycle_configuration()
                    .bucket(&self.bucket)
                    .send(),
            )
            .await?
        else {
            return Ok(None);
        };
        lifecycle_map::from_sdk_rules(out.rules())
            .map(Some)
            .map_err(|e| self.error(op, None, ErrorCategory::Malformed, e.to_string()))
    }

    async fn put_lifecycle(&self, rules: &[StoredRule]) -> StoreResult<()> {
        if rules.is_empty() {
            self.send(
                Operation::DeleteBucketLifecycle,
                None,
                self.client()
                    .delete_bucket_lifecycle()
                    .bucket(&self.bucket)
                    .send(),
            )
            .await?;
            return Ok(());
        }
        let op = Operation::PutBucketLifecycle;
        // PutBucketLifecycleConfiguration replaces the whole configuration and its
        // TransitionDefaultMinimumObjectSize: read both right before writing (issue 13).
        let current = self.current_lifecycle().await?;
        let lossy = lifecycle_map::unmodelled_elements(&current.raw);
        let writes_foreign = |id: &Option<String>| {
            rules.iter().any(|r| match r {
                StoredRule::Foreign(f) => f.id == *id,
                StoredRule::Owned(_) => false,
            })
        };
        let lost: Vec<String> = lossy
            .iter()
            .filter(|(id, _)| {
                !id.as_deref().is_some_and(LifecycleRule::is_operator_owned) && writes_foreign(id)
            })
            .map(|(id, elements)| {
                format!(
                    "rule {} ({})",
                    id.as_deref().unwrap_or("(no id)"),
                    elements.join(", ")
                )
            })
            .collect();
        if !lost.is_empty() {
            // The rule ids travel as the error's subject, for the metric and alert that name it.
            let ids: Vec<&str> = lossy
                .iter()
                .filter(|(id, _)| {
                    !id.as_deref().is_some_and(LifecycleRule::is_operator_owned)
                        && writes_foreign(id)
                })
                .map(|(id, _)| id.as_deref().unwrap_or("(no id)"))
                .collect();
            return Err(self.error(
                op,
                Some(&ids.join(",")),
                ErrorCategory::Refused,
                format!(
                    "not written: lifecycle {} would lose element(s) the S3 SDK does not model, changing a rule gallring does not own; the configuration is left as it is",
                    lost.join("; ")
                ),
            ));
        }
        let foreign = |rules: &[StoredRule]| -> Vec<StoredRule> {
            rules
                .iter()
                .filter(|r| matches!(r, StoredRule::Foreign(_)))
                .cloned()
                .collect()
        };
        if foreign(&current.rules) != foreign(rules) {
            return Err(self.error(
                op,
                None,
                ErrorCategory::Refused,
                "not written: the rules gallring does not own changed since they were read; the next pass merges again".to_string(),
            ));
        }
        let config = rules
            .iter()
            .map(lifecycle_map::to_sdk)
            .collect::<Result<Vec<_>, _>>()
            .and_then(|rules| {
                sdk::BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules))
                    .build()
            })
            .map_err(|e| {
                self.error(
                    op,
                    None,
                    ErrorCategory::Other,
                    format!("cannot build the configuration: {e}"),
                )
            })?;
        self.send(
            op,
            None,
            self.client()
                .put_bucket_lifecycle_configuration()
                .bucket(&self.bucket)
                .lifecycle_configuration(config)
                .set_transition_default_minimum_object_size(
                    current.transition_default_minimum_object_size,
                )
                .send(),
        )
        .await?;
        Ok(())
    }

    async fn set_legal_hold(&self, id: &ObjectId, on: bool) -> StoreResult<()> {
        let status = if on {
            sdk::ObjectLockLegalHoldStatus::On
        } else {
            sdk::ObjectLockLegalHoldStatus::Off
        };
        self.send_object(
            Operation::PutObjectLegalHold,
            id,
            self.client()
                .put_object_legal_hold()
                .bucket(&self.bucket)
                .key(&id.key)
                .set_version_id(id.version_id.clone())
                .legal_hold(sdk::ObjectLockLegalHold::builder().status(status).build())
                .send(),
        )
        .await?;
        Ok(())
    }

    async fn get_legal_hold(&self, id: &ObjectId) -> StoreResult<bool> {
        let out = self
            .send_or_absent(
                Operation::GetObjectLegalHold,
                Some(&id.key),
                no_legal_hold,
                self.client()
                    .get_object_legal_hold()
                    .bucket(&self.bucket)
                    .key(&id.key)
                    .set_version_id(id.version_id.clone())
                    .send(),
            )
            .await
            .map_err(|mut e| {
                e.message = with_version(e.message, id);
                e
            })?;
        Ok(out
            .and_then(|o| o.legal_hold().and_then(|h| h.status().cloned()))
            .is_some_and(|s| s == sdk::ObjectLockLegalHoldStatus::On))
    }

    async fn get_object(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let op = Operation::GetObject;
        let Some(out) = self
            .send_or_absent(
                op,
                Some(key),
                no_such_key,
                self.client()
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .await?
        else {
            return Ok(None);
        };
        let body = out.body.collect().await.map_err(|e| {
            self.error(
                op,
                Some(key),
                ErrorCategory::Unreachable,
                format!("body not read: {e}"),
            )
        })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        retain_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let mut request = self
            .client()
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            // AWS S3 (and moto) refuse a PutObject without an integrity checksum when the
            // version gets a retention: with Object Lock headers, and also on a bucket with a
            // default retention (400 MissingUploadObjectWithObjectLockHeaders, issue 13), which
            // the journal cannot know. RGW 16 accepts the CRC32 header.
            .checksum_algorithm(sdk::ChecksumAlgorithm::Crc32);
        if let Some(until) = retain_until {
            request = request
                .object_lock_mode(sdk::ObjectLockMode::Governance)
                .object_lock_retain_until_date(
                    aws_sdk_s3::primitives::DateTime::from_secs_and_nanos(
                        until.timestamp(),
                        until.timestamp_subsec_nanos(),
                    ),
                );
        }
        self.send(Operation::PutObject, Some(key), request.send())
            .await?;
        Ok(())
    }

    fn server_time(&self) -> Option<DateTime<Utc>> {
        self.server_date.now()
    }

    /// A clone shares the client; outside a Tokio runtime the caller lists in its own task.
    fn spawn_listing(&self, job: ListAhead) -> Result<ListingTask, ListAhead> {
        use tracing::Instrument;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(job);
        };
        let store = self.clone();
        let listing = async move { job.run(&store).await }.instrument(tracing::Span::current());
        Ok(ListingTask::new(runtime.spawn(listing)))
    }

    async fn delete_object(&self, id: &ObjectId, if_match: Option<&str>) -> StoreResult<()> {
        self.send_object(
            Operation::DeleteObject,
            id,
            self.client()
                .delete_object()
                .bucket(&self.bucket)
                .key(&id.key)
                .set_version_id(id.version_id.clone())
                .set_if_match(if_match.map(quote_etag))
                .send(),
        )
        .await?;
        Ok(())
    }

    async fn delete_objects(&self, ids: &[ObjectId]) -> StoreResult<Vec<DeleteFailure>> {
        let op = Operation::DeleteObjects;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() > MAX_DELETE_BATCH {
            return Err(self.error(
                op,
                None,
                ErrorCategory::Other,
                format!(
                    "{} objects in one request; S3 accepts at most {MAX_DELETE_BATCH}",
                    ids.len()
                ),
            ));
        }
        let delete = ids
            .iter()
            .map(|id| {
                sdk::ObjectIdentifier::builder()
                    .key(&id.key)
                    .set_version_id(id.version_id.clone())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|objects| {
                sdk::Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(false)
                    .build()
            })
            .map_err(|e| {
                self.error(
                    op,
                    None,
                    ErrorCategory::Other,
                    format!("cannot build the request: {e}"),
                )
            })?;
        let out = self
            .send(
                op,
                None,
                self.client()
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .send(),
            )
            .await?;
        Ok(delete_failures(ids, out.deleted(), out.errors()))
    }
}

/// The per-key failures of a DeleteObjects answer: every `<Error>`, and every requested id
/// the answer does not mention at all (with quiet=false each one must appear; a silent
/// omission must not be counted as a deletion).
///
/// Failures carry the requested id exactly, as callers match them by `ObjectId`. An `<Error>`
/// without a `<VersionId>` (some stores leave it out) stands for the versions requested under
/// its key that the answer neither deleted nor failed by version; if there are none, for every
/// version requested under its key (the answer contradicts itself: nothing counts as deleted).
fn delete_failures(
    ids: &[ObjectId],
    deleted: &[sdk::DeletedObject],
    errors: &[sdk::Error],
) -> Vec<DeleteFailure> {
    let mentions = |id: &ObjectId, key: Option<&str>, version: Option<&str>| {
        key == Some(id.key.as_str()) && (version.is_none() || version == id.version_id.as_deref())
    };
    let was_deleted = |id: &ObjectId| {
        deleted
            .iter()
            .any(|d| mentions(id, d.key(), d.version_id()))
    };
    let failed_by_version = |id: &ObjectId| {
        errors.iter().any(|e| {
            e.version_id().is_some()
                && e.key() == Some(id.key.as_str())
                && e.version_id() == id.version_id.as_deref()
        })
    };
    let mut failures: Vec<DeleteFailure> = Vec::new();
    let mut failed: std::collections::HashSet<ObjectId> = std::collections::HashSet::new();
    for e in errors {
        let key = e.key().unwrap_or_default();
        let ids_failed: Vec<ObjectId> = match e.version_id() {
            Some(v) => vec![ObjectId {
                key: key.to_string(),
                version_id: Some(v.to_string()),
            }],
            None => {
                let requested: Vec<&ObjectId> = ids.iter().filter(|id| id.key == key).collect();
                let open: Vec<ObjectId> = requested
                    .iter()
                    .filter(|id| !was_deleted(id) && !failed_by_version(id))
                    .map(|id| (*id).clone())
                    .collect();
                if !open.is_empty() {
                    open
                } else if !requested.is_empty() {
                    requested.into_iter().cloned().collect()
                } else {
                    vec![ObjectId {
                        key: key.to_string(),
                        version_id: None,
                    }]
                }
            }
        };
        for id in ids_failed {
            if failed.insert(id.clone()) {
                failures.push(DeleteFailure {
                    id,
                    code: e.code().unwrap_or("Unknown").to_string(),
                    message: e.message().unwrap_or_default().to_string(),
                });
            }
        }
    }
    for id in ids {
        if !was_deleted(id) && !failed.contains(id) {
            failed.insert(id.clone());
            failures.push(DeleteFailure {
                id: id.clone(),
                code: "NotAcknowledged".to_string(),
                message:
                    "the DeleteObjects answer mentions neither a deletion nor an error for this key"
                        .to_string(),
            });
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categorizes_codes_before_statuses() {
        use ErrorCategory::*;
        let op = Operation::ListObjects;
        assert_eq!(categorize(op, 404, Some("NoSuchBucket")), NoSuchBucket);
        assert_eq!(categorize(op, 403, Some("AccessDenied")), AccessDenied);
        assert_eq!(
            categorize(op, 403, Some("InvalidAccessKeyId")),
            InvalidCredentials
        );
        assert_eq!(
            categorize(op, 403, Some("SignatureDoesNotMatch")),
            InvalidCredentials
        );
        assert_eq!(
            categorize(op, 400, Some("ExpiredToken")),
            InvalidCredentials
        );
        assert_eq!(categorize(op, 503, Some("SlowDown")), Throttled);
        assert_eq!(categorize(op, 503, None), Throttled);
        assert_eq!(categorize(op, 429, None), Throttled);
        assert_eq!(categorize(op, 500, Some("InternalError")), ServerError);
        assert_eq!(categorize(op, 502, None), ServerError);
        assert_eq!(categorize(op, 400, Some("RequestTimeout")), Timeout);
        assert_eq!(
            categorize(Operation::GetObjectTagging, 404, Some("NoSuchKey")),
            NotFound
        );
        assert_eq!(categorize(Operation::HeadObject, 404, None), NotFound);
        assert_eq!(categorize(Operation::HeadBucket, 404, None), NoSuchBucket);
        assert_eq!(
            categorize(Operation::HeadBucket, 404, Some("NotFound")),
            NoSuchBucket
        );
        assert_eq!(categorize(Operation::HeadBucket, 403, None), AccessDenied);
        assert_eq!(categorize(op, 400, Some("MalformedXML")), Other);
        // moto 5.1.22 answers an 11th tag with 403 BadRequest: a bad request, not a refusal.
        assert_eq!(
            categorize(Operation::PutObjectTagging, 403, Some("BadRequest")),
            Other
        );
        // AWS answers object operations on a delete marker with 405 MethodNotAllowed.
        assert_eq!(
            categorize(Operation::PutObjectTagging, 405, Some("MethodNotAllowed")),
            NotFound
        );
        assert_eq!(
            categorize(Operation::PutBucketLifecycle, 405, Some("MethodNotAllowed")),
            Other
        );
        assert!(no_such_object(Some("MethodNotAllowed"), 405));
        assert!(!no_such_object(None, 405));
        assert_eq!(
            categorize(Operation::DeleteObject, 412, Some("PreconditionFailed")),
            PreconditionFailed
        );
        assert_eq!(
            categorize(Operation::DeleteObject, 412, None),
            PreconditionFailed
        );
        assert_eq!(
            categorize(Operation::GetBucketLifecycle, 200, None),
            Malformed
        );
    }

    #[test]
    fn absent_configurations() {
        assert!(no_lock_configuration(
            Some("ObjectLockConfigurationNotFoundError"),
            404
        ));
        assert!(no_lock_configuration(
            Some("NoSuchObjectLockConfiguration"),
            404
        ));
        assert!(no_lock_configuration(None, 404));
        assert!(!no_lock_configuration(Some("NoSuchBucket"), 404));
        assert!(!no_lock_configuration(Some("AccessDenied"), 403));
        assert!(no_lifecycle_configuration(
            Some("NoSuchLifecycleConfiguration"),
            404
        ));
        assert!(!no_lifecycle_configuration(Some("NoSuchBucket"), 404));
    }

    #[test]
    fn etags_lose_their_quotes_and_regain_them_for_if_match() {
        assert_eq!(unquote(Some("\"abc\"")).as_deref(), Some("abc"));
        assert_eq!(unquote(Some("abc-2")).as_deref(), Some("abc-2"));
        assert_eq!(unquote(Some("\"")).as_deref(), Some("\""));
        assert_eq!(unquote(None), None);
        assert_eq!(quote_etag("abc"), "\"abc\"");
        assert_eq!(quote_etag("\"abc\""), "\"abc\"");
        assert_eq!(quote_etag("*"), "*");
    }

    #[test]
    fn the_server_date_is_read_as_an_imf_fixdate_and_moves_on_with_local_time() {
        let date = ServerDate::default();
        assert_eq!(date.now(), None);
        date.record("not a date");
        assert_eq!(date.now(), None, "an unreadable Date is ignored");
        date.record("Wed, 25 Nov 2026 19:00:00 GMT");
        let at = DateTime::parse_from_rfc3339("2026-11-25T19:00:00Z")
            .expect("a date")
            .with_timezone(&Utc);
        let now = date.now().expect("a time");
        assert!(
            now >= at && now - at < chrono::TimeDelta::seconds(1),
            "{now}"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert!(date.now().expect("a time") - now >= chrono::TimeDelta::milliseconds(20));
        date.record("garbage");
        assert!(
            date.now().expect("kept") >= now,
            "the last readable Date stays"
        );
    }

    #[test]
    fn version_marker_round_trips_through_the_opaque_token() {
        let m = VersionMarker {
            key: Some("a/\u{0}weird key\"".to_string()),
            version: Some("null".to_string()),
        };
        let token = serde_json::to_string(&m).expect("json");
        assert_eq!(
            serde_json::from_str::<VersionMarker>(&token).expect("parse"),
            m
        );
        assert_eq!(
            serde_json::from_str::<VersionMarker>("{}").expect("parse"),
            VersionMarker::default()
        );
    }

    #[test]
    fn delete_failures_include_errors_and_unacknowledged_ids() {
        let id = |k: &str, v: Option<&str>| ObjectId {
            key: k.to_string(),
            version_id: v.map(str::to_string),
        };
        let ids = [
            id("a", Some("1")),
            id("b", Some("2")),
            id("c", None),
            id("d", Some("4")),
        ];
        let deleted = [
            sdk::DeletedObject::builder()
                .key("a")
                .version_id("1")
                .build(),
            // Stores may omit the version of an unversioned delete.
            sdk::DeletedObject::builder()
                .key("c")
                .delete_marker(true)
                .delete_marker_version_id("x")
                .build(),
        ];
        let errors = [sdk::Error::builder()
            .key("b")
            .version_id("2")
            .code("AccessDenied")
            .message("held")
            .build()];
        let failures = delete_failures(&ids, &deleted, &errors);
        assert_eq!(
            failures,
            vec![
                DeleteFailure {
                    id: id("b", Some("2")),
                    code: "AccessDenied".to_string(),
                    message: "held".to_string()
                },
                DeleteFailure {
                    id: id("d", Some("4")),
                    code: "NotAcknowledged".to_string(),
                    message: "the DeleteObjects answer mentions neither a deletion nor an error for this key"
                        .to_string()
                },
            ]
        );
    }

    /// Issue 13, item 1: an `<Error>` without `<VersionId>` for a versioned request fails the
    /// version that was requested, so a caller matching failures by id sees it.
    #[test]
    fn an_error_without_a_version_id_fails_the_requested_versions_of_its_key() {
        let id = |k: &str, v: Option<&str>| ObjectId {
            key: k.to_string(),
            version_id: v.map(str::to_string),
        };
        let error = |k: &str, v: Option<&str>, code: &str| {
            sdk::Error::builder()
                .key(k)
                .set_version_id(v.map(str::to_string))
                .code(code)
                .message(code)
                .build()
        };
        let deleted = |k: &str, v: &str| sdk::DeletedObject::builder().key(k).version_id(v).build();
        let failed = |failures: Vec<DeleteFailure>| -> Vec<(ObjectId, String)> {
            failures.into_iter().map(|f| (f.id, f.code)).collect()
        };

        // One version requested: the failure carries it.
        let ids = [id("a", Some("1")), id("b", Some("2"))];
        assert_eq!(
            failed(delete_failures(
                &ids,
                &[deleted("b", "2")],
                &[error("a", None, "AccessDenied")]
            )),
            [(id("a", Some("1")), "AccessDenied".to_string())]
        );

        // Several versions of the key: the ones the answer does not settle otherwise.
        let ids = [
            id("k", Some("1")),
            id("k", Some("2")),
            id("k", Some("3")),
            id("k", Some("4")),
        ];
        assert_eq!(
            failed(delete_failures(
                &ids,
                &[deleted("k", "1")],
                &[
                    error("k", Some("2"), "InternalError"),
                    error("k", None, "AccessDenied"),
                ]
            )),
            [
                (id("k", Some("2")), "InternalError".to_string()),
                (id("k", Some("3")), "AccessDenied".to_string()),
                (id("k", Some("4")), "AccessDenied".to_string()),
            ]
        );

        // An answer that also says every version was deleted: none counts as deleted.
        let ids = [id("k", Some("1"))];
        assert_eq!(
            failed(delete_failures(
                &ids,
                &[deleted("k", "1")],
                &[error("k", None, "AccessDenied")]
            )),
            [(id("k", Some("1")), "AccessDenied".to_string())]
        );

        // Unversioned requests and errors for keys never requested keep their ids; two
        // errors for one id make one failure.
        let ids = [id("u", None)];
        assert_eq!(
            failed(delete_failures(
                &ids,
                &[],
                &[
                    error("u", None, "AccessDenied"),
                    error("u", None, "AccessDenied"),
                    error("stray", None, "InternalError"),
                ]
            )),
            [
                (id("u", None), "AccessDenied".to_string()),
                (id("stray", None), "InternalError".to_string()),
            ]
        );
    }

    #[test]
    fn static_credentials_debug_hides_the_secret() {
        let c = StaticCredentials {
            access_key_id: "AKID".to_string(),
            secret_access_key: "very-secret".to_string(),
            session_token: Some("token-secret".to_string()),
        };
        let s = format!(
            "{:?}",
            S3Settings {
                static_credentials: Some(c),
                ..S3Settings::new("b")
            }
        );
        assert!(
            !s.contains("very-secret") && !s.contains("token-secret"),
            "{s}"
        );
    }
}
