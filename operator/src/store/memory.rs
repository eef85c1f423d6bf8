//! An in-memory object store for unit tests, with versioning, Object Lock legal holds, a
//! request log and fault injection (fail an operation, optionally for one key, N times).
//!
//! The fake behaves like Ceph RGW 16.2.15, the project's real store, wherever the port can see
//! a difference; the shared contract suite ([`super::contract`]) runs against both and keeps it so.
//! What it models, each verified on RGW:
//! - Errors: the category the S3 adapter gives the store's answer (`InvalidTag`,
//!   `InvalidRequest` and `InvalidArgument` are 400s, so [`ErrorCategory::Other`]; a missing
//!   key, version or delete marker is [`ErrorCategory::NotFound`], and so is a HeadObject in a
//!   missing bucket: a HEAD answer has no body to name the bucket).
//! - Tags: at most 10 per object, keys up to 128 bytes, values up to 256 bytes (RGW counts
//!   bytes, AWS characters). User metadata keys are lower case.
//! - Listings: current listings carry no version id; version listings call the version of an
//!   unversioned object `null`, which addresses it like no version id. A continuation resumes
//!   after the last listed key (deletes between pages skip nothing), except that a version
//!   listing whose marker version was deleted in the meantime skips the rest of that key.
//! - Deletes: without a version id on a versioned bucket, a delete marker is added (also for a
//!   key that never existed), unless the key's latest version already is one. A legal-held
//!   version fails alone, inside a successful answer. Missing keys and versions are no failure.
//!   A key XML 1.0 cannot carry (a control character other than tab, CR, LF) makes RGW refuse
//!   the whole DeleteObjects batch (400); a DeleteObject of that key alone works. A DeleteObject
//!   with `If-Match` is refused (412) when the ETag differs, unless the fake plays RGW 16
//!   ([`MemoryStore::delete_ignores_if_match`]), which ignores the header.
//! - Lifecycle: rule ids must be unique (and at most 255 characters); the store answers the
//!   rules sorted by id, owned rules normalised (an empty prefix reads back as none).
//! - Legal holds need an Object Lock bucket, for reading as well as for writing; so does a
//!   PutObject with a retention (400 InvalidRequest, nothing written). A legal-held version,
//!   or one retained until after the store's clock, cannot be deleted by version id
//!   (AccessDenied); a delete marker on top is allowed.
//! - HEAD: the ETag a listing shows, `Last-Modified` in whole seconds (truncated), and nothing
//!   (404) for a missing key or version, a delete marker, or in a missing bucket.
//!
//! Two RGW 16 behaviours are opt-in, because AWS S3 does not have them: tag and legal-hold
//! writes that move LastModified ([`MemoryStore::tag_writes_move_last_modified`], issue 8,
//! item 11; deadlines in unit tests count from fixed dates), and a DeleteObject that ignores
//! `If-Match` ([`MemoryStore::delete_ignores_if_match`]). The suite runs against the fake
//! with and without them.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Mutex;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use super::lifecycle_map;
use super::{
    BucketInfo, DeleteFailure, ErrorCategory, ListedObject, ObjectHead, ObjectId, ObjectStore,
    Operation, Page, StoreError, StoreResult, StoredRule,
};

/// RGW refuses a tag key longer than this many bytes.
const MAX_TAG_KEY_BYTES: usize = 128;
/// RGW refuses a tag value longer than this many bytes.
const MAX_TAG_VALUE_BYTES: usize = 256;
/// S3 refuses a lifecycle rule id longer than this.
const MAX_RULE_ID_CHARS: usize = 255;
/// S3 returns at most this many entries per listing page.
const MAX_PAGE_SIZE: usize = 1000;
/// S3 accepts at most this many keys in one DeleteObjects request.
const MAX_DELETE_BATCH: usize = 1000;

#[derive(Debug, Clone)]
struct Version {
    /// `None` for an object written to an unversioned bucket (S3's `null` version).
    version_id: Option<String>,
    /// Write order in the whole store: newer versions have larger numbers.
    seq: u64,
    /// What listings show.
    last_modified: DateTime<Utc>,
    /// RGW 16 on a versioned bucket: the time of the last tag or legal-hold write, which HEAD
    /// shows at once and listings only once the version changes between current and
    /// noncurrent.
    pending_last_modified: Option<DateTime<Utc>>,
    size: u64,
    /// `None` for objects seeded by size only: they read back as `size` zero bytes.
    body: Option<Vec<u8>>,
    delete_marker: bool,
    /// `None` for delete markers.
    etag: Option<String>,
    tags: BTreeMap<String, String>,
    metadata: BTreeMap<String, String>,
    legal_hold: bool,
    /// An Object Lock retention (GOVERNANCE) until then.
    retain_until: Option<DateTime<Utc>>,
}

impl Version {
    /// Listings show a pending tag-write time once the version is re-indexed.
    fn reindex(&mut self) {
        if let Some(t) = self.pending_last_modified.take() {
            self.last_modified = t;
        }
    }

    /// What a HEAD shows (before truncation to whole seconds).
    fn head_last_modified(&self) -> DateTime<Utc> {
        self.pending_last_modified.unwrap_or(self.last_modified)
    }

    fn matches(&self, version_id: Option<&str>) -> bool {
        match version_id {
            Some("null") => self.version_id.is_none(),
            Some(v) => self.version_id.as_deref() == Some(v),
            None => false,
        }
    }
}

/// The version a request addresses: the given one, or the latest without an id.
fn addressed<'a>(versions: &'a [Version], version_id: Option<&str>) -> Option<&'a Version> {
    match version_id {
        None => versions.last(),
        v => versions.iter().find(|x| x.matches(v)),
    }
}

/// A fault to inject: the next `times` calls of `operation` (for `key`, if given) fail.
#[derive(Debug, Clone)]
pub struct Fault {
    pub operation: Operation,
    pub key: Option<String>,
    pub category: ErrorCategory,
    pub times: u32,
}

#[derive(Debug, Default)]
struct State {
    /// key → versions, oldest first.
    objects: BTreeMap<String, Vec<Version>>,
    lifecycle: Option<Vec<StoredRule>>,
    faults: Vec<Fault>,
    requests: Vec<Operation>,
    /// The `after` of every listing started after a key, in order.
    listed_after: Vec<String>,
    /// The prefix of every listing started from its first page, in order.
    listed_under: Vec<Option<String>>,
    next_seq: u64,
    /// The store's clock when set; otherwise the wall clock.
    clock: Option<DateTime<Utc>>,
    /// What [`ObjectStore::server_time`] answers.
    server_time: Option<DateTime<Utc>>,
}

impl State {
    fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }
}

/// Where a listing resumes: after `seq` of `key` (versions) or after `key` (current objects).
#[derive(Debug)]
struct Marker {
    key: String,
    seq: u64,
}

impl Marker {
    fn token(&self) -> String {
        format!("{}:{}", self.seq, self.key)
    }

    fn parse(token: &str) -> Option<Marker> {
        let (seq, key) = token.split_once(':')?;
        Some(Marker {
            key: key.to_string(),
            seq: seq.parse().ok()?,
        })
    }
}

/// The fake store. All methods take `&self`; state sits behind a mutex.
#[derive(Debug)]
pub struct MemoryStore {
    bucket: String,
    info: BucketInfo,
    exists: bool,
    tag_writes_move_last_modified: bool,
    delete_ignores_if_match: bool,
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new(bucket: &str) -> Self {
        MemoryStore {
            bucket: bucket.into(),
            info: BucketInfo::default(),
            exists: true,
            tag_writes_move_last_modified: false,
            delete_ignores_if_match: false,
            state: Mutex::new(State::default()),
        }
    }

    pub fn versioned(mut self) -> Self {
        self.info.versioned = true;
        self
    }

    pub fn object_lock(mut self) -> Self {
        self.info.versioned = true;
        self.info.object_lock = true;
        self
    }

    /// Behaves like Ceph RGW 16 on tag writes: PutObjectTagging stamps the version with the
    /// store's clock. Listings show the new LastModified at once on an unversioned bucket; on a
    /// versioned one only when the version next changes between current and noncurrent (a
    /// newer version or delete marker is written, or the newer versions are deleted). AWS S3
    /// keeps LastModified.
    ///
    /// RGW 16 stamps a version on PutObjectLegalHold too (on or off, Object Lock buckets are
    /// versioned: listed once the version turns noncurrent or current), and HEAD shows the
    /// stamp of either write at once. This switch turns on all of it.
    pub fn tag_writes_move_last_modified(mut self) -> Self {
        self.tag_writes_move_last_modified = true;
        self
    }

    /// Behaves like Ceph RGW 16.2.15 on a DeleteObject with `If-Match`: ignores the header
    /// and deletes whatever the ETag. By default the fake honours it as AWS S3 documents
    /// (412 PreconditionFailed when the ETag differs).
    pub fn delete_ignores_if_match(mut self) -> Self {
        self.delete_ignores_if_match = true;
        self
    }

    /// A store whose bucket does not exist.
    pub fn missing(bucket: &str) -> Self {
        MemoryStore {
            exists: false,
            ..MemoryStore::new(bucket)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic in another test thread must not hide this test's result.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the store's clock at `now` (writes through the port, delete markers and tag
    /// writes are stamped with it). Until then the store uses the wall clock.
    pub fn set_clock(&self, now: DateTime<Utc>) {
        self.lock().clock = Some(now);
    }

    /// What [`ObjectStore::server_time`] answers from now on, as is (the S3 adapter's answer
    /// moves on with local time; this one stays put). `None`, the default, is a store whose
    /// answers had no `Date`, or no answer yet. Independent of [`MemoryStore::set_clock`].
    pub fn set_server_time(&self, time: Option<DateTime<Utc>>) {
        self.lock().server_time = time;
    }

    /// Moves the store's clock on (and stops it there).
    pub fn advance_clock(&self, by: TimeDelta) {
        let mut s = self.lock();
        let now = s.now() + by;
        s.clock = Some(now);
    }

    /// Adds an object (a new version on versioned buckets; on unversioned ones it replaces the
    /// key's object) with an explicit LastModified. Returns its version id.
    pub fn put(
        &self,
        key: &str,
        last_modified: DateTime<Utc>,
        size: u64,
        tags: &[(&str, &str)],
    ) -> Option<String> {
        self.insert(key, Some(last_modified), size, None, tags, &[])
    }

    /// Writes an object as a recorder would (PutObject with tags and user metadata), stamped
    /// with the store's clock. Returns its version id.
    pub fn upload(
        &self,
        key: &str,
        body: &[u8],
        tags: &[(&str, &str)],
        metadata: &[(&str, &str)],
    ) -> Option<String> {
        self.insert(
            key,
            None,
            body.len() as u64,
            Some(body.to_vec()),
            tags,
            metadata,
        )
    }

    fn insert(
        &self,
        key: &str,
        last_modified: Option<DateTime<Utc>>,
        size: u64,
        body: Option<Vec<u8>>,
        tags: &[(&str, &str)],
        metadata: &[(&str, &str)],
    ) -> Option<String> {
        let mut s = self.lock();
        let version = self.version(&mut s, last_modified, size, body, tags, metadata);
        self.add(&mut s, key, version)
    }

    /// A new version, stamped with the store's clock unless `last_modified` is given.
    fn version(
        &self,
        s: &mut State,
        last_modified: Option<DateTime<Utc>>,
        size: u64,
        body: Option<Vec<u8>>,
        tags: &[(&str, &str)],
        metadata: &[(&str, &str)],
    ) -> Version {
        s.next_seq += 1;
        let seq = s.next_seq;
        let etag = Some(etag(body.as_deref(), size));
        Version {
            version_id: self.info.versioned.then(|| format!("v{seq:06}")),
            seq,
            last_modified: last_modified.unwrap_or_else(|| s.now()),
            pending_last_modified: None,
            size,
            body,
            delete_marker: false,
            etag,
            tags: pairs(tags),
            metadata: lower_case_keys(metadata),
            legal_hold: false,
            retain_until: None,
        }
    }

    /// Adds a version under `key` (on unversioned buckets it replaces the key's object);
    /// returns its version id.
    fn add(&self, s: &mut State, key: &str, version: Version) -> Option<String> {
        let version_id = version.version_id.clone();
        let versions = s.objects.entry(key.into()).or_default();
        if self.info.versioned {
            // The current version becomes noncurrent.
            if let Some(previous) = versions.last_mut() {
                previous.reindex();
            }
        } else {
            // An unversioned bucket keeps one object per key: a write replaces it.
            versions.clear();
        }
        versions.push(version);
        version_id
    }

    /// Sets user metadata on the latest version of a key (keys lower-cased, as S3 keeps them).
    pub fn set_metadata(&self, key: &str, metadata: &[(&str, &str)]) {
        let mut s = self.lock();
        if let Some(v) = s.objects.get_mut(key).and_then(|vs| vs.last_mut()) {
            v.metadata = lower_case_keys(metadata);
        }
    }

    /// Replaces the lifecycle configuration behind the operator's back.
    pub fn set_lifecycle(&self, rules: Option<Vec<StoredRule>>) {
        self.lock().lifecycle = rules;
    }

    pub fn lifecycle(&self) -> Option<Vec<StoredRule>> {
        self.lock().lifecycle.clone()
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Every request made so far, in order.
    pub fn requests(&self) -> Vec<Operation> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        let mut s = self.lock();
        s.requests.clear();
        s.listed_after.clear();
        s.listed_under.clear();
    }

    /// The prefixes listings were started under ([`ObjectStore::list_page`] without a
    /// continuation), in order.
    pub fn listed_under(&self) -> Vec<Option<String>> {
        self.lock().listed_under.clone()
    }

    /// The keys listings were started after ([`ObjectStore::list_page_after`]), in order.
    pub fn listed_after(&self) -> Vec<String> {
        self.lock().listed_after.clone()
    }

    /// Tags of the latest version of `key`.
    pub fn tags(&self, key: &str) -> Option<BTreeMap<String, String>> {
        self.lock()
            .objects
            .get(key)
            .and_then(|vs| vs.last())
            .map(|v| v.tags.clone())
    }

    /// The Object Lock retain-until date of a version (`None`: the latest) written with
    /// [`ObjectStore::put_object`]; the mode is always GOVERNANCE.
    pub fn retention(&self, id: &ObjectId) -> Option<DateTime<Utc>> {
        self.lock()
            .objects
            .get(&id.key)
            .and_then(|vs| addressed(vs, id.version_id.as_deref()))
            .and_then(|v| v.retain_until)
    }

    pub fn legal_hold(&self, key: &str) -> bool {
        self.lock()
            .objects
            .get(key)
            .is_some_and(|vs| vs.iter().any(|v| v.legal_hold))
    }

    /// Keys with at least one version that is not a delete marker.
    pub fn live_keys(&self) -> BTreeSet<String> {
        self.lock()
            .objects
            .iter()
            .filter(|(_, vs)| vs.iter().any(|v| !v.delete_marker))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Number of stored versions including delete markers.
    pub fn version_count(&self) -> usize {
        self.lock().objects.values().map(Vec::len).sum()
    }

    /// Records the request and returns an injected failure if one is due.
    fn enter(&self, operation: Operation, key: Option<&str>) -> StoreResult<()> {
        let mut s = self.lock();
        s.requests.push(operation);
        if !self.exists && operation == Operation::HeadObject {
            return Err(self.error(
                operation,
                key,
                ErrorCategory::NotFound,
                "not found (HTTP 404)",
            ));
        }
        if !self.exists {
            return Err(self.error(
                operation,
                key,
                ErrorCategory::NoSuchBucket,
                "The specified bucket does not exist",
            ));
        }
        let due = s.faults.iter_mut().find(|f| {
            f.times > 0
                && f.operation == operation
                && f.key.as_deref().is_none_or(|k| Some(k) == key)
        });
        if let Some(f) = due {
            f.times -= 1;
            let category = f.category;
            return Err(self.error(operation, key, category, "injected fault"));
        }
        Ok(())
    }

    fn error(
        &self,
        operation: Operation,
        key: Option<&str>,
        category: ErrorCategory,
        message: &str,
    ) -> StoreError {
        StoreError {
            bucket: self.bucket.clone(),
            operation,
            key: key.map(str::to_string),
            category,
            message: message.into(),
            request_id: None,
        }
    }

    /// Runs `f` on the addressed version (`None`: the latest) with the store's clock; a
    /// missing key or version, or a delete marker, is `NotFound`.
    fn with_version<T>(
        &self,
        operation: Operation,
        id: &ObjectId,
        f: impl FnOnce(&mut Version, DateTime<Utc>) -> T,
    ) -> StoreResult<T> {
        let mut s = self.lock();
        let now = s.now();
        let found = s
            .objects
            .get_mut(&id.key)
            .and_then(|vs| match id.version_id.as_deref() {
                None => vs.last_mut(),
                v => vs.iter_mut().find(|x| x.matches(v)),
            });
        match found {
            Some(v) if !v.delete_marker => Ok(f(v, now)),
            _ => Err(self.error(
                operation,
                Some(&id.key),
                ErrorCategory::NotFound,
                "not found: NoSuchKey (HTTP 404)",
            )),
        }
    }

    /// Deletes one version as S3 does (see the module notes); the error code when refused.
    fn delete_version(&self, s: &mut State, id: &ObjectId) -> Option<&'static str> {
        let now = s.now();
        if id.version_id.is_none() && self.info.versioned {
            // An unversioned delete on a versioned bucket only adds a delete marker (even
            // for a key that never existed); RGW adds none on top of another.
            s.next_seq += 1;
            let seq = s.next_seq;
            let vs = s.objects.entry(id.key.clone()).or_default();
            if !vs.last().is_some_and(|v| v.delete_marker) {
                if let Some(previous) = vs.last_mut() {
                    previous.reindex();
                }
                vs.push(Version {
                    version_id: Some(format!("v{seq:06}")),
                    seq,
                    last_modified: now,
                    pending_last_modified: None,
                    size: 0,
                    body: None,
                    delete_marker: true,
                    etag: None,
                    tags: BTreeMap::new(),
                    metadata: BTreeMap::new(),
                    legal_hold: false,
                    retain_until: None,
                });
            }
            return None;
        }
        let vs = s.objects.get_mut(&id.key)?;
        match id.version_id.as_deref() {
            None => vs.clear(),
            version => {
                let pos = vs.iter().position(|v| v.matches(version))?;
                if vs[pos].legal_hold || vs[pos].retain_until.is_some_and(|t| t > now) {
                    return Some("AccessDenied");
                }
                vs.remove(pos);
                // Without its newer version, the next one becomes current.
                if pos == vs.len()
                    && let Some(latest) = vs.last_mut()
                {
                    latest.reindex();
                }
            }
        }
        if vs.is_empty() {
            s.objects.remove(&id.key);
        }
        None
    }

    fn require_object_lock(&self, operation: Operation, key: &str) -> StoreResult<()> {
        if self.info.object_lock {
            return Ok(());
        }
        Err(self.error(
            operation,
            Some(key),
            ErrorCategory::Other,
            "request failed: InvalidRequest: bucket object lock not configured (HTTP 400)",
        ))
    }
}

/// The fake's ETag: like S3's for a single-part upload, 32 hex digits that depend on the bytes
/// only (the same body written twice has the same ETag). Not an MD5: a truncated SHA-256. An
/// object seeded by size alone gets one from its size.
fn etag(body: Option<&[u8]>, size: u64) -> String {
    use sha2::{Digest, Sha256};
    let digest = match body {
        Some(body) => Sha256::digest(body),
        None => Sha256::digest(format!("{size} zero bytes").as_bytes()),
    };
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether XML 1.0 can carry the text: no control characters but tab, line feed and carriage
/// return, and no U+FFFE or U+FFFF.
fn xml_safe(text: &str) -> bool {
    !text.chars().any(|c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
    })
}

/// An ETag without surrounding quotes.
fn unquote(etag: &str) -> &str {
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

fn pairs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn lower_case_keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_lowercase(), v.to_string()))
        .collect()
}

/// Why RGW answers `InvalidTag` to this tag set, if it does.
fn invalid_tags(tags: &BTreeMap<String, String>) -> Option<String> {
    if tags.len() > crate::retention::MAX_TAGS {
        return Some(format!(
            "{} tags; at most {}",
            tags.len(),
            crate::retention::MAX_TAGS
        ));
    }
    tags.iter().find_map(|(k, v)| {
        if k.len() > MAX_TAG_KEY_BYTES {
            Some(format!("a tag key of {} bytes", k.len()))
        } else if v.len() > MAX_TAG_VALUE_BYTES {
            Some(format!("a tag value of {} bytes", v.len()))
        } else {
            None
        }
    })
}

/// Why S3 refuses this lifecycle configuration, if it does.
fn invalid_rules(rules: &[StoredRule]) -> Option<String> {
    let mut seen = BTreeSet::new();
    for rule in rules {
        let id = match rule {
            StoredRule::Owned(o) => Some(o.id.as_str()),
            StoredRule::Foreign(f) => f.id.as_deref(),
        };
        // AWS, RGW 16 and moto refuse an expiration with both days and delete markers
        // (MalformedXML).
        if let StoredRule::Owned(o) = rule
            && o.expiration_days.is_some()
            && o.expired_object_delete_marker
        {
            return Some(format!(
                "rule {} expires after days and removes expired delete markers",
                o.id
            ));
        }
        let Some(id) = id else { continue };
        if id.chars().count() > MAX_RULE_ID_CHARS {
            return Some(format!(
                "rule id longer than {MAX_RULE_ID_CHARS} characters"
            ));
        }
        if !seen.insert(id) {
            return Some(format!("two rules with id {id}"));
        }
    }
    None
}

/// A configuration as the store keeps it: sorted by id, owned rules normalised.
fn as_stored(rules: &[StoredRule]) -> Vec<StoredRule> {
    let mut out: Vec<StoredRule> = rules
        .iter()
        .map(|r| match r {
            StoredRule::Owned(o) => StoredRule::Owned(lifecycle_map::normalise(o)),
            StoredRule::Foreign(f) => StoredRule::Foreign(f.clone()),
        })
        .collect();
    let id = |r: &StoredRule| match r {
        StoredRule::Owned(o) => Some(o.id.clone()),
        StoredRule::Foreign(f) => f.id.clone(),
    };
    out.sort_by_key(id);
    out
}

impl MemoryStore {
    /// One page from after `marker` (a continuation) or after every version of `after`.
    fn list(
        &self,
        prefix: Option<&str>,
        versions: bool,
        marker: Option<Marker>,
        after: Option<&str>,
        page_size: i32,
    ) -> StoreResult<Page> {
        let size = usize::try_from(page_size)
            .unwrap_or(1)
            .clamp(1, MAX_PAGE_SIZE);
        let prefix = prefix.unwrap_or_default();
        let s = self.lock();
        let from = marker
            .as_ref()
            .map(|m| m.key.as_str())
            .or(after)
            .map_or(prefix, |k| k.max(prefix));
        let mut objects: Vec<ListedObject> = Vec::new();
        let mut last: Option<Marker> = None;
        let mut more = false;
        // S3 order: keys ascending, versions newest first.
        'keys: for (key, vs) in s
            .objects
            .range::<str, _>((Bound::Included(from), Bound::Unbounded))
        {
            if !key.starts_with(prefix) {
                break;
            }
            if after == Some(key.as_str()) {
                continue;
            }
            let mut after_seq = u64::MAX;
            if let Some(m) = marker.as_ref().filter(|m| m.key == *key) {
                // Current listings resume after the key; version listings after the marker
                // version, and RGW skips the rest of the key when that version is gone.
                if !versions || !vs.iter().any(|v| v.seq == m.seq) {
                    continue;
                }
                after_seq = m.seq;
            }
            let n = vs.len();
            for (i, v) in vs.iter().enumerate().rev() {
                let is_latest = i + 1 == n;
                if v.seq >= after_seq || (!versions && (!is_latest || v.delete_marker)) {
                    continue;
                }
                if objects.len() == size {
                    more = true;
                    break 'keys;
                }
                objects.push(ListedObject {
                    key: key.clone(),
                    version_id: if versions {
                        Some(v.version_id.clone().unwrap_or_else(|| "null".to_string()))
                    } else {
                        None
                    },
                    last_modified: v.last_modified,
                    size: v.size,
                    delete_marker: v.delete_marker,
                    is_latest,
                    etag: v.etag.clone(),
                });
                last = Some(Marker {
                    key: key.clone(),
                    seq: v.seq,
                });
            }
        }
        Ok(Page {
            objects,
            next: if more { last.map(|m| m.token()) } else { None },
        })
    }
}

impl ObjectStore for MemoryStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn bucket_info(&self) -> StoreResult<BucketInfo> {
        self.enter(Operation::HeadBucket, None)?;
        Ok(self.info)
    }

    async fn list_page(
        &self,
        prefix: Option<&str>,
        versions: bool,
        continuation: Option<String>,
        page_size: i32,
    ) -> StoreResult<Page> {
        let op = if versions {
            Operation::ListObjectVersions
        } else {
            Operation::ListObjects
        };
        self.enter(op, None)?;
        let marker = match continuation {
            None => {
                self.lock().listed_under.push(prefix.map(str::to_string));
                None
            }
            Some(token) => Some(Marker::parse(&token).ok_or_else(|| {
                self.error(
                    op,
                    None,
                    ErrorCategory::Other,
                    &format!("invalid continuation token {token:?}"),
                )
            })?),
        };
        self.list(prefix, versions, marker, None, page_size)
    }

    async fn list_page_after(
        &self,
        prefix: Option<&str>,
        after: &str,
        page_size: i32,
    ) -> StoreResult<Page> {
        self.enter(Operation::ListObjects, None)?;
        self.lock().listed_after.push(after.to_string());
        self.list(prefix, false, None, Some(after), page_size)
    }
    async fn get_tags(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        self.enter(Operation::GetObjectTagging, Some(&id.key))?;
        self.with_version(Operation::GetObjectTagging, id, |v, _| v.tags.clone())
    }

    async fn put_tags(&self, id: &ObjectId, tags: &BTreeMap<String, String>) -> StoreResult<()> {
        let op = Operation::PutObjectTagging;
        self.enter(op, Some(&id.key))?;
        if let Some(why) = invalid_tags(tags) {
            return Err(self.error(
                op,
                Some(&id.key),
                ErrorCategory::Other,
                &format!("request failed: InvalidTag: {why} (HTTP 400)"),
            ));
        }
        let moves = self.tag_writes_move_last_modified;
        let versioned = self.info.versioned;
        self.with_version(op, id, |v, now| {
            v.tags = tags.clone();
            match (moves, versioned) {
                (false, _) => {}
                (true, false) => v.last_modified = now,
                (true, true) => v.pending_last_modified = Some(now),
            }
        })
    }

    async fn head_object(&self, id: &ObjectId) -> StoreResult<Option<ObjectHead>> {
        let op = Operation::HeadObject;
        match self.enter(op, Some(&id.key)) {
            // A HEAD in a missing bucket is a bare 404, like a missing key.
            Err(e) if !self.exists && e.category == ErrorCategory::NotFound => return Ok(None),
            r => r?,
        }
        let s = self.lock();
        let found = s
            .objects
            .get(&id.key)
            .and_then(|vs| addressed(vs, id.version_id.as_deref()))
            .filter(|v| !v.delete_marker);
        Ok(found.map(|v| ObjectHead {
            etag: v.etag.clone(),
            // `Last-Modified` has whole seconds.
            last_modified: v.head_last_modified().trunc_subsecs(0),
            size: v.size,
        }))
    }

    async fn get_metadata(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        self.enter(Operation::HeadObject, Some(&id.key))?;
        self.with_version(Operation::HeadObject, id, |v, _| v.metadata.clone())
    }

    async fn get_lifecycle(&self) -> StoreResult<Option<Vec<StoredRule>>> {
        self.enter(Operation::GetBucketLifecycle, None)?;
        Ok(self.lock().lifecycle.clone())
    }

    async fn put_lifecycle(&self, rules: &[StoredRule]) -> StoreResult<()> {
        let op = if rules.is_empty() {
            Operation::DeleteBucketLifecycle
        } else {
            Operation::PutBucketLifecycle
        };
        self.enter(op, None)?;
        if let Some(why) = invalid_rules(rules) {
            return Err(self.error(
                op,
                None,
                ErrorCategory::Other,
                &format!("request failed: InvalidArgument: {why} (HTTP 400)"),
            ));
        }
        self.lock().lifecycle = (!rules.is_empty()).then(|| as_stored(rules));
        Ok(())
    }

    async fn set_legal_hold(&self, id: &ObjectId, on: bool) -> StoreResult<()> {
        let op = Operation::PutObjectLegalHold;
        self.enter(op, Some(&id.key))?;
        self.require_object_lock(op, &id.key)?;
        let moves = self.tag_writes_move_last_modified;
        self.with_version(op, id, |v, now| {
            v.legal_hold = on;
            if moves {
                v.pending_last_modified = Some(now);
            }
        })
    }

    async fn get_legal_hold(&self, id: &ObjectId) -> StoreResult<bool> {
        let op = Operation::GetObjectLegalHold;
        self.enter(op, Some(&id.key))?;
        self.require_object_lock(op, &id.key)?;
        self.with_version(op, id, |v, _| v.legal_hold)
    }

    async fn get_object(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.enter(Operation::GetObject, Some(key))?;
        let s = self.lock();
        Ok(s.objects
            .get(key)
            .and_then(|vs| vs.last())
            .filter(|v| !v.delete_marker)
            .map(|v| {
                v.body
                    .clone()
                    .unwrap_or_else(|| vec![0; usize::try_from(v.size).unwrap_or(0)])
            }))
    }

    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
        retain_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let op = Operation::PutObject;
        self.enter(op, Some(key))?;
        if retain_until.is_some() && !self.info.object_lock {
            return Err(self.error(
                op,
                Some(key),
                ErrorCategory::Other,
                "request failed: InvalidRequest (HTTP 400)",
            ));
        }
        let mut s = self.lock();
        let mut version = self.version(&mut s, None, body.len() as u64, Some(body), &[], &[]);
        version.retain_until = retain_until;
        self.add(&mut s, key, version);
        Ok(())
    }

    fn server_time(&self) -> Option<DateTime<Utc>> {
        self.lock().server_time
    }

    async fn delete_object(&self, id: &ObjectId, if_match: Option<&str>) -> StoreResult<()> {
        let op = Operation::DeleteObject;
        self.enter(op, Some(&id.key))?;
        let mut s = self.lock();
        if let Some(expected) = if_match.filter(|_| !self.delete_ignores_if_match) {
            // Compared with the addressed version; with none (or a delete marker) the delete
            // goes ahead as without the header.
            let current = s
                .objects
                .get(&id.key)
                .and_then(|vs| addressed(vs, id.version_id.as_deref()))
                .filter(|v| !v.delete_marker);
            if let Some(v) = current
                && expected != "*"
                && v.etag.as_deref() != Some(unquote(expected))
            {
                return Err(self.error(
                    op,
                    Some(&id.key),
                    ErrorCategory::PreconditionFailed,
                    "precondition failed: PreconditionFailed (HTTP 412)",
                ));
            }
        }
        match self.delete_version(&mut s, id) {
            None => Ok(()),
            Some(_) => Err(self.error(
                op,
                Some(&id.key),
                ErrorCategory::AccessDenied,
                "access denied: AccessDenied (HTTP 403)",
            )),
        }
    }

    async fn delete_objects(&self, ids: &[ObjectId]) -> StoreResult<Vec<DeleteFailure>> {
        let op = Operation::DeleteObjects;
        // As the S3 adapter: nothing to delete sends nothing, too many is refused unsent.
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() > MAX_DELETE_BATCH {
            return Err(self.error(
                op,
                None,
                ErrorCategory::Other,
                &format!(
                    "{} objects in one request; S3 accepts at most {MAX_DELETE_BATCH}",
                    ids.len()
                ),
            ));
        }
        self.enter(op, None)?;
        if ids.iter().any(|id| !xml_safe(&id.key)) {
            // The key cannot be written in the request's XML: RGW refuses the whole batch.
            return Err(self.error(
                op,
                None,
                ErrorCategory::Other,
                "request failed: MalformedXML (HTTP 400)",
            ));
        }
        let mut failures = Vec::new();
        let mut s = self.lock();
        for id in ids {
            // Per-key faults show up as failures inside a successful response, as S3 does.
            if let Some(f) = s.faults.iter_mut().find(|f| {
                f.times > 0 && f.operation == op && f.key.as_deref() == Some(id.key.as_str())
            }) {
                f.times -= 1;
                failures.push(DeleteFailure {
                    id: id.clone(),
                    code: "InternalError".into(),
                    message: "injected fault".into(),
                });
                continue;
            }
            if let Some(code) = self.delete_version(&mut s, id) {
                failures.push(DeleteFailure {
                    id: id.clone(),
                    code: code.into(),
                    message: code.into(),
                });
            }
        }
        Ok(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_time_is_none_until_set_and_then_what_was_set() {
        let store = MemoryStore::new("b");
        assert_eq!(store.server_time(), None);
        let t = DateTime::parse_from_rfc3339("2026-11-25T19:00:00Z")
            .expect("a date")
            .with_timezone(&Utc);
        store.set_server_time(Some(t));
        assert_eq!(store.server_time(), Some(t));
        let shared = std::sync::Arc::new(store);
        assert_eq!(ObjectStore::server_time(&shared), Some(t));
        shared.set_server_time(None);
        assert_eq!(shared.server_time(), None);
    }
}
