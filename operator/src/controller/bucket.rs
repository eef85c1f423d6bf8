//! The RecordingBucket reconcile: a short driver over the pipeline steps, and the finalizer
//! that removes the bucket's lifecycle rules when it is deleted.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use tracing::info;

use crate::api::v1alpha1::{
    EnforcementMode, LegalHold, LifecycleRulesOnDelete, RecordingBucket, SubjectRequest,
};
use crate::reconcile::{self, HoldsSource, PassError, PassReport};
use crate::retention::{Hold, IsoDuration};
use crate::store::{ErrorCategory, ObjectStore, StoredRule};

use super::context::{Context, Error, StoreFactory, publish};
use super::dereference::{self, dereference};
use super::key::ResourceKey;
use super::report;
use super::validate::{self, validate};

/// Finalizer on RecordingBuckets: their `gallring-` lifecycle rules are removed (unless
/// `spec.lifecycleRulesOnDelete: Retain`) before they disappear.
pub const BUCKET_FINALIZER: &str = "gallring.io/lifecycle-rules";

/// How often a bucket with a broken reference is looked at again, in case the fix is not
/// something the operator watches.
const REFERENCE_RECHECK: Duration = Duration::from_secs(300);
/// Conflicts end when another RecordingBucket changes, which this one does not watch.
const CONFLICT_RECHECK: Duration = Duration::from_secs(30);

/// What one run of the pipeline ended with.
pub enum Outcome {
    /// The pass ran.
    Ran {
        report: Box<PassReport>,
        holds: Vec<Hold>,
        scan_interval: IsoDuration,
    },
    /// The spec or a reference must be fixed by the user; nothing was written to the store.
    Refused { reason: &'static str, retry: Action },
}

/// Reconciles one bucket (the controller's entry point).
pub async fn reconcile_bucket<F: StoreFactory>(
    bucket: Arc<RecordingBucket>,
    ctx: &Context<F>,
) -> Result<Action, Error> {
    let api: Api<RecordingBucket> =
        Api::namespaced(ctx.client.clone(), &bucket.namespace().unwrap_or_default());
    finalizer(&api, BUCKET_FINALIZER, bucket, |event| async {
        match event {
            Finalizer::Apply(b) => {
                let now = ctx.now();
                match run_pipeline(&b, ctx, now).await? {
                    Outcome::Ran {
                        report,
                        holds,
                        scan_interval,
                    } => Ok(Action::requeue(requeue_after(
                        scan_interval,
                        &report,
                        &holds,
                        now,
                    ))),
                    Outcome::Refused { retry, .. } => Ok(retry),
                }
            }
            Finalizer::Cleanup(b) => remove_lifecycle_rules(&b, ctx).await,
        }
    })
    .await
    .or_else(settle_finalizer)
}

/// Unwraps the step's own error. A finalizer patch that lost a race with the watch cache (the
/// JSON patch's `test` saw a stale list: 409/422) is not a failure: look again shortly, with
/// fresh data, without spending a backoff step.
pub(super) fn settle_finalizer(e: kube::runtime::finalizer::Error<Error>) -> Result<Action, Error> {
    use kube::runtime::finalizer::Error as F;
    match e {
        F::ApplyFailed(e) | F::CleanupFailed(e) => Err(e),
        F::AddFinalizer(kube::Error::Api(a)) | F::RemoveFinalizer(kube::Error::Api(a))
            if a.code == 409 || a.code == 422 =>
        {
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        other => Err(Error::Finalizer(other.to_string())),
    }
}

/// dereference → validate → pass → report. Holds being deleted are released in the pass.
pub async fn run_pipeline<F: StoreFactory>(
    bucket: &RecordingBucket,
    ctx: &Context<F>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let key = ResourceKey::of(bucket);
    let lock = ctx.pass_lock(&key);
    let _one_pass = lock.lock().await;
    ctx.metrics.touch_bucket(&key.namespace, &key.name);

    let deref = match dereference(&ctx.client, bucket, &ctx.access).await {
        Ok(d) => d,
        Err(e) if e.is_user_error() => {
            report::refused(ctx, bucket, e.reason(), e.to_string(), now).await?;
            return Ok(Outcome::Refused {
                reason: e.reason(),
                retry: Action::requeue(REFERENCE_RECHECK),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut validated = match validate(bucket, &deref, &ctx.peers()) {
        Ok(v) => v,
        Err(e) => {
            report::refused(ctx, bucket, e.reason(), e.to_string(), now).await?;
            let retry = match e {
                validate::Error::Conflict(_) => Action::requeue(CONFLICT_RECHECK),
                _ => Action::requeue(REFERENCE_RECHECK),
            };
            return Ok(Outcome::Refused {
                reason: e.reason(),
                retry,
            });
        }
    };

    tracing::debug!(bucket = %key, "references read");
    let store = ctx
        .factory
        .make(&bucket.spec.s3, deref.credentials.clone())
        .await;
    let started = std::time::Instant::now();
    let mut pass = ctx.pass.clone();
    // Data-subject requests: restrictions are carried out as holds.
    let (requests, restrictions) =
        validate::engine_requests(&deref.requests, Some(&validated.policy));
    validated.holds.extend(restrictions);
    pass.requests = requests;
    pass.holds_now = Some(holds_source(
        ctx.client.clone(),
        bucket.namespace().unwrap_or_default(),
        bucket.name_any(),
    ));
    pass.state = validated.state.clone();
    pass.index = reconcile::IndexConfig::for_bucket(
        &ctx.indexes,
        &format!(
            "{}/{}",
            bucket.namespace().unwrap_or_default(),
            bucket.name_any()
        ),
        &validated.rules,
    );
    // The journal in another bucket: same endpoint, same credentials.
    let state_store = match &validated.state.bucket {
        Some(b) => {
            let mut s3 = bucket.spec.s3.clone();
            s3.bucket = b.clone();
            s3.prefix = None;
            Some(ctx.factory.make(&s3, deref.credentials.clone()).await)
        }
        None => None,
    };
    // Boxed: the pass is a large future, kept off the reconciler task's stack.
    let result = Box::pin(reconcile::reconcile_in(
        &store,
        state_store.as_ref().unwrap_or(&store),
        &validated.policy,
        &validated.rules,
        validated.holds.clone(),
        now,
        pass,
        &|p: reconcile::Progress| p.log_protected(&key),
    ))
    .await;
    match result {
        Ok(r) => {
            report::pass(
                ctx,
                bucket,
                &deref.holds,
                &validated.holds,
                &r,
                started.elapsed(),
            )
            .await?;
            ctx.reset_failures(&key);
            // The pass journaled every release before anything else: the holds' finalizers
            // may go.
            ctx.mark_released(&validated.holds);
            super::request::publish_outcomes(
                ctx,
                bucket,
                &deref.requests,
                Some(&validated.policy),
                Some(&r.requests),
                now,
            )
            .await?;
            Ok(Outcome::Ran {
                report: Box::new(r),
                holds: validated.holds,
                scan_interval: validated.rules.scan_interval,
            })
        }
        Err(e) => {
            report::failed(ctx, bucket, &e, now).await?;
            Err(e.into())
        }
    }
}

/// The bucket's holds re-read from the API server (not a cache: a hold created a moment ago
/// must stop the deletions right after). An invalid hold that is not being deleted fails the
/// read, which keeps the pass from deleting.
fn holds_source(client: kube::Client, namespace: String, bucket: String) -> HoldsSource {
    HoldsSource(Arc::new(move || {
        let api: Api<LegalHold> = Api::namespaced(client.clone(), &namespace);
        let requests: Api<SubjectRequest> = Api::namespaced(client.clone(), &namespace);
        let bucket = bucket.clone();
        Box::pin(async move {
            let list = api
                .list(&kube::api::ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let mut holds = Vec::new();
            for h in list
                .items
                .iter()
                .filter(|h| h.spec.bucket_ref.name == bucket)
            {
                match validate::engine_hold(h) {
                    Ok(hold) => holds.push(hold),
                    Err(_) if h.metadata.deletion_timestamp.is_some() => {}
                    Err(e) => {
                        return Err(format!("LegalHold {}: {}", h.name_any(), e.first_line()));
                    }
                }
            }
            // Restrictions are holds too: one filed during the pass stops its deletions.
            let requests: Vec<SubjectRequest> = requests
                .list(&kube::api::ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter(|r| r.spec.bucket_ref.name == bucket)
                .collect();
            holds.extend(validate::engine_requests(&requests, None).1);
            Ok(holds)
        })
    }))
}

/// When to look again: the earliest of the scan interval, the next deadline, a hold expiring.
fn requeue_after(
    scan_interval: IsoDuration,
    report: &PassReport,
    holds: &[Hold],
    now: DateTime<Utc>,
) -> Duration {
    let scan = scan_interval.approx_std().max(Duration::from_secs(10));
    let mut soonest = report.summary.next_deadline;
    for h in holds {
        if let Some(e) = h.expires.filter(|e| *e > now) {
            soonest = Some(soonest.map_or(e, |s| s.min(e)));
        }
        // A release dated after the clock the pass decided by (the store's `Date` has whole
        // seconds) takes effect in the next pass: soon.
        if let Some(r) = h.released_at.filter(|r| *r > report.decided_at) {
            soonest = Some(soonest.map_or(r, |s| s.min(r)));
        }
    }
    let until = soonest
        .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_secs(1))
        .unwrap_or(scan);
    until.clamp(Duration::from_secs(10), scan)
}

/// The finalizer's cleanup: remove the bucket's `gallring-` lifecycle rules (foreign rules
/// stay). Removing rules can only make expiry later. Rules are left when the spec says so,
/// when another RecordingBucket governs the same objects, when nothing was ever written, or
/// when the store cannot be reached with the bucket's references (said in an Event).
async fn remove_lifecycle_rules<F: StoreFactory>(
    bucket: &RecordingBucket,
    ctx: &Context<F>,
) -> Result<Action, Error> {
    let key = ResourceKey::of(bucket);
    let leave = |why: String| {
        let key = &key;
        async move {
            info!(bucket = %key, "RecordingBucket deleted; lifecycle rules left in place: {why}");
            publish(
                &ctx.recorder,
                bucket,
                EventType::Normal,
                "LifecycleRulesLeft",
                "Delete",
                format!("lifecycle rules left in the bucket: {why}"),
            )
            .await;
            Ok(Action::await_change())
        }
    };
    if bucket.spec.lifecycle_rules_on_delete == LifecycleRulesOnDelete::Retain {
        return leave("spec.lifecycleRulesOnDelete is Retain".into()).await;
    }
    if bucket.spec.enforcement == EnforcementMode::Observe {
        return leave("Observe mode never wrote any".into()).await;
    }
    let peers = validate::conflicts(bucket, &ctx.peers());
    if !peers.is_empty() {
        let names: Vec<String> = peers.iter().map(ToString::to_string).collect();
        return leave(format!("shared with {}", names.join(", "))).await;
    }
    let credentials = match dereference::credentials(&ctx.client, bucket, &ctx.access).await {
        Ok(c) => c,
        Err(e) if e.is_user_error() => return leave(e.to_string()).await,
        Err(e) => return Err(e.into()),
    };
    if !ctx.pass.fence.allows() {
        return Err(PassError::Fenced.into());
    }
    let store = ctx.factory.make(&bucket.spec.s3, credentials).await;
    let existing = match store.get_lifecycle().await {
        Ok(rules) => rules.unwrap_or_default(),
        Err(e) if e.category == ErrorCategory::NoSuchBucket => {
            return leave("the S3 bucket no longer exists".into()).await;
        }
        Err(e) => return Err(PassError::Store(e).into()),
    };
    let foreign: Vec<StoredRule> = existing
        .iter()
        .filter(|r| matches!(r, StoredRule::Foreign(_)))
        .cloned()
        .collect();
    let owned = existing.len() - foreign.len();
    if owned > 0 {
        store
            .put_lifecycle(&foreign)
            .await
            .map_err(PassError::Store)?;
    }
    info!(bucket = %key, removed = owned, kept = foreign.len(), "RecordingBucket deleted: gallring lifecycle rules removed");
    publish(
        &ctx.recorder,
        bucket,
        EventType::Normal,
        "LifecycleRulesRemoved",
        "Delete",
        format!(
            "{owned} gallring lifecycle rule(s) removed from bucket {}; {} other rule(s) kept",
            bucket.spec.s3.bucket,
            foreign.len()
        ),
    )
    .await;
    Ok(Action::await_change())
}
