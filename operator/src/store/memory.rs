//! An in-memory object store for unit tests, with versioning, Object Lock legal holds, a
//! request log and fault injection (fail an operation, optionally for one key, N times).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{
    BucketInfo, DeleteFailure, ErrorCategory, ListedObject, ObjectId, ObjectStore, Operation, Page,
    StoreError, StoreResult, StoredRule,
};

#[derive(Debug, Clone)]
struct Version {
    version_id: Option<String>,
    last_modified: DateTime<Utc>,
    size: u64,
    delete_marker: bool,
    tags: BTreeMap<String, String>,
    metadata: BTreeMap<String, String>,
    legal_hold: bool,
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
    /// Bodies of objects written with `put_object` (the journal), by key.
    bodies: BTreeMap<String, Vec<u8>>,
    next_version: u64,
}

/// The fake store. All methods take `&self`; state sits behind a mutex.
#[derive(Debug)]
pub struct MemoryStore {
    bucket: String,
    info: BucketInfo,
    exists: bool,
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new(bucket: &str) -> Self {
        MemoryStore {
            bucket: bucket.into(),
            info: BucketInfo::default(),
            exists: true,
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

    /// Adds an object (a new version on versioned buckets).
    pub fn put(
        &self,
        key: &str,
        last_modified: DateTime<Utc>,
        size: u64,
        tags: &[(&str, &str)],
    ) -> Option<String> {
        let mut s = self.lock();
        s.next_version += 1;
        let version_id = self
            .info
            .versioned
            .then(|| format!("v{:06}", s.next_version));
        s.objects.entry(key.into()).or_default().push(Version {
            version_id: version_id.clone(),
            last_modified,
            size,
            delete_marker: false,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            metadata: BTreeMap::new(),
            legal_hold: false,
        });
        version_id
    }

    /// Sets user metadata on the latest version of a key.
    pub fn set_metadata(&self, key: &str, metadata: &[(&str, &str)]) {
        let mut s = self.lock();
        if let Some(v) = s.objects.get_mut(key).and_then(|vs| vs.last_mut()) {
            v.metadata = metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
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
        self.lock().requests.clear();
    }

    /// Tags of the latest version of `key`.
    pub fn tags(&self, key: &str) -> Option<BTreeMap<String, String>> {
        self.lock()
            .objects
            .get(key)
            .and_then(|vs| vs.last())
            .map(|v| v.tags.clone())
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

    fn with_version<T>(
        &self,
        operation: Operation,
        id: &ObjectId,
        f: impl FnOnce(&mut Version) -> T,
    ) -> StoreResult<T> {
        let mut s = self.lock();
        let version = s
            .objects
            .get_mut(&id.key)
            .and_then(|vs| match &id.version_id {
                Some(v) => vs.iter_mut().find(|x| x.version_id.as_ref() == Some(v)),
                None => vs.last_mut(),
            });
        match version {
            Some(v) if !v.delete_marker => Ok(f(v)),
            _ => Err(self.error(
                operation,
                Some(&id.key),
                ErrorCategory::NotFound,
                "NoSuchKey",
            )),
        }
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
        let s = self.lock();
        // Flatten to (key, index) in S3 order: keys ascending, versions newest first.
        let mut all: Vec<ListedObject> = Vec::new();
        for (key, vs) in &s.objects {
            if prefix.is_some_and(|p| !key.starts_with(p)) {
                continue;
            }
            let n = vs.len();
            for (i, v) in vs.iter().enumerate().rev() {
                let is_latest = i + 1 == n;
                if !versions && (!is_latest || v.delete_marker) {
                    continue;
                }
                all.push(ListedObject {
                    key: key.clone(),
                    version_id: v.version_id.clone(),
                    last_modified: v.last_modified,
                    size: v.size,
                    delete_marker: v.delete_marker,
                    is_latest,
                });
            }
        }
        let start: usize = continuation.and_then(|c| c.parse().ok()).unwrap_or(0);
        let size = usize::try_from(page_size.max(1)).unwrap_or(1000);
        let end = (start + size).min(all.len());
        Ok(Page {
            objects: all
                .get(start..end)
                .map(<[ListedObject]>::to_vec)
                .unwrap_or_default(),
            next: (end < all.len()).then(|| end.to_string()),
        })
    }

    async fn get_tags(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        self.enter(Operation::GetObjectTagging, Some(&id.key))?;
        self.with_version(Operation::GetObjectTagging, id, |v| v.tags.clone())
    }

    async fn put_tags(&self, id: &ObjectId, tags: &BTreeMap<String, String>) -> StoreResult<()> {
        self.enter(Operation::PutObjectTagging, Some(&id.key))?;
        if tags.len() > crate::retention::MAX_TAGS {
            return Err(self.error(
                Operation::PutObjectTagging,
                Some(&id.key),
                ErrorCategory::Malformed,
                "BadRequest: more than 10 tags",
            ));
        }
        self.with_version(Operation::PutObjectTagging, id, |v| v.tags = tags.clone())
    }

    async fn get_metadata(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        self.enter(Operation::HeadObject, Some(&id.key))?;
        self.with_version(Operation::HeadObject, id, |v| v.metadata.clone())
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
        self.lock().lifecycle = (!rules.is_empty()).then(|| rules.to_vec());
        Ok(())
    }

    async fn set_legal_hold(&self, id: &ObjectId, on: bool) -> StoreResult<()> {
        self.enter(Operation::PutObjectLegalHold, Some(&id.key))?;
        if !self.info.object_lock {
            return Err(self.error(
                Operation::PutObjectLegalHold,
                Some(&id.key),
                ErrorCategory::Malformed,
                "InvalidRequest: bucket has no Object Lock",
            ));
        }
        self.with_version(Operation::PutObjectLegalHold, id, |v| v.legal_hold = on)
    }

    async fn get_legal_hold(&self, id: &ObjectId) -> StoreResult<bool> {
        self.enter(Operation::GetObjectLegalHold, Some(&id.key))?;
        self.with_version(Operation::GetObjectLegalHold, id, |v| v.legal_hold)
    }

    async fn get_object(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.enter(Operation::GetObject, Some(key))?;
        let s = self.lock();
        let live = s
            .objects
            .get(key)
            .and_then(|vs| vs.last())
            .is_some_and(|v| !v.delete_marker);
        Ok(live.then(|| s.bodies.get(key).cloned().unwrap_or_default()))
    }

    async fn put_object(&self, key: &str, body: Vec<u8>, _content_type: &str) -> StoreResult<()> {
        self.enter(Operation::PutObject, Some(key))?;
        let versioned = self.info.versioned;
        let size = body.len() as u64;
        {
            let mut s = self.lock();
            s.bodies.insert(key.to_string(), body);
            // An unversioned bucket keeps one object per key.
            if !versioned {
                s.objects.remove(key);
            }
        }
        // The fake has no clock of its own; the object's time is only ever listed.
        self.put(key, Utc::now(), size, &[]);
        Ok(())
    }

    async fn delete_objects(&self, ids: &[ObjectId]) -> StoreResult<Vec<DeleteFailure>> {
        self.enter(Operation::DeleteObjects, None)?;
        if ids.len() > 1000 {
            return Err(self.error(
                Operation::DeleteObjects,
                None,
                ErrorCategory::Malformed,
                "more than 1000 keys",
            ));
        }
        let mut failures = Vec::new();
        let mut s = self.lock();
        for id in ids {
            // Per-key faults show up as failures inside a successful response, as S3 does.
            if let Some(f) = s.faults.iter_mut().find(|f| {
                f.times > 0
                    && f.operation == Operation::DeleteObjects
                    && f.key.as_deref() == Some(id.key.as_str())
            }) {
                f.times -= 1;
                failures.push(DeleteFailure {
                    id: id.clone(),
                    code: "InternalError".into(),
                    message: "injected fault".into(),
                });
                continue;
            }
            let Some(vs) = s.objects.get_mut(&id.key) else {
                continue;
            };
            match &id.version_id {
                Some(vid) => {
                    if let Some(pos) = vs.iter().position(|v| v.version_id.as_ref() == Some(vid)) {
                        if vs[pos].legal_hold {
                            failures.push(DeleteFailure {
                                id: id.clone(),
                                code: "AccessDenied".into(),
                                message: "forbidden by object lock".into(),
                            });
                            continue;
                        }
                        vs.remove(pos);
                    }
                }
                None if self.info.versioned => {
                    // An unversioned delete on a versioned bucket only adds a delete marker.
                    vs.push(Version {
                        version_id: Some(format!("dm{}", vs.len())),
                        last_modified: DateTime::<Utc>::UNIX_EPOCH,
                        size: 0,
                        delete_marker: true,
                        tags: BTreeMap::new(),
                        metadata: BTreeMap::new(),
                        legal_hold: false,
                    });
                }
                None => vs.clear(),
            }
            if vs.is_empty() {
                s.objects.remove(&id.key);
            }
        }
        Ok(failures)
    }
}
