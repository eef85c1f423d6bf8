//! The cases of issue 8 that gallring claims to handle, one test each, on the real binary and
//! the real store, with the checker after every run.

use std::sync::Arc;

use aws_sdk_s3::types::{Tag, Tagging};
use chrono::{DateTime, Months, Utc};

use super::checker::{self, KEEP_UNTIL_TAG, RETENTION_TAG};
use super::model::{HoldDef, Reason};
use super::proxy::{Fault, FaultPlan, RequestInfo};
use super::world::{Kill, ObjSpec, RunOpts, Scenario};

/// 25 days old: audio and transcript both past deadline + grace.
pub(super) const OLD: i64 = 600;
/// 3 days old: both kept for days yet.
pub(super) const FRESH: i64 = 72;

pub(super) fn call(
    id: &str,
    hours: i64,
    audio_tags: usize,
    transcript_tags: usize,
) -> Vec<ObjSpec> {
    vec![
        ObjSpec::audio(id, hours).tags(audio_tags),
        ObjSpec::transcript(id, hours).tags(transcript_tags),
    ]
}

pub(super) fn key(id: &str, what: &str) -> String {
    match what {
        "audio" => format!("calls/{id}/audio.wav"),
        _ => format!("calls/{id}/transcript.json"),
    }
}

pub(super) fn present(s: &Scenario, key: &str) -> bool {
    s.checker.last.present.contains_key(key)
}

fn legal_hold(s: &Scenario, key: &str) -> bool {
    s.checker
        .last
        .present
        .get(key)
        .is_some_and(|seen| seen.legal_hold)
}

pub(super) fn tag(s: &Scenario, key: &str, tag: &str) -> Option<String> {
    s.checker
        .last
        .present
        .get(key)
        .and_then(|seen| seen.tags.get(tag).cloned())
}

fn parse(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("`{t}` is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// The one `holdReleased` record of the hold `name` in the journal, read from the store: its
/// `releasedAt`, and the hold's case.
async fn journaled_release(s: &Scenario, name: &str) -> (DateTime<Utc>, String) {
    let records = checker::journal_records(&s.s3, &s.bucket).await;
    let case = s.model.hold(name).case.clone();
    let released = checker::facts_for(&records, "holdReleased", &case);
    assert_eq!(released.len(), 1, "one holdReleased record: {released:?}");
    let at = released[0]
        .get("releasedAt")
        .and_then(|v| v.as_str())
        .expect("releasedAt");
    (parse(at), case)
}

/// The tag is written to the second (RFC 3339 without fractions).
fn to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("in range")
}

pub(super) async fn clean(s: &mut Scenario, label: &str) -> bool {
    s.proxy.set_plan(FaultPlan::none());
    s.run(RunOpts::clean(), label).await.ok()
}

/// Issue 8 case 1: a Dispute hold on objects carrying 9 foreign tags (no room for
/// `keep-until` beside the retention tag) is released; the 3-year floor still holds, under
/// faults, and where there is room the `keep-until` mirror is written and restored when
/// someone strips it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_holds_floor_is_kept_when_the_object_has_nine_foreign_tags() {
    let mut s = Scenario::new("nine_tags").await;
    let mut specs = Vec::new();
    specs.extend(call("r01", OLD, 9, 9));
    specs.extend(call("r02", OLD, 9, 0));
    specs.extend(call("r03", OLD, 2, 1));
    specs.extend(call("r09", OLD, 0, 0)); // unheld: deleted at once
    s.seed(specs).await;
    s.add_hold(HoldDef::new(
        "dispute",
        Reason::Dispute,
        &["r01", "r02", "r03"],
        &[],
    ));
    s.write_manifests();

    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());
    assert!(
        !present(&s, &key("r09", "audio")),
        "the unheld call is deleted"
    );
    for id in ["r01", "r02", "r03"] {
        for what in ["audio", "transcript"] {
            let k = key(id, what);
            assert!(
                legal_hold(&s, &k),
                "{k}: held on an Object Lock bucket: legal hold on"
            );
        }
    }

    s.release("dispute");
    assert!(clean(&mut s, "release").await, "log {}", s.last_log());
    s.proxy.set_plan(FaultPlan::random(0.25));
    for _ in 0..3 {
        let opts = RunOpts::random(&mut s.rng);
        s.run(opts, "release-faults").await;
    }
    assert!(clean(&mut s, "clean").await, "log {}", s.last_log());

    let floor = s.model.hold("dispute").floor().expect("released");
    for id in ["r01", "r02", "r03"] {
        for what in ["audio", "transcript"] {
            let k = key(id, what);
            let retention = tag(&s, &k, RETENTION_TAG);
            assert!(
                retention.as_deref().is_some_and(|v| v != "held"),
                "{k}: released, so no longer tagged held: {retention:?}"
            );
        }
    }
    // Room for the mirror: keep-until = release + 3 years, at least.
    let k = key("r03", "audio");
    let mirror = tag(&s, &k, KEEP_UNTIL_TAG).unwrap_or_else(|| panic!("{k}: keep-until"));
    assert!(
        parse(&mirror) >= to_second(floor),
        "{k}: keep-until {mirror} before {floor}"
    );

    // Someone strips the mirror: the floor stays (journal) and the tag comes back.
    let seen = s.checker.last.present.get(&k).expect("present").clone();
    let o = s.model.obj(&k).expect("seeded").clone();
    let kept: Vec<Tag> = seen
        .tags
        .iter()
        .filter(|(t, _)| t.as_str() != KEEP_UNTIL_TAG)
        .map(|(t, v)| Tag::builder().key(t).value(v).build().expect("tag"))
        .collect();
    s.s3.put_object_tagging()
        .bucket(&s.bucket)
        .key(&k)
        .version_id(&o.version_id)
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(kept))
                .build()
                .expect("tagging"),
        )
        .send()
        .await
        .expect("strip keep-until");
    assert!(clean(&mut s, "after-strip").await, "log {}", s.last_log());
    let restored =
        tag(&s, &k, KEEP_UNTIL_TAG).unwrap_or_else(|| panic!("{k}: keep-until restored"));
    assert!(
        parse(&restored) >= to_second(floor),
        "{k}: keep-until {restored} before {floor}"
    );
    s.summary("");
}

/// Issue 8 case 1, second half: an object with 10 foreign tags has no room for any gallring
/// tag. Held, it gets gallring's legal hold; released (a Complaint, no floor, long past its
/// deadline) it must be deleted like its transcript, not kept forever under that legal hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_with_ten_foreign_tags_is_released_like_any_other() {
    let mut s = Scenario::new("ten_tags").await;
    let mut specs = Vec::new();
    specs.extend(call("r10", OLD, 10, 0));
    specs.extend(call("r11", OLD, 10, 10));
    s.seed(specs).await;
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r10"], &[]));
    s.add_hold(HoldDef::new("dispute", Reason::Dispute, &["r11"], &[]));
    s.write_manifests();

    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());
    for k in [
        key("r10", "audio"),
        key("r11", "audio"),
        key("r11", "transcript"),
    ] {
        assert!(
            legal_hold(&s, &k),
            "{k}: held: gallring's legal hold is its protection"
        );
    }
    s.release("complaint");
    s.release("dispute");
    let first = clean(&mut s, "release").await;
    let second = clean(&mut s, "release").await;
    let leaked = s.checker.leaked_legal_holds(&s.model);
    s.summary(&format!(
        "release passes exit ok: {first}, {second}; legal holds never lifted: {leaked:?}"
    ));
    assert!(
        !present(&s, &key("r10", "transcript")),
        "the transcript (room for tags) is deleted after the release"
    );
    assert!(
        leaked.is_empty(),
        "released objects with 10 foreign tags keep gallring's legal hold forever: {leaked:?} (log {})",
        s.last_log()
    );
    assert!(
        !present(&s, &key("r10", "audio")),
        "the 10-tag audio, released and long past its deadline, is deleted (log {})",
        s.last_log()
    );
    assert!(
        second,
        "the second clean pass succeeds (log {})",
        s.last_log()
    );
}

/// Issue 8 case 2: 16 calls under a Dispute are released while 80% of PutObjectTagging
/// requests fail (500, 503, reset, or applied with the answer lost), one attempt each. Every
/// such pass exits non-zero (fail closed), and no object loses its floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_whose_tag_writes_mostly_fail_keeps_every_floor_and_fails_the_pass() {
    let mut s = Scenario::new("failing_tag_writes").await;
    let mut specs = Vec::new();
    let ids: Vec<String> = (20..36).map(|i| format!("r{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        specs.extend(call(id, OLD + i as i64, i % 4, (i + 1) % 3));
    }
    s.seed(specs).await;
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.add_hold(HoldDef::new("dispute", Reason::Dispute, &id_refs, &[]));
    s.write_manifests();
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());

    s.release("dispute");
    let tagging: Arc<dyn Fn(&RequestInfo) -> bool + Send + Sync> =
        Arc::new(|r: &RequestInfo| r.op == "PutObjectTagging");
    s.proxy.set_plan(FaultPlan::failing(0.8, tagging));
    let mut failing_passes = 0;
    for _ in 0..3 {
        let before = s.proxy.stats().faults_on("PutObjectTagging");
        let out = s.run(RunOpts::clean().attempts(1), "release-80%").await;
        let faults = s.proxy.stats().faults_on("PutObjectTagging") - before;
        if faults > 0 {
            failing_passes += 1;
            assert!(
                !out.ok(),
                "{faults} tag writes failed, yet the pass exited {:?} (log {})",
                out.code,
                out.log.display()
            );
        }
    }
    assert!(failing_passes > 0, "the plan made tag writes fail");
    let ok = clean(&mut s, "clean").await;
    for id in &ids {
        for what in ["audio", "transcript"] {
            let k = key(id, what);
            assert!(present(&s, &k), "{k}: kept by its floor");
        }
    }
    s.summary(&format!(
        "{failing_passes} release passes with failed tag writes, all exited non-zero; final clean pass ok: {ok}; legal holds never lifted: {}",
        s.checker.leaked_legal_holds(&s.model).len()
    ));
}

/// Issue 8 case 5: legal holds that were on before gallring held an object are never lifted:
/// not on release, not under faults, not on objects gallring would delete (S3 refuses).
/// gallring's own legal hold on a released call is lifted and the call deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_holds_gallring_did_not_set_are_never_lifted() {
    let mut s = Scenario::new("foreign_legal_holds").await;
    let mut specs = vec![
        ObjSpec::audio("r40", FRESH).foreign_legal_hold(),
        ObjSpec::transcript("r40", FRESH),
        ObjSpec::audio("r41", OLD).tags(3).foreign_legal_hold(),
        ObjSpec::transcript("r41", OLD).foreign_legal_hold(),
        ObjSpec::audio("r42", OLD).foreign_legal_hold(),
        ObjSpec::transcript("r42", OLD),
        ObjSpec::audio("r43", OLD).tags(1).foreign_legal_hold(),
    ];
    specs.extend(call("r44", OLD, 1, 0));
    s.seed(specs).await;
    s.add_hold(HoldDef::new(
        "complaint",
        Reason::Complaint,
        &["r40", "r42", "r44"],
        &[],
    ));
    s.add_hold(HoldDef::new("dispute", Reason::Dispute, &["r41"], &[]));
    s.write_manifests();

    let apply = clean(&mut s, "apply").await;
    assert!(
        legal_hold(&s, &key("r44", "audio")),
        "gallring's own legal hold is on"
    );
    s.release("complaint");
    s.release("dispute");
    let release = clean(&mut s, "release").await;
    assert!(
        !present(&s, &key("r44", "audio")) && !present(&s, &key("r44", "transcript")),
        "gallring lifts its own legal hold on release and deletes the call (log {})",
        s.last_log()
    );
    assert!(
        !present(&s, &key("r42", "transcript")),
        "the transcript without a legal hold is deleted"
    );
    s.proxy.set_plan(FaultPlan::random(0.25));
    for _ in 0..3 {
        let opts = RunOpts::random(&mut s.rng);
        s.run(opts, "faults").await;
    }
    let last = clean(&mut s, "clean").await;
    for k in [
        key("r40", "audio"),
        key("r41", "audio"),
        key("r41", "transcript"),
        key("r42", "audio"),
        key("r43", "audio"),
    ] {
        assert!(
            present(&s, &k) && legal_hold(&s, &k),
            "{k}: foreign legal hold on"
        );
    }
    s.summary(&format!(
        "pass exits: apply ok {apply}, release ok {release}, last clean ok {last} (an expired object under a foreign legal hold cannot be deleted)"
    ));
}

/// Issue 8 "a hold that disappears is a release": a Dispute hold taken out of the standalone
/// host's manifests is journaled once as `holdReleased` (when it left, by the clock the pass
/// decides by), its
/// objects keep `release + 3 years`, mirrored in `keep-until`, across later passes with
/// faults; a Complaint taken out with it (no floor) lets its expired call go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_removed_from_the_manifests_is_a_release_with_its_floor() {
    let mut s = Scenario::new("removed_hold").await;
    let mut specs = Vec::new();
    for (i, id) in ["r50", "r51", "r52", "r53"].iter().enumerate() {
        specs.extend(call(id, OLD + 24 * i as i64, i % 3, 1));
    }
    specs.extend(call("r54", OLD, 0, 0));
    s.seed(specs).await;
    s.add_hold(HoldDef::new(
        "dispute",
        Reason::Dispute,
        &["r50", "r51", "r52"],
        &["calls/r53/audio.wav"],
    ));
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r54"], &[]));
    s.write_manifests();
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());

    s.release("dispute");
    s.release("complaint");
    let left = s.model.hold("dispute").released_at.expect("released");
    assert!(clean(&mut s, "release").await, "log {}", s.last_log());
    let (at, case) = journaled_release(&s, "dispute").await;
    // Dated by the clock the pass decides by, the earlier of the local one and the store's
    // (whose `Date` has whole seconds), so that the release takes effect in the same pass.
    assert!(
        at >= left - chrono::Duration::seconds(1) && at <= Utc::now(),
        "released at {at}, taken out of the manifests at {left}"
    );
    let floor = at
        .checked_add_months(Months::new(36))
        .expect("floor in range");
    assert!(
        !present(&s, &key("r54", "audio")),
        "the Complaint's call, with no floor, is deleted"
    );
    for id in ["r50", "r51", "r52", "r53"] {
        for what in ["audio", "transcript"] {
            let k = key(id, what);
            let mirror = tag(&s, &k, KEEP_UNTIL_TAG).unwrap_or_else(|| panic!("{k}: keep-until"));
            assert_eq!(
                parse(&mirror),
                to_second(floor),
                "{k}: keep-until mirrors the journal's floor (written to the second)"
            );
        }
    }

    s.proxy.set_plan(FaultPlan::random(0.25));
    for _ in 0..3 {
        let opts = RunOpts::random(&mut s.rng);
        s.run(opts, "later").await;
    }
    assert!(clean(&mut s, "clean").await, "log {}", s.last_log());
    let records = checker::journal_records(&s.s3, &s.bucket).await;
    assert_eq!(
        checker::facts_for(&records, "holdReleased", &case).len(),
        1,
        "released once, not again on every pass"
    );
    s.summary("");
}

/// The case the never-early property found (a floor that started before its hold went): a
/// Dispute and a Complaint are taken out of the manifests while the local clock is 10 minutes
/// behind the store's (the proxy moves the answers' `Date`; which of the two is wrong, gallring
/// cannot tell). The pass deletes nothing (the clocks disagree), and dates the release by the
/// later clock, so the Dispute's floor is `store's time + 3 years`, not 10 minutes earlier, and
/// the Complaint's call (no floor) is still there after a pass with the clocks agreeing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_removed_while_the_local_clock_is_behind_is_dated_by_the_later_clock() {
    let mut s = Scenario::new("removed_hold_skew").await;
    let mut specs = call("r56", OLD, 1, 0);
    specs.extend(call("r57", OLD, 0, 0));
    s.seed(specs).await;
    s.add_hold(HoldDef::new("dispute", Reason::Dispute, &["r56"], &[]));
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r57"], &[]));
    s.write_manifests();
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());

    let ahead = chrono::TimeDelta::minutes(10);
    s.release("dispute");
    s.release("complaint");
    let left = s.model.hold("dispute").released_at.expect("released");
    s.proxy.shift_dates(Some(ahead));
    let skewed = s.run(RunOpts::clean(), "release-skewed").await;
    assert!(
        skewed.log_text().contains("ClockSkew"),
        "the clocks disagree: no deletions (log {})",
        skewed.log.display()
    );
    s.proxy.shift_dates(None);
    let (at, _) = journaled_release(&s, "dispute").await;
    // The store's `Date` has whole seconds.
    assert!(
        at >= left + ahead - chrono::TimeDelta::seconds(1),
        "released at {at}: dated by the local clock, 10 minutes behind the store's (taken out at {left})"
    );
    let floor = at
        .checked_add_months(Months::new(36))
        .expect("floor in range");
    assert!(clean(&mut s, "clocks-agree").await, "log {}", s.last_log());
    for what in ["audio", "transcript"] {
        let k = key("r56", what);
        let mirror = tag(&s, &k, KEEP_UNTIL_TAG).unwrap_or_else(|| panic!("{k}: keep-until"));
        assert_eq!(
            parse(&mirror),
            to_second(floor),
            "{k}: keep-until mirrors the floor from the later clock"
        );
        let k = key("r57", what);
        assert!(
            present(&s, &k),
            "{k}: the Complaint's call is kept until the release the later clock dated ({at})"
        );
    }
    s.summary(&format!(
        "taken out at {left}, store 10 min ahead: released at {at}"
    ));
}

/// A crash right after gallring set a legal hold (the store applied it, the answer never
/// came, the process was SIGKILLed) leaves a legal hold that is gallring's: on release, it
/// is lifted and the expired call deleted, not kept forever as if someone else had set it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_set_just_before_a_crash_is_still_gallrings_to_lift() {
    let mut s = Scenario::new("crash_after_legal_hold").await;
    s.seed(call("r60", OLD, 1, 0)).await;
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r60"], &[]));
    s.write_manifests();
    s.proxy
        .hang_on(Arc::new(|r: &RequestInfo| r.op == "PutObjectLegalHold"));
    let crashed = s
        .run(RunOpts::clean().killed(Kill::OnHang), "apply-crash")
        .await;
    assert!(
        crashed.killed,
        "killed right after the legal hold was applied"
    );
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());
    s.release("complaint");
    let first = clean(&mut s, "release").await;
    let second = clean(&mut s, "release").await;
    let leaked = s.checker.leaked_legal_holds(&s.model);
    s.summary(&format!(
        "release passes ok: {first}, {second}; legal holds never lifted: {leaked:?}"
    ));
    assert!(
        leaked.is_empty()
            && !present(&s, &key("r60", "audio"))
            && !present(&s, &key("r60", "transcript")),
        "gallring's legal hold outlived the release after a crash: {leaked:?} (log {})",
        s.last_log()
    );
}

/// A release pass whose re-tagging was applied but whose answer was lost (one attempt): the
/// next pass still lifts gallring's legal hold and deletes the expired call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_a_release_tag_write_does_not_strand_the_legal_hold() {
    let mut s = Scenario::new("lost_release_tag_answer").await;
    s.seed(call("r70", OLD, 2, 0)).await;
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r70"], &[]));
    s.write_manifests();
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());
    s.release("complaint");
    let tagging: Arc<dyn Fn(&RequestInfo) -> bool + Send + Sync> =
        Arc::new(|r: &RequestInfo| r.op == "PutObjectTagging");
    s.proxy.set_plan(FaultPlan {
        rate: 1.0,
        weights: vec![(Fault::ApplyThenDrop, 1)],
        max_delay: std::time::Duration::ZERO,
        only: Some(tagging),
    });
    let dropped = s.run(RunOpts::clean().attempts(1), "release-dropped").await;
    assert!(!dropped.ok(), "a lost answer fails the pass");
    let first = clean(&mut s, "release").await;
    let second = clean(&mut s, "release").await;
    let leaked = s.checker.leaked_legal_holds(&s.model);
    s.summary(&format!(
        "release passes ok: {first}, {second}; legal holds never lifted: {leaked:?}"
    ));
    assert!(
        leaked.is_empty()
            && !present(&s, &key("r70", "audio"))
            && !present(&s, &key("r70", "transcript")),
        "gallring's legal hold outlived the release after one lost answer: {leaked:?} (log {})",
        s.last_log()
    );
}

/// Issue 8 case 9 ("the overdue gauge is wrong exactly when it matters"): once faults stop,
/// the overdue count of a pass equals the true one. The bucket holds an expired call under a
/// foreign legal hold and no gallring hold (overdue: it cannot be deleted), an expired call
/// under a foreign legal hold just released from a Complaint (its deadline is now the release,
/// so it is not overdue before release + grace), a released Dispute (floor: not overdue), a
/// fresh call, and a call whose audio gallring deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overdue_count_is_exact_once_faults_stop() {
    let mut s = Scenario::new("overdue_count").await;
    let mut specs = vec![
        ObjSpec::audio("r80", OLD).foreign_legal_hold(),
        ObjSpec::audio("r81", OLD).tags(2).foreign_legal_hold(),
        ObjSpec::audio("r84", 240),
        ObjSpec::transcript("r84", 240),
    ];
    specs.extend(call("r82", FRESH, 1, 1));
    specs.extend(call("r83", OLD, 0, 3));
    s.seed(specs).await;
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r80"], &[]));
    s.add_hold(HoldDef::new("dispute", Reason::Dispute, &["r83"], &[]));
    s.write_manifests();
    s.run(RunOpts::clean(), "apply").await;
    s.release("complaint");
    s.release("dispute");
    s.proxy.set_plan(FaultPlan::random(0.25));
    for _ in 0..3 {
        let opts = RunOpts::random(&mut s.rng);
        s.run(opts, "faults").await;
    }
    s.proxy.set_plan(FaultPlan::none());
    let last = s.run(RunOpts::clean(), "clean").await;
    let reported = last.reported_overdue();
    let truth = s.checker.true_overdue(&s.model);
    s.summary(&format!(
        "overdue reported {reported:?}, true {truth} (calls/r81/audio.wav)"
    ));
    assert!(
        !present(&s, &key("r84", "audio")),
        "the due audio is deleted"
    );
    assert_eq!(
        reported,
        Some(truth),
        "overdue count of the last pass (log {})",
        last.log.display()
    );
}
