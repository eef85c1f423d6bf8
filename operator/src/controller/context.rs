//! What every reconcile shares: the store factory, the [`Context`], the error type by pipeline
//! step, and the helpers that write status and Events.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{Api, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use serde::Serialize;
use tracing::warn;

use crate::api::v1alpha1::{RecordingBucket, S3Location};
use crate::metrics::Metrics;
use crate::reconcile::{self, PassConfig};
use crate::store::ObjectStore;
use crate::store::s3::{S3Settings, S3Store, StaticCredentials};

use super::dereference::{self, SecretAccess};
use super::key::ResourceKey;
use super::validate;

/// How often a LegalHold being deleted looks whether its release is journaled.
const RELEASE_POLL: Duration = Duration::from_secs(2);

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "gallring";

/// Builds the object store for a bucket. The real one makes an S3 client; tests hand out an
/// in-memory store.
pub trait StoreFactory: Send + Sync + 'static {
    type Store: ObjectStore + 'static;
    fn make(
        &self,
        s3: &S3Location,
        credentials: Option<StaticCredentials>,
    ) -> impl Future<Output = Self::Store> + Send;
}

/// S3 clients from a bucket's `spec.s3`.
pub struct S3Factory {
    pub metrics: Arc<Metrics>,
    pub max_attempts: u32,
    pub request_timeout: Duration,
}

impl StoreFactory for S3Factory {
    type Store = S3Store;
    async fn make(&self, s3: &S3Location, credentials: Option<StaticCredentials>) -> S3Store {
        let settings = S3Settings {
            bucket: s3.bucket.clone(),
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            force_path_style: s3.force_path_style,
            static_credentials: credentials,
            max_attempts: self.max_attempts,
            request_timeout: self.request_timeout,
        };
        S3Store::connect(settings, self.metrics.clone()).await
    }
}

/// Shared by all reconciles.
pub struct Context<F: StoreFactory> {
    pub client: Client,
    pub factory: F,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// The only clock the controllers read; tests fix it.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Pass tuning, including the leadership fence every write checks.
    pub pass: PassConfig,
    /// Where credential Secrets may be read.
    pub access: SecretAccess,
    /// Each bucket's local index.
    pub indexes: Arc<crate::state::index::Indexes>,
    /// Every RecordingBucket the operator sees (for conflicts), when running controllers.
    buckets: Option<Store<DeserializeGuard<RecordingBucket>>>,
    /// Consecutive failures per object, for exponential backoff.
    failures: Mutex<HashMap<ResourceKey, u32>>,
    /// One pass at a time per bucket: the hold finalizer's release pass waits for the bucket
    /// controller's pass on the same bucket, and the other way round.
    passes: Mutex<HashMap<ResourceKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Releases (hold `namespace/name`, release time) a completed pass made durable in the
    /// bucket's journal: the LegalHold finalizer waits for its own.
    releases: Mutex<std::collections::HashSet<(String, DateTime<Utc>)>>,
}

impl<F: StoreFactory> Context<F> {
    pub fn new(client: Client, factory: F, metrics: Arc<Metrics>, reporter: Reporter) -> Self {
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            factory,
            metrics,
            clock: Arc::new(Utc::now),
            pass: PassConfig::default(),
            access: SecretAccess::default(),
            indexes: Arc::new(crate::state::index::Indexes::new(None)),
            buckets: None,
            failures: Mutex::new(HashMap::new()),
            passes: Mutex::new(HashMap::new()),
            releases: Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_indexes(mut self, indexes: Arc<crate::state::index::Indexes>) -> Self {
        self.indexes = indexes;
        self
    }

    pub fn with_pass(mut self, pass: PassConfig) -> Self {
        self.pass = pass;
        self
    }

    pub fn with_secret_access(mut self, access: SecretAccess) -> Self {
        self.access = access;
        self
    }

    pub fn with_buckets(mut self, buckets: Store<DeserializeGuard<RecordingBucket>>) -> Self {
        self.buckets = Some(buckets);
        self
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The RecordingBuckets known from the watch (empty without one).
    pub(super) fn peers(&self) -> Vec<RecordingBucket> {
        self.buckets.as_ref().map_or_else(Vec::new, |s| {
            s.state()
                .iter()
                .filter_map(|g| g.0.as_ref().ok().cloned())
                .collect()
        })
    }

    /// The lock that serialises passes over one bucket.
    pub(super) fn pass_lock(&self, bucket: &ResourceKey) -> Arc<tokio::sync::Mutex<()>> {
        // The map stays consistent even if a holder panicked: recover it rather than lose it.
        let mut locks = self
            .passes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(bucket.clone()).or_default().clone()
    }

    /// Records the releases among `holds` as journaled (after a completed pass).
    pub(super) fn mark_released(&self, holds: &[crate::retention::Hold]) {
        let mut r = self
            .releases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for h in holds {
            if let Some(at) = h.released_at {
                r.insert((h.name.clone(), at));
            }
        }
    }

    /// Whether a completed pass journaled this release.
    pub(super) fn release_journaled(&self, hold: &str, at: DateTime<Utc>) -> bool {
        self.releases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&(hold.to_string(), at))
    }

    pub(super) fn reset_failures(&self, key: &ResourceKey) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }

    /// 10 s, 20 s, 40 s … up to 10 minutes.
    pub fn backoff(&self, key: &ResourceKey) -> Duration {
        let n = self
            .failures
            .lock()
            .map(|mut f| {
                let n = f.entry(key.clone()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .unwrap_or(1);
        Duration::from_secs((10u64 << n.saturating_sub(1).min(6)).min(600))
    }
}

/// Why a reconcile failed, by pipeline step. `category()` is the closed set used in metric and
/// Event labels.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Dereference(#[from] dereference::Error),
    #[error(transparent)]
    Validate(#[from] validate::Error),
    #[error(transparent)]
    Pass(#[from] reconcile::PassError),
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Not a failure: the LegalHold finalizer waits for the bucket's pass to journal the
    /// release.
    #[error("release pending: {0}")]
    ReleasePending(String),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) | Error::Dereference(dereference::Error::Kube(_)) => "kubernetes",
            Error::Dereference(_) => "dereference",
            Error::Validate(_) => "validation",
            Error::Pass(e) => e.category(),
            Error::Finalizer(_) => "finalizer",
            Error::ReleasePending(_) => "release_pending",
        }
    }
}

pub(super) async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, &obj.object_ref(&())).await {
        warn!(error = %e, reason, "cannot publish Event");
    }
}

pub(super) async fn patch_status<K>(
    api: &Api<K>,
    name: &str,
    status: &impl Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
}

/// Transient errors back off exponentially per object; the wait is logged and exported.
pub fn error_policy<K: Resource<DynamicType = ()> + Clone, F: StoreFactory>(
    obj: Arc<DeserializeGuard<K>>,
    error: &Error,
    ctx: Arc<Context<F>>,
) -> Action {
    let key = match &obj.0 {
        Ok(o) => ResourceKey::of(o),
        Err(i) => ResourceKey {
            kind: "Object",
            namespace: i.metadata.namespace.clone().unwrap_or_default(),
            name: i.metadata.name.clone().unwrap_or_default(),
        },
    };
    if let Error::ReleasePending(why) = error {
        tracing::debug!(object = %key, "{why}");
        return Action::requeue(RELEASE_POLL);
    }
    let wait = ctx.backoff(&key);
    if key.kind == "RecordingBucket" {
        ctx.metrics
            .set_retry_backoff(&key.namespace, &key.name, wait.as_secs_f64());
    }
    warn!(object = %key, category = error.category(), error = %error, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}
