//! SubjectRequests in the operator. Carrying a request out is the bucket pass's job (the bucket
//! controller watches requests); the pass's outcome becomes each request's status here. The
//! SubjectRequest controller reports what only it sees (an invalid spec, a missing bucket),
//! sets the due date at once, and wakes at the due date so that a request past due is flagged
//! (condition and metric) without waiting for the bucket's next pass.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::api::v1alpha1::{
    RecordingBucket, RetentionPolicy, SubjectRequest, SubjectRequestException,
    SubjectRequestKindCount, SubjectRequestStatus,
};
use crate::reconcile::requests::RequestReport;
use crate::retention::{Policy, RequestPhase};

use super::context::{Context, Error, StoreFactory, patch_status, publish};
use super::key::ResourceKey;
use super::status::{READY, condition};
use super::validate::engine_request;

/// Condition set while an open request is past its due date.
pub const PAST_DUE: &str = "PastDue";

/// What is known of a request when its status is written.
pub enum Known<'a> {
    /// The bucket pass's outcome.
    Outcome(&'a RequestReport),
    /// Not taken up by a pass yet; `why` says what it waits for.
    Waiting { reason: &'a str, why: String },
    /// Cannot be carried out: the spec (field named) or its bucket.
    Failed { reason: &'a str, why: String },
}

/// The status for `known`, keeping what `previous` had where nothing new is known.
pub fn request_status(
    previous: Option<&SubjectRequestStatus>,
    generation: Option<i64>,
    due_by: Option<DateTime<Utc>>,
    known: &Known<'_>,
    now: DateTime<Utc>,
) -> SubjectRequestStatus {
    let prev_conditions: &[Condition] = previous.map_or(&[], |p| &p.conditions);
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.due_by = due_by;
    let ready = match known {
        Known::Outcome(r) => {
            status.phase = Some(r.phase.as_str().to_string());
            status.matched = Some(r.matched.values().sum());
            let mut kinds: BTreeMap<String, SubjectRequestKindCount> = BTreeMap::new();
            for (k, n) in &r.matched {
                kinds.entry(k.clone()).or_default().matched = *n;
            }
            for (k, n) in &r.deleted {
                kinds.entry(k.clone()).or_default().deleted = *n;
            }
            for (k, n) in &r.kept {
                kinds.entry(k.clone()).or_default().kept = *n;
            }
            status.kinds = kinds;
            status.exceptions = r
                .exceptions
                .iter()
                .map(|e| SubjectRequestException {
                    key: e.key.clone(),
                    version_id: e.version_id.clone(),
                    kind: e.kind.clone(),
                    kept_by: e.kept_by.clone(),
                })
                .collect();
            status.exceptions_total = (r.exceptions_total > 0).then_some(r.exceptions_total);
            status.reappeared = (r.reappeared > 0).then_some(r.reappeared);
            status.manifest = r.manifest.clone();
            status.completed_at = r.completed_at;
            let (ok, reason, message) = outcome_message(r);
            condition(prev_conditions, READY, ok, reason, message, generation, now)
        }
        Known::Waiting { reason, why } | Known::Failed { reason, why } => {
            let phase = match known {
                Known::Failed { .. } => Some(RequestPhase::Failed),
                _ if status.phase.is_none() => Some(RequestPhase::Pending),
                _ => None,
            };
            if let Some(p) = phase {
                status.phase = Some(p.as_str().to_string());
            }
            let why = why.clone();
            condition(prev_conditions, READY, false, reason, why, generation, now)
        }
    };
    let due = past_due_condition(&status, prev_conditions, due_by, generation, now);
    status.conditions = vec![ready, due];
    status
}

/// `PastDue`: true while the request is open (no phase yet, Pending, InProgress, Failed) and
/// its due date has passed.
fn past_due_condition(
    status: &SubjectRequestStatus,
    previous: &[Condition],
    due_by: Option<DateTime<Utc>>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Condition {
    let open = status
        .phase
        .as_deref()
        .is_none_or(|p| phase_of(p).is_none_or(|p| p.is_open()));
    let past_due = open && due_by.is_some_and(|d| d <= now);
    condition(
        previous,
        PAST_DUE,
        past_due,
        if past_due { "PastDue" } else { "NotDue" },
        match (past_due, due_by) {
            (true, Some(d)) => format!(
                "due {} (receivedAt + one month, GDPR Art. 12(3)) and still open",
                d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            _ => String::new(),
        },
        generation,
        now,
    )
}

fn phase_of(s: &str) -> Option<RequestPhase> {
    [
        RequestPhase::Pending,
        RequestPhase::InProgress,
        RequestPhase::Completed,
        RequestPhase::PartiallyCompleted,
        RequestPhase::Failed,
    ]
    .into_iter()
    .find(|p| p.as_str() == s)
}

/// The Ready condition for a pass's outcome: (status, reason, message).
fn outcome_message(r: &RequestReport) -> (bool, &'static str, String) {
    let matched: u64 = r.matched.values().sum();
    let deleted: u64 = r.deleted.values().sum();
    match r.phase {
        RequestPhase::Completed if matched == 0 && deleted == 0 && r.recorded_after > 0 => (
            true,
            "NoMatch",
            format!(
                "no recording made up to receivedAt matches; {}",
                after_text(r.recorded_after)
            ),
        ),
        RequestPhase::Completed if matched == 0 && deleted == 0 => (
            true,
            "NoMatch",
            "no recording in the bucket matches: check spec.subject and spec.recordingIds".into(),
        ),
        RequestPhase::Completed => (true, "Completed", summary(r, matched, deleted)),
        RequestPhase::PartiallyCompleted => (
            true,
            "PartiallyCompleted",
            format!(
                "{}; {} object(s) kept under Art. 17(3), see status.exceptions",
                summary(r, matched, deleted),
                r.exceptions_total
            ),
        ),
        RequestPhase::Failed => (
            false,
            "EnforcementObserve",
            "the bucket's enforcement is Observe: gallring deletes nothing, so the erasure cannot be carried out".into(),
        ),
        RequestPhase::InProgress | RequestPhase::Pending => {
            (false, "InProgress", summary(r, matched, deleted))
        }
    }
}

/// The subject's objects a request does not reach because they were recorded after it.
fn after_text(n: u64) -> String {
    format!(
        "{n} object(s) of the subject were recorded after receivedAt: new processing this request does not reach"
    )
}

fn summary(r: &RequestReport, matched: u64, deleted: u64) -> String {
    let mut text = summary_counts(r, matched, deleted);
    if r.recorded_after > 0 {
        text.push_str("; ");
        text.push_str(&after_text(r.recorded_after));
    }
    text
}

fn summary_counts(r: &RequestReport, matched: u64, deleted: u64) -> String {
    use crate::retention::RequestType as T;
    match r.kind {
        T::Erasure => format!("{deleted} object(s) deleted, {matched} selected still present"),
        T::Withdrawal | T::Objection => {
            format!("{matched} object(s): their withdrawable purposes end from receivedAt")
        }
        T::Restriction => format!("{matched} object(s) held under the restriction"),
        T::Access => format!(
            "{matched} object(s) listed in {}",
            r.manifest
                .as_deref()
                .unwrap_or("the manifest (not yet written)")
        ),
    }
}

/// After a pass (or a refusal): every request of the bucket gets its status; Events for the
/// transitions a privacy team acts on; the request metrics for the bucket.
pub(super) async fn publish_outcomes<F: StoreFactory>(
    ctx: &Context<F>,
    bucket: &RecordingBucket,
    requests: &[SubjectRequest],
    policy: Option<&Policy>,
    reports: Option<&BTreeMap<String, RequestReport>>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let ns = bucket.namespace().unwrap_or_default();
    let api: Api<SubjectRequest> = Api::namespaced(ctx.client.clone(), &ns);
    let mut rows = Vec::new();
    for r in requests
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
    {
        let tz = policy.map_or(chrono_tz::UTC, |p| p.time_zone);
        let engine = engine_request(r, policy);
        let due_by = Some(due_of(r, tz));
        let name = format!("SubjectRequest/{}", ResourceKey::of(r).namespaced_name());
        let report = reports.and_then(|m| m.get(&name));
        let known = match (&engine, report) {
            (Err(e), _) => Known::Failed {
                reason: "InvalidSpec",
                why: e.first_line(),
            },
            (Ok(_), Some(rep)) => Known::Outcome(rep),
            (Ok(_), None) => Known::Waiting {
                reason: "WaitingForPass",
                why: format!(
                    "RecordingBucket {} has not completed a pass since the request",
                    bucket.name_any()
                ),
            },
        };
        let previous = r.status.as_ref();
        let status = request_status(previous, r.metadata.generation, due_by, &known, now);
        rows.push(row(r, status.phase.as_deref(), tz));
        if previous != Some(&status) {
            patch_status(&api, &r.name_any(), &status).await?;
            let was = previous.and_then(|p| p.phase.clone());
            if let (Known::Outcome(rep), true) = (&known, was != status.phase)
                && matches!(
                    rep.phase,
                    RequestPhase::Completed | RequestPhase::PartiallyCompleted
                )
            {
                let (_, reason, message) = outcome_message(rep);
                publish(
                    &ctx.recorder,
                    r,
                    EventType::Normal,
                    reason,
                    "Answer",
                    message,
                )
                .await;
            }
            if let Known::Failed { why, .. } = &known {
                publish(
                    &ctx.recorder,
                    r,
                    EventType::Warning,
                    "InvalidSpec",
                    "Validate",
                    why.clone(),
                )
                .await;
            }
        }
        if let Known::Outcome(rep) = &known
            && rep.reappeared_now > 0
        {
            let note = format!(
                "{} object(s) erased under SubjectRequest {} ({}) reappeared (a restore, replication?) and were deleted again",
                rep.reappeared_now,
                r.name_any(),
                r.spec.reference
            );
            publish(
                &ctx.recorder,
                r,
                EventType::Warning,
                "ErasedRecordingReappeared",
                "Erase",
                note.clone(),
            )
            .await;
            publish(
                &ctx.recorder,
                bucket,
                EventType::Warning,
                "ErasedRecordingReappeared",
                "Erase",
                note,
            )
            .await;
        }
    }
    ctx.metrics
        .set_subject_requests(&ns, &bucket.name_any(), &rows, now);
    Ok(())
}

/// When a request is due (Art. 12(3)), from its spec alone: an invalid request is due too.
fn due_of(r: &SubjectRequest, tz: chrono_tz::Tz) -> DateTime<Utc> {
    crate::retention::request::response_period()
        .add_in(r.spec.received_at, tz)
        .unwrap_or(r.spec.received_at)
}

/// One request as the gauges count it: its type, whether it is open (no phase yet, Pending,
/// InProgress or Failed), when it was received and when it is due. From the spec and the
/// phase only, so that both controllers count every request the same way.
fn row(
    r: &SubjectRequest,
    phase: Option<&str>,
    tz: chrono_tz::Tz,
) -> (
    crate::retention::RequestType,
    bool,
    DateTime<Utc>,
    DateTime<Utc>,
) {
    let open = phase.is_none_or(|p| phase_of(p).is_none_or(|p| p.is_open()));
    (
        crate::api::compile::request_type(r.spec.type_),
        open,
        r.spec.received_at,
        due_of(r, tz),
    )
}

/// The request gauges of one bucket, from the requests as the API server has them now.
async fn refresh_metrics<F: StoreFactory>(
    ctx: &Context<F>,
    ns: &str,
    bucket: &str,
    policy: Option<&Policy>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let api: Api<SubjectRequest> = Api::namespaced(ctx.client.clone(), ns);
    let tz = policy.map_or(chrono_tz::UTC, |p| p.time_zone);
    let list = api.list(&ListParams::default()).await?;
    let rows: Vec<_> = list
        .items
        .iter()
        .filter(|r| r.spec.bucket_ref.name == bucket && r.metadata.deletion_timestamp.is_none())
        .map(|r| row(r, r.status.as_ref().and_then(|s| s.phase.as_deref()), tz))
        .collect();
    ctx.metrics.set_subject_requests(ns, bucket, &rows, now);
    Ok(())
}

/// The SubjectRequest reconcile: validity, the bucket's existence, the due date.
pub async fn reconcile_request<F: StoreFactory>(
    r: Arc<SubjectRequest>,
    ctx: &Context<F>,
) -> Result<Action, Error> {
    let now = ctx.now();
    let ns = r.namespace().unwrap_or_default();
    let bucket_name = &r.spec.bucket_ref.name;
    let buckets: Api<RecordingBucket> = Api::namespaced(ctx.client.clone(), &ns);
    let bucket = buckets.get_opt(bucket_name).await?;
    let policy = match &bucket {
        Some(b) => Api::<RetentionPolicy>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&b.spec.policy_ref.name)
            .await?
            .and_then(|p| {
                crate::api::compile::policy(
                    &format!("RetentionPolicy/{ns}/{}", p.name_any()),
                    &p.spec,
                )
                .ok()
            }),
        None => None,
    };
    let engine = engine_request(&r, policy.as_ref());
    let tz = policy.as_ref().map_or(chrono_tz::UTC, |p| p.time_zone);
    let due_by = Some(due_of(&r, tz));
    // Read afresh: the bucket pass may have answered since this event was queued, and its
    // answer must not be overwritten with an older view.
    let api: Api<SubjectRequest> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(fresh) = api.get_opt(&r.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let previous = fresh.status.as_ref();
    let known = match (&engine, &bucket) {
        (Err(e), _) => Known::Failed {
            reason: "InvalidSpec",
            why: e.first_line(),
        },
        (Ok(_), None) => Known::Failed {
            reason: "BucketNotFound",
            why: format!(
                "spec.bucketRef.name: RecordingBucket `{bucket_name}` not found in namespace `{ns}`"
            ),
        },
        (Ok(_), Some(_)) => Known::Waiting {
            reason: previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == READY))
                .map_or("WaitingForPass", |c| {
                    if c.reason == "WaitingForPass" {
                        "WaitingForPass"
                    } else {
                        "Unchanged"
                    }
                }),
            why: "the bucket's next pass carries it out".into(),
        },
    };
    // Once a pass has answered, only the due-date condition is this controller's to update.
    let status = match (&known, previous) {
        (
            Known::Waiting {
                reason: "Unchanged",
                ..
            },
            Some(p),
        ) => {
            let mut s = p.clone();
            s.due_by = due_by;
            let ready = p.conditions.iter().find(|c| c.type_ == READY).cloned();
            let due = past_due_condition(p, &p.conditions, due_by, r.metadata.generation, now);
            s.conditions = ready.into_iter().chain([due]).collect();
            s
        }
        _ => request_status(previous, r.metadata.generation, due_by, &known, now),
    };
    if previous != Some(&status) {
        patch_status(&api, &r.name_any(), &status).await?;
        if let Known::Failed { reason, why } = &known {
            publish(
                &ctx.recorder,
                r.as_ref(),
                EventType::Warning,
                reason,
                "Validate",
                why.clone(),
            )
            .await;
        }
    }
    if bucket.is_some() {
        refresh_metrics(ctx, &ns, bucket_name, policy.as_ref(), now).await?;
    }
    // Wake at the due date (the past-due flag and metric), or look for a missing bucket again.
    Ok(match (bucket.is_some(), due_by.filter(|d| *d > now)) {
        (false, _) => Action::requeue(Duration::from_secs(60)),
        (true, Some(d)) => {
            Action::requeue((d - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_secs(1))
        }
        (true, None) => Action::requeue(Duration::from_secs(3600)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::{RequestException, RequestType};
    use chrono::TimeZone;

    fn t(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, 9, 0, 0)
            .single()
            .expect("valid date")
    }

    fn report(phase: RequestPhase) -> RequestReport {
        RequestReport {
            request: "SubjectRequest/ns/r".into(),
            kind: RequestType::Erasure,
            phase,
            matched: [("audio".to_string(), 1)].into(),
            deleted: [("audio".to_string(), 2), ("transcript".to_string(), 2)].into(),
            kept: [("audio".to_string(), 1)].into(),
            exceptions: vec![RequestException {
                key: "a/r9.wav".into(),
                version_id: None,
                kind: Some("audio".into()),
                kept_by: "hold ns/complaint".into(),
                reason: "held".into(),
            }],
            exceptions_total: 1,
            reappeared: 0,
            reappeared_now: 0,
            recorded_after: 0,
            manifest: None,
            received_at: t(1),
            due_by: t(1) + chrono::Duration::days(30),
            completed_at: Some(t(2)),
        }
    }

    #[test]
    fn an_answer_becomes_the_status_with_counts_per_kind_and_named_exceptions() {
        let r = report(RequestPhase::PartiallyCompleted);
        let s = request_status(None, Some(1), Some(r.due_by), &Known::Outcome(&r), t(2));
        assert_eq!(s.phase.as_deref(), Some("PartiallyCompleted"));
        assert_eq!(s.matched, Some(1));
        assert_eq!(s.kinds["audio"].deleted, 2);
        assert_eq!(s.kinds["audio"].kept, 1);
        assert_eq!(s.kinds["transcript"].matched, 0);
        assert_eq!(s.exceptions[0].kept_by, "hold ns/complaint");
        let ready = s
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "PartiallyCompleted")
        );
        let due = s
            .conditions
            .iter()
            .find(|c| c.type_ == PAST_DUE)
            .expect("PastDue");
        assert_eq!(due.status, "False", "answered: never past due");
    }

    #[test]
    fn a_request_that_matched_nothing_says_when_the_subjects_calls_came_after_it() {
        let mut r = report(RequestPhase::Completed);
        r.matched.clear();
        r.deleted.clear();
        let ready = |r: &RequestReport| {
            let s = request_status(None, Some(1), Some(r.due_by), &Known::Outcome(r), t(2));
            let c = s.conditions.into_iter().find(|c| c.type_ == READY);
            c.expect("Ready")
        };
        let none = ready(&r);
        assert_eq!(none.reason, "NoMatch");
        assert!(
            none.message.contains("check spec.subject"),
            "{}",
            none.message
        );
        r.recorded_after = 2;
        let later = ready(&r);
        assert_eq!(later.reason, "NoMatch");
        assert!(
            later
                .message
                .contains("2 object(s) of the subject were recorded after receivedAt"),
            "{}",
            later.message
        );
        // With something matched, the later calls are named beside the counts.
        r.matched = [("audio".to_string(), 1)].into();
        let some = ready(&r);
        assert_eq!(some.reason, "Completed");
        assert!(
            some.message.contains("recorded after receivedAt"),
            "{}",
            some.message
        );
    }

    #[test]
    fn an_open_request_past_its_due_date_says_so() {
        let r = report(RequestPhase::InProgress);
        let s = request_status(None, Some(1), Some(t(20)), &Known::Outcome(&r), t(21));
        let due = s
            .conditions
            .iter()
            .find(|c| c.type_ == PAST_DUE)
            .expect("PastDue");
        assert_eq!(
            (due.status.as_str(), due.reason.as_str()),
            ("True", "PastDue")
        );
        // A failed request is open too.
        let failed = Known::Failed {
            reason: "InvalidSpec",
            why: "spec.purposes[0]: not withdrawable".into(),
        };
        let s = request_status(Some(&s), Some(2), Some(t(20)), &failed, t(21));
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert!(
            s.conditions
                .iter()
                .any(|c| c.type_ == PAST_DUE && c.status == "True")
        );
        assert!(
            s.conditions
                .iter()
                .any(|c| c.message.contains("spec.purposes[0]"))
        );
    }
}
