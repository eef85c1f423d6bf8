//! The Kubernetes host: controllers for RecordingBucket, LegalHold and RetentionPolicy, run by
//! kube-runtime behind a Lease-based leader election.
//!
//! Each bucket reconcile is a pipeline: dereference (policy, holds, Secret: needs the client) →
//! validate (pure, `api::compile`) → reconcile pass (the same one the standalone host runs) →
//! status as data (`status`, pure) → apply status and Events.

pub mod leader;
pub mod status;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use tracing::{info, warn};

use crate::api::compile;
use crate::api::v1alpha1::{LegalHold, RecordingBucket, RetentionPolicy, S3Location};
use crate::metrics::Metrics;
use crate::reconcile::{self, LifecycleOutcome, PassConfig, PassReport};
use crate::retention::{Hold, IsoDuration};
use crate::store::ObjectStore;
use crate::store::s3::{S3Settings, S3Store, StaticCredentials};
use status::BucketOutcome;

/// Finalizer on LegalHolds: their release is applied to the bucket before they disappear.
pub const FINALIZER: &str = "gallring.io/release";
/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "gallring";
/// Secret keys for `spec.s3.credentials.secretRef`.
pub const SECRET_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const SECRET_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

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
    pub pass: PassConfig,
    /// Consecutive failures per object, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
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
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_pass(mut self, pass: PassConfig) -> Self {
        self.pass = pass;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn reset_failures(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }

    /// 10 s, 20 s, 40 s … up to 10 minutes.
    pub fn backoff(&self, key: &str) -> Duration {
        let n = self
            .failures
            .lock()
            .map(|mut f| {
                let n = f.entry(key.to_string()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .unwrap_or(1);
        Duration::from_secs((10u64 << n.saturating_sub(1).min(6)).min(600))
    }
}

/// Why a reconcile failed. `category()` is the closed set used in metric and Event labels.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Store(#[from] reconcile::PassError),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Store(e) => e.category().as_str(),
            Error::Finalizer(_) => "finalizer",
        }
    }
}

fn key_of<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

async fn publish<K: Resource<DynamicType = ()>>(
    ctx_recorder: &Recorder,
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
    if let Err(e) = ctx_recorder.publish(&ev, &obj.object_ref(&())).await {
        warn!(error = %e, reason, "cannot publish Event");
    }
}

async fn patch_status<K>(
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

/// Resolves `spec.s3.credentials.secretRef`. `Err(message)` names the field.
async fn credentials(
    client: &Client,
    ns: &str,
    s3: &S3Location,
) -> Result<Result<Option<StaticCredentials>, String>, kube::Error> {
    let Some(c) = &s3.credentials else {
        return Ok(Ok(None));
    };
    let name = &c.secret_ref.name;
    let Some(secret) = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?
    else {
        return Ok(Err(format!(
            "spec.s3.credentials.secretRef.name: Secret `{name}` not found in namespace `{ns}`"
        )));
    };
    let data = secret.data.unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
    };
    match (get(SECRET_ACCESS_KEY_ID), get(SECRET_SECRET_ACCESS_KEY)) {
        (Some(id), Some(secret_key)) if !id.is_empty() && !secret_key.is_empty() => {
            Ok(Ok(Some(StaticCredentials {
                access_key_id: id,
                secret_access_key: secret_key,
                session_token: get(SECRET_SESSION_TOKEN).filter(|t| !t.is_empty()),
            })))
        }
        _ => Ok(Err(format!(
            "spec.s3.credentials.secretRef.name: Secret `{name}` needs keys {SECRET_ACCESS_KEY_ID} and {SECRET_SECRET_ACCESS_KEY}"
        ))),
    }
}

/// The engine's view of a LegalHold object; a hold being deleted counts as released then.
fn engine_hold(h: &LegalHold) -> Result<Hold, compile::ValidationErrors> {
    let resource = format!(
        "LegalHold/{}/{}",
        h.namespace().unwrap_or_default(),
        h.name_any()
    );
    let mut hold = compile::hold(&resource, &h.spec)?;
    hold.name = format!("{}/{}", h.namespace().unwrap_or_default(), h.name_any());
    if let Some(t) = &h.metadata.deletion_timestamp {
        hold.released_at = DateTime::from_timestamp(t.0.as_second(), 0);
    }
    Ok(hold)
}

/// The buckets that reference a policy: a policy change re-reconciles each of them.
pub fn buckets_for_policy(
    buckets: &[Arc<DeserializeGuard<RecordingBucket>>],
    policy: &RetentionPolicy,
) -> Vec<ObjectRef<DeserializeGuard<RecordingBucket>>> {
    let ns = policy.namespace();
    buckets
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|b| b.namespace() == ns && b.spec.policy_ref.name == policy.name_any())
        .map(|b| ObjectRef::new(&b.name_any()).within(&b.namespace().unwrap_or_default()))
        .collect()
}

fn requeue_after(
    rules_scan: IsoDuration,
    report: &PassReport,
    holds: &[Hold],
    now: DateTime<Utc>,
) -> Duration {
    let scan = rules_scan.approx_std().max(Duration::from_secs(10));
    // Wake at the earliest of: the scan interval, the next deadline, a hold expiring.
    let mut soonest = report.summary.next_deadline;
    for h in holds {
        if let Some(e) = h.expires.filter(|e| *e > now) {
            soonest = Some(soonest.map_or(e, |s| s.min(e)));
        }
    }
    let until = soonest
        .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_secs(1))
        .unwrap_or(scan);
    until.clamp(Duration::from_secs(10), scan)
}

/// Reconciles one bucket: the whole pipeline. `released` is a hold being deleted whose release
/// must be applied now (from the LegalHold finalizer).
pub async fn reconcile_bucket<F: StoreFactory>(
    bucket: &RecordingBucket,
    ctx: &Context<F>,
    released: Option<Hold>,
) -> Result<Action, Error> {
    let ns = bucket.namespace().unwrap_or_default();
    let name = bucket.name_any();
    let buckets: Api<RecordingBucket> = Api::namespaced(ctx.client.clone(), &ns);
    let now = ctx.now();
    let generation = bucket.metadata.generation;
    let previous = bucket.status.as_ref();

    let invalid = |reason: &'static str, message: String| {
        let (buckets, name, ns) = (&buckets, &name, &ns);
        async move {
            ctx.metrics.record_invalid(ns, name);
            let status = status::bucket_status(
                previous,
                generation,
                &BucketOutcome::Invalid {
                    reason,
                    message: message.clone(),
                },
                now,
            );
            patch_status(buckets, name, &status).await?;
            publish(
                &ctx.recorder,
                bucket,
                EventType::Warning,
                reason,
                "Validate",
                message,
            )
            .await;
            // Wait for a change to the bucket (or its policy / holds, which are watched).
            Ok::<Action, Error>(Action::await_change())
        }
    };

    ctx.metrics.touch_bucket(&ns, &name);
    // Dereference.
    let policy_name = &bucket.spec.policy_ref.name;
    let Some(policy) = Api::<RetentionPolicy>::namespaced(ctx.client.clone(), &ns)
        .get_opt(policy_name)
        .await?
    else {
        return invalid(
            "PolicyNotFound",
            format!(
                "spec.policyRef.name: RetentionPolicy `{policy_name}` not found in namespace `{ns}`"
            ),
        )
        .await;
    };
    // Validate.
    let policy_key = format!("RetentionPolicy/{ns}/{policy_name}");
    let compiled_policy = match compile::policy(&policy_key, &policy.spec) {
        Ok(p) => p,
        Err(e) => return invalid("InvalidPolicy", e.first_line()).await,
    };
    let rules = match compile::bucket(
        &format!("RecordingBucket/{ns}/{name}"),
        &bucket.spec,
        &compiled_policy,
    ) {
        Ok(r) => r,
        Err(e) => return invalid("InvalidSpec", e.first_line()).await,
    };
    let hold_objects = Api::<LegalHold>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    let mut holds: Vec<Hold> = hold_objects
        .items
        .iter()
        .filter(|h| h.spec.bucket_ref.name == name)
        .filter_map(|h| engine_hold(h).ok())
        .collect();
    if let Some(r) = released {
        holds.retain(|h| h.name != r.name);
        holds.push(r);
    }
    let creds = match credentials(&ctx.client, &ns, &bucket.spec.s3).await? {
        Ok(c) => c,
        Err(message) => return invalid("SecretNotFound", message).await,
    };

    // Reconcile pass: the same engine and I/O as the standalone host.
    let store = ctx.factory.make(&bucket.spec.s3, creds).await;
    let started = std::time::Instant::now();
    let result = reconcile::reconcile(
        &store,
        &compiled_policy,
        &rules,
        holds.clone(),
        now,
        ctx.pass,
        &|_| {},
    )
    .await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            ctx.metrics.record_failure(&ns, &name, &e);
            let category = e.category().as_str();
            let status = status::bucket_status(
                previous,
                generation,
                &BucketOutcome::StoreFailed {
                    category,
                    message: e.to_string(),
                },
                now,
            );
            patch_status(&buckets, &name, &status).await?;
            publish(
                &ctx.recorder,
                bucket,
                EventType::Warning,
                "ScanFailed",
                "Scan",
                format!("nothing was deleted: {e}"),
            )
            .await;
            return Err(e.into());
        }
    };
    ctx.metrics
        .record_pass(&ns, &name, &report, started.elapsed().as_secs_f64());

    // Status and Events.
    let status = status::bucket_status(previous, generation, &BucketOutcome::Pass(&report), now);
    patch_status(&buckets, &name, &status).await?;
    if let LifecycleOutcome::Updated { rules: n } = report.lifecycle {
        publish(
            &ctx.recorder,
            bucket,
            EventType::Normal,
            "LifecycleUpdated",
            "Lifecycle",
            format!("{n} gallring lifecycle rule(s) written; other rules kept"),
        )
        .await;
    }
    if let LifecycleOutcome::Untouched { reason } = &report.lifecycle {
        publish(
            &ctx.recorder,
            bucket,
            EventType::Warning,
            "LifecycleUntouched",
            "Lifecycle",
            reason.clone(),
        )
        .await;
    }
    if report.deleted > 0 {
        let kinds: Vec<String> = report
            .deleted_by_kind
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        publish(
            &ctx.recorder,
            bucket,
            EventType::Normal,
            "ObjectsDeleted",
            "Delete",
            format!(
                "{} object(s) past their deadline deleted ({})",
                report.deleted,
                kinds.join(", ")
            ),
        )
        .await;
    }
    if report.delete_failures > 0 || report.object_errors > 0 {
        publish(
            &ctx.recorder,
            bucket,
            EventType::Warning,
            "ObjectErrors",
            "Scan",
            format!(
                "{} failed deletion(s), {} object error(s); first: {}",
                report.delete_failures,
                report.object_errors,
                report.sample_errors.first().cloned().unwrap_or_default()
            ),
        )
        .await;
    }
    if report.summary.overdue > 0 {
        publish(
            &ctx.recorder,
            bucket,
            EventType::Warning,
            "RetentionBreach",
            "Scan",
            format!(
                "{} object(s) past deadline + grace still exist",
                report.summary.overdue
            ),
        )
        .await;
    }
    update_hold_statuses(ctx, &hold_objects.items, &name, &report, now).await?;
    ctx.metrics.set_holds_past_review(
        &ns,
        &name,
        holds.iter().filter(|h| h.needs_review(now)).count(),
    );
    ctx.reset_failures(&key_of(bucket));
    Ok(Action::requeue(requeue_after(
        rules.scan_interval,
        &report,
        &holds,
        now,
    )))
}

/// Writes matched counts to each hold of the bucket, with an Event when a hold first takes
/// effect or its count changes.
async fn update_hold_statuses<F: StoreFactory>(
    ctx: &Context<F>,
    holds: &[LegalHold],
    bucket: &str,
    report: &PassReport,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    for h in holds
        .iter()
        .filter(|h| h.spec.bucket_ref.name == bucket && h.metadata.deletion_timestamp.is_none())
    {
        let ns = h.namespace().unwrap_or_default();
        let key = format!("{ns}/{}", h.name_any());
        let matched = report.summary.held_by_hold.get(&key).copied().unwrap_or(0);
        let engine = engine_hold(h);
        let invalid = engine.as_ref().err().map(|e| e.first_line());
        let (review, expired) = engine
            .as_ref()
            .map_or((false, false), |e| (e.needs_review(now), !e.is_active(now)));
        let previous = h.status.as_ref();
        let new = status::hold_status(
            previous,
            h.metadata.generation,
            Some(matched),
            invalid,
            review,
            expired,
            now,
        );
        if previous == Some(&new) {
            continue;
        }
        let api: Api<LegalHold> = Api::namespaced(ctx.client.clone(), &ns);
        patch_status(&api, &h.name_any(), &new).await?;
        if previous.and_then(|p| p.matched) != Some(matched) && !expired {
            publish(
                &ctx.recorder,
                h,
                EventType::Normal,
                "HoldApplied",
                "Hold",
                format!(
                    "{matched} object(s) in bucket {bucket} held for {} {}",
                    compile::hold_reason(h.spec.reason),
                    h.spec.case
                ),
            )
            .await;
        }
        if review
            && !previous.is_some_and(|p| {
                p.conditions
                    .iter()
                    .any(|c| c.type_ == status::NEEDS_REVIEW && c.status == "True")
            })
        {
            publish(
                &ctx.recorder,
                h,
                EventType::Warning,
                "HoldPastReview",
                "Review",
                "reviewBy has passed: confirm the case still needs the hold".into(),
            )
            .await;
        }
    }
    Ok(())
}

async fn bucket_reconciler<F: StoreFactory>(
    guard: Arc<DeserializeGuard<RecordingBucket>>,
    ctx: Arc<Context<F>>,
) -> Result<Action, Error> {
    match &guard.0 {
        Ok(bucket) => reconcile_bucket(bucket, &ctx, None).await,
        Err(invalid) => {
            // A malformed object must not stop the others: report it and wait for a fix.
            warn!(name = ?invalid.metadata.name, namespace = ?invalid.metadata.namespace, error = %invalid.error, "malformed RecordingBucket");
            Ok(Action::await_change())
        }
    }
}

/// Applies or releases one LegalHold. Release happens in the finalizer: the bucket is
/// reconciled with the hold marked released (keep-until tags written, legal holds lifted)
/// before the finalizer is removed, so a crash in between leaves the objects protected.
pub async fn reconcile_hold<F: StoreFactory>(
    hold: Arc<LegalHold>,
    ctx: &Context<F>,
) -> Result<Action, Error> {
    let ns = hold.namespace().unwrap_or_default();
    let api: Api<LegalHold> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, hold, |event| async {
        match event {
            Finalizer::Apply(h) => {
                let now = ctx.now();
                match engine_hold(&h) {
                    Err(e) => {
                        let st = status::hold_status(h.status.as_ref(), h.metadata.generation, None, Some(e.first_line()), false, false, now);
                        patch_status(&api, &h.name_any(), &st).await?;
                        publish(&ctx.recorder, &*h, EventType::Warning, "InvalidSpec", "Validate", e.first_line()).await;
                        Ok(Action::await_change())
                    }
                    Ok(engine) => {
                        // Wake when it expires or needs review; the bucket controller does the
                        // I/O (it watches holds).
                        let next = [engine.expires, engine.review_by].into_iter().flatten().filter(|t| *t > now).min();
                        Ok(next.map_or_else(Action::await_change, |t| Action::requeue((t - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_secs(1))))
                    }
                }
            }
            Finalizer::Cleanup(h) => {
                let buckets: Api<RecordingBucket> = Api::namespaced(ctx.client.clone(), &ns);
                let Some(bucket) = buckets.get_opt(&h.spec.bucket_ref.name).await? else {
                    info!(hold = %h.name_any(), "bucket gone; nothing to release");
                    return Ok(Action::await_change());
                };
                let mut released = match engine_hold(&h) {
                    Ok(r) => r,
                    // An invalid hold never selected anything: nothing to release.
                    Err(_) => return Ok(Action::await_change()),
                };
                released.released_at = Some(ctx.now());
                reconcile_bucket(&bucket, ctx, Some(released)).await?;
                publish(&ctx.recorder, &bucket, EventType::Normal, "HoldReleased", "Release", format!(
                    "LegalHold {} ({} {}) released; objects keep the later of their deadline and the policy's holdRelease",
                    h.name_any(), compile::hold_reason(h.spec.reason), h.spec.case
                )).await;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

async fn hold_reconciler<F: StoreFactory>(
    guard: Arc<DeserializeGuard<LegalHold>>,
    ctx: Arc<Context<F>>,
) -> Result<Action, Error> {
    match &guard.0 {
        Ok(h) => reconcile_hold(Arc::new(h.clone()), &ctx).await,
        Err(invalid) => {
            warn!(name = ?invalid.metadata.name, error = %invalid.error, "malformed LegalHold");
            Ok(Action::await_change())
        }
    }
}

/// Validates a policy and reports it in its status.
pub async fn reconcile_policy<F: StoreFactory>(
    policy: &RetentionPolicy,
    ctx: &Context<F>,
) -> Result<Action, Error> {
    let ns = policy.namespace().unwrap_or_default();
    let api: Api<RetentionPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let error = compile::policy(
        &format!("RetentionPolicy/{ns}/{}", policy.name_any()),
        &policy.spec,
    )
    .err()
    .map(|e| e.first_line());
    let st = status::policy_status(
        policy.status.as_ref(),
        policy.metadata.generation,
        error.clone(),
        ctx.now(),
    );
    if policy.status.as_ref() != Some(&st) {
        patch_status(&api, &policy.name_any(), &st).await?;
        if let Some(e) = error {
            publish(
                &ctx.recorder,
                policy,
                EventType::Warning,
                "InvalidSpec",
                "Validate",
                e,
            )
            .await;
        }
    }
    Ok(Action::await_change())
}

async fn policy_reconciler<F: StoreFactory>(
    guard: Arc<DeserializeGuard<RetentionPolicy>>,
    ctx: Arc<Context<F>>,
) -> Result<Action, Error> {
    match &guard.0 {
        Ok(p) => reconcile_policy(p, &ctx).await,
        Err(invalid) => {
            warn!(name = ?invalid.metadata.name, error = %invalid.error, "malformed RetentionPolicy");
            Ok(Action::await_change())
        }
    }
}

/// Transient errors back off exponentially per object.
pub fn error_policy<K: Resource<DynamicType = ()> + Clone, F: StoreFactory>(
    obj: Arc<DeserializeGuard<K>>,
    error: &Error,
    ctx: Arc<Context<F>>,
) -> Action {
    let key = match &obj.0 {
        Ok(o) => key_of(o),
        Err(i) => format!("{}/{:?}", K::kind(&()), i.metadata.name),
    };
    let wait = ctx.backoff(&key);
    warn!(object = %key, category = error.category(), error = %error, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    pub namespace: Option<String>,
    pub lease_name: String,
    pub lease_namespace: Option<String>,
    pub identity: String,
    pub pass: PassConfig,
    pub max_attempts: u32,
    pub request_timeout: Duration,
}

fn api_for<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the three controllers until `shutdown` resolves, while holding the leader lease.
pub async fn run(
    client: Client,
    metrics: Arc<Metrics>,
    opts: OperatorOptions,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let lease_ns = opts
        .lease_namespace
        .clone()
        .or_else(|| opts.namespace.clone())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let elector = Arc::new(leader::LeaderElector::new(
        Api::namespaced(client.clone(), &lease_ns),
        &opts.lease_name,
        &opts.identity,
    ));
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));

    // Ready means "up and able to take over": a standby replica is ready too, or a rolling
    // update would wait forever for a new pod that cannot lead while the old one holds the lease.
    metrics.set_ready();
    // Wait for leadership (or shutdown).
    info!(identity = elector.identity(), lease = %opts.lease_name, namespace = %lease_ns, "waiting for leadership");
    loop {
        match elector.try_acquire(Utc::now()).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => warn!(error = %e, "leader election: cannot read or write the Lease"),
        }
        tokio::select! {
            _ = tokio::time::sleep(leader::RENEW_EVERY) => {}
            _ = shutdown.clone() => return Ok(()),
        }
    }
    info!("leader: starting controllers");

    // Lose the lease → stop everything: two replicas must never act at once.
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let renewer = {
        let elector = elector.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(leader::RENEW_EVERY).await;
                match elector.try_acquire(Utc::now()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        warn!("leader: lease taken by another replica; stopping");
                        let _ = lost_tx.send(());
                        return;
                    }
                    Err(e) => warn!(error = %e, "leader: renewal failed; retrying"),
                }
            }
        })
    };
    let stop = {
        let shutdown = shutdown.clone();
        futures::future::FutureExt::shared(Box::pin(async move {
            tokio::select! {
                _ = shutdown => {}
                _ = lost_rx => {}
            }
        }))
    };

    let reporter = Reporter {
        controller: "gallring".into(),
        instance: Some(opts.identity.clone()),
    };
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            S3Factory {
                metrics: metrics.clone(),
                max_attempts: opts.max_attempts,
                request_timeout: opts.request_timeout,
            },
            metrics.clone(),
            reporter,
        )
        .with_pass(opts.pass),
    );
    let ns = opts.namespace.as_deref();
    let cfg = watcher::Config::default().any_semantic();

    let bucket_ctl = Controller::new(
        api_for::<DeserializeGuard<RecordingBucket>>(&client, ns),
        cfg.clone(),
    );
    let bucket_store = bucket_ctl.store();
    // Drop the series of deleted buckets, or their stale scan timestamp would page forever.
    let sweeper = {
        let store = bucket_store.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // Until the first listing arrives, an empty store means "not synced", not "none".
            if store.wait_until_ready().await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let live: std::collections::BTreeSet<(String, String)> = store
                    .state()
                    .iter()
                    .filter_map(|g| g.0.as_ref().ok())
                    .map(|b| (b.namespace().unwrap_or_default(), b.name_any()))
                    .collect();
                for (ns, name) in metrics.known_buckets() {
                    if !live.contains(&(ns.clone(), name.clone())) {
                        info!(namespace = %ns, bucket = %name, "RecordingBucket deleted: removing its metrics");
                        metrics.forget_bucket(&ns, &name);
                    }
                }
            }
        })
    };
    let buckets = bucket_ctl
        .watches(
            api_for::<DeserializeGuard<RetentionPolicy>>(&client, ns),
            cfg.clone(),
            move |p| match &p.0 {
                Ok(policy) => buckets_for_policy(&bucket_store.state(), policy),
                Err(_) => Vec::new(),
            },
        )
        .watches(
            api_for::<DeserializeGuard<LegalHold>>(&client, ns),
            cfg.clone(),
            |h| match &h.0 {
                Ok(hold) => vec![
                    ObjectRef::new(&hold.spec.bucket_ref.name)
                        .within(&hold.namespace().unwrap_or_default()),
                ],
                Err(_) => Vec::new(),
            },
        )
        .graceful_shutdown_on(stop.clone())
        .run(
            bucket_reconciler,
            error_policy::<RecordingBucket, S3Factory>,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let holds = Controller::new(
        api_for::<DeserializeGuard<LegalHold>>(&client, ns),
        cfg.clone(),
    )
    .graceful_shutdown_on(stop.clone())
    .run(
        hold_reconciler,
        error_policy::<LegalHold, S3Factory>,
        ctx.clone(),
    )
    .for_each(|_| futures::future::ready(()));
    let policies = Controller::new(
        api_for::<DeserializeGuard<RetentionPolicy>>(&client, ns),
        cfg,
    )
    .graceful_shutdown_on(stop.clone())
    .run(
        policy_reconciler,
        error_policy::<RetentionPolicy, S3Factory>,
        ctx.clone(),
    )
    .for_each(|_| futures::future::ready(()));
    futures::join!(buckets, holds, policies);

    renewer.abort();
    sweeper.abort();
    if let Err(e) = elector.release().await {
        warn!(error = %e, "could not release the lease; another replica takes over when it expires");
    } else {
        info!("leader lease released");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
