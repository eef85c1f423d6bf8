//! Wiring: leadership, the three controllers and what triggers them.
//!
//! Triggers are chosen so that status writes never start a pass by themselves: the bucket
//! controller sees a RecordingBucket only when its generation or finalizers change, a
//! RetentionPolicy or LegalHold only when its generation changes (spec edits, deletion), and a
//! credentials Secret when it is created or changed. Periodic passes come from the requeue
//! after each pass (`spec.scanInterval`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use kube::{Client, Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::v1alpha1::{LegalHold, RecordingBucket, RetentionPolicy, SubjectRequest};
use crate::metrics::Metrics;
use crate::reconcile::{Fence, PassConfig};

use super::bucket::reconcile_bucket;
use super::context::{Context, Error, S3Factory, error_policy};
use super::dereference::SecretAccess;
use super::hold::reconcile_hold;
use super::leader::{LeaderElector, LeaseTiming};
use super::policy::{buckets_for_policy, reconcile_policy};
use super::request::reconcile_request;

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    pub namespace: Option<String>,
    pub lease_name: String,
    pub lease_namespace: Option<String>,
    pub identity: String,
    pub lease: LeaseTiming,
    pub pass: PassConfig,
    pub secrets: SecretAccess,
    pub max_attempts: u32,
    pub request_timeout: Duration,
    /// Each bucket's local index (issue 9).
    pub indexes: std::sync::Arc<crate::state::index::Indexes>,
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

/// How long a shutdown waits for the controllers after stopping writes, within the chart's
/// 30 s grace period (the Lease is released after).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

enum Ended {
    Shutdown,
    LostLeadership,
}

/// Runs until `shutdown` resolves: campaigns for the Lease, runs the controllers while it
/// leads, and stops them (abandoning in-flight work) as soon as it cannot prove it still leads.
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
    let elector = Arc::new(LeaderElector::new(
        Api::namespaced(client.clone(), &lease_ns),
        &opts.lease_name,
        &opts.identity,
        opts.lease,
    ));
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));

    // Ready means "up and able to take over": a standby replica is ready too, or a rolling
    // update would wait forever for a new pod that cannot lead while the old one holds it.
    metrics.set_ready();
    loop {
        info!(identity = %opts.identity, lease = %opts.lease_name, namespace = %lease_ns, "waiting for leadership");
        let Some(fence) = campaign(&elector, shutdown.clone()).await else {
            return Ok(());
        };
        metrics.set_leader(true);
        info!("leader: starting controllers");
        let controllers =
            run_controllers(&client, &metrics, &opts, fence.clone(), shutdown.clone());
        let mut controllers = std::pin::pin!(controllers);
        let ended = tokio::select! {
            () = &mut controllers => Ended::Shutdown,
            () = keep_leading(&elector, &fence) => Ended::LostLeadership,
            () = shutdown.clone() => {
                // The controllers stop once their passes end, and a first pass over a large
                // bucket takes minutes: writes stop now instead, so a pass in flight ends at
                // its next write (as when leadership is lost; the journal makes that safe)
                // and the Lease is released within the pod's grace period.
                fence.revoke();
                info!("shutting down: passes in flight stop at their next write");
                if tokio::time::timeout(SHUTDOWN_WAIT, &mut controllers).await.is_err() {
                    warn!(seconds = SHUTDOWN_WAIT.as_secs(), "controllers still running at shutdown: abandoned");
                }
                Ended::Shutdown
            }
        };
        fence.revoke();
        metrics.set_leader(false);
        match ended {
            Ended::Shutdown => {
                match elector.release().await {
                    Ok(true) => info!("leader lease released"),
                    Ok(false) => {
                        info!("the lease is no longer held by this replica; nothing to release")
                    }
                    Err(e) => {
                        warn!(error = %e, "could not release the lease; another replica takes over when it expires")
                    }
                }
                return Ok(());
            }
            Ended::LostLeadership => {
                warn!(
                    "leadership lost: controllers stopped and in-flight work abandoned; campaigning again"
                );
            }
        }
    }
}

/// Waits for the Lease. Returns a fence open until the renew deadline, or `None` on shutdown.
async fn campaign(elector: &LeaderElector, shutdown: impl Future<Output = ()>) -> Option<Fence> {
    let timing = elector.timing();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let started = Instant::now();
        match tokio::time::timeout(timing.retry_period, elector.try_acquire(Utc::now())).await {
            Ok(Ok(true)) => {
                let fence = Fence::closed();
                fence.extend_to(started + timing.renew_deadline);
                return Some(fence);
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warn!(error = %e, "leader election: cannot read or write the Lease"),
            Err(_) => warn!("leader election: the API server did not answer in time"),
        }
        tokio::select! {
            () = tokio::time::sleep(timing.retry_period) => {}
            () = &mut shutdown => return None,
        }
    }
}

/// Renews every retry period; returns when leadership is lost: the Lease was taken, or no
/// renewal succeeded within the renew deadline (the fence has closed by then too).
async fn keep_leading(elector: &LeaderElector, fence: &Fence) {
    let timing = elector.timing();
    loop {
        tokio::time::sleep(timing.retry_period).await;
        let Some(left) = fence.remaining().filter(|d| !d.is_zero()) else {
            warn!(renew_deadline = ?timing.renew_deadline, "leader: no renewal within the renew deadline; stopping before the lease can expire");
            return;
        };
        let started = Instant::now();
        match tokio::time::timeout(left, elector.try_acquire(Utc::now())).await {
            Ok(Ok(true)) => fence.extend_to(started + timing.renew_deadline),
            Ok(Ok(false)) => {
                warn!("leader: the lease was taken by another replica; stopping");
                return;
            }
            Ok(Err(e)) => warn!(error = %e, left = ?left, "leader: renewal failed; retrying"),
            Err(_) => warn!(left = ?left, "leader: renewal timed out; retrying"),
        }
    }
}

/// The buckets in `namespace` whose credentials are the Secret `name`.
fn buckets_for_secret(
    buckets: &Store<DeserializeGuard<RecordingBucket>>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<DeserializeGuard<RecordingBucket>>> {
    buckets
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|b| {
            b.namespace().as_deref() == Some(namespace)
                && b.spec
                    .s3
                    .credentials
                    .as_ref()
                    .is_some_and(|c| c.secret_ref.name == name)
        })
        .map(|b| ObjectRef::new(&b.name_any()).within(namespace))
        .collect()
}

async fn run_controllers(
    client: &Client,
    metrics: &Arc<Metrics>,
    opts: &OperatorOptions,
    fence: Fence,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let ns = opts.namespace.as_deref();
    let cfg = watcher::Config::default().any_semantic();

    // RecordingBuckets: a reflector store for lookups (conflicts, mappers) and a trigger
    // stream that ignores status-only updates.
    let (bucket_store, writer) = reflector::store::<DeserializeGuard<RecordingBucket>>();
    let bucket_trigger = watcher(api_for(client, ns), cfg.clone())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            Default::default(),
        );

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
        .with_pass(PassConfig {
            fence,
            ..opts.pass.clone()
        })
        .with_secret_access(opts.secrets.clone())
        .with_indexes(opts.indexes.clone())
        .with_buckets(bucket_store.clone()),
    );

    let sweeper = tokio::spawn(sweep_deleted_buckets(bucket_store.clone(), metrics.clone()));

    let policy_trigger = watcher(
        api_for::<DeserializeGuard<RetentionPolicy>>(client, ns),
        cfg.clone(),
    )
    .default_backoff()
    .applied_objects()
    .predicate_filter(predicates::generation, Default::default());
    let hold_trigger = watcher(
        api_for::<DeserializeGuard<LegalHold>>(client, ns),
        cfg.clone(),
    )
    .default_backoff()
    .applied_objects()
    // A hold being deleted wakes its bucket, whose pass journals the release (whether or not
    // the API server bumps the generation for it).
    .predicate_filter(
        predicates::generation.combine(being_deleted),
        Default::default(),
    );

    // A request created or changed wakes its bucket, whose pass carries it out (status-only
    // updates, which the pass itself writes, do not).
    let request_trigger = watcher(
        api_for::<DeserializeGuard<SubjectRequest>>(client, ns),
        cfg.clone(),
    )
    .default_backoff()
    .applied_objects()
    .predicate_filter(predicates::generation, Default::default());
    // A request deleted wakes its bucket too: a restriction ends then (its hold is released by
    // the pass), without waiting for the next scan.
    let request_deletes = watcher(
        api_for::<DeserializeGuard<SubjectRequest>>(client, ns),
        cfg.clone(),
    )
    .default_backoff()
    .filter_map(|e| {
        futures::future::ready(match e {
            Ok(watcher::Event::Delete(r)) => Some(Ok(r)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
    });

    let mut bucket_ctl = Controller::for_stream(bucket_trigger, bucket_store.clone())
        .watches_stream(policy_trigger, {
            let store = bucket_store.clone();
            move |p| match &p.0 {
                Ok(policy) => buckets_for_policy(&store.state(), policy),
                Err(_) => Vec::new(),
            }
        })
        .watches_stream(hold_trigger, |h| match &h.0 {
            Ok(hold) => vec![
                ObjectRef::new(&hold.spec.bucket_ref.name)
                    .within(&hold.namespace().unwrap_or_default()),
            ],
            Err(_) => Vec::new(),
        })
        .watches_stream(request_trigger, bucket_of_request)
        .watches_stream(request_deletes, bucket_of_request);
    // Credentials Secrets, metadata only (their data is read when a bucket needs it), in the
    // namespaces the operator may read: a Secret created after its bucket wakes the bucket.
    let secret_apis: Vec<Api<PartialObjectMeta<Secret>>> = if opts.secrets.cluster_wide {
        vec![Api::all(client.clone())]
    } else {
        opts.secrets
            .namespaces
            .iter()
            .map(|n| Api::namespaced(client.clone(), n))
            .collect()
    };
    for api in secret_apis {
        let store = bucket_store.clone();
        let secrets = watcher(api, watcher::Config::default())
            .default_backoff()
            .touched_objects()
            .predicate_filter(predicates::resource_version, Default::default());
        bucket_ctl = bucket_ctl.watches_stream(secrets, move |s: PartialObjectMeta<Secret>| {
            buckets_for_secret(&store, &s.namespace().unwrap_or_default(), &s.name_any())
        });
    }
    let buckets = bucket_ctl
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |b: Arc<DeserializeGuard<RecordingBucket>>, ctx: Arc<Context<S3Factory>>| async move {
                match &b.0 {
                    Ok(bucket) => reconcile_bucket(Arc::new(bucket.clone()), &ctx).await,
                    Err(invalid) => {
                        // A malformed object must not stop the others: report it, wait for a fix.
                        warn!(name = ?invalid.metadata.name, namespace = ?invalid.metadata.namespace, error = %invalid.error, "malformed RecordingBucket");
                        Ok(kube::runtime::controller::Action::await_change())
                    }
                }
            },
            error_policy::<RecordingBucket, S3Factory>,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    let hold_stream = watcher(
        api_for::<DeserializeGuard<LegalHold>>(client, ns),
        cfg.clone(),
    )
    .default_backoff();
    let (hold_store, hold_writer) = reflector::store::<DeserializeGuard<LegalHold>>();
    let hold_stream = hold_stream
        .reflect(hold_writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            Default::default(),
        );
    let holds = Controller::for_stream(hold_stream, hold_store)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |h: Arc<DeserializeGuard<LegalHold>>, ctx: Arc<Context<S3Factory>>| async move {
                match &h.0 {
                    Ok(hold) => reconcile_hold(Arc::new(hold.clone()), &ctx).await,
                    Err(invalid) => {
                        warn!(name = ?invalid.metadata.name, error = %invalid.error, "malformed LegalHold");
                        Ok(kube::runtime::controller::Action::await_change())
                    }
                }
            },
            error_policy::<LegalHold, S3Factory>,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    let requests = Controller::new(
        api_for::<DeserializeGuard<SubjectRequest>>(client, ns),
        cfg.clone(),
    )
    .graceful_shutdown_on(shutdown.clone())
    .run(
        |r: Arc<DeserializeGuard<SubjectRequest>>, ctx: Arc<Context<S3Factory>>| async move {
            match &r.0 {
                Ok(req) => reconcile_request(Arc::new(req.clone()), &ctx).await,
                Err(invalid) => {
                    warn!(name = ?invalid.metadata.name, error = %invalid.error, "malformed SubjectRequest");
                    Ok(kube::runtime::controller::Action::await_change())
                }
            }
        },
        error_policy::<SubjectRequest, S3Factory>,
        ctx.clone(),
    )
    .for_each(|_| futures::future::ready(()));

    let policies = Controller::new(
        api_for::<DeserializeGuard<RetentionPolicy>>(client, ns),
        cfg,
    )
    .graceful_shutdown_on(shutdown)
    .run(
        |p: Arc<DeserializeGuard<RetentionPolicy>>, ctx: Arc<Context<S3Factory>>| async move {
            match &p.0 {
                Ok(policy) => reconcile_policy(policy, &ctx).await,
                Err(invalid) => {
                    warn!(name = ?invalid.metadata.name, error = %invalid.error, "malformed RetentionPolicy");
                    Ok(kube::runtime::controller::Action::await_change())
                }
            }
        },
        error_policy::<RetentionPolicy, S3Factory>,
        ctx.clone(),
    )
    .for_each(|_| futures::future::ready(()));

    futures::join!(buckets, holds, requests, policies);
    sweeper.abort();
}

/// The bucket a SubjectRequest is about (none for a malformed one).
fn bucket_of_request(
    r: DeserializeGuard<SubjectRequest>,
) -> Vec<ObjectRef<DeserializeGuard<RecordingBucket>>> {
    match &r.0 {
        Ok(req) => vec![
            ObjectRef::new(&req.spec.bucket_ref.name).within(&req.namespace().unwrap_or_default()),
        ],
        Err(_) => Vec::new(),
    }
}

/// Drops the series of deleted buckets, or their stale scan timestamp would page forever.
async fn sweep_deleted_buckets(
    store: Store<DeserializeGuard<RecordingBucket>>,
    metrics: Arc<Metrics>,
) {
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
}

/// A predicate that changes when the object starts being deleted.
fn being_deleted<K: Resource>(o: &K) -> Option<u64> {
    Some(u64::from(o.meta().deletion_timestamp.is_some()))
}
