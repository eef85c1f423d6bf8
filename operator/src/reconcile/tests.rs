//! The reconcile pass against the in-memory store: what it writes, in which order, and what it
//! never does.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::retention::{
    Enforcement, HoldReason, HoldSelector, IsoDuration, Purpose, PurposesFromTag, RecordedAtSource,
    RecordingIdSource, WITHDRAWN_TAG,
};
use crate::store::memory::{Fault, MemoryStore};
use crate::store::{ErrorCategory, ForeignRule, Operation, StoredRule};

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 9, 0, 0)
        .single()
        .expect("valid date")
}

fn policy() -> Policy {
    let purpose = |withdrawable, retain: &[(&str, IsoDuration)]| Purpose {
        legal_basis: String::new(),
        kept_on_erasure: false,
        retain_means: Default::default(),
        from: None,
        use_for: Default::default(),
        controller: None,
        withdrawable,
        retain: retain.iter().map(|(k, d)| (k.to_string(), *d)).collect(),
    };
    Policy {
        controller: "Controller A/S".to_string(),
        hold_max: Default::default(),
        time_zone: chrono_tz::Tz::UTC,
        name: "RetentionPolicy/test/calls".into(),
        purposes: [
            (
                "documentation".to_string(),
                purpose(
                    false,
                    &[
                        ("audio", IsoDuration::months(12)),
                        ("transcript", IsoDuration::months(36)),
                    ],
                ),
            ),
            (
                "quality".to_string(),
                purpose(true, &[("audio", IsoDuration::months(18))]),
            ),
        ]
        .into(),
        hold_release: [(HoldReason::Dispute, IsoDuration::months(36))].into(),
    }
}

fn rules(enforcement: Enforcement) -> BucketRules {
    let rule = |prefix: &str, kind: &str| crate::retention::ClassifyRule {
        name: kind.into(),
        prefix: Some(prefix.into()),
        glob: None,
        tags: BTreeMap::new(),
        kind: kind.into(),
        purposes: vec!["documentation".into()],
        purposes_from_tag: Some(PurposesFromTag {
            key: "consent".into(),
            values: [("given".to_string(), vec!["quality".to_string()])].into(),
        }),
    };
    BucketRules {
        name: "RecordingBucket/test/calls".into(),
        prefix: None,
        classify: vec![rule("audio/", "audio"), rule("text/", "transcript")],
        recording_id: Some(RecordingIdSource::KeyPattern(
            regex::Regex::new(r"^[a-z]+/(?P<id>[^/.]+)").expect("valid regex"),
        )),
        subject_tag: None,
        recorded_at: RecordedAtSource::LastModified,
        recorded_at_max_age: None,
        grace: IsoDuration::days(2),
        scan_interval: IsoDuration::days(1),
        verify_interval: IsoDuration::days(7),
        enforcement,
    }
}

fn complaint_on(recording: &str) -> Hold {
    Hold {
        limitation_start: None,
        created_at: None,
        name: "test/complaint-1".into(),
        reason: HoldReason::Complaint,
        case: "C-1".into(),
        select: HoldSelector {
            recording_ids: [recording.to_string()].into(),
            ..Default::default()
        },
        expires: None,
        review_by: None,
        released_at: None,
    }
}

async fn pass(
    store: &MemoryStore,
    enforcement: Enforcement,
    holds: Vec<Hold>,
    now: DateTime<Utc>,
) -> PassReport {
    pass_with(store, enforcement, holds, now, PassConfig::default()).await
}

async fn pass_with(
    store: &MemoryStore,
    enforcement: Enforcement,
    holds: Vec<Hold>,
    now: DateTime<Utc>,
    config: PassConfig,
) -> PassReport {
    reconcile(
        store,
        &policy(),
        &rules(enforcement),
        holds,
        now,
        config,
        &|_| {},
    )
    .await
    .expect("the pass runs")
}

fn writes(ops: &[Operation]) -> Vec<Operation> {
    ops.iter()
        .copied()
        .filter(|o| {
            matches!(
                o,
                Operation::PutObjectTagging
                    | Operation::PutBucketLifecycle
                    | Operation::DeleteBucketLifecycle
                    | Operation::PutObjectLegalHold
                    | Operation::DeleteObjects
            )
        })
        .collect()
}

fn seeded() -> MemoryStore {
    let s = MemoryStore::new("calls");
    s.put("audio/r1.wav", day(2026, 1, 10), 100, &[("team", "claims")]);
    s.put(
        "audio/r2.wav",
        day(2026, 1, 10),
        100,
        &[("consent", "given")],
    );
    s.put("text/r1.json", day(2026, 1, 10), 10, &[]);
    s.put("misc/readme.txt", day(2020, 1, 1), 5, &[]);
    s
}

#[tokio::test]
async fn first_pass_tags_classified_objects_and_keeps_foreign_tags() {
    let s = seeded();
    let r = pass(&s, Enforcement::Both, vec![], day(2026, 2, 1)).await;
    let t = s.tags("audio/r1.wav").expect("exists");
    assert_eq!(
        t.get("team").map(String::as_str),
        Some("claims"),
        "foreign tag kept"
    );
    assert_eq!(
        t.get(RETENTION_TAG).map(String::as_str),
        Some("expire-365d")
    );
    assert_eq!(
        s.tags("audio/r2.wav")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
            .as_deref(),
        Some("expire-546d"),
        "consent adds quality: 18 months from 2026-01-10 is 546 days"
    );
    assert_eq!(
        s.tags("misc/readme.txt"),
        Some(BTreeMap::new()),
        "unclassified objects are not touched"
    );
    assert_eq!(r.tags_written, 3);
    assert_eq!(r.summary.unclassified, 1);
    assert!(matches!(r.lifecycle, LifecycleOutcome::Updated { .. }));
    let rules = s.lifecycle().expect("lifecycle written");
    assert!(
        rules
            .iter()
            .all(|r| matches!(r, StoredRule::Owned(o) if o.id.starts_with("gallring-")))
    );
}

#[tokio::test]
async fn a_second_pass_over_an_unchanged_bucket_writes_nothing() {
    let s = seeded();
    pass(&s, Enforcement::Both, vec![], day(2026, 2, 1)).await;
    s.clear_requests();
    let r = pass(&s, Enforcement::Both, vec![], day(2026, 2, 2)).await;
    assert_eq!(writes(&s.requests()), vec![]);
    assert!(matches!(r.lifecycle, LifecycleOutcome::InSync { .. }));
}

#[tokio::test]
async fn observe_mode_writes_nothing_at_all() {
    let s = seeded();
    let before: Vec<_> = ["audio/r1.wav", "audio/r2.wav", "text/r1.json"]
        .iter()
        .map(|k| s.tags(k))
        .collect();
    let r = pass(&s, Enforcement::Observe, vec![], day(2030, 1, 1)).await;
    assert_eq!(writes(&s.requests()), vec![]);
    let after: Vec<_> = ["audio/r1.wav", "audio/r2.wav", "text/r1.json"]
        .iter()
        .map(|k| s.tags(k))
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        r.summary.overdue, 3,
        "everything classified is overdue by 2030 and reported"
    );
    // Observe owns no lifecycle rules, and the bucket has none: nothing to report as drift.
    assert_eq!(r.lifecycle, LifecycleOutcome::NotWritten { drift: false });
}

#[tokio::test]
async fn foreign_lifecycle_rules_survive_a_rewrite() {
    let s = seeded();
    let foreign = aws_sdk_s3::types::LifecycleRule::builder()
        .id("team-logs")
        .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
        .build()
        .expect("valid rule");
    s.set_lifecycle(Some(vec![StoredRule::Foreign(ForeignRule {
        id: Some("team-logs".into()),
        raw: foreign.clone(),
    })]));
    pass(&s, Enforcement::Both, vec![], day(2026, 2, 1)).await;
    let rules = s.lifecycle().expect("lifecycle");
    assert!(rules.contains(&StoredRule::Foreign(ForeignRule {
        id: Some("team-logs".into()),
        raw: foreign
    })));
    assert!(rules.iter().any(|r| matches!(r, StoredRule::Owned(_))));
}

#[tokio::test]
async fn operator_mode_deletes_at_the_deadline_and_counts_what_remains() {
    let s = seeded();
    // 2027-01-11: audio/r1 (P1Y, deadline 2027-01-10) is due; r2 (consent, 18 months) and the
    // transcript (3 years) are kept; the unclassified file stays forever.
    let r = pass(&s, Enforcement::Operator, vec![], day(2027, 1, 11)).await;
    assert_eq!(r.deleted, 1);
    assert_eq!(
        recordings(&s),
        ["audio/r2.wav", "misc/readme.txt", "text/r1.json"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        r.summary.objects, 3,
        "counts describe the bucket after deletion"
    );
    assert_eq!(r.summary.overdue, 0);
    assert_eq!(r.deleted_by_kind.get("audio"), Some(&1));
    assert!(
        s.lifecycle().is_none(),
        "Operator mode writes no lifecycle rules"
    );
}

#[tokio::test]
async fn both_mode_leaves_due_objects_to_lifecycle_until_they_are_overdue() {
    let s = seeded();
    let r = pass(&s, Enforcement::Both, vec![], day(2027, 1, 11)).await;
    assert_eq!(r.deleted, 0, "lifecycle has until deadline + grace");
    assert_eq!(r.summary.delete, 1);
    let r = pass(&s, Enforcement::Both, vec![], day(2027, 1, 13)).await;
    assert_eq!(
        r.deleted, 1,
        "past grace the operator deletes what lifecycle missed"
    );
    assert_eq!(r.summary.overdue, 0);
}

#[tokio::test]
async fn a_failed_deletion_leaves_the_object_counted_as_overdue() {
    let s = seeded();
    s.inject(Fault {
        operation: Operation::DeleteObjects,
        key: Some("audio/r1.wav".into()),
        category: ErrorCategory::ServerError,
        times: 1,
    });
    let r = pass(&s, Enforcement::Operator, vec![], day(2027, 1, 20)).await;
    assert_eq!(r.deleted, 0);
    assert_eq!(r.delete_failures, 1);
    assert_eq!(r.summary.overdue, 1);
    assert!(s.live_keys().contains("audio/r1.wav"));
    assert!(
        r.sample_errors
            .iter()
            .any(|e| e.contains("audio/r1.wav") && e.contains("DeleteObjects"))
    );
}

#[tokio::test]
async fn a_held_object_gets_its_legal_hold_before_its_tag_and_is_never_deleted() {
    let s = MemoryStore::new("calls").object_lock();
    s.put("audio/r1.wav", day(2020, 1, 10), 100, &[]);
    s.put("text/r1.json", day(2020, 1, 10), 100, &[]);
    let r = pass(
        &s,
        Enforcement::Both,
        vec![complaint_on("r1")],
        day(2030, 1, 1),
    )
    .await;
    assert_eq!(r.deleted, 0);
    assert_eq!(r.summary.held, 2);
    assert_eq!(r.legal_holds_set, 2);
    assert!(s.legal_hold("audio/r1.wav") && s.legal_hold("text/r1.json"));
    assert_eq!(
        s.tags("audio/r1.wav")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
            .as_deref(),
        Some("held")
    );
    let ops: Vec<Operation> = writes(&s.requests())
        .into_iter()
        .filter(|o| *o != Operation::PutBucketLifecycle)
        .collect();
    // Per object: legal hold, then tag (objects are processed in listing order).
    assert_eq!(
        ops,
        vec![
            Operation::PutObjectLegalHold,
            Operation::PutObjectTagging,
            Operation::PutObjectLegalHold,
            Operation::PutObjectTagging
        ]
    );
}

#[tokio::test]
async fn releasing_a_dispute_keeps_the_limitation_period_in_a_tag_and_lifts_the_legal_hold() {
    let s = MemoryStore::new("calls").object_lock();
    s.put("audio/r1.wav", day(2026, 1, 10), 100, &[]);
    let mut hold = complaint_on("r1");
    hold.reason = HoldReason::Dispute;
    pass(&s, Enforcement::Both, vec![hold.clone()], day(2026, 6, 1)).await;
    assert!(s.legal_hold("audio/r1.wav"));
    hold.released_at = Some(day(2027, 3, 1));
    let r = pass(&s, Enforcement::Both, vec![hold], day(2027, 3, 2)).await;
    assert_eq!(r.legal_holds_cleared, 1);
    assert!(!s.legal_hold("audio/r1.wav"));
    let tags = s.tags("audio/r1.wav").expect("exists");
    assert_eq!(
        tags.get(KEEP_UNTIL_TAG).map(String::as_str),
        Some("2030-03-01T09:00:00Z")
    );
    assert_eq!(
        tags.get(RETENTION_TAG).map(String::as_str),
        Some("operator")
    );
    // Once the LegalHold is gone from the input, the tag alone keeps the object.
    let r = pass(&s, Enforcement::Both, vec![], day(2029, 1, 1)).await;
    assert_eq!(r.summary.keep, 1);
    assert_eq!(r.deleted, 0);
}

#[tokio::test]
async fn a_missing_bucket_fails_the_pass_and_writes_nothing() {
    let s = MemoryStore::missing("gone");
    let err = reconcile(
        &s,
        &policy(),
        &rules(Enforcement::Both),
        vec![],
        day(2026, 1, 1),
        PassConfig::default(),
        &|_| {},
    )
    .await
    .expect_err("no bucket");
    assert_eq!(err.category(), ErrorCategory::NoSuchBucket.as_str());
    assert!(err.to_string().contains("bucket gone"), "{err}");
    assert_eq!(writes(&s.requests()), vec![]);
}

#[tokio::test]
async fn an_object_whose_tags_cannot_be_read_is_reported_and_never_deleted() {
    let s = seeded();
    s.inject(Fault {
        operation: Operation::GetObjectTagging,
        key: Some("audio/r1.wav".into()),
        category: ErrorCategory::AccessDenied,
        times: 1,
    });
    let r = pass(&s, Enforcement::Operator, vec![], day(2030, 1, 1)).await;
    assert_eq!(r.object_errors, 1);
    assert!(s.live_keys().contains("audio/r1.wav"));
    assert_eq!(r.deleted, 2, "the other classified objects are deleted");
    assert_eq!(r.unknown_objects, 1, "counted as unknown");
    assert_eq!(
        r.summary.unclassified, 1,
        "only misc/readme.txt is unclassified"
    );
    assert!(
        r.sample_errors[0].contains("GetObjectTagging audio/r1.wav"),
        "{:?}",
        r.sample_errors
    );
}

#[tokio::test]
async fn an_unreadable_lifecycle_configuration_is_left_untouched() {
    let s = seeded();
    s.inject(Fault {
        operation: Operation::GetBucketLifecycle,
        key: None,
        category: ErrorCategory::Malformed,
        times: 1,
    });
    let r = pass(&s, Enforcement::Both, vec![], day(2026, 2, 1)).await;
    assert!(matches!(r.lifecycle, LifecycleOutcome::Untouched { .. }));
    assert!(!r.lifecycle.in_sync());
    assert!(!s.requests().contains(&Operation::PutBucketLifecycle));
}

#[tokio::test]
async fn small_pages_give_the_same_result_as_one_page() {
    let build = || {
        let s = MemoryStore::new("calls");
        for i in 0..23 {
            s.put(
                &format!("audio/r{i:02}.wav"),
                day(2026, 1, 1 + i % 20),
                10,
                &[],
            );
        }
        s
    };
    let (a, b) = (build(), build());
    let one = pass_with(
        &a,
        Enforcement::Operator,
        vec![],
        day(2027, 1, 10),
        PassConfig {
            page_size: 1000,
            concurrency: 4,
            ..PassConfig::default()
        },
    )
    .await;
    let small = pass_with(
        &b,
        Enforcement::Operator,
        vec![],
        day(2027, 1, 10),
        PassConfig {
            page_size: 2,
            concurrency: 1,
            ..PassConfig::default()
        },
    )
    .await;
    assert_eq!(one.summary, small.summary);
    assert_eq!(one.deleted, small.deleted);
    assert_eq!(recordings(&a), recordings(&b));
    assert_eq!(small.summary.objects + small.deleted, 23);
    assert!(small.deleted > 0 && small.summary.keep > 0);
}

#[tokio::test]
async fn on_a_versioned_bucket_every_version_is_deleted_by_id() {
    let s = MemoryStore::new("calls").versioned();
    s.put("audio/r1.wav", day(2026, 1, 10), 100, &[]);
    s.put("audio/r1.wav", day(2026, 1, 11), 100, &[]);
    let r = pass(&s, Enforcement::Operator, vec![], day(2027, 2, 1)).await;
    assert_eq!(r.deleted, 2);
    let mut left = Vec::new();
    let mut token = None;
    loop {
        let page = s.list_page(None, true, token, 1000).await.expect("list");
        left.extend(
            page.objects
                .into_iter()
                .filter(|o| !o.key.starts_with(".gallring/")),
        );
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    assert!(
        left.is_empty(),
        "no version (and no delete marker) remains: {left:?}"
    );
}

/// Live keys of recordings: gallring's own journal under `.gallring/` left out.
fn recordings(s: &MemoryStore) -> std::collections::BTreeSet<String> {
    s.live_keys()
        .into_iter()
        .filter(|k| !k.starts_with(".gallring/"))
        .collect()
}

#[tokio::test]
async fn withdrawn_consent_shortens_the_tagged_retention() {
    let s = MemoryStore::new("calls");
    s.put(
        "audio/r2.wav",
        day(2026, 1, 10),
        100,
        &[("consent", "given")],
    );
    pass(&s, Enforcement::Both, vec![], day(2026, 2, 1)).await;
    let mut tags = s.tags("audio/r2.wav").expect("exists");
    assert_eq!(
        tags.get(RETENTION_TAG).map(String::as_str),
        Some("expire-546d")
    );
    tags.insert(WITHDRAWN_TAG.into(), "quality".into());
    let id = crate::store::ObjectId {
        key: "audio/r2.wav".into(),
        version_id: None,
    };
    s.put_tags(&id, &tags).await.expect("tags written");
    // The tag is a request: journaled in the pass that reads it, effective from the next.
    let r = pass(&s, Enforcement::Both, vec![], day(2026, 3, 1)).await;
    assert_eq!(r.withdrawals_journaled, 1);
    let retention = |s: &MemoryStore| {
        s.tags("audio/r2.wav")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
    };
    assert_eq!(retention(&s).as_deref(), Some("expire-546d"));
    let w = journal_of(&s).await;
    assert!(
        w.withdrawals
            .values()
            .any(|w| w.purposes.contains("quality"))
    );
    pass(&s, Enforcement::Both, vec![], day(2026, 3, 2)).await;
    assert_eq!(retention(&s).as_deref(), Some("expire-365d"));
    // Stripping the tag afterwards changes nothing: the journal is the authority.
    let mut tags = s.tags("audio/r2.wav").expect("exists");
    tags.remove(WITHDRAWN_TAG);
    s.put_tags(&id, &tags).await.expect("tags written");
    pass(&s, Enforcement::Both, vec![], day(2026, 3, 3)).await;
    assert_eq!(retention(&s).as_deref(), Some("expire-365d"));
}

#[tokio::test]
async fn a_new_object_under_a_withdrawn_key_does_not_inherit_the_withdrawal() {
    let s = MemoryStore::new("calls");
    s.put(
        "audio/r2.wav",
        day(2026, 1, 10),
        100,
        &[("consent", "given"), (WITHDRAWN_TAG, "quality")],
    );
    pass(&s, Enforcement::Both, vec![], day(2026, 2, 1)).await;
    // Re-uploaded (other content) without the withdrawal: full retention again.
    s.put(
        "audio/r2.wav",
        day(2026, 2, 2),
        200,
        &[("consent", "given")],
    );
    pass(&s, Enforcement::Both, vec![], day(2026, 2, 3)).await;
    assert_eq!(
        s.tags("audio/r2.wav")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
            .as_deref(),
        Some("expire-546d")
    );
}

/// Every first-seen entry of the journal, whichever shard it is in.
async fn first_seen_of(
    s: &MemoryStore,
) -> std::collections::BTreeMap<VersionRef, crate::state::journal::Seen> {
    crate::state::Journal::load(s, crate::state::journal::DEFAULT_PREFIX)
        .await
        .expect("journal")
        .first_seen_all(s)
        .await
        .expect("shards")
}

async fn journal_of(s: &MemoryStore) -> crate::state::JournalState {
    crate::state::Journal::load(s, crate::state::journal::DEFAULT_PREFIX)
        .await
        .expect("journal")
        .state()
        .clone()
}

#[tokio::test]
async fn a_released_floor_holds_even_when_the_object_has_no_room_for_its_tag() {
    let s = MemoryStore::new("calls").object_lock();
    // Nine tags of the owner's: room for the retention tag, none for keep-until.
    let foreign: Vec<(String, String)> = (0..9).map(|i| (format!("t{i}"), "x".into())).collect();
    let foreign: Vec<(&str, &str)> = foreign
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    s.put("audio/r1.wav", day(2026, 1, 10), 100, &foreign);
    let mut hold = complaint_on("r1");
    hold.reason = HoldReason::Dispute;
    pass(&s, Enforcement::Both, vec![hold.clone()], day(2026, 6, 1)).await;
    hold.released_at = Some(day(2027, 3, 1));
    pass(&s, Enforcement::Both, vec![hold], day(2027, 3, 2)).await;
    let tags = s.tags("audio/r1.wav").expect("exists");
    assert!(!tags.contains_key(KEEP_UNTIL_TAG), "no room for the mirror");
    assert_eq!(tags.len(), 10, "every foreign tag kept");
    // The LegalHold is gone and the tag carries no floor: the journal still keeps it until
    // release + P3Y (2030-03-01).
    let r = pass(&s, Enforcement::Operator, vec![], day(2030, 2, 1)).await;
    assert_eq!((r.deleted, r.summary.keep), (0, 1));
    let r = pass(&s, Enforcement::Operator, vec![], day(2030, 3, 5)).await;
    assert_eq!(r.deleted, 1, "deleted once the floor has passed");
}

#[tokio::test]
async fn a_hold_that_disappears_from_the_host_is_a_release_with_its_floor() {
    let s = MemoryStore::new("calls");
    s.put("audio/r1.wav", day(2026, 1, 10), 100, &[]);
    let mut hold = complaint_on("r1");
    hold.reason = HoldReason::Dispute;
    pass(&s, Enforcement::Operator, vec![hold], day(2026, 6, 1)).await;
    assert_eq!(journal_of(&s).await.applied.len(), 1);
    // The manifests (or the cluster) no longer have the hold.
    let r = pass(&s, Enforcement::Operator, vec![], day(2027, 2, 1)).await;
    assert_eq!((r.deleted, r.summary.keep), (0, 1));
    let state = journal_of(&s).await;
    assert!(state.applied.is_empty());
    assert_eq!(state.released.len(), 1);
    assert_eq!(state.released[0].1, day(2027, 2, 1));
    let r = pass(&s, Enforcement::Operator, vec![], day(2029, 12, 1)).await;
    assert_eq!(r.deleted, 0, "within release + P3Y");
}

#[tokio::test]
async fn a_legal_hold_gallring_did_not_set_is_never_lifted() {
    let s = MemoryStore::new("calls").object_lock();
    s.put("audio/r1.wav", day(2020, 1, 10), 100, &[]);
    // Someone else (a litigation team) put a legal hold on it.
    s.set_legal_hold(
        &ObjectId {
            key: "audio/r1.wav".into(),
            version_id: None,
        },
        true,
    )
    .await
    .expect("set");
    let mut hold = complaint_on("r1");
    let r = pass(&s, Enforcement::Both, vec![hold.clone()], day(2026, 6, 1)).await;
    assert_eq!(r.legal_holds_set, 0, "already on: not gallring's");
    hold.released_at = Some(day(2026, 7, 1));
    let r = pass(&s, Enforcement::Both, vec![hold], day(2026, 7, 2)).await;
    assert_eq!(r.legal_holds_cleared, 0);
    assert!(s.legal_hold("audio/r1.wav"), "the owner's legal hold stays");
}

#[tokio::test]
async fn deletions_are_journaled_before_they_are_made() {
    let s = seeded();
    let r = pass(&s, Enforcement::Operator, vec![], day(2030, 1, 1)).await;
    assert!(r.deleted > 0);
    let requests = s.requests();
    let delete_at = requests
        .iter()
        .position(|o| *o == Operation::DeleteObjects)
        .expect("deleted");
    assert_eq!(
        requests[delete_at - 1],
        Operation::PutObject,
        "the intent is written right before the request"
    );
    let key = format!("{}journal/", crate::state::journal::DEFAULT_PREFIX);
    let mut lines = Vec::new();
    let page = s
        .list_page(Some(&key), false, None, 1000)
        .await
        .expect("list");
    for o in page.objects {
        let body = s.get_object(&o.key).await.expect("read").expect("exists");
        lines.extend(
            String::from_utf8(body)
                .expect("utf-8")
                .lines()
                .map(String::from),
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"fact\":\"deletionsIntended\""))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"fact\":\"deletionsConfirmed\""))
    );
    // The journal is never a recording: not counted, not deleted.
    assert_eq!(r.summary.unclassified, 1, "only misc/readme.txt");
}

#[tokio::test]
async fn observe_mode_writes_no_journal() {
    let s = seeded();
    pass(
        &s,
        Enforcement::Observe,
        vec![complaint_on("r1")],
        day(2030, 1, 1),
    )
    .await;
    assert!(!s.requests().contains(&Operation::PutObject));
}

#[tokio::test]
async fn a_journal_that_cannot_be_written_stops_the_release() {
    let s = MemoryStore::new("calls").object_lock();
    s.put("audio/r1.wav", day(2020, 1, 10), 100, &[]);
    let mut hold = complaint_on("r1");
    pass(&s, Enforcement::Both, vec![hold.clone()], day(2026, 6, 1)).await;
    s.inject(Fault {
        operation: Operation::PutObject,
        key: None,
        category: ErrorCategory::ServerError,
        times: 1,
    });
    hold.released_at = Some(day(2026, 7, 1));
    let err = reconcile(
        &s,
        &policy(),
        &rules(Enforcement::Both),
        vec![hold],
        day(2026, 7, 2),
        PassConfig::default(),
        &|_| {},
    )
    .await
    .expect_err("the release is not durable");
    assert_eq!(err.category(), "server_error");
    assert!(s.legal_hold("audio/r1.wav"), "nothing lowered");
    assert_eq!(
        s.tags("audio/r1.wav")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
            .as_deref(),
        Some("held")
    );
}

#[tokio::test]
async fn a_foreign_rule_that_can_expire_governed_recordings_is_reported_and_left_alone() {
    let s = seeded();
    let rule = |id: &str, prefix: &str| {
        aws_sdk_s3::types::LifecycleRule::builder()
            .id(id)
            .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
            .filter(
                aws_sdk_s3::types::LifecycleRuleFilter::builder()
                    .prefix(prefix)
                    .build(),
            )
            .expiration(
                aws_sdk_s3::types::LifecycleExpiration::builder()
                    .days(30)
                    .build(),
            )
            .build()
            .expect("rule")
    };
    let dangerous = rule("purge-audio", "audio/");
    let harmless = rule("purge-logs", "logs/");
    s.set_lifecycle(Some(vec![
        StoredRule::Foreign(ForeignRule {
            id: Some("purge-audio".into()),
            raw: dangerous.clone(),
        }),
        StoredRule::Foreign(ForeignRule {
            id: Some("purge-logs".into()),
            raw: harmless,
        }),
    ]));
    // The bucket governs `audio/` only: a rule over `logs/` cannot reach a recording.
    let mut governed = rules(Enforcement::Both);
    governed.prefix = Some("audio/".into());
    let r = reconcile(
        &s,
        &policy(),
        &governed,
        vec![],
        day(2026, 2, 1),
        PassConfig::default(),
        &|_| {},
    )
    .await
    .expect("the pass runs");
    assert_eq!(r.dangerous_rules, vec!["purge-audio".to_string()]);
    // Over the whole bucket, every expiring rule can.
    let r = pass(&s, Enforcement::Both, vec![], day(2026, 2, 1)).await;
    assert_eq!(r.dangerous_rules.len(), 2);
    let rules = s.lifecycle().expect("lifecycle");
    assert!(
        rules.contains(&StoredRule::Foreign(ForeignRule {
            id: Some("purge-audio".into()),
            raw: dangerous
        })),
        "never edited"
    );
}

fn hold_source(f: impl Fn() -> Result<Vec<Hold>, String> + Send + Sync + 'static) -> HoldsSource {
    HoldsSource(std::sync::Arc::new(move || {
        Box::pin(std::future::ready(f()))
    }))
}

#[tokio::test]
async fn a_hold_created_during_the_pass_defers_its_deletions() {
    let s = seeded();
    let config = PassConfig {
        holds_now: Some(hold_source(|| Ok(vec![complaint_on("r1")]))),
        ..PassConfig::default()
    };
    let r = pass_with(&s, Enforcement::Operator, vec![], day(2030, 1, 1), config).await;
    assert_eq!(r.deleted, 0);
    assert_eq!(r.deletes_deferred, 3);
    let blocked = r.deletes_blocked.expect("blocked");
    assert_eq!(blocked.reason, "HoldsChanged");
    assert!(
        blocked.message.contains("test/complaint-1"),
        "{}",
        blocked.message
    );
    assert_eq!(r.summary.overdue, 3, "still counted as they are");
    assert!(!s.requests().contains(&Operation::DeleteObjects));
}

#[tokio::test]
async fn holds_that_cannot_be_read_again_defer_deletions_and_unchanged_ones_do_not() {
    let s = seeded();
    let config = PassConfig {
        holds_now: Some(hold_source(|| Err("API server unreachable".into()))),
        ..PassConfig::default()
    };
    let r = pass_with(&s, Enforcement::Operator, vec![], day(2030, 1, 1), config).await;
    assert_eq!(r.deleted, 0);
    assert_eq!(r.deletes_blocked.map(|b| b.reason), Some("HoldsUnreadable"));
    let config = PassConfig {
        holds_now: Some(hold_source(|| Ok(vec![complaint_on("r2")]))),
        ..PassConfig::default()
    };
    let r = pass_with(
        &s,
        Enforcement::Operator,
        vec![complaint_on("r2")],
        day(2030, 1, 1),
        config,
    )
    .await;
    assert!(r.deletes_blocked.is_none());
    assert_eq!(r.deleted, 2, "r1's audio and transcript; r2 is held");
}

#[tokio::test]
async fn an_object_replaced_after_it_was_listed_is_not_deleted() {
    let s = std::sync::Arc::new(seeded());
    let store = s.clone();
    // Right before the deletions, a recorder re-uploads r1's audio under the same key.
    let config = PassConfig {
        holds_now: Some(hold_source(move || {
            store.put("audio/r1.wav", day(2029, 12, 31), 333, &[]);
            Ok(vec![])
        })),
        ..PassConfig::default()
    };
    let r = pass_with(&s, Enforcement::Operator, vec![], day(2030, 1, 1), config).await;
    assert_eq!(r.deletes_skipped_changed, 1);
    assert_eq!(r.deleted, 2);
    assert!(
        s.live_keys().contains("audio/r1.wav"),
        "the new upload stays"
    );
}

#[tokio::test]
async fn a_batch_the_store_refuses_is_settled_object_by_object_and_the_bad_key_named() {
    let s = seeded();
    s.inject(Fault {
        operation: Operation::DeleteObjects,
        key: None,
        category: ErrorCategory::Other,
        times: 1,
    });
    s.inject(Fault {
        operation: Operation::DeleteObject,
        key: Some("text/r1.json".into()),
        category: ErrorCategory::Other,
        times: 1,
    });
    let r = pass(&s, Enforcement::Operator, vec![], day(2030, 1, 1)).await;
    assert_eq!(r.deleted, 2, "the others are deleted alone");
    assert_eq!(r.delete_failures, 1);
    assert!(
        r.sample_errors.iter().any(|e| e.contains("text/r1.json")),
        "{:?}",
        r.sample_errors
    );
    assert_eq!(
        recordings(&s),
        ["misc/readme.txt", "text/r1.json"].map(String::from).into()
    );
    assert!(
        first_seen_of(&s)
            .await
            .keys()
            .all(|v| v.key != "audio/r1.wav"),
        "deleted: forgotten"
    );
}

#[tokio::test]
async fn a_lost_delete_answer_is_settled_by_looking() {
    let s = seeded();
    s.inject(Fault {
        operation: Operation::DeleteObjects,
        key: None,
        category: ErrorCategory::Unreachable,
        times: 1,
    });
    let r = pass(&s, Enforcement::Operator, vec![], day(2030, 1, 1)).await;
    assert_eq!(r.deleted, 3);
    assert_eq!(r.delete_failures, 0);
    assert_eq!(r.summary.overdue, 0, "the overdue count stays exact");
}

#[tokio::test]
async fn a_skewed_clock_stops_deletions_and_the_earlier_clock_decides() {
    let s = seeded();
    // The store is ten minutes behind: beyond the bound.
    s.set_server_time(Some(day(2030, 1, 1) - chrono::Duration::minutes(10)));
    let r = pass(&s, Enforcement::Operator, vec![], day(2030, 1, 1)).await;
    assert_eq!(r.deleted, 0);
    assert_eq!(r.clock_skew_seconds, Some(600));
    assert_eq!(r.deletes_blocked.map(|b| b.reason), Some("ClockSkew"));
    // Within the bound, the store's (earlier) clock decides: r1's audio is due at
    // 2027-01-10 09:00 by the store's clock only 30 s later, so it stays.
    let deadline = day(2027, 1, 10);
    s.set_server_time(Some(deadline - chrono::Duration::seconds(30)));
    let s2 = MemoryStore::new("calls");
    s2.put("audio/r1.wav", day(2026, 1, 10), 100, &[]);
    s2.set_server_time(Some(deadline - chrono::Duration::seconds(30)));
    let r = pass(
        &s2,
        Enforcement::Operator,
        vec![],
        deadline + chrono::Duration::seconds(1),
    )
    .await;
    assert!(r.deletes_blocked.is_none());
    assert_eq!(r.deleted, 0, "not yet due by the store's clock");
    assert!(s2.live_keys().contains("audio/r1.wav"));
}

#[tokio::test]
async fn deadlines_count_from_the_first_creation_time_gallring_saw() {
    // Like Ceph RGW: every tag write moves LastModified to the store's clock.
    let s = MemoryStore::new("calls").tag_writes_move_last_modified();
    s.put("audio/r1.wav", day(2026, 1, 10), 100, &[]);
    s.set_clock(day(2026, 6, 1));
    pass(&s, Enforcement::Operator, vec![], day(2026, 6, 1)).await;
    let r = pass(&s, Enforcement::Operator, vec![], day(2026, 6, 2)).await;
    assert_eq!(r.last_modified_moved, 1, "the move is seen and counted");
    // Due one year after the call (2027-01-10), not after the tag write (2027-06-01).
    let r = pass(&s, Enforcement::Operator, vec![], day(2027, 1, 11)).await;
    assert_eq!(r.deleted, 1);
}

/// The same across many first-seen shards (16 entries each in unit tests): every page loads
/// the shards of its keys, and no object counts from the moved time.
#[tokio::test]
async fn deadlines_count_from_the_first_creation_time_in_every_shard() {
    let s = MemoryStore::new("calls").tag_writes_move_last_modified();
    for i in 0..200 {
        s.put(&format!("audio/r{i:03}.wav"), day(2026, 1, 10), 100, &[]);
    }
    s.set_clock(day(2026, 6, 1));
    pass(&s, Enforcement::Operator, vec![], day(2026, 6, 1)).await;
    let shards = crate::state::Journal::load(&s, crate::state::journal::DEFAULT_PREFIX)
        .await
        .expect("journal")
        .state()
        .seen
        .shards()
        .len();
    assert!(shards > 4, "200 entries in several shards: {shards}");
    let r = pass(&s, Enforcement::Operator, vec![], day(2026, 6, 2)).await;
    assert_eq!(r.last_modified_moved, 200, "every move is seen and counted");
    let r = pass(&s, Enforcement::Operator, vec![], day(2027, 1, 9)).await;
    assert_eq!(r.deleted, 0, "not due yet");
    let r = pass(&s, Enforcement::Operator, vec![], day(2027, 1, 11)).await;
    assert_eq!(
        r.deleted, 200,
        "due one year after the call, in every shard"
    );
    assert!(first_seen_of(&s).await.is_empty(), "deleted: forgotten");
}

#[tokio::test]
async fn an_unreadable_object_while_linking_holds_blocks_deletions_not_the_pass() {
    let s = seeded();
    s.inject(Fault {
        operation: Operation::GetObjectTagging,
        key: Some("text/r1.json".into()),
        category: ErrorCategory::ServerError,
        times: 1,
    });
    let mut hold = complaint_on("r2");
    // A tag selector: linking reads every object's tags.
    hold.select = HoldSelector {
        tags: [("team".to_string(), Some("claims".to_string()))].into(),
        ..Default::default()
    };
    let r = pass(&s, Enforcement::Operator, vec![hold], day(2030, 1, 1)).await;
    assert_eq!(r.deleted, 0);
    assert_eq!(r.deletes_blocked.map(|b| b.reason), Some("HoldsUnlinked"));
    assert!(r.object_errors >= 1);
}

#[tokio::test]
async fn the_journal_can_live_in_another_bucket_under_object_lock_retention() {
    let data = seeded();
    let state = MemoryStore::new("calls-state").object_lock();
    let config = PassConfig {
        state: crate::retention::StateLocation {
            bucket: Some("calls-state".into()),
            prefix: "journal-of-calls/".into(),
            retention: Some(IsoDuration::months(120)),
        },
        ..PassConfig::default()
    };
    let now = day(2030, 1, 1);
    let r = reconcile_in(
        &data,
        &state,
        &policy(),
        &rules(Enforcement::Operator),
        vec![],
        now,
        config,
        &|_| {},
    )
    .await
    .expect("the pass runs");
    assert_eq!(r.deleted, 3);
    assert!(
        data.live_keys()
            .iter()
            .all(|k| !k.starts_with(".gallring/")),
        "nothing of gallring's in the recordings bucket: {:?}",
        data.live_keys()
    );
    let segments: Vec<String> = state
        .live_keys()
        .into_iter()
        .filter(|k| k.starts_with("journal-of-calls/journal/"))
        .collect();
    assert!(!segments.is_empty(), "{:?}", state.live_keys());
    for key in &segments {
        let until = state
            .retention(&crate::store::ObjectId {
                key: key.clone(),
                version_id: None,
            })
            .expect("every segment is retained");
        assert!(until > now + chrono::Duration::days(3600), "{key}: {until}");
    }
    let journal = crate::state::Journal::load(&state, "journal-of-calls/")
        .await
        .expect("journal");
    let all = journal.first_seen_all(&state).await.expect("shards");
    let seen: Vec<&str> = all.keys().map(|v| v.key.as_str()).collect();
    assert_eq!(
        seen,
        vec!["misc/readme.txt"],
        "deleted versions are forgotten"
    );
}

#[tokio::test]
async fn versions_gone_from_the_listing_are_forgotten_by_the_journal() {
    let s = seeded();
    pass(&s, Enforcement::Lifecycle, vec![], day(2026, 2, 1)).await;
    assert_eq!(first_seen_of(&s).await.len(), 4);
    // Lifecycle (or anyone) removes one: the next complete pass drops it from the state.
    s.delete_objects(&[crate::store::ObjectId {
        key: "text/r1.json".into(),
        version_id: None,
    }])
    .await
    .expect("deleted");
    pass(&s, Enforcement::Lifecycle, vec![], day(2026, 2, 2)).await;
    let j = first_seen_of(&s).await;
    assert_eq!(j.len(), 3);
    assert!(j.keys().all(|v| v.key != "text/r1.json"));
}

// ---------------------------------------------------------------------------------------------
// The index (issue 9)

fn with_index(ix: &std::sync::Arc<crate::state::index::Index>, days: i64) -> PassConfig {
    PassConfig {
        index: Some(IndexConfig {
            index: ix.clone(),
            verify_interval: chrono::Duration::days(days),
            snapshot_interval: chrono::Duration::hours(1),
        }),
        ..PassConfig::default()
    }
}

/// A pass with the shared index `ix` and a verification interval of `days`.
async fn warm(
    s: &MemoryStore,
    ix: &std::sync::Arc<crate::state::index::Index>,
    enforcement: Enforcement,
    holds: Vec<Hold>,
    now: DateTime<Utc>,
    days: i64,
) -> PassReport {
    pass_with(s, enforcement, holds, now, with_index(ix, days)).await
}

fn new_index() -> std::sync::Arc<crate::state::index::Index> {
    std::sync::Arc::new(crate::state::index::Index::in_memory().expect("in-memory index"))
}

/// Requests about single objects (everything but listings, bucket calls and the state).
fn object_reads(ops: &[Operation]) -> usize {
    ops.iter()
        .filter(|o| {
            matches!(
                o,
                Operation::GetObjectTagging | Operation::HeadObject | Operation::GetObjectLegalHold
            )
        })
        .count()
}

#[tokio::test]
async fn a_steady_pass_with_an_index_reads_no_object() {
    let s = seeded();
    let ix = new_index();
    let cold = warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 1), 7).await;
    assert_eq!(cold.index.changed, 4, "{:?}", cold.index);
    assert_eq!(cold.tags_written, 3);
    s.clear_requests();
    let warm = warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 2), 7).await;
    let ops = s.requests();
    assert_eq!(object_reads(&ops), 1, "only the snapshot's HEAD: {ops:?}");
    assert_eq!(writes(&ops), vec![]);
    assert_eq!(warm.index.hits, 4, "{:?}", warm.index);
    // The same counts as a pass that reads everything.
    let cold_again = pass(&s, Enforcement::Both, vec![], day(2026, 2, 2)).await;
    assert_eq!(warm.summary, cold_again.summary);
}

#[tokio::test]
async fn a_tag_changed_behind_gallrings_back_is_read_again_within_the_verify_interval() {
    let s = seeded();
    let ix = new_index();
    warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 1), 7).await;
    // Consent given after the fact: the quality purpose keeps the audio 18 months.
    let id = crate::store::ObjectId {
        key: "audio/r1.wav".into(),
        version_id: None,
    };
    let mut tags = s.tags("audio/r1.wav").expect("exists");
    tags.insert("consent".into(), "given".into());
    s.put_tags(&id, &tags).await.expect("tag write");
    let retention = |s: &MemoryStore| {
        s.tags("audio/r1.wav")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
    };
    // The tag write moved nothing the listing shows: the next day's pass trusts the index.
    let next_day = warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 2), 7).await;
    assert_eq!(retention(&s).as_deref(), Some("expire-365d"));
    assert_eq!(next_day.index.hits, 4);
    // Within the interval every object is read again and the change is acted on.
    let week = warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 8), 7).await;
    assert_eq!(retention(&s).as_deref(), Some("expire-546d"));
    assert_eq!(week.index.verified, 4, "{:?}", week.index);
    assert_eq!(
        s.tags("audio/r1.wav")
            .and_then(|t| t.get("team").cloned())
            .as_deref(),
        Some("claims"),
        "foreign tags kept"
    );
}

async fn delete_key(s: &MemoryStore, key: &str) {
    let id = crate::store::ObjectId {
        key: key.into(),
        version_id: None,
    };
    s.delete_object(&id, None).await.expect("delete");
}

/// Two identical buckets where objects changed behind gallring's back (replaced, deleted,
/// added); one is reconciled with an index that knew the old state, one cold.
async fn changed_behind_gallrings_back(
    ix: Option<&std::sync::Arc<crate::state::index::Index>>,
) -> (MemoryStore, PassReport) {
    let s = seeded();
    s.put("audio/r3.wav", day(2025, 1, 25), 100, &[]);
    let config = |ix: Option<&std::sync::Arc<_>>| {
        ix.map_or_else(PassConfig::default, |ix| with_index(ix, 30))
    };
    pass_with(&s, Enforcement::Both, vec![], day(2026, 1, 20), config(ix)).await;
    // A new recording under an old key (recorded 2025-01-01: past its year), one removed by
    // someone else, one new.
    s.put("audio/r1.wav", day(2025, 1, 1), 120, &[("team", "claims")]);
    delete_key(&s, "text/r1.json").await;
    s.put("audio/r4.wav", day(2026, 1, 15), 100, &[]);
    let r = pass_with(
        &s,
        Enforcement::Operator,
        vec![],
        day(2026, 2, 1),
        config(ix),
    )
    .await;
    (s, r)
}

#[tokio::test]
async fn an_index_of_objects_changed_behind_gallrings_back_decides_as_a_cold_pass() {
    let ix = new_index();
    let (warm, wr) = changed_behind_gallrings_back(Some(&ix)).await;
    let (cold, cr) = changed_behind_gallrings_back(None).await;
    assert_eq!(wr.summary, cr.summary);
    assert_eq!(wr.deleted, cr.deleted);
    assert!(
        wr.deleted >= 2,
        "the replaced r1 and the old r3 are past their year: {wr:?}"
    );
    let recordings = |s: &MemoryStore| -> std::collections::BTreeSet<String> {
        s.live_keys()
            .into_iter()
            .filter(|k| !k.starts_with(crate::retention::DEFAULT_STATE_PREFIX))
            .collect()
    };
    assert_eq!(recordings(&warm), recordings(&cold));
    for k in recordings(&warm) {
        assert_eq!(warm.tags(&k), cold.tags(&k), "{k}");
    }
    // r1's entry was replaced (same key, no versions); r3, deleted by gallring, is dropped
    // at once; text/r1, gone 12 days into its three years, was removed by someone else.
    assert_eq!(wr.index.swept, 1, "text/r1: {:?}", wr.index);
    assert_eq!((wr.gone_by_others, wr.gone_by_lifecycle), (1, 0));
    // Read: r1 (replaced) and r4 (new), and r3, whose deletion is decided on what the store
    // says now; from the index: r2 and the unclassified readme.
    assert_eq!(
        (wr.index.changed, wr.index.read_for_writes, wr.index.hits),
        (2, 1, 2),
        "{:?}",
        wr.index
    );
}

/// A pass with the index `ix`, in pages of 4 (a listing of 30 objects is cut into several
/// ranges, and a cold pass journals several segments).
async fn pass_in_pages_of_four(
    s: &MemoryStore,
    ix: &std::sync::Arc<crate::state::index::Index>,
    now: DateTime<Utc>,
) -> PassReport {
    let config = PassConfig {
        page_size: 4,
        ..with_index(ix, 7)
    };
    pass_with(s, Enforcement::Both, vec![], now, config).await
}

/// 30 recordings, a new index, and the cold pass over them in pages of 4.
async fn thirty_in_pages_of_four() -> (
    MemoryStore,
    std::sync::Arc<crate::state::index::Index>,
    PassReport,
) {
    let s = MemoryStore::new("calls");
    for i in 0..30 {
        s.put(&format!("audio/r{i:02}.wav"), day(2026, 1, 10), 100, &[]);
    }
    let ix = new_index();
    let cold = pass_in_pages_of_four(&s, &ix, day(2026, 2, 1)).await;
    (s, ix, cold)
}

/// With an index, a plain bucket's listing is cut where the last complete listing recorded
/// its cuts (every 900th key of pages of 1,000; here every 3rd of pages of 4), the ranges
/// are listed side by side, and the pass decides as one listing from the start would.
#[tokio::test]
async fn a_steady_pass_lists_in_ranges_cut_where_the_last_listing_recorded_and_decides_the_same() {
    let (s, ix, cold) = thirty_in_pages_of_four().await;
    let cuts = ix.cuts().expect("cuts");
    let every_third: Vec<String> = (0..30)
        .skip(2)
        .step_by(3)
        .map(|i| format!("audio/r{i:02}.wav"))
        .collect();
    assert_eq!(cuts, every_third, "the cold pass records where to cut");
    assert!(s.listed_after().is_empty(), "a cold index gives no cuts");
    s.clear_requests();
    let steady = pass_in_pages_of_four(&s, &ix, day(2026, 2, 2)).await;
    // Every range after the first starts after its cut, once: a range of 3 keys takes one
    // page of 4 (its 4th key is the next range's). (The journal's keys are jumped over.)
    let after_cuts: Vec<String> = s
        .listed_after()
        .into_iter()
        .filter(|k| !k.starts_with(crate::retention::DEFAULT_STATE_PREFIX))
        .collect();
    assert_eq!(after_cuts, cuts);
    assert_eq!(steady.summary, cold.summary);
    assert_eq!(steady.index.hits, 30, "{:?}", steady.index);
    assert_eq!(ix.cuts().expect("cuts"), every_third, "the same cuts again");
}

/// The journal's keys in the bucket cost a steady pass's listing one page at most: a page
/// that ends among them is followed by the first key after them.
#[tokio::test]
async fn a_steady_pass_jumps_over_the_journals_keys_in_its_listing() {
    let (s, ix, cold) = thirty_in_pages_of_four().await;
    let state_keys = s
        .live_keys()
        .iter()
        .filter(|k| k.starts_with(crate::retention::DEFAULT_STATE_PREFIX))
        .count();
    assert!(
        state_keys >= 9,
        "pages of 4 would list them in 3 or more: {state_keys}"
    );
    s.clear_requests();
    let steady = pass_in_pages_of_four(&s, &ix, day(2026, 2, 2)).await;
    let listings = s
        .requests()
        .iter()
        .filter(|o| **o == Operation::ListObjects)
        .count();
    let ranges = ix.cuts().expect("cuts").len() + 1;
    // Each range's page, the first range's page after the jump, the journal's segments.
    assert!(
        listings <= ranges + 2,
        "{listings} listings for {ranges} ranges and {state_keys} keys of state"
    );
    assert_eq!(steady.summary, cold.summary);
    assert_eq!(steady.index.hits, 30, "{:?}", steady.index);
}

/// A quiet pass writes the journal's checkpoint when segments wait since the last one, so
/// the next pass reads the checkpoint and its first-seen shard, no segment, and decides the
/// same; a pass that journals something leaves that to a quiet one.
#[tokio::test]
async fn a_quiet_pass_settles_the_journal_and_the_next_reads_no_segment() {
    let (s, ix, cold) = thirty_in_pages_of_four().await;
    let gets = |s: &MemoryStore| {
        let ops = s.requests();
        ops.iter().filter(|o| **o == Operation::GetObject).count()
    };
    assert!(cold.journal_facts >= 8, "first seen, a segment a page");
    assert!(!cold.journal_settled);
    s.clear_requests();
    let steady = pass_in_pages_of_four(&s, &ix, day(2026, 2, 2)).await;
    assert_eq!(steady.journal_facts, 0);
    assert!(steady.journal_settled, "{steady:?}");
    assert!(gets(&s) >= 8, "every segment read: {:?}", s.requests());
    s.clear_requests();
    let next = pass_in_pages_of_four(&s, &ix, day(2026, 2, 3)).await;
    assert!(!next.journal_settled, "nothing left to settle");
    let read = gets(&s);
    let shards = crate::state::Journal::load(&s, crate::state::journal::DEFAULT_PREFIX)
        .await
        .expect("load")
        .state()
        .seen
        .shards()
        .len();
    assert_eq!(
        read,
        1 + shards,
        "the checkpoint and its shards: {:?}",
        s.requests()
    );
    assert_eq!(next.summary, cold.summary);
    assert_eq!(next.index.hits, 30, "{:?}", next.index);
}

#[tokio::test]
async fn a_new_leader_starts_from_the_snapshot_and_a_lost_index_costs_one_cold_pass() {
    let s = seeded();
    let first = new_index();
    let r = warm(&s, &first, Enforcement::Both, vec![], day(2026, 2, 1), 7).await;
    assert_eq!(r.index.snapshot_entries, Some(4), "{:?}", r.index);
    // A new leader with an empty disk: warm from the snapshot, no object read.
    let second = new_index();
    s.clear_requests();
    let r = warm(&s, &second, Enforcement::Both, vec![], day(2026, 2, 2), 7).await;
    assert_eq!(r.index.restored, 4);
    assert_eq!(r.index.hits, 4);
    assert_eq!(object_reads(&s.requests()), 1, "{:?}", s.requests());
    // No snapshot and no index: a cold pass, the same decisions.
    let key = cache::snapshot_key(crate::retention::DEFAULT_STATE_PREFIX);
    delete_key(&s, &key).await;
    let third = new_index();
    let cold = warm(&s, &third, Enforcement::Both, vec![], day(2026, 2, 2), 7).await;
    assert_eq!(cold.index.restored, 0);
    assert_eq!(cold.index.changed, 4);
    assert_eq!(cold.summary, r.summary);
    let ops = s.requests();
    assert_eq!(writes(&ops), vec![], "{ops:?}");
    assert_eq!(
        ops.iter().filter(|o| **o == Operation::PutObject).count(),
        2,
        "the new snapshot, one part and its manifest: {ops:?}"
    );
}

#[tokio::test]
async fn a_hold_is_decided_on_what_the_store_says_now() {
    let s = seeded();
    let ix = new_index();
    warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 1), 7).await;
    let r = warm(
        &s,
        &ix,
        Enforcement::Both,
        vec![complaint_on("r1")],
        day(2026, 2, 2),
        7,
    )
    .await;
    assert_eq!(r.summary.held, 2, "audio and transcript of r1");
    assert_eq!(
        s.tags("text/r1.json")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
            .as_deref(),
        Some("held")
    );
    assert_eq!(r.index.read_for_writes, 2, "{:?}", r.index);
    assert_eq!(r.index.hits, 2);
}

#[tokio::test]
async fn a_new_hold_protects_what_the_index_selects_before_the_listing() {
    let s = MemoryStore::new("calls").object_lock();
    s.put("audio/r1.wav", day(2025, 6, 1), 100, &[]);
    s.put("text/r1.json", day(2025, 6, 1), 100, &[]);
    s.put("audio/r2.wav", day(2025, 6, 1), 100, &[]);
    let ix = new_index();
    warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 1), 7).await;
    // What the store looked like when the pass reported the hold-first step.
    let seen: std::sync::Mutex<Option<(bool, bool, Option<String>)>> = Default::default();
    let progress = |p: Progress| {
        if p.pages == 0 {
            *seen.lock().expect("lock") = Some((
                s.legal_hold("audio/r1.wav"),
                s.legal_hold("text/r1.json"),
                s.tags("text/r1.json")
                    .and_then(|t| t.get(RETENTION_TAG).cloned()),
            ));
        }
    };
    let r = reconcile(
        &s,
        &policy(),
        &rules(Enforcement::Both),
        vec![complaint_on("r1")],
        day(2026, 2, 2),
        with_index(&ix, 7),
        &progress,
    )
    .await
    .expect("the pass runs");
    assert_eq!(
        r.protected_ahead, 2,
        "the audio by id and its transcript by link"
    );
    assert_eq!(
        seen.lock().expect("lock").clone(),
        Some((true, true, Some("held".to_string()))),
        "both protected before the first listing page"
    );
    assert_eq!(r.summary.held, 2);
    assert!(!s.legal_hold("audio/r2.wav"));
    // The legal holds are gallring's: journaled before they were set.
    let j = journal_of(&s).await;
    let ours: Vec<&str> = j.legal_holds.iter().map(|v| v.key.as_str()).collect();
    assert_eq!(ours, vec!["audio/r1.wav", "text/r1.json"]);
}

/// A hold scoped by recording time links the artifacts of the recordings it selects by when
/// they were first seen, as it selects them: Ceph RGW 16 moves `LastModified` when gallring
/// writes tags, and linking by the listed time left a held recording's transcript expiring.
#[tokio::test]
async fn a_hold_scoped_by_recording_time_links_by_first_seen_times_after_tag_writes_moved_them() {
    let s = MemoryStore::new("calls").tag_writes_move_last_modified();
    s.put("audio/r1.wav", day(2025, 6, 1), 100, &[]);
    s.put("text/r1.json", day(2025, 6, 1), 100, &[]);
    s.set_clock(day(2026, 2, 1));
    pass(&s, Enforcement::Both, vec![], day(2026, 2, 1)).await;
    // First-seen times in a shard, as after any checkpoint: read only when asked for.
    let mut j = crate::state::Journal::load(&s, crate::state::journal::DEFAULT_PREFIX)
        .await
        .expect("load");
    j.checkpoint(&s).await.expect("checkpoint");
    let mut hold = complaint_on("r1");
    hold.select = HoldSelector {
        prefix: Some("audio/".into()),
        recorded_before: Some(day(2026, 1, 1)),
        ..Default::default()
    };
    let r = pass(&s, Enforcement::Both, vec![hold], day(2026, 2, 2)).await;
    assert_eq!(r.summary.held, 2, "{:?}", r.summary);
    assert_eq!(
        s.tags("text/r1.json")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
            .as_deref(),
        Some("held")
    );
}

/// The hold-first step reads first-seen shards only for a new hold scoped by recording time:
/// what else a hold selects, and the `held` tag, do not depend on when an object was first
/// seen. A hold scoped by time does read them, so an object whose `LastModified` gallring's
/// own tag write moved still counts from its creation and is protected ahead of the listing.
#[tokio::test]
async fn the_hold_first_step_reads_first_seen_shards_only_for_a_hold_scoped_by_recording_time() {
    async fn hold_first(hold: Hold) -> (usize, PassReport, MemoryStore) {
        let s = MemoryStore::new("calls").tag_writes_move_last_modified();
        for r in ["r1", "r2"] {
            s.put(&format!("audio/{r}.wav"), day(2025, 6, 1), 100, &[]);
            s.put(&format!("text/{r}.json"), day(2025, 6, 1), 100, &[]);
        }
        let ix = new_index();
        // Tagged on 2026-02-01 (`LastModified` moves there, and the next pass takes the
        // moved time into the index), then the journal checkpointed: its first-seen times
        // are in a shard.
        s.set_clock(day(2026, 2, 1));
        warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 1), 7).await;
        warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 1), 7).await;
        let e = ix.get("audio/r1.wav", None).expect("read").expect("entry");
        assert_eq!(e.last_modified, day(2026, 2, 1), "the moved time");
        let mut j = crate::state::Journal::load(&s, crate::state::journal::DEFAULT_PREFIX)
            .await
            .expect("load");
        j.checkpoint(&s).await.expect("checkpoint");
        assert!(
            s.live_keys().iter().any(|k| k.contains("/seen/")),
            "a shard"
        );
        s.clear_requests();
        // The requests up to the hold-first step's report (before the first listing page).
        let until_step: std::sync::Mutex<Vec<Operation>> = Default::default();
        let progress = |p: Progress| {
            if p.pages == 0 {
                *until_step.lock().expect("lock") = s.requests();
            }
        };
        let r = reconcile(
            &s,
            &policy(),
            &rules(Enforcement::Both),
            vec![hold],
            day(2026, 2, 2),
            with_index(&ix, 7),
            &progress,
        )
        .await
        .expect("the pass runs");
        let ops = until_step.lock().expect("lock").clone();
        // After the hold's intent is journaled (the first write), the step's own reads.
        let shard_reads = ops
            .iter()
            .skip_while(|o| **o != Operation::PutObject)
            .filter(|o| **o == Operation::GetObject)
            .count();
        (shard_reads, r, s)
    }
    let held = |s: &MemoryStore, key: &str| {
        s.tags(key).and_then(|t| t.get(RETENTION_TAG).cloned()) == Some("held".into())
    };

    let (reads, r, s) = hold_first(complaint_on("r1")).await;
    assert_eq!(reads, 0, "no shard for a hold by recording id");
    assert_eq!(r.protected_ahead, 2, "{r:?}");
    assert!(held(&s, "audio/r1.wav") && held(&s, "text/r1.json"));
    assert!(!held(&s, "audio/r2.wav"));

    let mut scoped = complaint_on("r1");
    scoped.select = HoldSelector {
        prefix: Some("audio/".into()),
        recorded_before: Some(day(2026, 1, 1)),
        ..Default::default()
    };
    let (reads, r, s) = hold_first(scoped).await;
    assert!(reads >= 1, "the first-seen shard is read");
    // Both audio files, recorded (first seen) 2025-06-01 though listed as 2026-02-01, and
    // their transcripts by link; ahead of the listing, and by the listing.
    assert_eq!(r.protected_ahead, 4, "{r:?}");
    assert_eq!(r.summary.held, 4, "{:?}", r.summary);
    for key in [
        "audio/r1.wav",
        "audio/r2.wav",
        "text/r1.json",
        "text/r2.json",
    ] {
        assert!(held(&s, key), "{key}: {:?}", s.tags(key));
    }
    assert_eq!(r.tags_written, 4, "nothing written twice: {r:?}");
}

#[tokio::test]
async fn a_version_lifecycle_expired_and_one_removed_early_are_told_apart_in_the_journal() {
    let s = seeded();
    let ix = new_index();
    warm(&s, &ix, Enforcement::Both, vec![], day(2026, 2, 1), 400).await;
    // A year on, lifecycle expires audio/r1 (expire-365d from 2026-01-10); someone deletes
    // audio/r2 (expire-546d) early.
    delete_key(&s, "audio/r1.wav").await;
    delete_key(&s, "audio/r2.wav").await;
    let r = warm(&s, &ix, Enforcement::Both, vec![], day(2027, 1, 12), 400).await;
    assert_eq!(
        (r.gone_by_lifecycle, r.gone_by_others),
        (1, 1),
        "{:?}",
        r.index
    );
    let key = format!("{}journal/", crate::state::journal::DEFAULT_PREFIX);
    let page = s
        .list_page(Some(&key), false, None, 1000)
        .await
        .expect("list");
    let mut records: Vec<crate::state::journal::Record> = Vec::new();
    for o in page.objects {
        let body = s.get_object(&o.key).await.expect("read").expect("exists");
        for line in String::from_utf8(body).expect("utf-8").lines() {
            records.push(serde_json::from_str(line).expect("a record"));
        }
    }
    let gone: Vec<crate::state::journal::GoneObject> = records
        .iter()
        .filter_map(|rec| match &rec.fact {
            crate::state::journal::Fact::ObjectsGoneObserved { since, objects } => {
                assert_eq!(*since, Some(day(2026, 2, 1)));
                Some(objects.clone())
            }
            _ => None,
        })
        .flatten()
        .collect();
    let by_key: BTreeMap<&str, (crate::state::journal::GoneCause, Option<&str>)> = gone
        .iter()
        .map(|g| (g.key.as_str(), (g.cause, g.rule.as_deref())))
        .collect();
    use crate::state::journal::GoneCause;
    assert_eq!(by_key["audio/r1.wav"].0, GoneCause::Lifecycle);
    assert!(
        by_key["audio/r1.wav"]
            .1
            .is_some_and(|r| r.starts_with("gallring-"))
    );
    assert_eq!(by_key["audio/r2.wav"].0, GoneCause::Others);
}

/// An erasure of `subject`'s recordings, received at `received`.
fn erasure_of(subject: &str, received: DateTime<Utc>) -> crate::retention::SubjectRequest {
    crate::retention::SubjectRequest {
        name: "SubjectRequest/test/erase".into(),
        kind: crate::retention::RequestType::Erasure,
        recording_ids: Default::default(),
        subjects: [subject.to_string()].into(),
        keys: Default::default(),
        purposes: Default::default(),
        received_at: received,
        reference: "DSR-1".into(),
        lifted_at: None,
    }
}

/// Issue 12: an erasure by subject reaches the transcript (linked by recording id) over a
/// listing while it is unanswered; once answered, a warm index links it and a pass costs one
/// listing; a recording that reappears is erased again from the journal's tombstone alone.
#[tokio::test]
async fn an_answered_erasure_links_through_the_index_and_erases_a_reappearing_recording() {
    let s = MemoryStore::new("calls");
    for (id, subject) in [("r1", "cust-1"), ("r2", "cust-2")] {
        s.put(
            &format!("audio/{id}.wav"),
            day(2026, 1, 10),
            100,
            &[("subject", subject)],
        );
        s.put(&format!("text/{id}.json"), day(2026, 1, 10), 10, &[]);
    }
    let mut rules = rules(Enforcement::Operator);
    rules.subject_tag = Some("subject".into());
    let erase = erasure_of("cust-1", day(2026, 2, 1));
    let ix = new_index();
    let listings = |ops: &[Operation]| {
        ops.iter()
            .filter(|o| matches!(o, Operation::ListObjects | Operation::ListObjectVersions))
            .count()
    };
    let run = |now, requests: Vec<crate::retention::SubjectRequest>| {
        let config = PassConfig {
            requests,
            ..with_index(&ix, 7)
        };
        let rules = rules.clone();
        let s = &s;
        async move {
            reconcile(s, &policy(), &rules, vec![], now, config, &|_| {})
                .await
                .expect("the pass runs")
        }
    };
    // The index is warm before the request arrives; a pass without requests lists this often
    // (the journal's segments, the bucket).
    run(day(2026, 2, 1), vec![]).await;
    s.clear_requests();
    run(day(2026, 2, 1), vec![]).await;
    let plain = listings(&s.requests());
    s.clear_requests();
    let first = run(day(2026, 2, 2), vec![erase.clone()]).await;
    let recordings = |s: &MemoryStore| -> Vec<String> {
        s.live_keys()
            .into_iter()
            .filter(|k| !k.starts_with(".gallring/"))
            .collect()
    };
    assert_eq!(
        recordings(&s),
        vec!["audio/r2.wav", "text/r2.json"],
        "both artifacts of cust-1's call are erased, cust-2's kept"
    );
    let answer = &first.requests[&erase.name];
    assert_eq!(answer.phase, crate::retention::RequestPhase::Completed);
    assert_eq!(
        listings(&s.requests()),
        plain + 1,
        "unanswered: linked over a listing of its own"
    );

    s.clear_requests();
    let steady = run(day(2026, 2, 3), vec![erase.clone()]).await;
    assert_eq!(
        listings(&s.requests()),
        plain,
        "answered: the index links it, no listing of its own"
    );
    assert_eq!(steady.requests[&erase.name].reappeared_now, 0);

    // The transcript comes back (a restore) with no subject tag; the request is gone from the
    // host: the journal's tombstone (recording id r1) erases it again.
    s.put("text/r1.json", day(2026, 2, 3), 10, &[]);
    let again = run(day(2026, 2, 4), vec![]).await;
    assert!(!s.live_keys().contains("text/r1.json"));
    assert_eq!(again.requests[&erase.name].reappeared_now, 1);
    assert!(s.live_keys().contains("text/r2.json"));
}

/// An erasure about a subject whose only call was recorded after it was received deletes
/// nothing, and its answer counts the call it does not reach (so that a NoMatch can say why).
#[tokio::test]
async fn an_erasure_received_before_the_subjects_call_reports_the_call_it_does_not_reach() {
    let s = MemoryStore::new("calls");
    s.put(
        "audio/r1.wav",
        day(2026, 2, 5),
        100,
        &[("subject", "cust-1")],
    );
    s.put("text/r1.json", day(2026, 2, 5), 10, &[]);
    let mut rules = rules(Enforcement::Operator);
    rules.subject_tag = Some("subject".into());
    let erase = erasure_of("cust-1", day(2026, 2, 1));
    let config = PassConfig {
        requests: vec![erase.clone()],
        ..PassConfig::default()
    };
    let report = reconcile(
        &s,
        &policy(),
        &rules,
        vec![],
        day(2026, 2, 6),
        config,
        &|_| {},
    )
    .await
    .expect("the pass runs");
    let answer = &report.requests[&erase.name];
    assert_eq!(answer.phase, crate::retention::RequestPhase::Completed);
    assert!(answer.matched.is_empty(), "{answer:?}");
    assert_eq!(answer.recorded_after, 1, "the audio carries the subject");
    assert!(s.live_keys().contains("audio/r1.wav"));
    assert!(s.live_keys().contains("text/r1.json"));
}

/// A replica that may no longer write (its lease lost, or shutting down) stops at once: the
/// pass reads no object it could not act on, so a shutdown during a long pass is quick.
#[tokio::test]
async fn a_pass_that_may_not_write_reads_no_object_it_could_not_act_on() {
    let s = MemoryStore::new("calls");
    for i in 0..50 {
        s.put(&format!("audio/r{i:02}.wav"), day(2026, 1, 10), 100, &[]);
    }
    let rules = rules(Enforcement::Operator);
    reconcile(
        &s,
        &policy(),
        &rules,
        vec![],
        day(2026, 2, 1),
        PassConfig::default(),
        &|_| {},
    )
    .await
    .expect("the first pass runs");
    // Someone removes every tag: each object needs a write again; nothing else changed.
    for i in 0..50 {
        let id = ObjectId {
            key: format!("audio/r{i:02}.wav"),
            version_id: None,
        };
        s.put_tags(&id, &BTreeMap::new())
            .await
            .expect("tags removed");
    }
    s.clear_requests();
    let config = PassConfig {
        fence: Fence::closed(),
        concurrency: 1,
        ..PassConfig::default()
    };
    let result = reconcile(
        &s,
        &policy(),
        &rules,
        vec![],
        day(2026, 2, 2),
        config,
        &|_| {},
    )
    .await;
    assert!(matches!(result, Err(PassError::Fenced)), "{result:?}");
    let reads = s
        .requests()
        .into_iter()
        .filter(|o| *o == Operation::GetObjectTagging)
        .count();
    assert_eq!(reads, 0, "objects read by a pass that could not write");
    let writes = s.requests().into_iter().filter(|o| {
        matches!(
            o,
            Operation::PutObjectTagging | Operation::PutBucketLifecycle | Operation::DeleteObjects
        )
    });
    assert_eq!(writes.count(), 0);
}

/// Issue 9: a hold by key links through a listing of its own key, not of the bucket: a steady
/// pass with it lists once more than one without, under that key, and holds the transcript the
/// key's recording id links. With more keys than the bucket has pages, linking lists the
/// bucket once instead, and links the same.
#[tokio::test]
async fn a_hold_by_key_links_through_a_listing_of_its_key_not_of_the_bucket() {
    let s = MemoryStore::new("calls");
    for i in 0..30 {
        s.put(&format!("audio/r{i:02}.wav"), day(2026, 1, 10), 100, &[]);
        s.put(&format!("text/r{i:02}.json"), day(2026, 1, 10), 10, &[]);
    }
    let ix = new_index();
    let run = |holds: Vec<Hold>, now| {
        let config = PassConfig {
            page_size: 4,
            ..with_index(&ix, 7)
        };
        pass_with(&s, Enforcement::Both, holds, now, config)
    };
    let by_keys = |keys: &[String]| Hold {
        select: HoldSelector {
            keys: keys.iter().cloned().collect(),
            ..Default::default()
        },
        ..complaint_on("unused")
    };
    let held = |key: &str| {
        s.tags(key)
            .and_then(|t| t.get(RETENTION_TAG).cloned())
            .as_deref()
            == Some("held")
    };
    run(vec![], day(2026, 2, 1)).await;
    run(vec![], day(2026, 2, 2)).await;
    s.clear_requests();
    run(vec![], day(2026, 2, 3)).await;
    let plain = s.listed_under();

    s.clear_requests();
    let one = by_keys(&["audio/r07.wav".to_string()]);
    let r = run(vec![one.clone()], day(2026, 2, 4)).await;
    let mut expected = plain.clone();
    expected.push(Some("audio/r07.wav".to_string()));
    let mut listed = s.listed_under();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "the key's own listing, and no other");
    assert!(held("audio/r07.wav") && held("text/r07.json"), "{r:?}");
    assert_eq!(r.summary.held, 2);
    // Steady with the hold: the same again.
    s.clear_requests();
    run(vec![one], day(2026, 2, 5)).await;
    let mut listed = s.listed_under();
    listed.sort();
    assert_eq!(listed, expected);

    // 20 keys, against 60 objects (and the journal) in pages of 4: fewer pages than keys.
    let many: Vec<String> = (10..30).map(|i| format!("audio/r{i:02}.wav")).collect();
    s.clear_requests();
    let r = run(vec![by_keys(&many)], day(2026, 2, 6)).await;
    let listed = s.listed_under();
    assert_eq!(
        listed.iter().filter(|p| p.is_none()).count(),
        plain.iter().filter(|p| p.is_none()).count() + 1,
        "the bucket listed once to link: {listed:?}"
    );
    assert!(
        listed
            .iter()
            .all(|p| !p.as_deref().is_some_and(|p| p.starts_with("audio/"))),
        "no listing per key: {listed:?}"
    );
    assert!(held("text/r10.json") && held("text/r29.json"), "{r:?}");
    assert!(!held("text/r07.json"), "the first hold is gone");
}

/// `gallring explain` links as the pass does: through the hold's own prefix, not a listing of
/// the bucket, and by first-seen times. A transcript the pass holds through a hold on its
/// audio scoped by recording time (after tag writes moved `LastModified`) is explained as
/// held by that hold.
#[tokio::test]
async fn explain_links_a_hold_by_prefix_as_the_pass_does() {
    let s = MemoryStore::new("calls").tag_writes_move_last_modified();
    s.put("audio/r1.wav", day(2025, 6, 1), 100, &[]);
    s.put("text/r1.json", day(2025, 6, 1), 100, &[]);
    for i in 0..20 {
        s.put(&format!("other/{i:02}"), day(2025, 6, 1), 1, &[]);
    }
    s.set_clock(day(2026, 2, 1));
    pass(&s, Enforcement::Both, vec![], day(2026, 2, 1)).await;
    let mut hold = complaint_on("r1");
    hold.select = HoldSelector {
        prefix: Some("audio/".into()),
        recorded_before: Some(day(2026, 1, 1)),
        ..Default::default()
    };
    let r = pass(&s, Enforcement::Both, vec![hold.clone()], day(2026, 2, 2)).await;
    assert_eq!(r.summary.held, 2, "{:?}", r.summary);
    let spec: crate::api::v1alpha1::RecordingBucketSpec = serde_norway::from_str(
        "s3: {bucket: calls}\npolicyRef: {name: p}\nclassify: [{match: {prefix: audio/}, kind: audio, purposes: [documentation]}]\n",
    )
    .expect("bucket spec parses");
    let b = crate::input::CompiledBucket {
        key: "test/calls".into(),
        spec,
        policy: policy(),
        rules: rules(Enforcement::Both),
        state: crate::retention::StateLocation {
            bucket: None,
            prefix: crate::state::journal::DEFAULT_PREFIX.into(),
            retention: None,
        },
        holds: vec![hold],
        requests: vec![],
    };
    s.clear_requests();
    let text = crate::cli::explain::explain(&s, &s, &b, "text/r1.json", None, day(2026, 2, 2))
        .await
        .expect("explains");
    let holds = text
        .lines()
        .find(|l| l.starts_with("holds"))
        .unwrap_or_default();
    assert!(holds.contains("test/complaint-1"), "{text}");
    assert!(!text.contains("incomplete"), "{text}");

    let listed: Vec<Option<String>> = s
        .listed_under()
        .into_iter()
        .filter(|p| !p.as_deref().is_some_and(|p| p.starts_with(".gallring/")))
        .collect();
    assert_eq!(
        listed,
        vec![Some("text/r1.json".to_string()), Some("audio/".to_string())],
        "the key, then the hold's prefix: no listing of the bucket"
    );
    // The audio cannot be read while linking: the explanation says a hold may be missing.
    s.inject(Fault {
        operation: Operation::GetObjectTagging,
        key: Some("audio/r1.wav".into()),
        category: ErrorCategory::ServerError,
        times: 1,
    });
    let mut by_tag = b.clone();
    by_tag.holds[0].select.tags = [("case".to_string(), None)].into();
    let text = crate::cli::explain::explain(&s, &s, &by_tag, "text/r1.json", None, day(2026, 2, 2))
        .await
        .expect("explains");
    assert!(
        text.lines()
            .any(|l| l.starts_with("incomplete") && l.contains("1 object(s)")),
        "{text}"
    );
}
