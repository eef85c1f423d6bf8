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
        name: "RetentionPolicy/test/p".into(),
        purposes: purposes
            .iter()
            .map(|(name, withdrawable, retain)| {
                (
                    name.to_string(),
                    Purpose {
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
        grace: IsoDuration::days(2),
        scan_interval: IsoDuration::days(1),
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
fn an_object_with_ten_foreign_tags_gets_no_tag_and_operator_deletion() {
    let p = standard_policy();
    let tags: Vec<(String, String)> = (0..10).map(|i| (format!("t{i}"), "v".into())).collect();
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = object("a/r1/a.wav", at(2026, 1, 1), &tag_refs);
    let plan = plan_one(&p, &bucket(), vec![], &o, at(2026, 2, 1));
    assert_eq!(plan.tag, None);
    assert_eq!(plan.deleter, Deleter::Operator);
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
    )
        .prop_map(
            |((doc_a, doc_t, quality, q_withdrawable), objs, holds, now, release)| {
                let mut policy = policy(&[
                    (
                        "documentation",
                        false,
                        &[("audio", doc_a), ("transcript", doc_t)],
                    ),
                    ("quality", q_withdrawable, &[("audio", quality)]),
                ]);
                policy.hold_release.insert(HoldReason::Dispute, release);
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
                prop_assert!(w.now > d + TimeDelta::days(2));
            }
        }
    }

    #[test]
    fn an_active_hold_always_wins(w in world()) {
        let plans = plans(&w);
        // Recording ids selected (directly) by an active hold.
        let mut held_ids = BTreeSet::new();
        for h in w.holds.iter().filter(|h| h.is_active(w.now)) {
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
        let classes = lifecycle::day_classes(&p);
        let deadline = d.add_to(start).expect("in range");
        if deadline > start {
            prop_assert!(lifecycle::expire_days(deadline, start, &classes).is_some(),
                "{d} from {start} is {} days, not in {classes:?}", (deadline - start).num_days());
        }
    }
}
