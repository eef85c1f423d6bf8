//! The LegalHold reconcile. Applying a hold is the bucket controller's job (it watches holds);
//! this controller reports what only it can see (an invalid spec, a missing bucket), wakes at
//! `expires` / `reviewBy`, and owns the release finalizer: the bucket controller's next pass
//! sees the hold being deleted and makes its release durable in the bucket's journal before
//! anything is lowered; only then is the finalizer removed.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use tracing::info;

use crate::api::compile;
use crate::api::v1alpha1::{LegalHold, RecordingBucket};

use super::bucket::settle_finalizer;
use super::context::{Context, Error, StoreFactory, patch_status, publish};
use super::status::{self, HoldOutcome};
use super::validate::engine_hold;

/// Finalizer on LegalHolds: their release is applied to the bucket before they disappear.
pub const FINALIZER: &str = "gallring.io/release";

pub async fn reconcile_hold<F: StoreFactory>(
    hold: Arc<LegalHold>,
    ctx: &Context<F>,
) -> Result<Action, Error> {
    let ns = hold.namespace().unwrap_or_default();
    let api: Api<LegalHold> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, hold, |event| async {
        match event {
            Finalizer::Apply(h) => apply(&h, ctx, &api).await,
            Finalizer::Cleanup(h) => release(&h, ctx).await,
        }
    })
    .await
    .or_else(settle_finalizer)
}

async fn apply<F: StoreFactory>(
    h: &LegalHold,
    ctx: &Context<F>,
    api: &Api<LegalHold>,
) -> Result<Action, Error> {
    let now = ctx.now();
    let ns = h.namespace().unwrap_or_default();
    let bucket_name = &h.spec.bucket_ref.name;
    let engine = engine_hold(h);
    let outcome = match &engine {
        Err(e) => Some(HoldOutcome::Invalid(e.first_line())),
        Ok(_) => {
            let buckets: Api<RecordingBucket> = Api::namespaced(ctx.client.clone(), &ns);
            match buckets.get_opt(bucket_name).await? {
                None => Some(HoldOutcome::BucketNotFound(format!(
                    "spec.bucketRef.name: RecordingBucket `{bucket_name}` not found in namespace `{ns}`: this hold protects nothing"
                ))),
                // A bucket that never completed a pass has applied nothing yet: say why.
                Some(b) if b.status.as_ref().is_none_or(|s| s.last_scan.is_none()) => {
                    let why = b
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.iter().find(|c| c.type_ == status::READY))
                        .map_or_else(|| "not reconciled yet".to_string(), |c| c.reason.clone());
                    Some(HoldOutcome::BucketNotReady(format!(
                        "RecordingBucket `{bucket_name}` has not completed a pass ({why}): this hold is not applied yet"
                    )))
                }
                // The bucket's pass reports the matched count.
                Some(_) => None,
            }
        }
    };
    if let Some(outcome) = outcome {
        let previous = h.status.as_ref();
        let new = status::hold_status(previous, h.metadata.generation, &outcome, false, now);
        if previous != Some(&new) {
            patch_status(api, &h.name_any(), &new).await?;
            // A bucket that is not Ready yet is said in the status only: it is often just a
            // matter of seconds after both were applied.
            let warning = match &outcome {
                HoldOutcome::Invalid(m) => Some(("InvalidSpec", m.clone())),
                HoldOutcome::BucketNotFound(m) => Some(("BucketNotFound", m.clone())),
                _ => None,
            };
            if let Some((reason, note)) = warning {
                publish(
                    &ctx.recorder,
                    h,
                    EventType::Warning,
                    reason,
                    "Validate",
                    note,
                )
                .await;
            }
        }
        // A missing bucket may appear without this hold changing: look again.
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    // Wake when it expires or needs review; the bucket controller does the I/O.
    let next = engine.ok().and_then(|e| {
        [e.expires, e.review_by]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    });
    Ok(next.map_or_else(Action::await_change, |t| {
        Action::requeue((t - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_secs(1))
    }))
}

async fn release<F: StoreFactory>(h: &LegalHold, ctx: &Context<F>) -> Result<Action, Error> {
    let ns = h.namespace().unwrap_or_default();
    let buckets: Api<RecordingBucket> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(bucket) = buckets.get_opt(&h.spec.bucket_ref.name).await? else {
        info!(hold = %h.name_any(), "bucket gone; nothing to release");
        return Ok(Action::await_change());
    };
    let Ok(released) = engine_hold(h) else {
        // An invalid hold never took part in a pass (the bucket refuses to run while it
        // exists): nothing to release.
        return Ok(Action::await_change());
    };
    // The bucket controller (the one writer per bucket) sees the hold being deleted, and its
    // pass journals the release (one durable record: hold, time, selector) before it lowers
    // anything; from then on the floor no longer depends on this resource, its tags or the
    // objects' tag room, so the finalizer may go even if some object writes failed. Until
    // then (a pass in progress, or a bucket that cannot be reconciled) the finalizer stays.
    let Some(at) = released.released_at else {
        return Err(Error::ReleasePending("no deletion timestamp yet".into()));
    };
    if !ctx.release_journaled(&released.name, at) {
        return Err(Error::ReleasePending(format!(
            "LegalHold {}: waiting for RecordingBucket {} to journal the release",
            h.name_any(),
            bucket.name_any()
        )));
    }
    publish(
        &ctx.recorder,
        &bucket,
        EventType::Normal,
        "HoldReleased",
        "Release",
        format!(
            "LegalHold {} ({} {}) released; objects keep the later of their deadline and the policy's holdRelease",
            h.name_any(),
            compile::hold_reason(h.spec.reason),
            h.spec.case
        ),
    )
    .await;
    Ok(Action::await_change())
}
