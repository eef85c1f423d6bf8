//! Property tests for the invariants in DESIGN.md, plus examples that pin the semantics.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::lifecycle::{self, parse_expire_tag};
use super::*;

fn at_day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    at(y, m, d)
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// `(name, withdrawable, [(kind, retention)])` per purpose.
type PurposeTable<'a> = [(&'a str, bool, &'a [(&'a str, IsoDuration)])];

fn policy(purposes: &PurposeTable) -> Policy {
    Policy {
        controller: "Controller A/S".to_string(),
        hold_max: Default::default(),
        time_zone: chrono_tz::Tz::UTC,
        name: "RetentionPolicy/test/p".into(),
        purposes: purposes
            .iter()
            .map(|(name, withdrawable, retain)| {
                (
                    name.to_string(),
                    Purpose {
                        legal_basis: String::new(),
                        kept_on_erasure: false,
                        retain_means: Default::default(),
                        from: None,
                        use_for: Default::default(),
                        controller: None,
                        withdrawable: *withdrawable,
                        retain: retain.iter().map(|(k, d)| (k.to_string(), *d)).collect(),
                    },
                )
            })
            .collect(),
        hold_release: BTreeMap::new(),
    }
}

fn rule(name: &str, prefix: &str, kind: &str, purposes: &[&str]) -> ClassifyRule {
    ClassifyRule {
        name: name.into(),
        prefix: Some(prefix.into()),
        glob: None,
        tags: BTreeMap::new(),
        kind: kind.into(),
        purposes: purposes.iter().map(|s| s.to_string()).collect(),
        purposes_from_tag: Some(PurposesFromTag {
            key: "consent".into(),
            values: [("given".to_string(), vec!["quality".to_string()])].into(),
        }),
    }
}

fn bucket() -> BucketRules {
    BucketRules {
        name: "RecordingBucket/test/b".into(),
        prefix: None,
        classify: vec![
            rule("audio", "a/", "audio", &["documentation"]),
            rule("transcript", "t/", "transcript", &["documentation"]),
        ],
        recording_id: Some(RecordingIdSource::KeyPattern(
            regex::Regex::new(r"^[at]/(?P<id>[^/]+)/").expect("valid regex"),
        )),
        subject_tag: Some("subject".into()),
        recorded_at: RecordedAtSource::LastModified,
        recorded_at_max_age: None,
        grace: IsoDuration::days(2),
        scan_interval: IsoDuration::days(1),
        verify_interval: IsoDuration::days(7),
        enforcement: Enforcement::Both,
    }
}

fn object(key: &str, created: DateTime<Utc>, tags: &[(&str, &str)]) -> ObjectInfo {
    ObjectInfo {
        key: key.into(),
        version_id: None,
        last_modified: created,
        size: 100,
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        metadata: BTreeMap::new(),
    }
}

fn hold(name: &str, reason: HoldReason, select: HoldSelector) -> Hold {
    Hold {
        limitation_start: None,
        created_at: None,
        name: name.into(),
        reason,
        case: format!("case-{name}"),
        select,
        expires: None,
        review_by: None,
        released_at: None,
    }
}

fn standard_policy() -> Policy {
    policy(&[
        (
            "documentation",
            false,
            &[
                ("audio", IsoDuration::months(12)),
                ("transcript", IsoDuration::months(36)),
            ],
        ),
        ("quality", true, &[("audio", IsoDuration::months(18))]),
    ])
}

fn plan_one(
    p: &Policy,
    b: &BucketRules,
    holds: Vec<Hold>,
    o: &ObjectInfo,
    now: DateTime<Utc>,
) -> ObjectPlan {
    plan_bucket(p, b, holds, std::slice::from_ref(o), now)
        .objects
        .into_iter()
        .next()
        .expect("one object in, one plan out")
}

#[test]
fn audio_is_kept_for_the_longest_active_purpose() {
    let p = standard_policy();
    let b = bucket();
    let o = object("a/r1/audio.wav", at(2026, 1, 31), &[("consent", "given")]);
    let plan = plan_one(&p, &b, vec![], &o, at(2026, 2, 1));
    assert_eq!(plan.purposes, vec!["documentation", "quality"]);
    assert_eq!(plan.deadline, Some(at(2027, 7, 31)));
    assert_eq!(plan.decision, Decision::Keep);
}

#[test]
fn withdrawn_consent_falls_back_to_the_remaining_purpose() {
    let p = standard_policy();
    let b = bucket();
    let o = object(
        "a/r1/audio.wav",
        at(2026, 1, 31),
        &[("consent", "given"), (WITHDRAWN_TAG, "quality")],
    );
    let plan = plan_one(&p, &b, vec![], &o, at(2027, 2, 1));
    assert_eq!(plan.purposes, vec!["documentation"]);
    assert_eq!(plan.deadline, Some(at(2027, 1, 31)));
    assert_eq!(plan.decision, Decision::Delete);
    assert!(
        !plan.overdue,
        "one day past the deadline is within the P2D grace"
    );
    let later = plan_one(&p, &b, vec![], &o, at(2027, 2, 3));
    assert!(later.overdue);
}

#[test]
fn a_withdrawal_starts_the_grace_period_when_it_is_made() {
    let p = policy(&[("consent-only", true, &[("audio", IsoDuration::months(6))])]);
    let mut b = bucket();
    b.classify[0].purposes = vec!["consent-only".into()];
    let withdrawn = |at: &str| {
        object(
            "a/r1/audio.wav",
            at_day(2026, 1, 10),
            &[(WITHDRAWN_TAG, "consent-only"), (WITHDRAWN_AT_TAG, at)],
        )
    };
    // Withdrawn on 2026-03-01: deletable at once, overdue only after the P2D grace.
    let o = withdrawn("2026-03-01T12:00:00Z");
    let plan = plan_one(&p, &b, vec![], &o, at_day(2026, 3, 2));
    assert_eq!(plan.decision, Decision::Delete);
    assert_eq!(plan.deadline, Some(at_day(2026, 1, 10)));
    assert!(!plan.overdue);
    assert!(plan_one(&p, &b, vec![], &o, at_day(2026, 3, 4)).overdue);
}

#[test]
fn withdrawing_a_purpose_that_is_not_withdrawable_changes_nothing() {
    let p = standard_policy();
    let b = bucket();
    let o = object(
        "a/r1/audio.wav",
        at(2026, 1, 31),
        &[(WITHDRAWN_TAG, "documentation")],
    );
    let plan = plan_one(&p, &b, vec![], &o, at(2026, 3, 1));
    assert_eq!(plan.deadline, Some(at(2027, 1, 31)));
    assert!(plan.reason.contains("not withdrawable"), "{}", plan.reason);
}

#[test]
fn unmatched_objects_are_unclassified_and_never_deleted() {
    let p = standard_policy();
    let plan = plan_one(
        &p,
        &bucket(),
        vec![],
        &object("other/x", at(2000, 1, 1), &[]),
        at(2030, 1, 1),
    );
    assert_eq!(plan.decision, Decision::Unclassified);
    assert_eq!(plan.deadline, None);
    assert_eq!(plan.tag.as_deref(), Some(lifecycle::UNCLASSIFIED_TAG_VALUE));
}

#[test]
fn a_hold_on_the_audio_reaches_the_transcript_of_the_same_call() {
    let p = standard_policy();
    let b = bucket();
    let audio = object("a/r7/audio.wav", at(2020, 1, 1), &[]);
    let transcript = object("t/r7/text.json", at(2020, 1, 1), &[]);
    let other = object("t/r8/text.json", at(2020, 1, 1), &[]);
    let h = hold(
        "complaint",
        HoldReason::Complaint,
        HoldSelector {
            keys: ["a/r7/audio.wav".to_string()].into(),
            ..Default::default()
        },
    );
    let plan = plan_bucket(&p, &b, vec![h], &[audio, transcript, other], at(2030, 1, 1));
    let decisions: Vec<Decision> = plan.objects.iter().map(|o| o.decision).collect();
    assert_eq!(
        decisions,
        vec![Decision::Held, Decision::Held, Decision::Delete]
    );
    assert_eq!(plan.summary.held_by_reason.get("Complaint"), Some(&2));
    assert_eq!(
        plan.objects[1].tag.as_deref(),
        Some(lifecycle::HELD_TAG_VALUE)
    );
}

#[test]
fn a_released_hold_keeps_the_object_for_the_hold_release_period() {
    let mut p = standard_policy();
    p.hold_release
        .insert(HoldReason::Dispute, IsoDuration::months(36));
    let b = bucket();
    let o = object("a/r1/audio.wav", at(2026, 1, 10), &[]);
    let mut h = hold(
        "dispute",
        HoldReason::Dispute,
        HoldSelector {
            recording_ids: ["r1".to_string()].into(),
            ..Default::default()
        },
    );
    h.expires = Some(at(2027, 6, 1));
    let during = plan_one(&p, &b, vec![h.clone()], &o, at(2027, 5, 1));
    assert_eq!(during.decision, Decision::Held);
    let after = plan_one(&p, &b, vec![h], &o, at(2027, 6, 2));
    assert_eq!(after.deadline, Some(at(2030, 6, 1)));
    assert_eq!(after.decision, Decision::Keep);
    assert_eq!(after.tag.as_deref(), Some(lifecycle::OPERATOR_TAG_VALUE));
}

#[test]
fn a_release_dated_a_moment_ahead_of_now_is_a_release_with_its_floor() {
    // Two clocks a second apart: the journal dated the release after this pass's `now`.
    let mut p = standard_policy();
    p.hold_release
        .insert(HoldReason::Dispute, IsoDuration::months(36));
    let o = object("a/r1/audio.wav", at(2020, 1, 10), &[]);
    let mut h = hold(
        "dispute",
        HoldReason::Dispute,
        HoldSelector {
            recording_ids: ["r1".to_string()].into(),
            ..Default::default()
        },
    );
    let now = at(2027, 6, 1);
    h.released_at = Some(now + chrono::Duration::seconds(1));
    assert!(!h.is_active(now), "a recorded release is final");
    let plan = plan_one(&p, &bucket(), vec![h], &o, now);
    assert_eq!(plan.decision, Decision::Keep, "released, not held again");
    assert_eq!(
        plan.keep_until,
        Some(at(2030, 6, 1) + chrono::Duration::seconds(1)),
        "the floor counts from the release as recorded"
    );
}

#[test]
fn an_object_with_ten_foreign_tags_gets_no_tag_and_operator_deletion() {
    let p = standard_policy();
    let tags: Vec<(String, String)> = (0..10).map(|i| (format!("t{i}"), "v".into())).collect();
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = object("a/r1/a.wav", at(2026, 1, 1), &tag_refs);
    let plan = plan_one(&p, &bucket(), vec![], &o, at(2026, 2, 1));
    assert_eq!(plan.tag, None);
    assert_eq!(plan.deleter, Deleter::Operator);
}

/// Issue 10 item 8: nine of the owner's tags and a withdrawal request leave no room either;
/// the plan must not claim a tag the pass cannot write.
#[test]
fn nine_foreign_tags_and_a_gallring_request_tag_leave_no_room_for_the_retention_tag() {
    let p = standard_policy();
    let mut tags: Vec<(String, String)> = (0..9).map(|i| (format!("t{i}"), "v".into())).collect();
    tags.push((crate::retention::WITHDRAWN_TAG.into(), "quality".into()));
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = object("a/r1/a.wav", at(2026, 1, 1), &tag_refs);
    let plan = plan_one(&p, &bucket(), vec![], &o, at(2026, 2, 1));
    assert_eq!(plan.tag, None);
    assert_eq!(plan.deleter, Deleter::Operator);
    assert!(
        plan.reason
            .contains("no room for gallring.io/retention beside 10 tags"),
        "{}",
        plan.reason
    );
    // With the retention tag already there, it stays writable (it is replaced, not added).
    tags.push((RETENTION_TAG.into(), "expire-30d".into()));
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = object("a/r1/a.wav", at(2026, 1, 1), &tag_refs);
    let plan = plan_one(&p, &bucket(), vec![], &o, at(2026, 2, 1));
    assert!(
        plan.tag.is_none(),
        "11 tags: nothing fits, nothing is claimed"
    );
    let o = object("a/r1/a.wav", at(2026, 1, 1), &tag_refs[1..]);
    let plan = plan_one(&p, &bucket(), vec![], &o, at(2026, 2, 1));
    assert!(
        plan.tag.is_some(),
        "ten tags, one of them the retention tag: it is replaced"
    );
}

#[test]
fn recorded_at_long_before_upload_is_left_to_the_operator() {
    let p = standard_policy();
    let mut b = bucket();
    b.recorded_at = RecordedAtSource::Tag("recorded-at".into());
    let o = object(
        "a/r1/a.wav",
        at(2026, 3, 1),
        &[("recorded-at", "2026-01-01")],
    );
    let plan = plan_one(&p, &b, vec![], &o, at(2026, 3, 2));
    assert_eq!(
        plan.deadline,
        Some(
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                .single()
                .expect("valid")
        )
    );
    assert_eq!(plan.tag.as_deref(), Some(lifecycle::OPERATOR_TAG_VALUE));
    assert_eq!(plan.deleter, Deleter::Operator);
}

#[test]
fn lifecycle_rules_cover_every_day_class_and_are_owned() {
    let p = standard_policy();
    let rules = lifecycle::compile(&p, &bucket(), false, 0).expect("fits");
    let days: BTreeSet<u32> = rules.iter().filter_map(|r| r.expiration_days).collect();
    // 12 months: 365 or 366 days; 18 months: 546..=549; 36 months: 1095 or 1096.
    assert!(days.contains(&365) && days.contains(&366));
    assert!(days.contains(&1095) && days.contains(&1096));
    assert!(days.iter().all(|d| *d >= 365));
    assert!(rules.iter().all(|r| r.id.starts_with("gallring-")));
    let versioned = lifecycle::compile(&p, &bucket(), true, 0).expect("fits");
    assert!(versioned.iter().any(|r| r.expired_object_delete_marker));
    let mut observe = bucket();
    observe.enforcement = Enforcement::Observe;
    assert!(
        lifecycle::compile(&p, &observe, true, 0)
            .expect("fits")
            .is_empty()
    );
    assert!(lifecycle::compile(&p, &bucket(), false, 999).is_err());
}

// ---------------------------------------------------------------------------------------------
// Properties

fn duration() -> impl Strategy<Value = IsoDuration> {
    (0u32..40, 0u32..400).prop_map(|(months, days)| IsoDuration {
        months,
        days,
        seconds: 0,
    })
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2020-01-01 .. ~2032
    (1_577_836_800i64..1_956_528_000)
        .prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
}

#[derive(Debug, Clone)]
struct World {
    policy: Policy,
    objects: Vec<ObjectInfo>,
    holds: Vec<Hold>,
    now: DateTime<Utc>,
}

fn world() -> impl Strategy<Value = World> {
    let purposes = (duration(), duration(), duration(), any::<bool>());
    let obj = (
        prop::sample::select(vec!["a/", "t/", "x/"]),
        0u8..6,
        instant(),
        any::<bool>(),
        any::<bool>(),
        0usize..11,
        prop::option::of(instant()),
    );
    let holds = prop::collection::vec(
        (
            0u8..6,
            prop::sample::select(HoldReason::ALL.to_vec()),
            prop::option::of(instant()),
            prop::option::of(instant()),
            any::<bool>(),
        ),
        0..3,
    );
    (
        purposes,
        prop::collection::vec(obj, 1..12),
        holds,
        instant(),
        duration(),
        (
            zone(),
            any::<bool>(),
            prop::option::of(instant()),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (doc_a, doc_t, quality, q_withdrawable),
                objs,
                holds,
                now,
                release,
                (tz, quality_delete_by, limitation_start, scoped),
            )| {
                let mut policy = policy(&[
                    (
                        "documentation",
                        false,
                        &[("audio", doc_a), ("transcript", doc_t)],
                    ),
                    ("quality", q_withdrawable, &[("audio", quality)]),
                ]);
                policy.hold_release.insert(HoldReason::Dispute, release);
                policy.time_zone = tz;
                if quality_delete_by && let Some(q) = policy.purposes.get_mut("quality") {
                    q.retain_means = RetainMeans::DeleteBy;
                }
                let objects = objs
                    .into_iter()
                    .enumerate()
                    .map(
                        |(i, (prefix, rec, created, consent, withdrawn, foreign, keep_until))| {
                            let mut o = object(&format!("{prefix}r{rec}/obj{i}"), created, &[]);
                            for f in 0..foreign {
                                o.tags.insert(format!("foreign{f}"), "x".into());
                            }
                            if consent {
                                o.tags.insert("consent".into(), "given".into());
                            }
                            if withdrawn {
                                o.tags.insert(WITHDRAWN_TAG.into(), "quality".into());
                            }
                            if let Some(k) = keep_until {
                                o.tags.insert(KEEP_UNTIL_TAG.into(), k.to_rfc3339());
                            }
                            o
                        },
                    )
                    .collect();
                let holds = holds
                    .into_iter()
                    .enumerate()
                    .map(|(i, (rec, reason, expires, released, by_key))| {
                        let select = if by_key {
                            HoldSelector {
                                keys: [format!("a/r{rec}/obj0")].into(),
                                ..Default::default()
                            }
                        } else {
                            HoldSelector {
                                recording_ids: [format!("r{rec}")].into(),
                                ..Default::default()
                            }
                        };
                        let mut h = hold(&format!("h{i}"), reason, select);
                        h.expires = expires;
                        h.released_at = released;
                        h.limitation_start = limitation_start;
                        if scoped && i == 0 {
                            // The first hold keeps audio recorded before `now` only.
                            h.select.kinds = ["audio".to_string()].into();
                            h.select.recorded_before = Some(now);
                        }
                        h
                    })
                    .collect();
                World {
                    policy,
                    objects,
                    holds,
                    now,
                }
            },
        )
}

fn plans(w: &World) -> Vec<ObjectPlan> {
    plan_bucket(&w.policy, &bucket(), w.holds.clone(), &w.objects, w.now).objects
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn never_delete_before_the_deadline_nor_while_held_nor_unclassified(w in world()) {
        for p in plans(&w) {
            if p.decision == Decision::Delete {
                let deadline = p.deadline.expect("a deletable object has a deadline");
                prop_assert!(w.now >= deadline);
                prop_assert!(p.holds.is_empty());
                prop_assert!(p.kind.is_some());
            }
            if p.decision == Decision::Keep {
                prop_assert!(w.now < p.deadline.expect("kept objects have a deadline"));
            }
            if p.key.starts_with("x/") {
                prop_assert!(matches!(p.decision, Decision::Unclassified | Decision::Held));
            }
            if p.overdue {
                prop_assert_eq!(p.decision, Decision::Delete);
                let d = p.deadline.expect("overdue has a deadline");
                match p.maximum {
                    Some(m) => prop_assert!(w.now > m && m >= d),
                    None => prop_assert!(w.now > d + TimeDelta::days(2)),
                }
            }
        }
    }

    #[test]
    fn an_active_hold_always_wins(w in world()) {
        let plans = plans(&w);
        // Recording ids selected (directly) by an active hold.
        let mut held_ids = BTreeSet::new();
        // Scoped holds are checked by their own property.
        let unscoped = |h: &&Hold| h.select.kinds.is_empty() && h.select.recorded_before.is_none();
        for h in w.holds.iter().filter(|h| h.is_active(w.now)).filter(unscoped) {
            held_ids.extend(h.select.recording_ids.iter().cloned());
            for k in &h.select.keys {
                if w.objects.iter().any(|o| &o.key == k) {
                    held_ids.insert(k.split('/').nth(1).unwrap_or_default().to_string());
                }
            }
        }
        for p in plans {
            let id = p.key.split('/').nth(1).unwrap_or_default().to_string();
            if !p.key.starts_with("x/") && held_ids.contains(&id) {
                prop_assert_eq!(p.decision, Decision::Held, "{} should be held", p.key);
                prop_assert_eq!(p.deadline, None);
                if p.tag.is_some() {
                    prop_assert_eq!(p.tag.as_deref(), Some(lifecycle::HELD_TAG_VALUE));
                }
            }
        }
    }

    #[test]
    fn lifecycle_never_expires_an_object_before_its_deadline(w in world()) {
        for p in plans(&w) {
            if let Some(days) = p.tag.as_deref().and_then(parse_expire_tag) {
                let deadline = p.deadline.expect("an expiring tag implies a deadline");
                prop_assert!(p.last_modified + TimeDelta::days(i64::from(days)) >= deadline,
                    "{}: created {} + {days}d < deadline {deadline}", p.key, p.last_modified);
                prop_assert!(p.holds.is_empty());
                prop_assert_eq!(p.deleter, Deleter::Lifecycle);
            }
        }
    }

    #[test]
    fn a_plan_without_its_reason_decides_the_same(
        w in world(),
        kind in prop::option::of(0u8..3),
        received in 0i64..900,
    ) {
        // With and without a data-subject request, so that the withdrawal and erasure paths
        // (which write most of the notes) are planned both ways too.
        let requests: Vec<SubjectRequest> = kind
            .map(|k| {
                let t = [RequestType::Erasure, RequestType::Withdrawal, RequestType::Objection][usize::from(k)];
                request(t, at(2025, 1, 1) + TimeDelta::days(received))
            })
            .into_iter()
            .collect();
        let b = bucket();
        let mut linker = HoldLinker::new(&b, w.policy.time_zone, w.policy.cap_holds(w.holds.clone()))
            .with_requests(requests);
        for o in &w.objects {
            linker.observe(o);
        }
        let linked = linker.finish();
        let explained = Planner::new(&w.policy, &b, &linked, w.now);
        let terse = Planner::new(&w.policy, &b, &linked, w.now).without_reasons();
        for o in &w.objects {
            let mut want = explained.plan(o);
            prop_assert!(!want.reason.is_empty(), "{}: a plan explains itself", o.key);
            want.reason.clear();
            prop_assert_eq!(terse.plan(o), want);
        }
    }

    #[test]
    fn deadline_is_monotone_in_retention(w in world(), extra in duration()) {
        let before = plans(&w);
        let mut longer = w.clone();
        for purpose in longer.policy.purposes.values_mut() {
            for d in purpose.retain.values_mut() {
                d.months += extra.months;
                d.days += extra.days;
            }
        }
        let after = plans(&longer);
        for (a, b) in before.iter().zip(&after) {
            if let (Some(x), Some(y)) = (a.deadline, b.deadline) {
                prop_assert!(y >= x, "{}: {y} < {x}", a.key);
            }
            if a.decision != Decision::Delete {
                prop_assert_ne!(b.decision, Decision::Delete);
            }
        }
    }

    #[test]
    fn releasing_a_hold_never_shortens_retention(w in world(), released in instant()) {
        let without: Vec<ObjectPlan> = {
            let mut w2 = w.clone();
            w2.holds.clear();
            plans(&w2)
        };
        let mut with = w.clone();
        for h in &mut with.holds {
            h.released_at = Some(released.min(w.now));
        }
        for (a, b) in without.iter().zip(plans(&with)) {
            if let (Some(x), Some(y)) = (a.deadline, b.deadline) {
                prop_assert!(y >= x, "{}: released deadline {y} < normal {x}", a.key);
            }
            if a.decision != Decision::Delete {
                prop_assert_ne!(b.decision, Decision::Delete);
            }
        }
    }

    #[test]
    fn adding_holds_never_makes_anything_deletable(w in world()) {
        let without = {
            let mut w2 = w.clone();
            w2.holds.clear();
            plans(&w2)
        };
        for (a, b) in without.iter().zip(plans(&w)) {
            if a.decision != Decision::Delete {
                prop_assert_ne!(b.decision, Decision::Delete, "{}", a.key);
            }
        }
    }

    #[test]
    fn summary_counts_match_the_decisions(w in world()) {
        let plan = plan_bucket(&w.policy, &bucket(), w.holds.clone(), &w.objects, w.now);
        let s = &plan.summary;
        prop_assert_eq!(s.objects as usize, w.objects.len());
        prop_assert_eq!(s.keep + s.held + s.delete + s.unclassified, s.objects);
        let overdue = plan.objects.iter().filter(|p| p.overdue).count() as u64;
        prop_assert_eq!(s.overdue, overdue);
        prop_assert!(s.overdue <= s.delete);
    }

    #[test]
    fn day_classes_contain_the_length_of_every_retention_from_any_start(
        d in duration(), start in instant()
    ) {
        let p = policy(&[("only", false, &[("audio", d)])]);
        let classes = lifecycle::day_classes(&p, IsoDuration::days(2));
        let deadline = d.add_to(start).expect("in range");
        if deadline > start {
            prop_assert!(lifecycle::expire_days(deadline, start, &classes).is_some(),
                "{d} from {start} is {} days, not in {classes:?}", (deadline - start).num_days());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Implausible recorded-at values (issue 8 item 7, issue 10 item 3)

const RECORDED_AT_TAG: &str = "recorded-at";

/// A bucket reading the recording time from the `recorded-at` tag, with an optional bound.
fn tagged_bucket(max_age: Option<IsoDuration>) -> BucketRules {
    let mut b = bucket();
    b.recorded_at = RecordedAtSource::Tag(RECORDED_AT_TAG.into());
    b.recorded_at_max_age = max_age;
    b
}

/// `documentation` keeps audio for `retain`.
fn one_purpose(retain: IsoDuration) -> Policy {
    policy(&[("documentation", false, &[("audio", retain)])])
}

fn recorded(value: Option<&str>, created: DateTime<Utc>) -> ObjectInfo {
    match value {
        Some(v) => object("a/r1/audio.wav", created, &[(RECORDED_AT_TAG, v)]),
        None => object("a/r1/audio.wav", created, &[]),
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    classify::parse_instant(s).expect("valid instant")
}

#[test]
fn a_recorded_at_after_the_upload_counts_from_the_upload() {
    let p = one_purpose(IsoDuration::months(12));
    let created = utc("2026-03-01T10:00:00Z");
    let o = recorded(Some("2031-01-01T00:00:00Z"), created);
    let plan = plan_one(
        &p,
        &tagged_bucket(None),
        vec![],
        &o,
        utc("2026-03-02T00:00:00Z"),
    );
    assert_eq!(plan.recorded_at, Some(created));
    assert_eq!(plan.recorded_at_issue, Some(RecordedAtIssue::Future));
    assert_eq!(plan.deadline, Some(utc("2027-03-01T10:00:00Z")));
    assert!(
        plan.reason.contains(
            "tag `recorded-at` is 2031-01-01T00:00:00Z, after the upload at \
             2026-03-01T10:00:00Z; using the upload time"
        ),
        "{}",
        plan.reason
    );
}

#[test]
fn a_recorder_clock_a_few_minutes_ahead_is_clamped_silently() {
    let p = one_purpose(IsoDuration::months(12));
    let created = utc("2026-03-01T10:00:00Z");
    let b = tagged_bucket(None);
    let now = utc("2026-03-02T00:00:00Z");
    let skewed = plan_one(
        &p,
        &b,
        vec![],
        &recorded(Some("2026-03-01T10:05:00Z"), created),
        now,
    );
    assert_eq!(skewed.recorded_at, Some(created));
    assert_eq!(skewed.recorded_at_issue, None);
    assert!(!skewed.reason.contains("upload"), "{}", skewed.reason);
    let beyond = plan_one(
        &p,
        &b,
        vec![],
        &recorded(Some("2026-03-01T10:05:01Z"), created),
        now,
    );
    assert_eq!(beyond.recorded_at, Some(created));
    assert_eq!(beyond.recorded_at_issue, Some(RecordedAtIssue::Future));
}

#[test]
fn a_recorded_at_too_long_before_the_upload_is_clamped_up_to_the_bound() {
    let p = one_purpose(IsoDuration::months(12));
    let created = utc("2026-03-01T10:00:00Z");
    let o = recorded(Some("2001-01-01"), created);
    let now = utc("2026-03-02T00:00:00Z");
    let bounded = plan_one(
        &p,
        &tagged_bucket(Some(IsoDuration::days(30))),
        vec![],
        &o,
        now,
    );
    assert_eq!(bounded.recorded_at, Some(utc("2026-01-30T10:00:00Z")));
    assert_eq!(bounded.recorded_at_issue, Some(RecordedAtIssue::TooOld));
    assert_eq!(bounded.deadline, Some(utc("2027-01-30T10:00:00Z")));
    assert_eq!(bounded.decision, Decision::Keep, "not deletable at once");
    assert!(
        bounded.reason.contains(
            "tag `recorded-at` is 2001-01-01T00:00:00Z, more than P30D before the upload at \
             2026-03-01T10:00:00Z; using 2026-01-30T10:00:00Z"
        ),
        "{}",
        bounded.reason
    );
    // Without a bound the value is trusted (an archive import), as before.
    let trusted = plan_one(&p, &tagged_bucket(None), vec![], &o, now);
    assert_eq!(trusted.recorded_at, Some(utc("2001-01-01T00:00:00Z")));
    assert_eq!(trusted.recorded_at_issue, None);
    assert_eq!(trusted.decision, Decision::Delete);
    // Within the bound the value is used as it is.
    let within = recorded(Some("2026-02-01"), created);
    let plan = plan_one(
        &p,
        &tagged_bucket(Some(IsoDuration::days(30))),
        vec![],
        &within,
        now,
    );
    assert_eq!(plan.recorded_at, Some(utc("2026-02-01T00:00:00Z")));
    assert_eq!(plan.recorded_at_issue, None);
}

#[test]
fn an_unparsable_or_missing_recorded_at_counts_from_the_upload_and_says_so() {
    let p = one_purpose(IsoDuration::months(12));
    let created = utc("2026-03-01T10:00:00Z");
    let b = tagged_bucket(Some(IsoDuration::days(30)));
    let now = utc("2026-03-02T00:00:00Z");
    let bad = plan_one(&p, &b, vec![], &recorded(Some("yesterday"), created), now);
    assert_eq!(bad.recorded_at, Some(created));
    assert_eq!(bad.recorded_at_issue, Some(RecordedAtIssue::Unparsable));
    assert!(
        bad.reason
            .contains("tag `recorded-at` is `yesterday`, not a date"),
        "{}",
        bad.reason
    );
    let missing = plan_one(&p, &b, vec![], &recorded(None, created), now);
    assert_eq!(missing.recorded_at, Some(created));
    assert_eq!(missing.recorded_at_issue, Some(RecordedAtIssue::Missing));
    assert!(
        missing.reason.contains("tag `recorded-at` is missing"),
        "{}",
        missing.reason
    );
    // The creation time as the source has nothing to be missing.
    let mut from_creation = tagged_bucket(Some(IsoDuration::days(30)));
    from_creation.recorded_at = RecordedAtSource::LastModified;
    let plain = plan_one(&p, &from_creation, vec![], &recorded(None, created), now);
    assert_eq!(plain.recorded_at_issue, None);
}

#[test]
fn recorded_at_issues_are_counted_per_kind_and_serialized_with_stable_labels() {
    let p = one_purpose(IsoDuration::months(12));
    let created = utc("2026-03-01T10:00:00Z");
    let mk = |key: &str, value: Option<&str>| {
        let mut o = recorded(value, created);
        o.key = key.into();
        o
    };
    let objects = vec![
        mk("a/r1/a.wav", Some("2031-01-01")),
        mk("a/r2/a.wav", Some("2031-01-01")),
        mk("a/r3/a.wav", Some("1999-01-01")),
        mk("a/r4/a.wav", Some("not a date")),
        mk("a/r5/a.wav", None),
        mk("a/r6/a.wav", Some("2026-02-27")),
        // Unclassified objects have no recording time to judge.
        mk("x/r7/a.wav", None),
    ];
    let b = tagged_bucket(Some(IsoDuration::days(30)));
    let plan = plan_bucket(&p, &b, vec![], &objects, utc("2026-03-02T00:00:00Z"));
    let expected: BTreeMap<String, u64> = [
        ("future".to_string(), 2),
        ("too_old".to_string(), 1),
        ("unparsable".to_string(), 1),
        ("missing".to_string(), 1),
    ]
    .into();
    assert_eq!(plan.summary.recorded_at_issues, expected);
    let labels: BTreeSet<&str> = RecordedAtIssue::ALL.iter().map(|i| i.as_str()).collect();
    assert_eq!(
        labels,
        expected.keys().map(String::as_str).collect::<BTreeSet<_>>()
    );
    let json = serde_json::to_value(&plan.objects[2]).expect("serializes");
    assert_eq!(json["recordedAtIssue"], "too_old");
    let clean = serde_json::to_value(&plan.objects[5]).expect("serializes");
    assert!(clean.get("recordedAtIssue").is_none(), "{clean}");
    let summary = serde_json::to_value(&plan.summary).expect("serializes");
    assert_eq!(summary["recordedAtIssues"]["future"], 2);
}

/// A recorded-at value as a recorder might write it: missing, garbage, a date, or an instant
/// anywhere from decades before to decades after the upload (often near the skew edge).
#[derive(Debug, Clone)]
enum RecordedValue {
    Missing,
    Garbage(String),
    Date(i64),
    Instant(i64),
}

fn recorded_value() -> impl Strategy<Value = RecordedValue> {
    const YEARS_30: i64 = 30 * 366 * 86_400;
    prop_oneof![
        Just(RecordedValue::Missing),
        "[a-zA-Z :/-]{0,12}".prop_map(RecordedValue::Garbage),
        (-YEARS_30..YEARS_30).prop_map(RecordedValue::Date),
        (-YEARS_30..YEARS_30).prop_map(RecordedValue::Instant),
        (-900i64..900).prop_map(RecordedValue::Instant),
    ]
}

impl RecordedValue {
    /// The tag text and, when it is a date, the instant it names (offsets from `created`).
    fn render(&self, created: DateTime<Utc>) -> (Option<String>, Option<DateTime<Utc>>) {
        match self {
            RecordedValue::Missing => (None, None),
            RecordedValue::Garbage(s) => (Some(s.clone()), classify::parse_instant(s)),
            RecordedValue::Date(offset) => {
                let day = (created + TimeDelta::seconds(*offset)).date_naive();
                let t = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
                (Some(day.format("%Y-%m-%d").to_string()), Some(t))
            }
            RecordedValue::Instant(offset) => {
                let t = created + TimeDelta::seconds(*offset);
                (Some(t.to_rfc3339()), Some(t))
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn recorded_at_is_clamped_to_the_safe_side_of_the_upload(
        value in recorded_value(),
        created in instant(),
        max_age in prop::option::of(duration()),
    ) {
        let (text, parsed) = value.render(created);
        let b = tagged_bucket(max_age);
        let r = classify::recorded_at(&b, &recorded(text.as_deref(), created), chrono_tz::Tz::UTC);
        let earliest = max_age.map(|d| d.sub_from(created).expect("in range"));
        // Never after the upload, never before the bound.
        prop_assert!(r.at <= created);
        if let Some(e) = earliest {
            prop_assert!(r.at >= e, "{} before the bound {e}", r.at);
        }
        match parsed {
            None => {
                prop_assert_eq!(r.at, created);
                let want = if text.is_none() {
                    RecordedAtIssue::Missing
                } else {
                    RecordedAtIssue::Unparsable
                };
                prop_assert_eq!(r.issue, Some(want));
            }
            Some(t) => {
                // Never earlier than the value read (unless it is in the future).
                prop_assert!(r.at >= t.min(created));
                let future = t > created + classify::FUTURE_SKEW;
                let too_old = earliest.is_some_and(|e| t < e);
                prop_assert_eq!(r.issue == Some(RecordedAtIssue::Future), future);
                prop_assert_eq!(r.issue == Some(RecordedAtIssue::TooOld), too_old);
                if t > created {
                    prop_assert_eq!(r.at, created);
                } else if !too_old {
                    prop_assert_eq!(r.at, t, "a plausible value is used as it is");
                    prop_assert_eq!(r.issue, None);
                }
            }
        }
        prop_assert_eq!(r.issue.is_some(), r.note.is_some());
    }

    #[test]
    fn an_implausible_recorded_at_never_makes_the_deadline_earlier(
        value in recorded_value(),
        created in instant(),
        max_age in prop::option::of(duration()),
        retain in duration(),
        now in instant(),
    ) {
        let (text, parsed) = value.render(created);
        let p = one_purpose(retain);
        let plan = plan_one(&p, &tagged_bucket(max_age), vec![], &recorded(text.as_deref(), created), now);
        let deadline = plan.deadline.expect("classified and not held");
        let from = |t: DateTime<Utc>| retain.add_to(t).expect("in range");
        // Never later than counting from the upload: the recording is older than its object.
        prop_assert!(deadline <= from(created));
        if let Some(t) = parsed {
            // Never earlier than trusting the value (a future one taken as the upload time).
            prop_assert!(deadline >= from(t.min(created)),
                "{deadline} < {} from {t}", from(t.min(created)));
            // A future value never yields a deadline later than from the upload.
            if t > created {
                prop_assert_eq!(deadline, from(created));
            }
        }
        // With a bound, never earlier than counting from the bound.
        if let Some(d) = max_age {
            prop_assert!(deadline >= from(d.sub_from(created).expect("in range")));
        }
        // Deletable only once that deadline has passed.
        prop_assert_eq!(plan.decision == Decision::Delete, now >= deadline);
    }

    #[test]
    fn recorded_at_issue_counts_match_the_plans(
        values in prop::collection::vec((recorded_value(), instant()), 1..12),
        max_age in prop::option::of(duration()),
        now in instant(),
    ) {
        let objects: Vec<ObjectInfo> = values
            .iter()
            .enumerate()
            .map(|(i, (v, created))| {
                let mut o = recorded(v.render(*created).0.as_deref(), *created);
                o.key = format!("a/r{i}/audio.wav");
                o
            })
            .collect();
        let p = one_purpose(IsoDuration::months(12));
        let plan = plan_bucket(&p, &tagged_bucket(max_age), vec![], &objects, now);
        let mut counted: BTreeMap<String, u64> = BTreeMap::new();
        for o in &plan.objects {
            if let Some(i) = o.recorded_at_issue {
                *counted.entry(i.to_string()).or_default() += 1;
            }
        }
        prop_assert_eq!(&plan.summary.recorded_at_issues, &counted);
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 10: maximums, event clocks, use limits, controllers, scoped holds, limitation starts,
// capped holds and local dates.

fn utc_hms(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// One purpose `p` keeping `kind` for `d`, with its other settings changed by `f`.
fn purpose_policy(kind: &str, d: IsoDuration, f: impl FnOnce(&mut Purpose)) -> Policy {
    let mut p = policy(&[("p", true, &[(kind, d)])]);
    if let Some(purpose) = p.purposes.get_mut("p") {
        f(purpose);
    }
    p
}

/// Every object under `s/` is a survey answer serving purpose `p`.
fn survey_bucket() -> BucketRules {
    let mut b = bucket();
    b.classify = vec![ClassifyRule {
        name: "survey".into(),
        prefix: Some("s/".into()),
        glob: None,
        tags: BTreeMap::new(),
        kind: "survey".into(),
        purposes: vec!["p".into()],
        purposes_from_tag: None,
    }];
    b
}

#[test]
fn a_maximum_is_planned_a_grace_early_and_is_overdue_only_after_the_maximum() {
    let p = purpose_policy("survey", IsoDuration::days(180), |d| {
        d.retain_means = RetainMeans::DeleteBy
    });
    let b = survey_bucket();
    let answered = utc_hms("2026-01-10T09:00:00Z");
    let o = object("s/1.json", answered, &[]);
    // 180 days from 10 January is 9 July; the grace (P2D) before it is 7 July.
    let maximum = utc_hms("2026-07-09T09:00:00Z");
    let deadline = utc_hms("2026-07-07T09:00:00Z");
    let kept = plan_one(&p, &b, vec![], &o, utc_hms("2026-07-07T08:59:59Z"));
    assert_eq!(kept.decision, Decision::Keep);
    assert_eq!(kept.deadline, Some(deadline));
    assert_eq!(kept.maximum, Some(maximum));
    assert!(kept.reason.contains("at most P180D"), "{}", kept.reason);
    assert!(
        kept.reason.contains("gone by 2026-07-09"),
        "{}",
        kept.reason
    );
    // Lifecycle may delete it: its lag (the grace) still ends by the maximum.
    assert_eq!(kept.deleter, Deleter::Lifecycle);
    let due = plan_one(&p, &b, vec![], &o, utc_hms("2026-07-09T09:00:00Z"));
    assert_eq!(due.decision, Decision::Delete);
    assert!(!due.overdue, "not overdue at the maximum itself");
    let late = plan_one(&p, &b, vec![], &o, utc_hms("2026-07-09T09:00:01Z"));
    assert!(late.overdue, "overdue once the maximum has passed");
}

#[test]
fn a_maximum_shorter_than_the_grace_is_deleted_by_gallring_one_scan_before_it() {
    // One day at most, grace two days, scans daily in this bucket: lifecycle cannot make it.
    let p = purpose_policy("survey", IsoDuration::days(1), |d| {
        d.retain_means = RetainMeans::DeleteBy
    });
    let mut b = survey_bucket();
    b.scan_interval = IsoDuration {
        seconds: 3600,
        ..IsoDuration::ZERO
    };
    let visit = utc_hms("2026-03-02T08:00:00Z");
    let o = object("s/visit.json", visit, &[]);
    let plan = plan_one(&p, &b, vec![], &o, utc_hms("2026-03-02T12:00:00Z"));
    assert_eq!(plan.maximum, Some(utc_hms("2026-03-03T08:00:00Z")));
    // One scan (an hour) before the maximum, not at once.
    assert_eq!(plan.deadline, Some(utc_hms("2026-03-03T07:00:00Z")));
    assert_eq!(plan.deleter, Deleter::Operator);
    assert_eq!(plan.tag.as_deref(), Some(lifecycle::OPERATOR_TAG_VALUE));
    assert!(plan.reason.contains("lifecycle's lag"), "{}", plan.reason);
}

#[test]
fn a_maximum_counts_from_the_earliest_trustworthy_time_when_the_recorded_at_is_missing() {
    let p = purpose_policy("survey", IsoDuration::days(180), |d| {
        d.retain_means = RetainMeans::DeleteBy
    });
    let mut b = survey_bucket();
    b.recorded_at = RecordedAtSource::Metadata("answered-at".into());
    b.recorded_at_max_age = Some(IsoDuration::days(2));
    let exported = utc_hms("2026-01-12T03:00:00Z");
    let o = object("s/2.json", exported, &[]);
    let plan = plan_one(&p, &b, vec![], &o, exported);
    // Answered at the latest at the export, at the earliest two days before it: the 180 days
    // count from 10 January 03:00, so a late export cannot push the maximum.
    assert_eq!(plan.maximum, Some(utc_hms("2026-07-09T03:00:00Z")));
    assert_eq!(plan.recorded_at_issue, Some(RecordedAtIssue::Missing));
    // A minimum (KeepAtLeast) still counts from the export: never early.
    let keep = purpose_policy("survey", IsoDuration::days(180), |_| {});
    let plan = plan_one(&keep, &b, vec![], &o, exported);
    assert_eq!(plan.deadline, Some(utc_hms("2026-07-11T03:00:00Z")));
    assert_eq!(plan.maximum, None);
}

fn assessed_policy(if_missing_counts_from_recording: bool) -> Policy {
    purpose_policy("survey", IsoDuration::ZERO, |d| {
        d.from = Some(Anchor {
            source: TimeSource::Tag("assessed-at".into()),
            missing_counts_from_recording: if_missing_counts_from_recording,
        })
    })
}

#[test]
fn an_assessment_starts_the_clock_and_nothing_is_overdue_before_it() {
    let p = assessed_policy(false);
    let b = survey_bucket();
    let recorded = utc_hms("2026-02-01T10:00:00Z");
    // Assessed "not relevant" 18 days after the call: deletable from the assessment, overdue
    // only once the grace after the assessment has passed.
    let o = object(
        "s/3.json",
        recorded,
        &[("assessed-at", "2026-02-19T10:00:00Z")],
    );
    let plan = plan_one(&p, &b, vec![], &o, utc_hms("2026-02-20T10:00:00Z"));
    assert_eq!(plan.decision, Decision::Delete);
    assert_eq!(plan.deadline, Some(utc_hms("2026-02-19T10:00:00Z")));
    assert!(
        !plan.overdue,
        "one day after the assessment is within the grace"
    );
    assert_eq!(plan.anchor.as_deref(), Some("tag `assessed-at`"));
    let later = plan_one(&p, &b, vec![], &o, utc_hms("2026-02-21T10:00:01Z"));
    assert!(later.overdue);
    // An assessment dated before the call counts from the call.
    let early = object("s/4.json", recorded, &[("assessed-at", "2026-01-01")]);
    let plan = plan_one(&p, &b, vec![], &early, utc_hms("2026-02-01T10:00:00Z"));
    assert_eq!(plan.deadline, Some(recorded));
}

#[test]
fn a_purpose_waiting_for_its_event_keeps_the_object_without_a_deadline() {
    let b = survey_bucket();
    let recorded = utc_hms("2026-02-01T10:00:00Z");
    let o = object("s/5.json", recorded, &[]);
    let now = utc_hms("2036-02-01T10:00:00Z");
    let plan = plan_one(&assessed_policy(false), &b, vec![], &o, now);
    assert_eq!(plan.decision, Decision::Keep);
    assert_eq!(plan.deadline, None);
    assert!(!plan.overdue);
    assert_eq!(plan.anchor.as_deref(), Some("event pending"));
    assert!(
        plan.reason.contains("waits for tag `assessed-at`"),
        "{}",
        plan.reason
    );
    // No lifecycle rule can expire it.
    assert_eq!(plan.tag.as_deref(), Some(lifecycle::OPERATOR_TAG_VALUE));
    // With RecordingTime the clock starts at the call instead, and the plan says so.
    let plan = plan_one(&assessed_policy(true), &b, vec![], &o, now);
    assert_eq!(plan.decision, Decision::Delete);
    assert_eq!(plan.deadline, Some(recorded));
    assert!(
        plan.reason.contains("counted from the recording"),
        "{}",
        plan.reason
    );
}

#[test]
fn use_limits_and_controllers_are_reported_per_object() {
    let mut p = purpose_policy("audio", IsoDuration::months(36), |d| {
        d.use_for = [("audio".to_string(), IsoDuration::months(12))].into();
        d.controller = Some("Bank AB".into());
    });
    p.purposes.insert(
        "documentation".into(),
        Purpose {
            retain: [("audio".to_string(), IsoDuration::months(12))].into(),
            ..Purpose::default()
        },
    );
    let mut b = bucket();
    b.classify = vec![rule("audio", "a/", "audio", &["documentation", "p"])];
    let o = object("a/r1/audio.wav", at(2026, 1, 15), &[]);
    let plan = plan_one(&p, &b, vec![], &o, at(2026, 2, 1));
    assert_eq!(
        plan.uses,
        vec![UseLimit {
            purpose: "p".into(),
            until: at(2027, 1, 15)
        }]
    );
    assert!(
        plan.reason.contains("use for p ends 2027-01-15"),
        "{}",
        plan.reason
    );
    assert_eq!(plan.controllers, vec!["Bank AB", "Controller A/S"]);
    assert!(plan.reason.contains("(P3Y, Bank AB)"), "{}", plan.reason);
    let s = plan_bucket(&p, &b, vec![], std::slice::from_ref(&o), at(2026, 2, 1)).summary;
    assert_eq!(s.by_controller.get("Bank AB"), Some(&1));
    assert_eq!(s.by_controller.get("Controller A/S"), Some(&1));
}

#[test]
fn a_scoped_hold_keeps_only_its_kinds_and_window_and_links_only_inside_it() {
    let p = standard_policy();
    let b = bucket();
    let now = at(2029, 6, 1);
    let dispute_began = at(2026, 6, 1);
    // Audio and transcript of a call before the dispute, and of one after it.
    let objects = vec![
        object("a/before/audio.wav", at(2026, 5, 1), &[("subject", "s1")]),
        object("t/before/t.json", at(2026, 5, 1), &[]),
        object("a/after/audio.wav", at(2026, 7, 1), &[("subject", "s1")]),
        object("t/after/t.json", at(2026, 7, 1), &[]),
    ];
    let h = hold(
        "dispute",
        HoldReason::Dispute,
        HoldSelector {
            subjects: ["s1".to_string()].into(),
            recorded_before: Some(dispute_began),
            ..Default::default()
        },
    );
    let plans = plan_bucket(&p, &b, vec![h.clone()], &objects, now).objects;
    let decision = |k: &str| {
        plans
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.decision)
            .expect("planned")
    };
    assert_eq!(decision("a/before/audio.wav"), Decision::Held);
    assert_eq!(
        decision("t/before/t.json"),
        Decision::Held,
        "linked inside the window"
    );
    assert_eq!(decision("a/after/audio.wav"), Decision::Delete);
    assert_ne!(
        decision("t/after/t.json"),
        Decision::Held,
        "not linked: outside the window"
    );
    // Limited to audio: the transcript of the held call is not kept.
    let mut audio_only = h;
    audio_only.select.kinds = ["audio".to_string()].into();
    let plans = plan_bucket(&p, &b, vec![audio_only], &objects, now).objects;
    let of = |k: &str| plans.iter().find(|p| p.key == k).map(|p| p.decision);
    assert_eq!(of("a/before/audio.wav"), Some(Decision::Held));
    assert_ne!(of("t/before/t.json"), Some(Decision::Held));
}

#[test]
fn a_floor_counts_from_the_limitation_start_and_falls_back_to_the_release() {
    let mut p = standard_policy();
    p.hold_release
        .insert(HoldReason::Complaint, IsoDuration::months(36));
    let b = bucket();
    let o = object("a/r1/audio.wav", at(2026, 1, 10), &[]);
    let mut h = hold(
        "complaint",
        HoldReason::Complaint,
        HoldSelector {
            recording_ids: ["r1".to_string()].into(),
            ..Default::default()
        },
    );
    h.released_at = Some(at(2028, 3, 1));
    // Fallback: release + 3 years.
    let plan = plan_one(&p, &b, vec![h.clone()], &o, at(2028, 3, 2));
    assert_eq!(plan.deadline, Some(at(2031, 3, 1)));
    assert_eq!(plan.anchor.as_deref(), Some("hold release"));
    // The claim fell due on 2026-02-01: the limitation period ends 2029-02-01.
    h.limitation_start = Some(at(2026, 2, 1));
    let plan = plan_one(&p, &b, vec![h.clone()], &o, at(2028, 3, 2));
    assert_eq!(plan.deadline, Some(at(2029, 2, 1)));
    assert_eq!(plan.anchor.as_deref(), Some("limitation start"));
    assert!(
        plan.reason.contains("limitation start 2026-02-01 + P3Y"),
        "{}",
        plan.reason
    );
    // A limitation period that ended before the release: deletable from the release, and
    // overdue only once the grace after the release has passed.
    h.limitation_start = Some(at(2024, 1, 1));
    let plan = plan_one(&p, &b, vec![h.clone()], &o, at(2028, 3, 2));
    assert_eq!(plan.decision, Decision::Delete);
    assert_eq!(plan.deadline, Some(at(2028, 3, 1)));
    assert!(!plan.overdue);
    assert!(plan_one(&p, &b, vec![h], &o, at(2028, 3, 4)).overdue);
}

#[test]
fn a_policy_caps_a_hold_from_its_limitation_start_or_creation() {
    let mut p = standard_policy();
    p.hold_max
        .insert(HoldReason::AccessRequest, IsoDuration::months(12));
    let mut h = hold("access", HoldReason::AccessRequest, HoldSelector::default());
    h.created_at = Some(at(2026, 3, 1));
    h.expires = Some(at(2030, 1, 1));
    let capped = p.cap_holds(vec![h.clone()]);
    assert_eq!(capped[0].expires, Some(at(2027, 3, 1)));
    h.limitation_start = Some(at(2026, 1, 1));
    assert_eq!(
        p.cap_holds(vec![h.clone()])[0].expires,
        Some(at(2027, 1, 1))
    );
    // An earlier expiry of its own stays; other reasons and holds without a start are not capped.
    h.expires = Some(at(2026, 6, 1));
    assert_eq!(
        p.cap_holds(vec![h.clone()])[0].expires,
        Some(at(2026, 6, 1))
    );
    let mut other = h.clone();
    other.reason = HoldReason::Complaint;
    other.expires = None;
    assert_eq!(p.cap_holds(vec![other])[0].expires, None);
    let mut unknown = h;
    unknown.limitation_start = None;
    unknown.created_at = None;
    unknown.expires = None;
    assert_eq!(p.cap_holds(vec![unknown])[0].expires, None);
}

#[test]
fn date_only_values_are_midnight_in_the_policys_time_zone() {
    let tz: chrono_tz::Tz = "Europe/Copenhagen".parse().expect("IANA zone");
    assert_eq!(
        classify::parse_instant_in("2026-03-01", tz),
        Some(utc_hms("2026-02-28T23:00:00Z")),
        "CET is UTC+1 in winter"
    );
    assert_eq!(
        classify::parse_instant_in("2026-07-01", tz),
        Some(utc_hms("2026-06-30T22:00:00Z")),
        "CEST is UTC+2 in summer"
    );
    // A full timestamp carries its own offset.
    assert_eq!(
        classify::parse_instant_in("2026-07-01T10:00:00+02:00", tz),
        Some(utc_hms("2026-07-01T08:00:00Z"))
    );
    // A month from the last day of January, local time, ends on the last day of February,
    // local time (in UTC arithmetic it would end on 1 March local time).
    let start = utc_hms("2026-01-30T23:30:00Z"); // 31 January 00:30 in Copenhagen
    assert_eq!(
        IsoDuration::months(1).add_in(start, tz),
        Some(utc_hms("2026-02-27T23:30:00Z"))
    );
    // A day across the spring change is 23 hours.
    let before = utc_hms("2026-03-28T11:00:00Z"); // 12:00 CET
    assert_eq!(
        IsoDuration::days(1).add_in(before, tz),
        Some(utc_hms("2026-03-29T10:00:00Z")) // 12:00 CEST
    );
}

fn zone() -> impl Strategy<Value = chrono_tz::Tz> {
    prop::sample::select(vec![
        chrono_tz::Tz::UTC,
        chrono_tz::Tz::Europe__Stockholm,
        chrono_tz::Tz::Europe__Copenhagen,
        chrono_tz::Tz::America__New_York,
        chrono_tz::Tz::Australia__Lord_Howe,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn local_arithmetic_moves_the_local_date_by_the_calendar_parts(
        d in duration(), start in instant(), tz in zone()
    ) {
        let end = d.add_in(start, tz).expect("in range");
        prop_assert!(end >= start);
        let local = start.with_timezone(&tz).naive_local();
        let want = local
            .checked_add_months(chrono::Months::new(d.months))
            .expect("in range")
            + TimeDelta::days(i64::from(d.days));
        let got = end.with_timezone(&tz).naive_local();
        // The same wall-clock time, unless it fell into a daylight-saving gap (then later).
        prop_assert!(got >= want && got - want <= TimeDelta::hours(2), "{want} -> {got}");
        if tz == chrono_tz::Tz::UTC {
            prop_assert_eq!(Some(end), d.add_to(start));
        }
    }

    #[test]
    fn local_day_classes_contain_every_retention_from_any_start(
        d in duration(), start in instant(), tz in zone(), delete_by in any::<bool>()
    ) {
        let mut p = policy(&[("only", false, &[("audio", d)])]);
        p.time_zone = tz;
        if delete_by && let Some(only) = p.purposes.get_mut("only") {
            only.retain_means = RetainMeans::DeleteBy;
        }
        let grace = IsoDuration::days(2);
        let classes = lifecycle::day_classes(&p, grace);
        let end = d.add_in(start, tz).expect("in range");
        let deadline = if delete_by { grace.sub_from(end).expect("in range") } else { end };
        if deadline > start {
            prop_assert!(lifecycle::expire_days(deadline, start, &classes).is_some(),
                "{d} from {start} in {tz} is {}, not in {classes:?}", deadline - start);
        }
    }

    #[test]
    fn a_maximum_is_never_passed_by_lifecycle_and_never_deleted_before_its_deadline(
        d in duration(), created in instant(), now in instant(), tz in zone()
    ) {
        let mut p = purpose_policy("survey", d, |x| x.retain_means = RetainMeans::DeleteBy);
        p.time_zone = tz;
        let b = survey_bucket();
        let plan = plan_one(&p, &b, vec![], &object("s/x.json", created, &[]), now);
        let maximum = plan.maximum.expect("a maximum");
        let deadline = plan.deadline.expect("a deadline");
        prop_assert!(deadline >= created && deadline <= maximum);
        if let Some(days) = plan.tag.as_deref().and_then(parse_expire_tag) {
            // S3 expires at creation + days, rounded up to the next midnight UTC.
            let expiry = created + TimeDelta::days(i64::from(days));
            let midnight = expiry.date_naive().succ_opt().expect("in range")
                .and_hms_opt(0, 0, 0).expect("valid").and_utc();
            prop_assert!(expiry >= deadline);
            prop_assert!(midnight <= maximum, "expires {midnight}, maximum {maximum}");
        }
        prop_assert_eq!(plan.overdue, now > maximum);
        if now < deadline {
            prop_assert_eq!(plan.decision, Decision::Keep);
        }
    }

    #[test]
    fn a_longer_maximum_never_deletes_earlier(
        d in duration(), extra in duration(), created in instant()
    ) {
        let b = survey_bucket();
        let o = object("s/x.json", created, &[]);
        let deadline = |d: IsoDuration| {
            let p = purpose_policy("survey", d, |x| x.retain_means = RetainMeans::DeleteBy);
            plan_one(&p, &b, vec![], &o, created).deadline.expect("a deadline")
        };
        let longer = IsoDuration { months: d.months + extra.months, days: d.days + extra.days, seconds: 0 };
        prop_assert!(deadline(longer) >= deadline(d));
    }

    #[test]
    fn a_scoped_hold_never_holds_outside_its_scope_and_always_inside_it(
        created in instant(), after in prop::option::of(instant()),
        before in prop::option::of(instant()), audio_only in any::<bool>(), now in instant(),
    ) {
        let p = standard_policy();
        let b = bucket();
        let objects = vec![
            object("a/r1/audio.wav", created, &[]),
            object("t/r1/t.json", created, &[]),
        ];
        let mut h = hold("h", HoldReason::Dispute, HoldSelector {
            recording_ids: ["r1".to_string()].into(),
            recorded_after: after,
            recorded_before: before,
            ..Default::default()
        });
        if audio_only {
            h.select.kinds = ["audio".to_string()].into();
        }
        let in_window = after.is_none_or(|a| created >= a) && before.is_none_or(|x| created < x);
        for plan in plan_bucket(&p, &b, vec![h.clone()], &objects, now).objects {
            let kind_ok = !audio_only || plan.kind.as_deref() == Some("audio");
            prop_assert_eq!(plan.decision == Decision::Held, in_window && kind_ok, "{}", plan.key);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Data-subject requests (issue 12)

fn request(kind: RequestType, received: DateTime<Utc>) -> SubjectRequest {
    SubjectRequest {
        name: format!("SubjectRequest/test/{}", kind.as_str().to_lowercase()),
        kind,
        recording_ids: BTreeSet::new(),
        subjects: ["cust-1".to_string()].into(),
        keys: BTreeSet::new(),
        purposes: BTreeSet::new(),
        received_at: received,
        reference: "DSR-1".into(),
        lifted_at: None,
    }
}

/// A call of `cust-1`: audio carries the subject tag, the transcript only the recording id.
fn call(id: &str, recorded: DateTime<Utc>) -> Vec<ObjectInfo> {
    vec![
        object(
            &format!("a/{id}/audio.wav"),
            recorded,
            &[("consent", "given"), ("subject", "cust-1")],
        ),
        object(&format!("t/{id}/transcript.json"), recorded, &[]),
    ]
}

fn plans_with(
    p: &Policy,
    holds: Vec<Hold>,
    requests: Vec<SubjectRequest>,
    objects: &[ObjectInfo],
    now: DateTime<Utc>,
) -> BTreeMap<String, ObjectPlan> {
    plan_bucket_with(p, &bucket(), holds, requests, objects, now)
        .objects
        .into_iter()
        .map(|o| (o.key.clone(), o))
        .collect()
}

#[test]
fn an_erasure_reaches_every_artifact_of_the_subjects_calls_made_before_it() {
    let p = standard_policy();
    let mut objects = call("r1", at(2026, 1, 10));
    objects.extend(call("r2", at(2026, 3, 10)));
    let erase = request(RequestType::Erasure, at(2026, 3, 1));
    let plans = plans_with(&p, vec![], vec![erase.clone()], &objects, at(2026, 3, 20));
    // r1 (before the request): audio and the transcript linked by recording id are deleted now.
    for k in ["a/r1/audio.wav", "t/r1/transcript.json"] {
        let plan = &plans[k];
        assert_eq!(plan.decision, Decision::Delete, "{k}: {}", plan.reason);
        assert_eq!(plan.requests, vec![erase.name.clone()]);
        assert_eq!(plan.deleter, Deleter::Operator, "gallring erases at once");
        assert!(
            plan.reason.contains("erasure requested by"),
            "{}",
            plan.reason
        );
    }
    // Overdue only a grace (P2D) after the request, not from the (earlier) recording.
    let overdue =
        |now| plans_with(&p, vec![], vec![erase.clone()], &objects, now)["a/r1/audio.wav"].overdue;
    assert!(!overdue(at(2026, 3, 2)));
    assert!(overdue(at(2026, 3, 4)));
    // r2 was recorded after the request: new processing, not reached.
    for k in ["a/r2/audio.wav", "t/r2/transcript.json"] {
        assert_eq!(plans[k].decision, Decision::Keep, "{k}");
        assert!(plans[k].requests.is_empty());
    }
    // Its audio carries the subject, so the answer can say why it was not reached; the
    // transcript (no subject of its own) and r1's objects are not counted as later.
    assert_eq!(
        plans["a/r2/audio.wav"].requests_after,
        vec![erase.name.clone()]
    );
    for k in [
        "t/r2/transcript.json",
        "a/r1/audio.wav",
        "t/r1/transcript.json",
    ] {
        assert!(plans[k].requests_after.is_empty(), "{k}");
    }
}

#[test]
fn an_erasure_keeps_what_a_hold_or_a_legal_obligation_keeps_and_says_so() {
    let mut p = standard_policy();
    let objects = call("r1", at(2026, 1, 10));
    let erase = request(RequestType::Erasure, at(2026, 3, 1));
    let complaint = hold(
        "LegalHold/test/complaint",
        HoldReason::Complaint,
        HoldSelector {
            recording_ids: ["r1".to_string()].into(),
            ..HoldSelector::default()
        },
    );
    let plans = plans_with(
        &p,
        vec![complaint],
        vec![erase.clone()],
        &objects,
        at(2026, 3, 20),
    );
    let mut tally = RequestTally::default();
    for plan in plans.values() {
        assert_eq!(plan.decision, Decision::Held);
        tally.observe(&erase, plan, &|_| "basis".into());
    }
    assert_eq!(tally.exceptions_total, 2);
    assert!(
        tally.exceptions[0]
            .kept_by
            .contains("LegalHold/test/complaint")
    );
    assert_eq!(
        tally.phase(RequestType::Erasure, true, false),
        RequestPhase::PartiallyCompleted
    );

    // Documentation as a legal obligation: the erasure does not end it.
    p.purposes
        .get_mut("documentation")
        .expect("documentation")
        .kept_on_erasure = true;
    let plans = plans_with(&p, vec![], vec![erase.clone()], &objects, at(2026, 3, 20));
    let audio = &plans["a/r1/audio.wav"];
    assert_eq!(audio.decision, Decision::Keep, "{}", audio.reason);
    assert_eq!(
        audio.purposes,
        vec!["documentation"],
        "quality (consent) ended"
    );
    assert_eq!(audio.deadline, Some(at(2027, 1, 10)));
    assert!(audio.reason.contains("Art. 17(3)(b)"), "{}", audio.reason);
    let mut tally = RequestTally::default();
    tally.observe(&erase, audio, &|p| format!("{p}'s basis"));
    assert_eq!(
        tally.exceptions[0].kept_by,
        "purpose documentation (documentation's basis)"
    );
}

#[test]
fn a_withdrawal_ends_the_withdrawable_purposes_from_when_it_was_received() {
    let p = standard_policy();
    let objects = call("r1", at(2026, 1, 10));
    let withdraw = request(RequestType::Withdrawal, at(2026, 8, 1));
    // Before: quality keeps the audio 18 months (until 2027-07-10).
    let before = plans_with(&p, vec![], vec![], &objects, at(2026, 8, 2));
    assert_eq!(before["a/r1/audio.wav"].deadline, Some(at(2027, 7, 10)));
    let after = plans_with(&p, vec![], vec![withdraw.clone()], &objects, at(2026, 8, 2));
    let audio = &after["a/r1/audio.wav"];
    assert_eq!(audio.purposes, vec!["documentation"]);
    assert_eq!(audio.deadline, Some(at(2027, 1, 10)));
    // A request received later than `now` changes nothing yet.
    let early = plans_with(&p, vec![], vec![withdraw.clone()], &objects, at(2026, 7, 1));
    assert_eq!(early["a/r1/audio.wav"].deadline, Some(at(2027, 7, 10)));
    // Naming a purpose limits it to that purpose; a non-withdrawable one is ignored and said.
    let mut named = withdraw;
    named.purposes = ["documentation".to_string()].into();
    let plans = plans_with(&p, vec![], vec![named], &objects, at(2026, 8, 2));
    let audio = &plans["a/r1/audio.wav"];
    assert_eq!(audio.deadline, Some(at(2027, 7, 10)));
    assert!(
        audio.reason.contains("not withdrawable"),
        "{}",
        audio.reason
    );
}

#[test]
fn a_restriction_holds_the_calls_until_it_is_lifted() {
    let p = standard_policy();
    let objects = call("r1", at(2024, 1, 10));
    let mut restrict = request(RequestType::Restriction, at(2026, 3, 1));
    restrict.lifted_at = Some(at(2026, 6, 1));
    let hold = restrict.as_hold().expect("a restriction is a hold");
    assert_eq!(hold.reason, HoldReason::Restriction);
    let plans = plans_with(
        &p,
        vec![hold.clone()],
        vec![restrict.clone()],
        &objects,
        at(2026, 4, 1),
    );
    let mut tally = RequestTally::default();
    for plan in plans.values() {
        assert_eq!(plan.decision, Decision::Held, "{}", plan.key);
        tally.observe(&restrict, plan, &|_| String::new());
    }
    assert_eq!(tally.protected, 2);
    assert_eq!(
        tally.phase(RequestType::Restriction, true, false),
        RequestPhase::Completed
    );
    let later = plans_with(&p, vec![hold], vec![restrict], &objects, at(2026, 6, 2));
    assert_eq!(later["t/r1/transcript.json"].decision, Decision::Keep);
    assert_eq!(later["a/r1/audio.wav"].decision, Decision::Delete);
}

#[test]
fn an_access_request_lists_without_changing_anything() {
    let p = standard_policy();
    let objects = call("r1", at(2026, 1, 10));
    let access = request(RequestType::Access, at(2026, 3, 1));
    let with = plans_with(&p, vec![], vec![access.clone()], &objects, at(2026, 3, 2));
    let without = plans_with(&p, vec![], vec![], &objects, at(2026, 3, 2));
    let mut tally = RequestTally::default();
    for (k, plan) in &with {
        assert_eq!(plan.deadline, without[k].deadline);
        assert_eq!(plan.decision, without[k].decision);
        tally.observe(&access, plan, &|p| format!("basis of {p}"));
    }
    assert_eq!(tally.entries.len(), 2);
    assert_eq!(
        tally.entries[0]
            .purposes
            .get("documentation")
            .map(String::as_str),
        Some("basis of documentation")
    );
    assert_eq!(
        tally.phase(RequestType::Access, true, false),
        RequestPhase::InProgress,
        "done only once the manifest is written"
    );
    assert_eq!(
        tally.phase(RequestType::Access, true, true),
        RequestPhase::Completed
    );
}

#[test]
fn an_erasure_that_nothing_can_delete_fails_and_due_dates_follow_the_calendar() {
    let mut tally = RequestTally::for_request(
        &request(RequestType::Erasure, at(2026, 1, 31)),
        false,
        BTreeSet::new(),
    );
    tally.pending = 1;
    assert_eq!(
        tally.phase(RequestType::Erasure, false, false),
        RequestPhase::Failed
    );
    let r = request(RequestType::Erasure, at(2026, 1, 31));
    // One month from 31 January is the end of February.
    assert_eq!(r.due_by(chrono_tz::UTC), at(2026, 2, 28));
}

proptest! {
    /// An erasure never deletes an object an active hold selects, and never makes any object
    /// deletable that no request selects; every selected object it keeps is an exception.
    #[test]
    fn erasure_never_reaches_held_or_unselected_objects(
        calls in proptest::collection::vec((0u8..4, 0i64..900, any::<bool>(), any::<bool>()), 1..12),
        received in 0i64..900,
        now in 0i64..1200,
    ) {
        let p = standard_policy();
        let base = at(2025, 1, 1);
        let mut objects = Vec::new();
        let mut held = BTreeSet::new();
        for (i, (subject, day, consent, is_held)) in calls.iter().enumerate() {
            let id = format!("r{i}");
            let recorded = base + TimeDelta::days(*day);
            let subject = format!("cust-{subject}");
            let mut tags = vec![("subject", subject.as_str())];
            if *consent { tags.push(("consent", "given")); }
            objects.push(object(&format!("a/{id}/audio.wav"), recorded, &tags));
            objects.push(object(&format!("t/{id}/transcript.json"), recorded, &[]));
            if *is_held { held.insert(id); }
        }
        let holds = vec![hold(
            "LegalHold/test/h",
            HoldReason::Claim,
            HoldSelector { recording_ids: held.clone(), ..HoldSelector::default() },
        )];
        let erase = request(RequestType::Erasure, base + TimeDelta::days(received));
        let now = base + TimeDelta::days(now);
        let with = plans_with(&p, holds.clone(), vec![erase.clone()], &objects, now);
        let without = plans_with(&p, holds, vec![], &objects, now);
        let mut tally = RequestTally::default();
        for (k, plan) in &with {
            let id = k.split('/').nth(1).unwrap_or_default();
            if held.contains(id) {
                prop_assert_eq!(plan.decision, Decision::Held);
            }
            if plan.requests.is_empty() {
                prop_assert_eq!(plan.decision, without[k].decision);
                prop_assert_eq!(plan.deadline, without[k].deadline);
            } else {
                // Never later than without the request.
                if let (Some(a), Some(b)) = (plan.deadline, without[k].deadline) {
                    prop_assert!(a <= b);
                }
                tally.observe(&erase, plan, &|_| String::new());
            }
        }
        let selected: u64 = tally.matched.values().sum();
        prop_assert_eq!(selected, tally.pending + tally.exceptions_total);
    }
}

#[test]
fn many_unrelated_requests_change_nothing_about_an_object_they_do_not_name() {
    let p = standard_policy();
    let objects = call("r1", at(2026, 1, 10));
    let erase = request(RequestType::Erasure, at(2026, 3, 1));
    // Years of other subjects' withdrawals and erasures (tombstones by id and by key).
    let mut many: Vec<SubjectRequest> = (0..1000)
        .map(|i| {
            let mut r = request(
                if i % 2 == 0 {
                    RequestType::Erasure
                } else {
                    RequestType::Withdrawal
                },
                at(2025, 6, 1),
            );
            r.name = format!("SubjectRequest/test/other-{i}");
            r.subjects = [format!("cust-other-{i}")].into();
            r.recording_ids = [format!("gone-{i}")].into();
            r.keys = [format!("a/gone-{i}/audio.wav")].into();
            r
        })
        .collect();
    let alone = plans_with(&p, vec![], vec![erase.clone()], &objects, at(2026, 3, 20));
    many.push(erase.clone());
    let among = plans_with(&p, vec![], many, &objects, at(2026, 3, 20));
    assert_eq!(alone, among);
    assert!(
        among
            .values()
            .all(|o| o.requests == vec![erase.name.clone()])
    );
}

proptest! {
    /// Linking lists only under the holds' keys and prefixes: every object such a hold selects
    /// within the bucket's prefix lies under exactly one of the ranges, and every range lies
    /// within the bucket's prefix (so nothing is listed twice, or outside what is decided).
    #[test]
    fn linking_ranges_cover_what_keys_and_prefixes_select_once_and_nothing_outside_the_bucket(
        selectors in proptest::collection::vec(
            (proptest::collection::btree_set("[ab/]{0,4}", 0..3), proptest::option::of("[ab/]{0,3}")),
            1..4,
        ),
        bucket_prefix in proptest::option::of("[ab/]{0,2}"),
        keys in proptest::collection::vec("[ab/]{0,6}", 0..40),
    ) {
        let mut b = bucket();
        b.prefix = bucket_prefix.clone();
        let holds: Vec<Hold> = selectors
            .iter()
            .enumerate()
            .map(|(i, (keys, prefix))| {
                hold(
                    &format!("LegalHold/test/h{i}"),
                    HoldReason::Claim,
                    HoldSelector { keys: keys.clone(), prefix: prefix.clone(), ..HoldSelector::default() },
                )
            })
            .collect();
        let scope = HoldLinker::new(&b, chrono_tz::Tz::UTC, holds.clone()).link_scope();
        let ranges = match scope {
            LinkScope::Ranges(r) => r,
            LinkScope::Nothing => Vec::new(),
            LinkScope::Everything => panic!("no hold selects by tag or subject"),
        };
        let within = bucket_prefix.as_deref().unwrap_or("");
        let asked: Vec<&String> = selectors.iter().flat_map(|(ks, p)| ks.iter().chain(p)).collect();
        for r in &ranges {
            prop_assert!(r.starts_with(within), "{r:?} outside {within:?}");
            // No wider than asked: a hold's own key or prefix, or the bucket's prefix where a
            // hold's prefix takes in all of it.
            prop_assert!(
                asked.contains(&r) || (r == within && asked.iter().any(|a| within.starts_with(a.as_str()))),
                "{r:?} was not asked for"
            );
            prop_assert_eq!(ranges.iter().filter(|o| r.starts_with(o.as_str())).count(), 1);
        }
        let selected = |k: &str| {
            holds.iter().any(|h| {
                h.select.keys.contains(k) || h.select.prefix.as_deref().is_some_and(|p| k.starts_with(p))
            })
        };
        for k in keys.iter().chain(selectors.iter().flat_map(|(ks, _)| ks)) {
            if k.starts_with(within) && selected(k) {
                prop_assert_eq!(ranges.iter().filter(|r| k.starts_with(r.as_str())).count(), 1, "{}", k);
            }
        }
    }
}

#[test]
fn linking_needs_every_object_for_a_hold_by_tag_and_none_without_recording_ids() {
    let by_tag = hold(
        "LegalHold/test/t",
        HoldReason::Claim,
        HoldSelector {
            prefix: Some("a/".into()),
            tags: [("case".to_string(), None)].into(),
            ..HoldSelector::default()
        },
    );
    let b = bucket();
    assert_eq!(
        HoldLinker::new(&b, chrono_tz::Tz::UTC, vec![by_tag.clone()]).link_scope(),
        LinkScope::Everything
    );
    let mut no_ids = bucket();
    no_ids.recording_id = None;
    assert_eq!(
        HoldLinker::new(&no_ids, chrono_tz::Tz::UTC, vec![by_tag]).link_scope(),
        LinkScope::Nothing
    );
    let by_id = hold(
        "LegalHold/test/i",
        HoldReason::Claim,
        HoldSelector {
            recording_ids: ["r1".to_string()].into(),
            ..HoldSelector::default()
        },
    );
    assert_eq!(
        HoldLinker::new(&b, chrono_tz::Tz::UTC, vec![by_id]).link_scope(),
        LinkScope::Nothing
    );
}
