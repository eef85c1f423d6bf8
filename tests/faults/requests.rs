//! Data-subject requests (issue 12) under faults and SIGKILL, on the real binary and the real
//! store, with the checker after every run. The requests are `kind: SubjectRequest` manifests
//! that `gallring run` reads from its `--manifests` directory, next to a LegalHold.
//!
//! One world for all three tests (an Object Lock bucket; the policy has `documentation`, the
//! withdrawable consent purpose `quality` and the legal obligation `bookkeeping`), calls of
//! four subjects (audio tagged with the subject, transcripts linked by the recording id only):
//!
//! - alice asks for erasure: of her calls recorded before the request, `a1` and `a6` (audio
//!   with 10 foreign tags: no room for a gallring tag; transcript with 9) are erased entirely,
//!   `a2`'s transcript is erased and its audio stays (`bookkeeping`, Art. 17(3)(b), 11 more
//!   days), `a3` stays (a LegalHold) and `a4` stays (her own Restriction request, though
//!   documentation has ended for its audio), `calls/a1/notes.txt` stays (no classify rule);
//!   `a5`, recorded after the request, stays;
//! - bob withdraws `quality`: `b2`'s audio, which only `quality` kept, goes; `b1`'s audio
//!   stays until documentation's deadline, `b3`'s until `bookkeeping`'s; carol's `c1` (same
//!   age, consent) stays for `quality`; dave's old `d1` goes as the policy says.
//!
//! Then the erasure's resource is deleted (only the journal keeps it), erased artifacts are
//! restored from a backup (`a1`'s audio without its subject tag: only the journal's tombstone
//! reaches it) and the held call's transcript gets a new version: the restored ones are erased
//! again, the held one stays.
//!
//! The checker's model (`model.rs`) counts the requests from the moment they are in the
//! manifests, so every run is checked for: nothing deleted that an active hold or restriction
//! selects, nothing the erasure does not select deleted before its own deadline, nothing
//! `bookkeeping` keeps deleted before its deadline, no withdrawal deleting before the other
//! purposes allow; and against the journal: no confirmed deletion the store still has, no
//! erasure journaled as done with an erasable object left or a kept object unnamed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{SecondsFormat, TimeDelta, Utc};

use super::cases::{key, present};
use super::checker::{self, list_versions};
use super::model::{HoldDef, Reason, RequestDef};
use super::proxy::{Fault, FaultPlan, RequestInfo};
use super::world::{ObjSpec, Options, Outcome, RunOpts, Scenario};

/// The requests were received this long ago: alice's `a5` (20 hours old) is later.
const RECEIVED_HOURS: i64 = 36;
const ERASURE: &str = "erase-alice";
const WITHDRAWAL: &str = "withdraw-bob";
const RESTRICTION: &str = "restrict-a4";

fn audio(id: &str, hours: i64, subject: &str) -> ObjSpec {
    ObjSpec::audio(id, hours).tag("subject", subject)
}

/// Without the `subject` tag (a transcript is linked to its audio by the recording id).
fn untagged_subject(mut spec: ObjSpec) -> ObjSpec {
    spec.tags.remove("subject");
    spec
}

/// The seeded calls (see the module's doc). Ages in hours: 72–100 fresh (documentation keeps
/// audio 3–4 more days), 230–250 middle (documentation has ended for audio, not for
/// transcripts; `quality` and `bookkeeping` still run), 600 old (everything has ended).
fn calls() -> Vec<ObjSpec> {
    vec![
        // alice
        audio("a1", 72, "alice")
            .tag("consent", "given")
            .tag("team", "Claims Nord"),
        ObjSpec::transcript("a1", 72).tag("lang", "da-DK"),
        ObjSpec::unclassified("calls/a1/notes.txt").tag("team", "Claims Nord"),
        audio("a2", 240, "alice").tag("ledger", "yes"),
        ObjSpec::transcript("a2", 240),
        audio("a3", 96, "alice"),
        ObjSpec::transcript("a3", 96).tag("team", "Claims Nord"),
        audio("a4", 250, "alice"),
        ObjSpec::transcript("a4", 250),
        audio("a5", 20, "alice").tag("consent", "given"),
        ObjSpec::transcript("a5", 20),
        ObjSpec::audio("a6", 100).tags(10).tag("subject", "alice"),
        untagged_subject(ObjSpec::transcript("a6", 100).tags(10)),
        // bob
        audio("b1", 80, "bob").tag("consent", "given"),
        ObjSpec::transcript("b1", 80),
        audio("b2", 230, "bob")
            .tag("consent", "given")
            .tag("site", "Ballerup 2"),
        ObjSpec::transcript("b2", 230),
        audio("b3", 235, "bob")
            .tag("consent", "given")
            .tag("ledger", "yes"),
        ObjSpec::transcript("b3", 235),
        // carol, dave
        audio("c1", 245, "carol").tag("consent", "given"),
        ObjSpec::transcript("c1", 245),
        audio("d1", 600, "dave"),
        ObjSpec::transcript("d1", 600).tag("lang", "sv-SE"),
    ]
}

/// What the world comes to once the requests are carried out.
const GONE: [&str; 8] = [
    "calls/a1/audio.wav",
    "calls/a1/transcript.json",
    "calls/a2/transcript.json",
    "calls/a6/audio.wav",
    "calls/a6/transcript.json",
    "calls/b2/audio.wav",
    "calls/d1/audio.wav",
    "calls/d1/transcript.json",
];

/// The erasure's exceptions: key → what `keptBy` must mention.
fn exceptions() -> BTreeMap<String, &'static str> {
    [
        ("calls/a1/notes.txt".to_string(), "unclassified"),
        (key("a2", "audio"), "bookkeeping"),
        (key("a3", "audio"), "dispute"),
        (key("a3", "transcript"), "dispute"),
        (key("a4", "audio"), RESTRICTION),
        (key("a4", "transcript"), RESTRICTION),
    ]
    .into_iter()
    .collect()
}

/// Seeds the world and writes its manifests: a Dispute on `a3`, and the three requests.
async fn world(name: &str) -> Scenario {
    let mut s = Scenario::with(
        name,
        Options {
            consent: true,
            legal_obligation: true,
            ..Options::default()
        },
    )
    .await;
    s.seed(calls()).await;
    s.add_hold(HoldDef::new("dispute", Reason::Dispute, &["a3"], &[]));
    let received = Utc::now() - TimeDelta::hours(RECEIVED_HOURS);
    s.add_request(RequestDef::erasure(ERASURE, "alice", received));
    s.add_request(RequestDef::withdrawal(
        WITHDRAWAL,
        "bob",
        &["quality"],
        received,
    ));
    s.add_request(RequestDef::restriction(RESTRICTION, &["a4"], received));
    s
}

/// The erasure's last journaled outcome, read straight from the bucket.
async fn erasure_outcome(s: &Scenario) -> Option<serde_json::Value> {
    let records = checker::journal_records(&s.s3, &s.bucket).await;
    let r = s.model.request(ERASURE);
    checker::latest_outcomes(&records)
        .into_iter()
        .find(|(n, _)| r.is_named(n))
        .map(|(_, o)| o.clone())
}

fn phase(outcome: &serde_json::Value) -> &str {
    outcome
        .get("phase")
        .and_then(|p| p.as_str())
        .unwrap_or_default()
}

/// Clean passes (faults off) until the journal has the erasure answered (at most four).
async fn until_erasure_answered(s: &mut Scenario) -> serde_json::Value {
    s.proxy.set_plan(FaultPlan::none());
    for _ in 0..4 {
        if let Some(o) = erasure_outcome(s).await
            && matches!(phase(&o), "Completed" | "PartiallyCompleted")
        {
            return o;
        }
        s.run(RunOpts::clean(), "settle").await;
    }
    panic!(
        "{}: four clean passes and the erasure is still not answered: {:?} (log {})",
        s.name,
        erasure_outcome(s).await,
        s.last_log()
    );
}

/// Once answered: what the store holds (erased, kept, legal holds on what is held) and what
/// the journal says was kept and why.
async fn assert_carried_out(s: &mut Scenario, outcome: &serde_json::Value) {
    // One more clean pass: the answer is final, so it must change nothing of the checks.
    let out = s.run(RunOpts::clean(), "after-answer").await;
    assert!(
        out.ok(),
        "a clean pass succeeds (log {})",
        out.log.display()
    );
    let gone: Vec<&str> = GONE.to_vec();
    for o in &s.model.objs {
        let k = o.key.as_str();
        assert_eq!(
            present(s, k),
            !gone.contains(&k),
            "{k}: {} after the requests were carried out [{}] (log {})",
            if present(s, k) { "present" } else { "gone" },
            s.model.why(o),
            s.last_log()
        );
    }
    for k in [
        key("a3", "audio"),
        key("a3", "transcript"),
        key("a4", "audio"),
        key("a4", "transcript"),
    ] {
        assert!(
            s.checker.last.present.get(&k).is_some_and(|x| x.legal_hold),
            "{k}: held (a LegalHold or a Restriction) on an Object Lock bucket: legal hold on"
        );
    }
    assert_eq!(
        phase(outcome),
        "PartiallyCompleted",
        "the erasure keeps exceptions: {outcome}"
    );
    let named: BTreeMap<String, String> = outcome
        .get("exceptions")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get("key")?.as_str()?.to_string(),
                e.get("keptBy")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let want = exceptions();
    assert_eq!(
        named.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the erasure names exactly its exceptions: {outcome}"
    );
    for (k, why) in &want {
        assert!(
            named[k].to_ascii_lowercase().contains(why),
            "{k}: kept by `{}`, which does not mention {why}",
            named[k]
        );
    }
}

/// Deletes the erasure's resource, then restores erased artifacts from a backup (same content
/// and recording time): `a1` entirely, its audio without the subject tag, so that only the
/// journal's tombstone (recording id `a1`) reaches it; `a2`'s transcript (its audio, which
/// carries alice's tag, is still there); `a6`'s transcript with its 9 tags.
/// Also writes a new version of the held `a3` transcript. Returns the restored versions and
/// the held one.
async fn restore(s: &mut Scenario) -> (Vec<(String, String)>, (String, String)) {
    s.remove_request(ERASURE);
    let mut restored = Vec::new();
    for (k, strip) in [
        (key("a1", "audio"), true),
        (key("a1", "transcript"), false),
        (key("a2", "transcript"), false),
        (key("a6", "transcript"), false),
    ] {
        restored.push((k.clone(), put_again(s, &k, strip).await));
    }
    let held_key = key("a3", "transcript");
    let held = (held_key.clone(), put_again(s, &held_key, false).await);
    (restored, held)
}

/// Uploads the seeded object under its key again, as it was seeded (without its `subject` tag
/// when `strip_subject`): a new version.
async fn put_again(s: &Scenario, k: &str, strip_subject: bool) -> String {
    let o = s.model.obj(k).expect("seeded").clone();
    let tagging = o
        .foreign_tags
        .iter()
        .filter(|(t, _)| !(strip_subject && t.as_str() == "subject"))
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut req =
        s.s3.put_object()
            .bucket(&s.bucket)
            .key(k)
            .body(ByteStream::from(
                format!("recording {k} {}", o.recorded_at).into_bytes(),
            ))
            .metadata(
                "call-start",
                o.recorded_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            );
    if !tagging.is_empty() {
        req = req.tagging(tagging);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("restore {k}: {e:?}"))
        .version_id()
        .unwrap_or_else(|| panic!("restore {k}: an Object Lock bucket is versioned"))
        .to_string()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Fails the test if the held transcript's new version is gone (the model knows only the
/// seeded versions, so this one is checked here, after every run).
async fn assert_held_version_kept(s: &Scenario, held: &(String, String), label: &str) {
    let (versions, _) = list_versions(&s.s3, &s.bucket).await;
    assert!(
        versions.contains_key(held),
        "{}: after `{label}`: {} version {} (a new version of a call under the Dispute hold) was deleted: the erasure's tombstone must not reach a held call (log {})",
        s.name,
        held.0,
        held.1,
        s.last_log()
    );
}

/// After the clean passes of the second half: the restored artifacts are erased again, from
/// the journal alone; the held call's new version stays.
async fn assert_erased_again(
    s: &mut Scenario,
    restored: &[(String, String)],
    held: &(String, String),
) -> Outcome {
    s.proxy.set_plan(FaultPlan::none());
    s.run(RunOpts::clean(), "clean").await;
    let last = s.run(RunOpts::clean(), "clean").await;
    assert!(
        last.ok(),
        "a clean pass succeeds (log {})",
        last.log.display()
    );
    let (versions, _) = list_versions(&s.s3, &s.bucket).await;
    let left: Vec<&(String, String)> = restored
        .iter()
        .filter(|v| versions.contains_key(*v))
        .collect();
    assert!(
        left.is_empty(),
        "{}: restored artifacts of the erased recordings are still there after two clean passes with the SubjectRequest gone (the journal's tombstone must erase them again): {left:?} (log {})",
        s.name,
        last.log.display()
    );
    assert_held_version_kept(s, held, "clean").await;
    last
}

/// Random flags as the other fault scenarios draw them, with at most two attempts per request:
/// more faults reach gallring's own handling, and no pass spends long in the SDK's backoff.
fn random_opts(s: &mut Scenario) -> RunOpts {
    let mut opts = RunOpts::random(&mut s.rng);
    opts.max_attempts = opts.max_attempts.min(2);
    opts
}

fn summary(s: &Scenario, outcome: Option<&serde_json::Value>) {
    let field = |f: &str| {
        outcome
            .and_then(|o| o.get(f))
            .map_or_else(|| "?".to_string(), |v| v.to_string())
    };
    s.summary(&format!(
        "erasure {} (deleted {}, exceptions {}, reappeared {})",
        outcome.map_or("?", phase),
        field("deleted"),
        field("exceptionsTotal"),
        field("reappeared"),
    ));
}

/// Erasure, withdrawal and restriction requests carried out through a quarter of the requests
/// failing (500, 503, resets, delays, answers lost after the write was applied), one or two
/// attempts, pages of 4 to 1000; the erasure's resource then deleted, erased artifacts
/// restored and erased again from the journal under the same faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_requests_under_random_faults_never_erase_held_unselected_or_obligated_objects() {
    let mut s = world("requests_faults").await;
    s.proxy.set_plan(FaultPlan::random(0.25));
    for _ in 0..4 {
        let opts = random_opts(&mut s);
        s.run(opts, "requests").await;
    }
    let outcome = until_erasure_answered(&mut s).await;
    assert_carried_out(&mut s, &outcome).await;

    let (restored, held) = restore(&mut s).await;
    s.proxy.set_plan(FaultPlan::random(0.25));
    for _ in 0..3 {
        let opts = random_opts(&mut s);
        s.run(opts, "restored").await;
        assert_held_version_kept(&s, &held, "restored").await;
    }
    assert_erased_again(&mut s, &restored, &held).await;
    summary(&s, erasure_outcome(&s).await.as_ref());
}

/// The same requests with `gallring run` (with `--once`, or looping) killed with SIGKILL at
/// random points, by time or by request count, with a tenth of the requests failing: before
/// the erasure is answered, and after its resource is gone and erased artifacts are restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_requests_survive_sigkill_at_random_points() {
    let mut s = world("requests_sigkill").await;
    s.proxy.set_plan(FaultPlan::random(0.10));
    for _ in 0..8 {
        s.run_killed("requests-kill").await;
    }
    let outcome = until_erasure_answered(&mut s).await;
    assert_carried_out(&mut s, &outcome).await;

    let (restored, held) = restore(&mut s).await;
    s.proxy.set_plan(FaultPlan::random(0.10));
    for _ in 0..6 {
        s.run_killed("restored-kill").await;
        assert_held_version_kept(&s, &held, "restored-kill").await;
    }
    assert_erased_again(&mut s, &restored, &held).await;
    summary(&s, erasure_outcome(&s).await.as_ref());
}

/// An erasure cut off between two delete batches (pages of 2): the first batch, alice's `a1`
/// audio (the only artifact of the call that carries her subject tag), is applied, then every
/// journal write fails (500, one attempt), so the pass ends before it journals the deletion or
/// the erasure's outcome (the tombstone with recording id `a1`). `a1`'s transcript, linked to
/// alice only through that audio, must still be erased by the next passes, and the journal
/// must not call the erasure done while it is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_cut_off_after_the_audio_is_deleted_still_erases_the_linked_transcript() {
    let mut s = world("requests_cut").await;
    let deletes = Arc::new(AtomicU32::new(0));
    let seen = deletes.clone();
    s.proxy.set_plan(FaultPlan {
        rate: 1.0,
        weights: vec![(Fault::Status500, 1)],
        max_delay: Duration::ZERO,
        only: Some(Arc::new(move |r: &RequestInfo| {
            if r.op == "DeleteObjects" {
                seen.fetch_add(1, Ordering::SeqCst);
                return false;
            }
            r.op == "PutObject"
                && r.key.starts_with(".gallring/journal/")
                && seen.load(Ordering::SeqCst) > 0
        })),
    });
    let mut opts = RunOpts::clean().attempts(1);
    opts.page_size = 2;
    opts.concurrency = 1;
    let out = s.run(opts, "cut").await;
    let audio = key("a1", "audio");
    let transcript = key("a1", "transcript");
    assert!(
        !out.ok() && !present(&s, &audio) && present(&s, &transcript),
        "the cut: the pass fails after deleting {audio} and before {transcript} (exit {:?}, DeleteObjects {}, log {})",
        out.code,
        deletes.load(Ordering::SeqCst),
        out.log.display()
    );
    let outcome = until_erasure_answered(&mut s).await;
    assert_carried_out(&mut s, &outcome).await;
    summary(&s, Some(&outcome));
}
