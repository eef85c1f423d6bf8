//! The object-store port: the few operations a reconcile pass needs, with an S3 adapter
//! (`s3`) and an in-memory fake with fault injection (`memory`).
//!
//! The port is narrow on purpose: listing is page by page (never the whole bucket in memory),
//! and every write is a read-merge-write of state the operator owns, so an index of already
//! classified objects can later sit behind the same trait.

pub mod contract;
pub mod lifecycle_map;
pub mod memory;
pub mod s3;

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::retention::lifecycle::LifecycleRule;

/// One listed object version (or delete marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    /// `None` on unversioned buckets.
    pub version_id: Option<String>,
    pub last_modified: DateTime<Utc>,
    pub size: u64,
    /// A delete marker: no data, only hides older versions.
    pub delete_marker: bool,
    /// Whether this is the current (latest) version of its key.
    pub is_latest: bool,
    /// The ETag the listing gives, without its surrounding quotes and otherwise exactly as
    /// the store wrote it (an MD5 in hex for a single-part upload, `<hex>-<parts>` for a
    /// multipart one); `None` for delete markers and when the store gives none.
    pub etag: Option<String>,
}

/// What a HEAD of one object version tells: enough to see whether it is still the version a
/// pass listed.
///
/// `last_modified` comes from the `Last-Modified` header, which has whole seconds: compare it
/// with a listing's (milliseconds) truncated to the second. Ceph RGW 16 moves it on tag and
/// legal-hold writes (see the contract suite for when listings show the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Without surrounding quotes, as in [`ListedObject::etag`].
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
    pub size: u64,
}

/// What the reconcile pass needs to know about a bucket before it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketInfo {
    /// Versioning is Enabled or Suspended (versions may exist).
    pub versioned: bool,
    /// Object Lock is enabled: holds also set the S3 legal hold.
    pub object_lock: bool,
}

/// An identified object version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    pub key: String,
    pub version_id: Option<String>,
}

/// A per-key failure inside a successful DeleteObjects response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    pub id: ObjectId,
    pub code: String,
    pub message: String,
}

/// A lifecycle rule as stored in the bucket, operator-owned or not. Foreign rules are kept as
/// the store returned them and written back unchanged.
// A bucket holds at most 1,000 rules: the size difference between the variants is irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum StoredRule {
    /// A rule whose id starts with `gallring-`, normalised to the engine's form.
    Owned(LifecycleRule),
    /// Any other rule, as an opaque SDK value.
    Foreign(ForeignRule),
}

/// A rule the operator does not own: kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignRule {
    pub id: Option<String>,
    pub raw: aws_sdk_s3::types::LifecycleRule,
}

/// The operations that can fail, for error messages and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    HeadBucket,
    GetBucketVersioning,
    GetObjectLockConfiguration,
    ListObjects,
    ListObjectVersions,
    GetObjectTagging,
    PutObjectTagging,
    HeadObject,
    GetBucketLifecycle,
    PutBucketLifecycle,
    DeleteBucketLifecycle,
    PutObjectLegalHold,
    GetObjectLegalHold,
    DeleteObjects,
    DeleteObject,
    GetObject,
    PutObject,
}

impl Operation {
    /// Whether the operation addresses one object version (not the bucket, not a batch).
    pub fn is_on_an_object(&self) -> bool {
        matches!(
            self,
            Operation::GetObjectTagging
                | Operation::PutObjectTagging
                | Operation::HeadObject
                | Operation::PutObjectLegalHold
                | Operation::GetObjectLegalHold
                | Operation::DeleteObject
                | Operation::GetObject
                | Operation::PutObject
        )
    }

    /// The S3 operation name, used as a metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::HeadBucket => "HeadBucket",
            Operation::GetBucketVersioning => "GetBucketVersioning",
            Operation::GetObjectLockConfiguration => "GetObjectLockConfiguration",
            Operation::ListObjects => "ListObjectsV2",
            Operation::ListObjectVersions => "ListObjectVersions",
            Operation::GetObjectTagging => "GetObjectTagging",
            Operation::PutObjectTagging => "PutObjectTagging",
            Operation::HeadObject => "HeadObject",
            Operation::GetBucketLifecycle => "GetBucketLifecycleConfiguration",
            Operation::PutBucketLifecycle => "PutBucketLifecycleConfiguration",
            Operation::DeleteBucketLifecycle => "DeleteBucketLifecycle",
            Operation::PutObjectLegalHold => "PutObjectLegalHold",
            Operation::GetObjectLegalHold => "GetObjectLegalHold",
            Operation::DeleteObjects => "DeleteObjects",
            Operation::DeleteObject => "DeleteObject",
            Operation::GetObject => "GetObject",
            Operation::PutObject => "PutObject",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A closed set of failure categories: what goes into metric and Event labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    NoSuchBucket,
    AccessDenied,
    InvalidCredentials,
    Unreachable,
    Throttled,
    ServerError,
    Timeout,
    Malformed,
    NotFound,
    /// A conditional request whose condition does not hold (HTTP 412), e.g. an `If-Match`
    /// ETag that is not the object's.
    PreconditionFailed,
    /// gallring did not send the request: it would have changed what gallring does not own
    /// (e.g. a lifecycle rule the SDK cannot carry back whole). Not transient: a person must
    /// look.
    Refused,
    Other,
}

impl ErrorCategory {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCategory::NoSuchBucket => "no_such_bucket",
            ErrorCategory::AccessDenied => "access_denied",
            ErrorCategory::InvalidCredentials => "invalid_credentials",
            ErrorCategory::Unreachable => "unreachable",
            ErrorCategory::Throttled => "throttled",
            ErrorCategory::ServerError => "server_error",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::Malformed => "malformed",
            ErrorCategory::NotFound => "not_found",
            ErrorCategory::PreconditionFailed => "precondition_failed",
            ErrorCategory::Refused => "refused",
            ErrorCategory::Other => "other",
        }
    }
    /// Worth retrying with backoff.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ErrorCategory::Throttled
                | ErrorCategory::ServerError
                | ErrorCategory::Timeout
                | ErrorCategory::Unreachable
        )
    }
}

/// A failed store operation, naming bucket and operation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}", self.stable(), request_id.as_ref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
pub struct StoreError {
    pub bucket: String,
    pub operation: Operation,
    pub key: Option<String>,
    pub category: ErrorCategory,
    pub message: String,
    /// The store's id of the failed request: for logs, never for status (it changes on every
    /// attempt, so a condition carrying it would change on every retry).
    pub request_id: Option<String>,
}

impl StoreError {
    /// The error without its request id: the same on every retry of the same failure.
    pub fn stable(&self) -> String {
        let key = self
            .key
            .as_ref()
            .map(|k| format!(" {k}"))
            .unwrap_or_default();
        format!(
            "bucket {}: {}{key}: {}",
            self.bucket, self.operation, self.message
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a listing, and the token for the next.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub objects: Vec<ListedObject>,
    /// Opaque continuation; `None` on the last page.
    pub next: Option<String>,
}

/// The object-store port. Implementations must be cheap to share across tasks.
pub trait ObjectStore: Send + Sync {
    /// The bucket name, for messages.
    fn bucket(&self) -> &str;

    /// Versioning and Object Lock state; fails with `NoSuchBucket` when the bucket is missing.
    fn bucket_info(&self) -> impl Future<Output = StoreResult<BucketInfo>> + Send;

    /// One page of the listing under `prefix`. With `versions`, every version and delete
    /// marker (ListObjectVersions); without, current objects only (ListObjectsV2).
    fn list_page(
        &self,
        prefix: Option<&str>,
        versions: bool,
        continuation: Option<String>,
        page_size: i32,
    ) -> impl Future<Output = StoreResult<Page>> + Send;

    /// One page of the listing of current objects under `prefix` from the first key after
    /// `after` (which need not exist): ListObjectsV2's `StartAfter`. Its continuation resumes
    /// it as `list_page` does. Version listings have no such start: with a `KeyMarker` alone,
    /// Ceph RGW 16 lists the marker key's versions too, and moto 5.1.22 skips the key after
    /// a marker that is not there.
    fn list_page_after(
        &self,
        prefix: Option<&str>,
        after: &str,
        page_size: i32,
    ) -> impl Future<Output = StoreResult<Page>> + Send;

    fn get_tags(
        &self,
        id: &ObjectId,
    ) -> impl Future<Output = StoreResult<BTreeMap<String, String>>> + Send;

    /// Replaces the whole tag set (callers merge first: see `reconcile::merge_tags`).
    fn put_tags(
        &self,
        id: &ObjectId,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// HEAD of a version (`None`: the current one). `Ok(None)` when the key or version does
    /// not exist, or is a delete marker: the store answers 404 (a HEAD answer has no body, so
    /// the status is all there is, and a missing bucket looks the same).
    fn head_object(
        &self,
        id: &ObjectId,
    ) -> impl Future<Output = StoreResult<Option<ObjectHead>>> + Send;

    /// User metadata (`x-amz-meta-*`, keys lower-cased, without the prefix).
    fn get_metadata(
        &self,
        id: &ObjectId,
    ) -> impl Future<Output = StoreResult<BTreeMap<String, String>>> + Send;

    /// The bucket's lifecycle rules; `Ok(None)` when it has no configuration.
    fn get_lifecycle(&self) -> impl Future<Output = StoreResult<Option<Vec<StoredRule>>>> + Send;

    /// Replaces the whole lifecycle configuration (an empty list deletes it).
    fn put_lifecycle(&self, rules: &[StoredRule]) -> impl Future<Output = StoreResult<()>> + Send;

    /// Turns the Object Lock legal hold of a version on or off.
    fn set_legal_hold(
        &self,
        id: &ObjectId,
        on: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Whether the Object Lock legal hold of a version is on.
    fn get_legal_hold(&self, id: &ObjectId) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Deletes up to 1,000 versions; returns the per-key failures of a successful response.
    fn delete_objects(
        &self,
        ids: &[ObjectId],
    ) -> impl Future<Output = StoreResult<Vec<DeleteFailure>>> + Send;

    /// Deletes one version (`None`: on a versioned bucket, adds a delete marker) with one
    /// DeleteObject request, so a failure names this key: for a key that breaks a whole
    /// DeleteObjects batch (Ceph RGW answers 400 to a batch with a key XML 1.0 cannot carry,
    /// e.g. a control character). A missing key or version is no error.
    ///
    /// With `if_match` (an ETag, quoted or not, or `*`), the request carries `If-Match`, and a
    /// store that honours it refuses with [`ErrorCategory::PreconditionFailed`] when the
    /// addressed version's ETag differs. Ceph RGW 16.2.15 does NOT honour it: it deletes the
    /// version whatever the ETag and answers 204, so the caller must check with
    /// [`ObjectStore::head_object`] first and cannot rely on the condition. There is no way
    /// to ask a store whether it honours the header short of trying it on an object.
    fn delete_object(
        &self,
        id: &ObjectId,
        if_match: Option<&str>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Reads a whole small object (gallring's journal and checkpoints); `Ok(None)` when absent.
    fn get_object(&self, key: &str) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send;

    /// The store's clock: the HTTP `Date` of the most recent response (of any operation,
    /// errors included), advanced by the local time elapsed since it arrived; `None` before
    /// the first response. `Date` has whole seconds, so this may be up to a second behind.
    fn server_time(&self) -> Option<DateTime<Utc>>;

    /// Runs `job` on a task of its own where this store can be moved into one, so that the
    /// listing's requests and the parsing of its pages run beside the work on the pages (on a
    /// multi-threaded runtime, on another core). `Err(job)`, the default: the caller runs it
    /// in its own task.
    fn spawn_listing(&self, job: ListAhead) -> Result<ListingTask, ListAhead> {
        Err(job)
    }

    /// Writes a whole small object, replacing any current one under the key.
    ///
    /// With `retain_until`, the new version gets an Object Lock retention in GOVERNANCE mode
    /// until then: it cannot be deleted by version id before (AccessDenied; a delete without a
    /// version id still adds a delete marker). Only Object Lock buckets accept one: others
    /// answer 400 InvalidRequest and nothing is written.
    fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        retain_until: Option<DateTime<Utc>>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// A listing of a bucket, page by page into a channel, ahead of the pass that reads it.
///
/// With `splits`, a listing of current objects is cut into ranges at those keys (a version
/// listing ignores them: see [`ObjectStore::list_page_after`]), and up to `ranges_in_flight`
/// ranges are listed side by side: range `i` is every key after `splits[i-1]` up to and
/// including `splits[i]` (the first from the start, the last to the end), each from its own
/// `list_page_after` and its continuations. The pages sent are, in order, exactly the
/// listing one sequential pass would give (page breaks aside, and keys under `skip` it
/// jumps over): the reader cannot tell the difference, whatever keys the splits name. Empty
/// pages are not sent, except the last.
pub struct ListAhead {
    pub prefix: Option<String>,
    /// Every version and delete marker (see [`ObjectStore::list_page`]).
    pub versions: bool,
    pub page_size: i32,
    /// Bounded: the listing runs at most its capacity of pages ahead of the reader.
    pub tx: futures::channel::mpsc::Sender<StoreResult<Page>>,
    /// Keys to cut the listing at (any order; repeats ignored); none: one sequential listing.
    pub splits: Vec<String>,
    /// Ranges whose first page is requested before the reader reaches them (at least 1).
    pub ranges_in_flight: usize,
    /// A prefix the reader ignores (gallring's own state in the bucket): in a listing of
    /// current objects, a page that ends among its keys is followed by the first key after
    /// them, not by the rest of them. So the journal, which only grows, costs a listing at
    /// most one more page.
    pub skip: Option<String>,
}

/// The key a listing that reached `key` jumps to, past every key under `skip` (the largest
/// character after `skip`: every key gallring writes there is below it); `None` if `key` is
/// not under `skip`, or at or past that point already.
fn jump_past(skip: &str, key: &str) -> Option<String> {
    let past = format!("{skip}{}", char::MAX);
    (key.starts_with(skip) && key < past.as_str()).then_some(past)
}

impl ListAhead {
    /// Lists until the last page, an error (sent too, and the end) or the reader hanging up.
    /// Every page but the last is sent with some `next`; the last with `None`.
    pub async fn run<S: ObjectStore + ?Sized>(mut self, store: &S) {
        use futures::{FutureExt, SinkExt};
        let mut splits = std::mem::take(&mut self.splits);
        if self.versions {
            splits.clear();
        }
        splits.sort_unstable();
        splits.dedup();
        // (after, through): the first range from the start, the last to the end.
        let mut ranges: Vec<(Option<String>, Option<String>)> =
            Vec::with_capacity(splits.len() + 1);
        let mut after = None;
        for s in splits {
            ranges.push((after.replace(s.clone()), Some(s)));
        }
        ranges.push((after, None));
        let (prefix, versions, page_size) = (self.prefix.as_deref(), self.versions, self.page_size);
        let mut ahead = RangesAhead {
            store,
            prefix,
            versions,
            page_size,
            ranges: ranges.into_iter(),
            in_flight: futures::stream::FuturesOrdered::new(),
            done: std::collections::VecDeque::new(),
            cap: self.ranges_in_flight.max(1),
        };
        let tx = &mut self.tx;
        while let Some((mut page, through)) = ahead.next_range().await {
            loop {
                let mut p = match page {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = ahead.alongside(tx.send(Err(e))).await;
                        return;
                    }
                };
                // Keys past the range belong to the next one: the range is complete.
                let before = p.objects.len();
                if let Some(t) = through.as_deref() {
                    p.objects.retain(|o| o.key.as_str() <= t);
                }
                let resume = p.next.take().filter(|_| p.objects.len() == before);
                let last = resume.is_none() && through.is_none();
                let jump = match (&self.skip, p.objects.last()) {
                    (Some(skip), Some(o)) if !versions => jump_past(skip, &o.key),
                    _ => None,
                };
                if last || !p.objects.is_empty() {
                    p.next = (!last).then(String::new);
                    if ahead.alongside(tx.send(Ok(p))).await.is_err() || last {
                        return;
                    }
                }
                let Some(token) = resume else { break };
                let rest = match jump.as_deref() {
                    Some(past) => store.list_page_after(prefix, past, page_size).boxed(),
                    None => store
                        .list_page(prefix, versions, Some(token), page_size)
                        .boxed(),
                };
                page = ahead.alongside(rest).await;
            }
        }
    }
}

type RangePage<'a> = futures::future::BoxFuture<'a, (StoreResult<Page>, Option<String>)>;

/// The first pages of the ranges ahead of the one being sent: requested up to `cap` at a
/// time and polled whenever the listing waits (for the reader or for a page of its own), so
/// that no response sits unread in a socket, or runs into a request timeout, while the
/// reader is slow.
struct RangesAhead<'a, S: ?Sized> {
    store: &'a S,
    prefix: Option<&'a str>,
    versions: bool,
    page_size: i32,
    ranges: std::vec::IntoIter<(Option<String>, Option<String>)>,
    in_flight: futures::stream::FuturesOrdered<RangePage<'a>>,
    /// Answered, in range order, not yet sent.
    done: std::collections::VecDeque<(StoreResult<Page>, Option<String>)>,
    cap: usize,
}

impl<'a, S: ObjectStore + ?Sized> RangesAhead<'a, S> {
    /// Starts ranges while fewer than `cap` are in flight or answered, and collects answers.
    fn progress(&mut self, cx: &mut std::task::Context<'_>) {
        use futures::{FutureExt, StreamExt};
        loop {
            while self.in_flight.len() + self.done.len() < self.cap {
                let Some((after, through)) = self.ranges.next() else {
                    break;
                };
                let (store, prefix, versions, size) =
                    (self.store, self.prefix, self.versions, self.page_size);
                self.in_flight.push_back(
                    async move {
                        let page = match after.as_deref() {
                            Some(a) => store.list_page_after(prefix, a, size).await,
                            None => store.list_page(prefix, versions, None, size).await,
                        };
                        (page, through)
                    }
                    .boxed(),
                );
            }
            match self.in_flight.poll_next_unpin(cx) {
                std::task::Poll::Ready(Some(answer)) => self.done.push_back(answer),
                _ => return,
            }
        }
    }

    /// The next range's first page, in order; `None` after the last range.
    async fn next_range(&mut self) -> Option<(StoreResult<Page>, Option<String>)> {
        futures::future::poll_fn(|cx| {
            self.progress(cx);
            match self.done.pop_front() {
                Some(answer) => std::task::Poll::Ready(Some(answer)),
                None if self.in_flight.is_empty() => std::task::Poll::Ready(None),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }

    /// Awaits `f` while the ranges ahead go on.
    async fn alongside<T>(&mut self, f: impl Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        futures::future::poll_fn(|cx| {
            self.progress(cx);
            f.as_mut().poll(cx)
        })
        .await
    }
}

/// A listing on a task of its own ([`ObjectStore::spawn_listing`]); stopped when dropped, so
/// that a pass that ends early leaves no request behind.
pub struct ListingTask(tokio::task::JoinHandle<()>);

impl ListingTask {
    pub fn new(handle: tokio::task::JoinHandle<()>) -> Self {
        Self(handle)
    }
}

impl Drop for ListingTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Told about every store request, for the request and latency metrics.
pub trait RequestObserver: Send + Sync {
    /// `outcome` is `ok` or an [`ErrorCategory`] name.
    fn observe(&self, operation: Operation, outcome: &'static str, seconds: f64);
}

/// An observer that records nothing.
pub struct NoopObserver;

impl RequestObserver for NoopObserver {
    fn observe(&self, _: Operation, _: &'static str, _: f64) {}
}

/// A shared store is a store: lets tests keep a handle on the fake the host uses.
impl<T: ObjectStore> ObjectStore for std::sync::Arc<T> {
    fn bucket(&self) -> &str {
        (**self).bucket()
    }
    async fn bucket_info(&self) -> StoreResult<BucketInfo> {
        (**self).bucket_info().await
    }
    async fn list_page(
        &self,
        prefix: Option<&str>,
        versions: bool,
        continuation: Option<String>,
        page_size: i32,
    ) -> StoreResult<Page> {
        (**self)
            .list_page(prefix, versions, continuation, page_size)
            .await
    }
    async fn list_page_after(
        &self,
        prefix: Option<&str>,
        after: &str,
        page_size: i32,
    ) -> StoreResult<Page> {
        (**self).list_page_after(prefix, after, page_size).await
    }
    async fn get_tags(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        (**self).get_tags(id).await
    }
    async fn put_tags(&self, id: &ObjectId, tags: &BTreeMap<String, String>) -> StoreResult<()> {
        (**self).put_tags(id, tags).await
    }
    async fn head_object(&self, id: &ObjectId) -> StoreResult<Option<ObjectHead>> {
        (**self).head_object(id).await
    }
    async fn get_metadata(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        (**self).get_metadata(id).await
    }
    async fn get_lifecycle(&self) -> StoreResult<Option<Vec<StoredRule>>> {
        (**self).get_lifecycle().await
    }
    async fn put_lifecycle(&self, rules: &[StoredRule]) -> StoreResult<()> {
        (**self).put_lifecycle(rules).await
    }
    async fn set_legal_hold(&self, id: &ObjectId, on: bool) -> StoreResult<()> {
        (**self).set_legal_hold(id, on).await
    }
    async fn get_legal_hold(&self, id: &ObjectId) -> StoreResult<bool> {
        (**self).get_legal_hold(id).await
    }
    async fn delete_objects(&self, ids: &[ObjectId]) -> StoreResult<Vec<DeleteFailure>> {
        (**self).delete_objects(ids).await
    }
    async fn delete_object(&self, id: &ObjectId, if_match: Option<&str>) -> StoreResult<()> {
        (**self).delete_object(id, if_match).await
    }
    async fn get_object(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        (**self).get_object(key).await
    }
    fn server_time(&self) -> Option<DateTime<Utc>> {
        (**self).server_time()
    }
    fn spawn_listing(&self, job: ListAhead) -> Result<ListingTask, ListAhead> {
        (**self).spawn_listing(job)
    }
    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        retain_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        (**self)
            .put_object(key, body, content_type, retain_until)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use proptest::prelude::*;

    proptest! {
        /// Cut anywhere, listed in any number of ranges at once, the pages read in order are
        /// the listing, and each range costs at most one request more than its pages.
        #[test]
        fn a_listing_cut_anywhere_is_the_listing_in_one_piece(
            keys in proptest::collection::btree_set("[a-c]{1,3}", 0..40),
            splits in proptest::collection::vec("[a-d]{0,3}", 0..12),
            page_size in 1i32..6,
            in_flight in 1usize..5,
            prefix in proptest::option::of("[a-c]"),
            skip in proptest::option::of("[a-c]{1,2}"),
        ) {
            let store = MemoryStore::new("b");
            let at = DateTime::<Utc>::UNIX_EPOCH;
            for k in &keys {
                store.put(k, at, 1, &[]);
            }
            let whole = futures::executor::block_on(crate::store::contract::pages(
                &store,
                prefix.as_deref(),
                false,
                page_size,
            ))
            .concat();
            let sequential_requests = store.requests().len();
            store.clear_requests();
            let ranges = splits.iter().collect::<std::collections::BTreeSet<_>>().len() + 1;
            let (tx, rx) = futures::channel::mpsc::channel(1);
            let job = ListAhead {
                prefix: prefix.clone(),
                versions: false,
                page_size,
                tx,
                splits,
                ranges_in_flight: in_flight,
                skip: skip.clone(),
            };
            let (_, read): ((), Vec<StoreResult<Page>>) = futures::executor::block_on(async {
                futures::join!(job.run(&store), futures::StreamExt::collect(rx))
            });
            let read: Vec<Page> = read.into_iter().map(|p| p.expect("page")).collect();
            let (last, rest) = read.split_last().expect("a page at least");
            prop_assert!(last.next.is_none());
            for p in rest {
                prop_assert!(p.next.is_some() && !p.objects.is_empty());
            }
            let listed: Vec<ListedObject> = read.into_iter().flat_map(|p| p.objects).collect();
            // Keys under `skip` may be jumped over; every other key is listed, in order.
            let kept = |objects: Vec<ListedObject>| -> Vec<ListedObject> {
                objects
                    .into_iter()
                    .filter(|o| skip.as_deref().is_none_or(|s| !o.key.starts_with(s)))
                    .collect()
            };
            prop_assert_eq!(kept(listed), kept(whole));
            let requests = store.requests().len();
            prop_assert!(
                requests <= sequential_requests + 2 * ranges,
                "{} requests, {} for the listing in one piece, {} ranges",
                requests, sequential_requests, ranges
            );
        }
    }
}
