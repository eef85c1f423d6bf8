//! The cases of README "Trust and time: what gallring believes", one test each, on the real
//! binary and the real store, with the checker after every run: a re-upload under a key in the
//! middle of a pass, a hold added while a pass runs, a store whose clock is off, a withdrawal
//! someone else writes into a tag, tags that cannot be read, a DeleteObjects answer that never
//! comes, and a key that breaks a DeleteObjects batch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use super::cases::{FRESH, OLD, call, clean, key, present};
use super::checker::{self, RETENTION_TAG};
use super::model::{HoldDef, Reason};
use super::proxy::{Fault, FaultPlan, Filter, RequestInfo};
use super::world::{ObjSpec, Options, Outcome, RunOpts, Scenario};

/// Longest a test waits for the pass to reach the request it pauses.
const PAUSE_WAIT: Duration = Duration::from_secs(45);

fn op(name: &'static str) -> Filter {
    Arc::new(move |r: &RequestInfo| r.op == name)
}

/// Every key of the seeded calls `ids`, audio and transcript.
fn keys_of(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .flat_map(|id| [key(id, "audio"), key(id, "transcript")])
        .collect()
}

fn parse(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("`{t}` is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// A run that ended by itself (not killed) with a non-zero exit.
fn failed(out: &Outcome) -> bool {
    !out.killed && out.code.is_some_and(|c| c != 0)
}

/// Lines of the log at WARN or ERROR, but for the one about the suite's foreign lifecycle rule
/// (its prefix `nothing/` lies inside the governed bucket, so gallring rightly warns of it).
fn warnings(out: &Outcome) -> Vec<String> {
    out.log_text()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .filter(|l| !l.contains("rule=foreign-nothing-expires"))
        .map(str::to_string)
        .collect()
}

/// Keys named in the journal's facts of one kind (`objects[].key`).
fn journaled_keys(records: &[serde_json::Value], fact: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.get("fact").and_then(|f| f.as_str()) == Some(fact))
        .flat_map(|r| {
            r.get("objects")
                .and_then(|o| o.as_array())
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|o| o.get("key").and_then(|k| k.as_str()).map(str::to_string))
        .collect()
}

/// On a plain bucket deletes go by key, so a new recording uploaded under the key of a due one
/// while a pass runs must not be deleted in its place. The pass is held on the HEAD it makes
/// right before the deletion (its second HEAD of that key; the first reads the metadata
/// holding `recordedAt`), the key is re-uploaded with new content meanwhile, and the pass
/// goes on: it keeps the new object and says so; the other due recordings are deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_reuploaded_under_its_key_during_a_pass_is_not_deleted() {
    let mut s = Scenario::with(
        "reupload",
        Options {
            unversioned: true,
            ..Options::default()
        },
    )
    .await;
    let mut specs = call("r01", OLD, 1, 0);
    specs.extend(call("r02", OLD, 2, 0));
    specs.extend(call("r03", FRESH, 0, 1));
    s.seed(specs).await;
    s.write_manifests();
    let target = key("r01", "audio");
    let heads = Arc::new(AtomicU32::new(0));
    let (t, h) = (target.clone(), heads.clone());
    s.proxy.pause_on(Arc::new(move |r: &RequestInfo| {
        r.op == "HeadObject" && r.key == t && h.fetch_add(1, Ordering::SeqCst) == 1
    }));
    let running = s.start(RunOpts::clean(), "reupload");
    assert!(
        s.proxy.wait_paused(1, PAUSE_WAIT).await,
        "the pass never made a second HEAD of {target} (HEADs of it: {}; log {})",
        heads.load(Ordering::SeqCst),
        s.last_log()
    );
    // A new recording under the same key: new content, recorded now (kept 7 days).
    let recorded_at = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");
    let body = format!("re-recorded {target} {recorded_at}");
    s.s3.put_object()
        .bucket(&s.bucket)
        .key(&target)
        .body(ByteStream::from(body.clone().into_bytes()))
        .metadata(
            "call-start",
            recorded_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
        .send()
        .await
        .expect("re-upload");
    let o = s
        .model
        .objs
        .iter_mut()
        .find(|o| o.key == target)
        .expect("seeded");
    o.recorded_at = recorded_at;
    o.foreign_tags.clear();
    s.proxy.resume();
    let out = s.finish(running).await;

    assert!(
        present(&s, &target),
        "{target} was re-uploaded after it was listed: not deleted (log {})",
        out.log.display()
    );
    let got =
        s.s3.get_object()
            .bucket(&s.bucket)
            .key(&target)
            .send()
            .await
            .expect("get the re-uploaded object")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
    assert_eq!(
        String::from_utf8_lossy(&got),
        body,
        "{target} holds the new recording"
    );
    let log = out.log_text();
    assert!(
        log.contains("planned deletions skipped") && log.contains("skipped=1"),
        "the pass counts the skipped deletion (log {})",
        out.log.display()
    );
    for k in [
        key("r01", "transcript"),
        key("r02", "audio"),
        key("r02", "transcript"),
    ] {
        assert!(!present(&s, &k), "{k}: due and unchanged: deleted");
    }
    assert!(present(&s, &key("r03", "audio")) && present(&s, &key("r03", "transcript")));
    assert!(
        out.ok(),
        "a skipped deletion is no failure: exit {:?} (log {})",
        out.code,
        out.log.display()
    );

    // The next pass sees the new recording for what it is: kept for days.
    assert!(clean(&mut s, "after").await, "log {}", s.last_log());
    assert!(present(&s, &target), "{target}: a fresh recording is kept");
    s.summary(&format!("paused on HEAD {target}; re-upload kept"));
}

/// `gallring run` re-reads its manifests right before each delete batch: a hold written into
/// them while a pass runs (here while the pass is held on its first tag write) stops that
/// pass's deletions, the pass exits non-zero with `HoldsChanged`, and the next pass holds the
/// recording and deletes the other due ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_added_to_the_manifests_during_a_pass_stops_its_deletions() {
    let mut s = Scenario::new("hold_mid_pass").await;
    let mut specs = call("r10", OLD, 1, 0);
    specs.extend(call("r11", OLD, 0, 2));
    specs.extend(call("r12", OLD, 3, 1));
    specs.extend(call("r13", FRESH, 0, 0));
    s.seed(specs).await;
    s.write_manifests();
    s.proxy.pause_on(op("PutObjectTagging"));
    let running = s.start(RunOpts::clean(), "hold-added");
    assert!(
        s.proxy.wait_paused(1, PAUSE_WAIT).await,
        "the pass never wrote a tag (log {})",
        s.last_log()
    );
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r11"], &[]));
    s.write_manifests();
    s.proxy.resume();
    let out = s.finish(running).await;

    assert!(
        failed(&out),
        "a pass whose deletions a new hold stopped exits non-zero: {:?} (log {})",
        out.code,
        out.log.display()
    );
    assert!(
        out.log_text().contains("HoldsChanged"),
        "the log names HoldsChanged (log {})",
        out.log.display()
    );
    for k in keys_of(&["r10", "r11", "r12", "r13"]) {
        assert!(
            present(&s, &k),
            "{k}: the pass deferred every deletion (log {})",
            out.log.display()
        );
    }

    s.proxy.set_plan(FaultPlan::none());
    let later = s.run(RunOpts::clean(), "next").await;
    assert!(later.ok(), "log {}", later.log.display());
    for k in keys_of(&["r11"]) {
        assert!(present(&s, &k), "{k}: held");
        assert_eq!(
            s.checker
                .last
                .present
                .get(&k)
                .and_then(|seen| seen.tags.get(RETENTION_TAG))
                .map(String::as_str),
            Some("held"),
            "{k}: tagged held"
        );
    }
    for k in keys_of(&["r10", "r12"]) {
        assert!(!present(&s, &k), "{k}: due and not held: deleted");
    }
    assert!(keys_of(&["r13"]).iter().all(|k| present(&s, k)));
    s.summary("hold added mid-pass: deletions deferred, then the held call kept");
}

/// A store whose `Date` is 10 minutes ahead of or behind the local clock (the proxy moves the
/// header): beyond `--max-clock-skew-seconds` (60) no deletions at all, the pass exits
/// non-zero with `ClockSkew`. With the clocks agreeing again the next pass deletes what is due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_store_clock_stops_deletions() {
    let mut s = Scenario::new("clock_skew").await;
    let mut specs = call("r20", OLD, 1, 0);
    specs.extend(call("r21", OLD, 0, 0));
    specs.extend(call("r22", FRESH, 0, 0));
    s.seed(specs).await;
    s.write_manifests();
    for (label, minutes) in [("store-ahead", 10), ("store-behind", -10)] {
        s.proxy.shift_dates(Some(TimeDelta::minutes(minutes)));
        let shifted = s.proxy.stats().dates_shifted;
        let out = s.run(RunOpts::clean(), label).await;
        assert!(
            s.proxy.stats().dates_shifted > shifted,
            "{label}: the proxy moved the answers' Date"
        );
        assert!(
            failed(&out),
            "{label}: a pass that may not delete exits non-zero: {:?} (log {})",
            out.code,
            out.log.display()
        );
        assert!(
            out.log_text().contains("ClockSkew"),
            "{label}: the log names ClockSkew (log {})",
            out.log.display()
        );
        assert!(
            s.checker.gone.is_empty(),
            "{label}: nothing deleted while the clocks disagree: {:?} (log {})",
            s.checker.gone.keys().collect::<Vec<_>>(),
            out.log.display()
        );
    }
    s.proxy.shift_dates(None);
    let out = s.run(RunOpts::clean(), "clocks-agree").await;
    assert!(out.ok(), "log {}", out.log.display());
    for k in keys_of(&["r20", "r21"]) {
        assert!(!present(&s, &k), "{k}: due: deleted once the clocks agree");
    }
    assert!(keys_of(&["r22"]).iter().all(|k| present(&s, k)));
    s.summary("±10 min store clock: no deletions; clocks agreeing: due calls deleted");
}

/// Consent (`quality`, withdrawable, 30 days) is all that keeps a 10-day-old audio
/// (`documentation`, 7 days, has ended). Someone else writes `gallring.io/withdrawn=quality`
/// (with a `withdrawn-at` in 2020) into its tags: the first pass deletes nothing of it and
/// journals the withdrawal (read straight from the journal); the second pass, with the
/// withdrawal in the journal, deletes it as the policy says. A recording whose consent stands
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_tag_written_by_someone_else_takes_effect_only_after_it_is_journaled() {
    let mut s = Scenario::with(
        "withdrawal",
        Options {
            consent: true,
            // A tag someone else writes without changing the object is read at the latest
            // after verifyInterval (the index answers until then): here, at the next pass.
            verify_every_pass: true,
            ..Options::default()
        },
    )
    .await;
    s.seed(vec![
        ObjSpec::audio("r30", 240).tags(2).tag("consent", "given"),
        ObjSpec::audio("r31", 240).tag("consent", "given"),
        ObjSpec::audio("r32", 240).tags(1),
    ])
    .await;
    s.write_manifests();
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());
    let withdrawn = key("r30", "audio");
    assert!(present(&s, &withdrawn) && present(&s, &key("r31", "audio")));
    assert!(
        !present(&s, &key("r32", "audio")),
        "without consent the audio is due and deleted"
    );

    // A third party withdraws consent, keeping every other tag.
    let o = s.model.obj(&withdrawn).expect("seeded").clone();
    let mut tags = s.checker.last.present[&withdrawn].tags.clone();
    tags.insert("gallring.io/withdrawn".into(), "quality".into());
    tags.insert(
        "gallring.io/withdrawn-at".into(),
        "2020-01-01T00:00:00Z".into(),
    );
    let tag_set: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("tag"))
        .collect();
    s.s3.put_object_tagging()
        .bucket(&s.bucket)
        .key(&withdrawn)
        .version_id(&o.version_id)
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(tag_set))
                .build()
                .expect("tagging"),
        )
        .send()
        .await
        .expect("the withdrawal tag");

    // verifyInterval is PT1S and the pass dates its decisions by the store's clock (whole
    // seconds): past 2 s the entry is surely due, however fast the passes follow each other.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let before = Utc::now();
    let first = s.run(RunOpts::clean(), "withdrawal-read").await;
    assert!(first.ok(), "log {}", first.log.display());
    assert!(
        present(&s, &withdrawn),
        "{withdrawn}: a withdrawal read in a pass takes effect from the next one (log {})",
        first.log.display()
    );
    let records = checker::journal_records(&s.s3, &s.bucket).await;
    let observed: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r.get("fact").and_then(|f| f.as_str()) == Some("withdrawalsObserved"))
        .collect();
    assert_eq!(
        journaled_keys(&records, "withdrawalsObserved"),
        vec![withdrawn.clone()],
        "one withdrawal journaled, for {withdrawn}: {observed:?}"
    );
    let entry = &observed[0]["objects"][0];
    assert_eq!(entry["purposes"], serde_json::json!(["quality"]), "{entry}");
    assert_eq!(entry["versionId"].as_str(), Some(o.version_id.as_str()));
    let at = parse(observed[0]["at"].as_str().expect("at"));
    assert!(
        at >= before - TimeDelta::seconds(1) && at <= Utc::now(),
        "journaled during the pass ({at}), not at the tag's claim"
    );
    // From now on the checker lets the withdrawal end `quality`.
    s.model.withdrawals.insert(withdrawn.clone(), at);
    s.check("withdrawal-journaled").await;

    let second = s.run(RunOpts::clean(), "withdrawal-effective").await;
    assert!(second.ok(), "log {}", second.log.display());
    assert!(
        !present(&s, &withdrawn),
        "{withdrawn}: documentation has ended and consent is withdrawn: deleted (log {})",
        second.log.display()
    );
    assert!(
        present(&s, &key("r31", "audio")),
        "consent stands: kept for quality"
    );
    let records = checker::journal_records(&s.s3, &s.bucket).await;
    assert_eq!(
        journaled_keys(&records, "withdrawalsObserved"),
        vec![withdrawn.clone()],
        "journaled once, not again on every pass"
    );
    assert!(
        journaled_keys(&records, "deletionsConfirmed").contains(&withdrawn),
        "the deletion is journaled"
    );
    s.summary(&format!(
        "withdrawal journaled at {at}, effective the pass after"
    ));
}

/// GetObjectTagging fails for most objects (one attempt each): those objects are `unknown`,
/// neither decided nor deleted, and the pass exits non-zero and says how many; what it could
/// read it decides (the due ones are deleted). What it counts overdue plus what it could not
/// read and is overdue is the true count; once faults stop, its count is the true one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_tags_count_as_unknown_and_fail_the_run() {
    let mut s = Scenario::new("unknown_tags").await;
    let ids: Vec<String> = (40..48).map(|i| format!("r{i}")).collect();
    let mut specs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        specs.extend(call(id, OLD + i as i64, i % 3, (i + 1) % 2));
    }
    specs.extend(call("r48", FRESH, 1, 1));
    s.seed(specs).await;
    s.write_manifests();
    s.proxy
        .set_plan(FaultPlan::failing(0.6, op("GetObjectTagging")));
    let out = s.run(RunOpts::clean().attempts(1), "tags-unreadable").await;
    let unreadable: BTreeSet<String> = s.proxy.stats().faulted_keys("GetObjectTagging");
    assert!(!unreadable.is_empty(), "the plan made tag reads fail");
    assert!(
        failed(&out),
        "objects of unknown state fail the pass: {:?} (log {})",
        out.code,
        out.log.display()
    );
    assert!(
        out.log_text()
            .contains("objects whose state could not be read"),
        "the log says so (log {})",
        out.log.display()
    );
    assert_eq!(
        out.reported_unknown(),
        unreadable.len() as u64,
        "unknown = the objects whose tags could not be read: {unreadable:?} (log {})",
        out.log.display()
    );
    for k in &unreadable {
        assert!(present(&s, k), "{k}: tags unreadable: never deleted");
    }
    let due: Vec<String> = s
        .model
        .objs
        .iter()
        .filter(|o| o.recording() != Some("r48"))
        .map(|o| o.key.clone())
        .collect();
    for k in due.iter().filter(|k| !unreadable.contains(*k)) {
        assert!(!present(&s, k), "{k}: read and due: deleted");
    }
    let now = s.checker.last.at.expect("checked");
    let unknown_overdue = s
        .model
        .objs
        .iter()
        .filter(|o| unreadable.contains(&o.key) && s.model.overdue(o, now))
        .count() as u64;
    assert!(unknown_overdue > 0, "some unreadable object is overdue");
    assert_eq!(
        out.reported_overdue().map(|n| n + unknown_overdue),
        Some(s.checker.true_overdue(&s.model)),
        "overdue as reported + overdue among the unknown = the true count (log {})",
        out.log.display()
    );

    s.proxy.set_plan(FaultPlan::none());
    let last = s.run(RunOpts::clean(), "clean").await;
    assert!(last.ok(), "log {}", last.log.display());
    assert_eq!(last.reported_unknown(), 0);
    assert_eq!(
        last.reported_overdue(),
        Some(s.checker.true_overdue(&s.model)),
        "overdue count once faults stop (log {})",
        last.log.display()
    );
    for k in &due {
        assert!(
            !present(&s, k),
            "{k}: due: deleted once its tags could be read"
        );
    }
    s.summary(&format!(
        "{} objects unknown in the faulty pass, {unknown_overdue} of them overdue",
        unreadable.len()
    ));
}

/// Every DeleteObjects is applied by the store and its answer lost (a reset instead): the pass
/// settles each object (HEAD: gone means deleted), so the objects are gone, journaled as
/// confirmed, counted as deleted, the overdue count is the true one (0), and no failure is
/// reported for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_delete_answer_is_settled_and_counted() {
    let mut s = Scenario::new("lost_delete_answer").await;
    let ids = ["r50", "r51", "r52", "r53", "r54", "r55"];
    let mut specs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        specs.extend(call(id, OLD + 24 * i as i64, i % 2, 0));
    }
    specs.extend(call("r56", FRESH, 0, 0));
    s.seed(specs).await;
    s.write_manifests();
    s.proxy.set_plan(FaultPlan {
        rate: 1.0,
        weights: vec![(Fault::ApplyThenDrop, 1)],
        max_delay: Duration::ZERO,
        only: Some(op("DeleteObjects")),
    });
    let out = s.run(RunOpts::clean().attempts(2), "answer-lost").await;
    assert!(
        s.proxy.stats().faults_on("DeleteObjects") >= 1,
        "the plan dropped the DeleteObjects answers"
    );
    let due = keys_of(&ids);
    for k in &due {
        assert!(!present(&s, k), "{k}: deleted (log {})", out.log.display());
    }
    assert!(keys_of(&["r56"]).iter().all(|k| present(&s, k)));
    let truth = s.checker.true_overdue(&s.model);
    assert_eq!(truth, 0);
    assert_eq!(
        out.reported_overdue(),
        Some(truth),
        "overdue count (log {})",
        out.log.display()
    );
    let log = out.log_text();
    assert!(
        log.contains(&format!("deleted {};", due.len())),
        "the pass counts every settled object as deleted (log {})",
        out.log.display()
    );
    let records = checker::journal_records(&s.s3, &s.bucket).await;
    let confirmed = journaled_keys(&records, "deletionsConfirmed");
    for k in &due {
        assert!(
            confirmed.contains(k),
            "{k}: deletion journaled as confirmed"
        );
    }
    assert!(
        out.ok(),
        "every object settled: exit {:?} (log {})",
        out.code,
        out.log.display()
    );
    let warned = warnings(&out);
    assert!(
        warned.is_empty(),
        "no failure reported for objects that were deleted, but the log warns: {warned:#?}"
    );
    s.summary(&format!(
        "{} DeleteObjects answers lost, {} objects settled",
        s.proxy.stats().faults_on("DeleteObjects"),
        due.len()
    ));
}

/// A due recording whose key holds a control character (U+0001): RGW refuses a whole
/// DeleteObjects batch carrying it (400, nothing in it deleted). What happens on RGW 16: gallring
/// settles the batch object by object and deletes that key alone (DeleteObject: the key
/// travels in the URL), so every due recording is gone after one pass and nothing failed, and
/// the log must then name no failure. (The odd call carries no foreign tags: a tag *value*
/// with U+0001 cannot be written back by PutObjectTagging at all, MalformedXML, which is
/// another case.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_a_control_character_is_deleted_alone() {
    let mut s = Scenario::new("control_key").await;
    let odd = "r7\u{1}0";
    let mut specs = call(odd, OLD, 0, 0);
    specs.extend(call("r71", OLD, 0, 1));
    specs.extend(call("r72", OLD + 48, 2, 0));
    specs.extend(call("r73", FRESH, 0, 0));
    s.seed(specs).await;
    s.write_manifests();
    let out = s.run(RunOpts::clean(), "control-key").await;
    let due = keys_of(&[odd, "r71", "r72"]);
    for k in &due {
        assert!(
            !present(&s, k),
            "{k:?}: due: deleted in one pass (log {})",
            out.log.display()
        );
    }
    assert!(keys_of(&["r73"]).iter().all(|k| present(&s, k)));
    assert!(
        s.proxy
            .stats()
            .by_op
            .get("DeleteObject")
            .copied()
            .unwrap_or(0)
            >= 1,
        "the odd key was deleted alone: {:?}",
        s.proxy.stats().by_op
    );
    let records = checker::journal_records(&s.s3, &s.bucket).await;
    let confirmed = journaled_keys(&records, "deletionsConfirmed");
    for k in &due {
        assert!(
            confirmed.contains(k),
            "{k:?}: deletion journaled as confirmed"
        );
    }
    assert!(
        out.log_text().contains(&format!("deleted {};", due.len())),
        "all {} counted as deleted (log {})",
        due.len(),
        out.log.display()
    );
    assert!(
        out.ok(),
        "nothing failed: exit {:?} (log {})",
        out.code,
        out.log.display()
    );
    let warned = warnings(&out);
    assert!(
        warned.is_empty(),
        "every due object was deleted, yet the log reports a failure: {warned:#?}"
    );
    s.summary("a batch-breaking key deleted alone");
}
