//! The last step of a bucket reconcile: status (as data, from `status`), Events and metrics
//! from what the pass did, and the matched counts on each of the bucket's holds.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;

use crate::api::compile;
use crate::api::v1alpha1::{LegalHold, RecordingBucket};
use crate::reconcile::{LifecycleOutcome, PassError, PassReport};
use crate::retention::Hold;

use super::context::{Context, Error, StoreFactory, patch_status, publish};
use super::key::ResourceKey;
use super::status::{self, BucketOutcome, HoldOutcome};
use super::validate::engine_hold;

fn api(ctx: &Context<impl StoreFactory>, bucket: &RecordingBucket) -> Api<RecordingBucket> {
    Api::namespaced(ctx.client.clone(), &bucket.namespace().unwrap_or_default())
}

/// Writes the status only when it differs: an unchanged status costs no write (and no watch
/// event for anyone).
async fn write_bucket_status<F: StoreFactory>(
    ctx: &Context<F>,
    bucket: &RecordingBucket,
    outcome: &BucketOutcome<'_>,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let previous = bucket.status.as_ref();
    let new = status::bucket_status(previous, bucket.metadata.generation, outcome, now);
    if previous == Some(&new) {
        return Ok(false);
    }
    patch_status(&api(ctx, bucket), &bucket.name_any(), &new).await?;
    Ok(true)
}

/// The spec or a reference is wrong: Ready=False naming the field, and a Warning Event when
/// that is news.
pub async fn refused<F: StoreFactory>(
    ctx: &Context<F>,
    bucket: &RecordingBucket,
    reason: &'static str,
    message: String,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let key = ResourceKey::of(bucket);
    ctx.metrics.record_invalid(&key.namespace, &key.name);
    let outcome = BucketOutcome::Invalid {
        reason,
        message: message.clone(),
    };
    if write_bucket_status(ctx, bucket, &outcome, now).await? {
        publish(
            &ctx.recorder,
            bucket,
            EventType::Warning,
            reason,
            "Validate",
            message,
        )
        .await;
    }
    Ok(())
}

/// The pass failed as a whole. A fenced pass reports nothing: this replica no longer leads.
pub async fn failed<F: StoreFactory>(
    ctx: &Context<F>,
    bucket: &RecordingBucket,
    error: &PassError,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let key = ResourceKey::of(bucket);
    ctx.metrics.record_failure(&key.namespace, &key.name, error);
    if matches!(error, PassError::Fenced) {
        return Ok(());
    }
    let outcome = BucketOutcome::StoreFailed {
        category: error.category(),
        message: error.stable(),
    };
    if write_bucket_status(ctx, bucket, &outcome, now).await? {
        publish(
            &ctx.recorder,
            bucket,
            EventType::Warning,
            "ScanFailed",
            "Scan",
            format!(
                "the pass failed (deletions made before the failure are in the journal): {error}"
            ),
        )
        .await;
    }
    Ok(())
}

/// A completed pass: metrics, status, Events, and the bucket's hold statuses.
pub async fn pass<F: StoreFactory>(
    ctx: &Context<F>,
    bucket: &RecordingBucket,
    hold_objects: &[LegalHold],
    holds: &[Hold],
    report: &PassReport,
    took: Duration,
) -> Result<(), Error> {
    let key = ResourceKey::of(bucket);
    let now = report.now;
    ctx.metrics
        .record_pass(&key.namespace, &key.name, report, took.as_secs_f64());
    tracing::info!(
        bucket = %key,
        objects = report.summary.objects,
        overdue = report.summary.overdue,
        deleted = report.deleted,
        index_hits = report.index.hits,
        index_verified = report.index.verified,
        index_changed = report.index.changed,
        seconds = took.as_secs_f64(),
        "pass complete"
    );
    if let Some(e) = &report.index.first_error {
        tracing::warn!(bucket = %key, errors = report.index.errors, error = %e, "index unusable for part of the pass: those objects were read");
    }
    write_bucket_status(ctx, bucket, &BucketOutcome::Pass(report), now).await?;
    for (type_, reason, action, note) in pass_events(report) {
        publish(&ctx.recorder, bucket, type_, reason, action, note).await;
    }
    hold_statuses(ctx, hold_objects, &key.name, report, now).await?;
    ctx.metrics.set_holds_past_review(
        &key.namespace,
        &key.name,
        holds.iter().filter(|h| h.needs_review(now)).count(),
    );
    Ok(())
}

/// The Events a pass gives rise to, as data.
fn pass_events(report: &PassReport) -> Vec<(EventType, &'static str, &'static str, String)> {
    let mut out = Vec::new();
    match &report.lifecycle {
        LifecycleOutcome::Updated { rules } => out.push((
            EventType::Normal,
            "LifecycleUpdated",
            "Lifecycle",
            format!("{rules} gallring lifecycle rule(s) written; other rules kept"),
        )),
        LifecycleOutcome::Untouched { reason } => out.push((
            EventType::Warning,
            "LifecycleUntouched",
            "Lifecycle",
            reason.clone(),
        )),
        LifecycleOutcome::Refused { reason, .. } => out.push((
            EventType::Warning,
            "LifecycleWriteRefused",
            "Lifecycle",
            reason.clone(),
        )),
        _ => {}
    }
    if report.deleted > 0 {
        let kinds: Vec<String> = report
            .deleted_by_kind
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let controllers: Vec<String> = report
            .deleted_by_controller
            .iter()
            .map(|(c, n)| format!("{n} for {c}"))
            .collect();
        let by = if controllers.is_empty() {
            String::new()
        } else {
            format!("; controller: {}", controllers.join(", "))
        };
        out.push((
            EventType::Normal,
            "ObjectsDeleted",
            "Delete",
            format!(
                "{} object(s) past their deadline deleted ({}{by})",
                report.deleted,
                kinds.join(", ")
            ),
        ));
    }
    if report.delete_failures > 0 || report.object_errors > 0 {
        out.push((
            EventType::Warning,
            "ObjectErrors",
            "Scan",
            format!(
                "{} failed deletion(s), {} object error(s); first: {}",
                report.delete_failures,
                report.object_errors,
                report.sample_errors.first().cloned().unwrap_or_default()
            ),
        ));
    }
    if !report.dangerous_rules.is_empty() {
        out.push((
            EventType::Warning,
            "DangerousLifecycleRules",
            "Lifecycle",
            format!(
                "lifecycle rule(s) {} not owned by gallring can expire governed recordings regardless of their deadline or hold",
                report.dangerous_rules.join(", ")
            ),
        ));
    }
    if report.summary.overdue > 0 {
        out.push((
            EventType::Warning,
            "RetentionBreach",
            "Scan",
            format!(
                "{} object(s) past deadline + grace still exist",
                report.summary.overdue
            ),
        ));
    }
    out
}

/// Writes matched counts to each hold of the bucket: an Event when a hold first takes effect
/// or its count changes, a Warning when it selects nothing.
async fn hold_statuses<F: StoreFactory>(
    ctx: &Context<F>,
    holds: &[LegalHold],
    bucket: &str,
    report: &PassReport,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    for h in holds
        .iter()
        .filter(|h| h.metadata.deletion_timestamp.is_none())
    {
        let key = ResourceKey::of(h);
        let matched = report
            .summary
            .held_by_hold
            .get(&key.namespaced_name())
            .copied()
            .unwrap_or(0);
        let engine = engine_hold(h);
        let outcome = match &engine {
            Err(e) => HoldOutcome::Invalid(e.first_line()),
            Ok(e) if !e.is_active(now) => HoldOutcome::Expired,
            Ok(_) => HoldOutcome::Matched(matched),
        };
        let review = engine.as_ref().is_ok_and(|e| e.needs_review(now));
        let previous = h.status.as_ref();
        let new = status::hold_status(previous, h.metadata.generation, &outcome, review, now);
        if previous == Some(&new) {
            continue;
        }
        let api: Api<LegalHold> = Api::namespaced(ctx.client.clone(), &key.namespace);
        patch_status(&api, &key.name, &new).await?;
        let count_changed = previous.and_then(|p| p.matched) != Some(matched);
        if count_changed && outcome == HoldOutcome::Matched(0) {
            publish(
                &ctx.recorder,
                h,
                EventType::Warning,
                "NoMatch",
                "Hold",
                format!(
                    "the hold selects no object in bucket {bucket}: check spec.select (a mistyped recording id protects nothing)"
                ),
            )
            .await;
        } else if count_changed && matches!(outcome, HoldOutcome::Matched(_)) {
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
        let was_due = previous.is_some_and(|p| {
            p.conditions
                .iter()
                .any(|c| c.type_ == status::NEEDS_REVIEW && c.status == "True")
        });
        if review && !was_due {
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
