//! Status as data: the conditions and counts a reconcile writes, computed from its outcome by
//! pure functions (no client, no clock: `now` is a parameter).

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::v1alpha1::{LegalHoldStatus, RecordingBucketStatus, RetentionPolicyStatus};
use crate::reconcile::PassReport;

pub const READY: &str = "Ready";
pub const LIFECYCLE_SYNCED: &str = "LifecycleSynced";
pub const DEGRADED: &str = "Degraded";
pub const NEEDS_REVIEW: &str = "NeedsReview";
pub const EXPIRED: &str = "Expired";
pub const CONFLICT: &str = "Conflict";
pub const DANGEROUS_RULES: &str = "DangerousLifecycleRules";
pub const RECORDED_AT_ISSUES: &str = "RecordedAtIssues";

/// Builds a condition; `lastTransitionTime` is kept from `previous` unless the status changed.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_string();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(Time(now_ts(now)), |c| c.last_transition_time.clone());
    let mut message: String = message.into();
    // The API server limits condition messages to 32 KiB; keep them short and readable.
    if message.len() > 1024 {
        let mut cut = 1024;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

fn now_ts(now: DateTime<Utc>) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_second(now.timestamp())
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// What a bucket reconcile ended with.
pub enum BucketOutcome<'a> {
    /// The pass ran.
    Pass(&'a PassReport),
    /// The spec (or its policy) is invalid: `reason` names the condition reason, `message` the
    /// field. Nothing was written to S3.
    Invalid { reason: &'a str, message: String },
    /// The store failed as a whole (`category` from the closed set).
    StoreFailed { category: &'a str, message: String },
}

/// The bucket status after a reconcile. Counts are kept from `previous` when no pass ran.
pub fn bucket_status(
    previous: Option<&RecordingBucketStatus>,
    generation: Option<i64>,
    outcome: &BucketOutcome<'_>,
    now: DateTime<Utc>,
) -> RecordingBucketStatus {
    let prev_conditions: &[Condition] = previous.map_or(&[], |p| &p.conditions);
    let mut s = previous.cloned().unwrap_or_default();
    s.observed_generation = generation;
    let cond = |t: &str, ok: bool, reason: &str, msg: String| {
        condition(prev_conditions, t, ok, reason, msg, generation, now)
    };
    match outcome {
        BucketOutcome::Pass(r) => {
            let sum = &r.summary;
            s.objects = Some(sum.objects);
            s.bytes = Some(sum.bytes);
            s.retained = Some(sum.keep);
            s.held = Some(sum.held);
            s.overdue = Some(sum.overdue);
            s.unclassified = Some(sum.unclassified);
            s.next_deadline = sum.next_deadline;
            s.controllers = sum
                .by_controller
                .iter()
                .take(64)
                .map(|(c, n)| crate::api::v1alpha1::ControllerCount {
                    legal_name: c.clone(),
                    objects: *n,
                    overdue: sum.overdue_by_controller.get(c).copied().unwrap_or(0),
                })
                .collect();
            s.journal_public_key = r.journal_public_key.clone();
            s.last_scan = Some(r.now);
            s.decided_at = Some(r.decided_at);
            let lifecycle_ok = r.lifecycle.in_sync();
            let lifecycle_msg = match &r.lifecycle {
                crate::reconcile::LifecycleOutcome::Untouched { reason }
                | crate::reconcile::LifecycleOutcome::Refused { reason, .. } => reason.clone(),
                crate::reconcile::LifecycleOutcome::NotWritten { drift: true } => {
                    "Observe mode: the bucket's gallring rules differ from the policy".into()
                }
                _ => format!(
                    "{} gallring lifecycle rule(s) in place",
                    r.lifecycle_rules.len()
                ),
            };
            let degraded = r.object_errors > 0
                || r.delete_failures > 0
                || r.unknown_objects > 0
                || r.deletes_blocked.is_some();
            let (degraded_reason, degraded_msg) = match &r.deletes_blocked {
                Some(b) => (b.reason, b.message.clone()),
                None if r.unknown_objects > 0 => (
                    "UnknownState",
                    format!(
                        "{} object(s) could not be read: their state is unknown (some may be overdue); first: {}",
                        r.unknown_objects,
                        r.sample_errors.first().cloned().unwrap_or_default()
                    ),
                ),
                None if degraded => (
                    "ObjectErrors",
                    format!(
                        "{} object error(s), {} failed deletion(s); first: {}",
                        r.object_errors,
                        r.delete_failures,
                        r.sample_errors.first().cloned().unwrap_or_default()
                    ),
                ),
                None => ("Healthy", "no errors in the last scan".into()),
            };
            let dangerous = !r.dangerous_rules.is_empty();
            s.conditions = vec![
                cond(CONFLICT, false, "NoConflict", String::new()),
                cond(
                    DANGEROUS_RULES,
                    dangerous,
                    if dangerous { "ForeignExpiry" } else { "None" },
                    if dangerous {
                        format!(
                            "lifecycle rule(s) {} not owned by gallring can expire governed recordings by S3's own clock, whatever their deadline or hold: narrow or remove them",
                            r.dangerous_rules.join(", ")
                        )
                    } else {
                        String::new()
                    },
                ),
                cond(
                    RECORDED_AT_ISSUES,
                    !sum.recorded_at_issues.is_empty(),
                    if sum.recorded_at_issues.is_empty() {
                        "None"
                    } else {
                        "NotTrusted"
                    },
                    if sum.recorded_at_issues.is_empty() {
                        String::new()
                    } else {
                        let counts: Vec<String> = sum
                            .recorded_at_issues
                            .iter()
                            .map(|(k, n)| format!("{n} {k}"))
                            .collect();
                        format!(
                            "recordedAt not used as given for {}: future values count from the upload, too_old ones from the upload minus maxAgeAtUpload, unparsable and missing ones from the upload (see gallring plan for each object)",
                            counts.join(", ")
                        )
                    },
                ),
                cond(
                    READY,
                    true,
                    "Reconciled",
                    format!(
                        "{} objects: {} retained, {} held, {} overdue, {} unclassified, {} unknown; {} deleted this scan",
                        sum.objects,
                        sum.keep,
                        sum.held,
                        sum.overdue,
                        sum.unclassified,
                        r.unknown_objects,
                        r.deleted
                    ),
                ),
                cond(
                    LIFECYCLE_SYNCED,
                    lifecycle_ok,
                    if lifecycle_ok { "InSync" } else { "Drift" },
                    lifecycle_msg,
                ),
                cond(DEGRADED, degraded, degraded_reason, degraded_msg),
            ];
        }
        BucketOutcome::Invalid { reason, message } => {
            let conflict = *reason == "Conflict";
            s.conditions = vec![
                cond(
                    CONFLICT,
                    conflict,
                    if conflict { "Conflict" } else { "NoConflict" },
                    if conflict {
                        message.clone()
                    } else {
                        String::new()
                    },
                ),
                cond(READY, false, reason, message.clone()),
                cond(
                    LIFECYCLE_SYNCED,
                    false,
                    reason,
                    "not reconciled until the bucket is Ready (see the Ready condition)".into(),
                ),
                cond(DEGRADED, true, reason, message.clone()),
            ];
        }
        BucketOutcome::StoreFailed { category, message } => {
            let keep_lifecycle = prev_conditions
                .iter()
                .find(|c| c.type_ == LIFECYCLE_SYNCED)
                .cloned()
                .unwrap_or_else(|| {
                    cond(
                        LIFECYCLE_SYNCED,
                        false,
                        "Unknown",
                        "no scan has completed".into(),
                    )
                });
            s.conditions = vec![
                cond(CONFLICT, false, "NoConflict", String::new()),
                cond(READY, false, "StoreError", message.clone()),
                keep_lifecycle,
                cond(DEGRADED, true, &store_reason(category), message.clone()),
            ];
        }
    }
    s
}

/// `access_denied` → `AccessDenied`: condition reasons are CamelCase.
fn store_reason(category: &str) -> String {
    category
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

pub fn policy_status(
    previous: Option<&RetentionPolicyStatus>,
    generation: Option<i64>,
    error: Option<String>,
    now: DateTime<Utc>,
) -> RetentionPolicyStatus {
    let prev: &[Condition] = previous.map_or(&[], |p| &p.conditions);
    let c = match error {
        None => condition(
            prev,
            READY,
            true,
            "Valid",
            "the policy is valid",
            generation,
            now,
        ),
        Some(e) => condition(prev, READY, false, "InvalidSpec", e, generation, now),
    };
    RetentionPolicyStatus {
        conditions: vec![c],
        observed_generation: generation,
    }
}

/// What the controllers know about a hold.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldOutcome {
    /// The spec cannot be read (names the field).
    Invalid(String),
    /// The referenced RecordingBucket does not exist.
    BucketNotFound(String),
    /// The bucket exists but has never completed a pass (its Ready condition says why).
    BucketNotReady(String),
    /// `expires` has passed.
    Expired,
    /// The bucket's last pass found this many objects under the hold.
    Matched(u64),
}

/// Hold status as data. A hold that matches nothing is not Ready: a mistyped recording id
/// protects nothing, and that must be visible.
pub fn hold_status(
    previous: Option<&LegalHoldStatus>,
    generation: Option<i64>,
    outcome: &HoldOutcome,
    needs_review: bool,
    now: DateTime<Utc>,
) -> LegalHoldStatus {
    let prev: &[Condition] = previous.map_or(&[], |p| &p.conditions);
    let cond = |ok: bool, reason: &str, message: String| {
        condition(prev, READY, ok, reason, message, generation, now)
    };
    let ready = match outcome {
        HoldOutcome::Invalid(e) => cond(false, "InvalidSpec", e.clone()),
        HoldOutcome::BucketNotFound(m) => cond(false, "BucketNotFound", m.clone()),
        HoldOutcome::BucketNotReady(m) => cond(false, "BucketNotReady", m.clone()),
        HoldOutcome::Expired => cond(
            false,
            "Expired",
            "the hold has expired and no longer protects objects".into(),
        ),
        HoldOutcome::Matched(0) => cond(
            false,
            "NoMatch",
            "the hold selects no object in the bucket: check spec.select".into(),
        ),
        HoldOutcome::Matched(n) => cond(true, "Applied", format!("{n} object(s) held")),
    };
    let expired = *outcome == HoldOutcome::Expired;
    let matched = match outcome {
        HoldOutcome::Matched(n) => Some(*n),
        _ => None,
    };
    LegalHoldStatus {
        conditions: vec![
            ready,
            condition(
                prev,
                NEEDS_REVIEW,
                needs_review,
                if needs_review {
                    "PastReviewBy"
                } else {
                    "NotDue"
                },
                if needs_review {
                    "reviewBy has passed: confirm the case still needs the hold"
                } else {
                    ""
                },
                generation,
                now,
            ),
            condition(
                prev,
                EXPIRED,
                expired,
                if expired { "Expired" } else { "Active" },
                "",
                generation,
                now,
            ),
        ],
        observed_generation: generation,
        matched: matched.or(previous.and_then(|p| p.matched)),
        applied: matched.or(previous.and_then(|p| p.applied)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn last_transition_time_changes_only_when_the_status_changes() {
        let first = condition(&[], READY, true, "Reconciled", "a", Some(1), t(1));
        let same = condition(
            std::slice::from_ref(&first),
            READY,
            true,
            "Reconciled",
            "b",
            Some(2),
            t(2),
        );
        assert_eq!(same.last_transition_time, first.last_transition_time);
        assert_eq!(same.message, "b");
        let flipped = condition(
            std::slice::from_ref(&same),
            READY,
            false,
            "StoreError",
            "c",
            Some(2),
            t(3),
        );
        assert_ne!(flipped.last_transition_time, first.last_transition_time);
    }

    #[test]
    fn a_store_failure_keeps_the_last_counts_and_marks_the_bucket_degraded() {
        let prev = RecordingBucketStatus {
            objects: Some(10),
            overdue: Some(0),
            ..Default::default()
        };
        let s = bucket_status(
            Some(&prev),
            Some(3),
            &BucketOutcome::StoreFailed {
                category: "access_denied",
                message: "bucket calls: ListObjectsV2: AccessDenied".into(),
            },
            t(1),
        );
        assert_eq!(s.objects, Some(10));
        let degraded = s
            .conditions
            .iter()
            .find(|c| c.type_ == DEGRADED)
            .expect("degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "AccessDenied")
        );
        let ready = s
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .expect("ready");
        assert_eq!(ready.status, "False");
        assert_eq!(s.observed_generation, Some(3));
    }

    #[test]
    fn a_retried_store_failure_leaves_the_status_unchanged() {
        let failed = |message: &str| {
            bucket_status(
                None,
                Some(1),
                &BucketOutcome::StoreFailed {
                    category: "no_such_bucket",
                    message: message.into(),
                },
                t(1),
            )
        };
        let first = failed("bucket calls: HeadBucket: the bucket does not exist (HTTP 404)");
        let again = bucket_status(
            Some(&first),
            Some(1),
            &BucketOutcome::StoreFailed {
                category: "no_such_bucket",
                message: "bucket calls: HeadBucket: the bucket does not exist (HTTP 404)".into(),
            },
            t(2),
        );
        assert_eq!(first, again);
    }

    #[test]
    fn a_hold_that_matches_nothing_is_not_ready() {
        let s = hold_status(None, Some(1), &HoldOutcome::Matched(0), false, t(1));
        let ready = &s.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "NoMatch")
        );
        let s = hold_status(Some(&s), Some(1), &HoldOutcome::Matched(3), false, t(2));
        assert_eq!(s.conditions[0].status, "True");
        assert_eq!(s.matched, Some(3));
        let s = hold_status(
            None,
            Some(1),
            &HoldOutcome::BucketNotFound("spec.bucketRef.name: no RecordingBucket `x`".into()),
            false,
            t(1),
        );
        assert_eq!(s.conditions[0].reason, "BucketNotFound");
    }
}
