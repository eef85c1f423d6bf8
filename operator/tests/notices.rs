//! The five privacy notices in `policies/` as executable timelines.
//!
//! Each test loads one notice's manifests exactly as `gallring plan --manifests policies/<dir>`
//! does, builds recordings in code and asserts on which date each becomes deletable. Every
//! expected date is worked out by hand from the notice's words (see each directory's
//! README.md), never copied from the program's output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, TimeDelta, Utc};
use gallring::api::v1alpha1::RetentionPolicySpec;
use gallring::input::{self, CompiledBucket, Manifests};
use gallring::retention::{
    Decision, Deleter, Hold, HoldReason, HoldSelector, ObjectInfo, ObjectPlan, plan_bucket,
};

// ---------------------------------------------------------------------------------------------
// Helpers

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("`{s}` is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

fn notice_dir(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../policies")
        .join(dir)
}

fn manifests(dir: &str) -> Manifests {
    Manifests::load(&notice_dir(dir)).unwrap_or_else(|e| panic!("policies/{dir}: {e}"))
}

/// The notice's one RecordingBucket with its policy and the holds of `holds.yaml`.
fn notice(dir: &str) -> CompiledBucket {
    let mut buckets = manifests(dir)
        .compile()
        .unwrap_or_else(|e| panic!("policies/{dir}: {e}"));
    assert_eq!(
        buckets.len(),
        1,
        "policies/{dir} defines one RecordingBucket"
    );
    buckets.remove(0)
}

fn policy_spec(dir: &str) -> RetentionPolicySpec {
    let mut m = manifests(dir);
    assert_eq!(
        m.policies.len(),
        1,
        "policies/{dir} defines one RetentionPolicy"
    );
    m.policies.remove(0).spec
}

/// The legal name of the controller responsible for a purpose.
fn controller_of(spec: &RetentionPolicySpec, purpose: &str) -> String {
    let p = spec
        .purposes
        .iter()
        .find(|p| p.name == purpose)
        .unwrap_or_else(|| panic!("no purpose `{purpose}`"));
    p.controller
        .as_ref()
        .unwrap_or(&spec.controller)
        .legal_name
        .clone()
}

/// A hold from the notice's `holds.yaml`, by LegalHold name.
fn yaml_hold(bucket: &CompiledBucket, name: &str) -> Hold {
    bucket
        .holds
        .iter()
        .find(|h| h.name.ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("holds.yaml has no LegalHold {name}"))
        .clone()
}

fn obj(key: &str, created: &str) -> ObjectInfo {
    ObjectInfo {
        key: key.to_string(),
        last_modified: at(created),
        size: 1024,
        ..ObjectInfo::default()
    }
}

trait Build {
    fn tag(self, key: &str, value: &str) -> Self;
    fn meta(self, key: &str, value: &str) -> Self;
}

impl Build for ObjectInfo {
    fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.insert(key.to_string(), value.to_string());
        self
    }
    fn meta(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.to_string(), value.to_string());
        self
    }
}

fn hold(name: &str, reason: HoldReason, case: &str, select: HoldSelector) -> Hold {
    Hold {
        limitation_start: None,
        created_at: None,
        name: format!("LegalHold/recordings/{name}"),
        reason,
        case: case.to_string(),
        select,
        expires: None,
        review_by: None,
        released_at: None,
    }
}

fn keys(keys: &[&str]) -> HoldSelector {
    HoldSelector {
        keys: keys.iter().map(ToString::to_string).collect(),
        ..HoldSelector::default()
    }
}

fn recording_ids(ids: &[&str]) -> HoldSelector {
    HoldSelector {
        recording_ids: ids.iter().map(ToString::to_string).collect(),
        ..HoldSelector::default()
    }
}

fn subjects(subjects: &[&str]) -> HoldSelector {
    HoldSelector {
        subjects: subjects.iter().map(ToString::to_string).collect(),
        ..HoldSelector::default()
    }
}

fn created(mut h: Hold, when: &str) -> Hold {
    h.created_at = Some(at(when));
    h
}

fn limitation_from(mut h: Hold, when: &str) -> Hold {
    h.limitation_start = Some(at(when));
    h
}

fn released(mut h: Hold, when: &str) -> Hold {
    h.released_at = Some(at(when));
    h
}

fn expiring(mut h: Hold, when: &str) -> Hold {
    h.expires = Some(at(when));
    h
}

/// One notice, a listing and the holds that exist, planned at any moment.
struct Timeline {
    bucket: CompiledBucket,
    holds: Vec<Hold>,
    objects: Vec<ObjectInfo>,
}

impl Timeline {
    fn new(bucket: &CompiledBucket, holds: Vec<Hold>, objects: Vec<ObjectInfo>) -> Self {
        Timeline {
            bucket: bucket.clone(),
            holds,
            objects,
        }
    }

    fn plan_at(&self, now: DateTime<Utc>, key: &str) -> ObjectPlan {
        plan_bucket(
            &self.bucket.policy,
            &self.bucket.rules,
            self.holds.clone(),
            &self.objects,
            now,
        )
        .objects
        .into_iter()
        .find(|p| p.key == key)
        .unwrap_or_else(|| panic!("{key} is not in the listing"))
    }

    fn plan(&self, now: &str, key: &str) -> ObjectPlan {
        self.plan_at(at(now), key)
    }

    /// Kept (not held) up to one second before `deadline`, deletable from `deadline` on.
    fn assert_kept_until(&self, key: &str, deadline: &str) {
        let d = at(deadline);
        let before = self.plan_at(d - TimeDelta::seconds(1), key);
        assert_eq!(
            (before.decision, before.deadline),
            (Decision::Keep, Some(d)),
            "{key} one second before {deadline}: {}",
            before.reason
        );
        let on = self.plan_at(d, key);
        assert_eq!(
            (on.decision, on.deadline),
            (Decision::Delete, Some(d)),
            "{key} at {deadline}: {}",
            on.reason
        );
    }

    /// Under a maximum (`retainMeans: DeleteBy`): kept until `deadline`, deletable from then,
    /// must be gone by `maximum`: not overdue at `maximum`, overdue one second after it.
    fn assert_gone_by(&self, key: &str, deadline: &str, maximum: &str) {
        self.assert_kept_until(key, deadline);
        let m = at(maximum);
        let on = self.plan_at(m, key);
        assert_eq!(
            (on.decision, on.maximum, on.overdue),
            (Decision::Delete, Some(m), false),
            "{key} at its maximum {maximum}: {}",
            on.reason
        );
        let after = self.plan_at(m + TimeDelta::seconds(1), key);
        assert_eq!(
            (after.decision, after.overdue),
            (Decision::Delete, true),
            "{key} one second after its maximum {maximum}: {}",
            after.reason
        );
    }

    /// Deletable from the moment it was recorded.
    fn assert_deletable_at_once(&self, key: &str, recorded: &str) {
        let p = self.plan(recorded, key);
        assert_eq!(
            (p.decision, p.deadline),
            (Decision::Delete, Some(at(recorded))),
            "{key}: {}",
            p.reason
        );
    }

    fn assert_held(&self, key: &str, now: &str) {
        let p = self.plan(now, key);
        assert_eq!(
            (p.decision, p.deadline),
            (Decision::Held, None),
            "{key} at {now}: {}",
            p.reason
        );
    }

    /// Unclassified, with no deadline, every month for ten years from `from`.
    fn assert_never_deleted(&self, key: &str, from: &str) {
        let start = at(from);
        for month in 0..=120 {
            let now = start
                .checked_add_months(chrono::Months::new(month))
                .expect("date in range");
            let p = self.plan_at(now, key);
            assert_eq!(
                (p.decision, p.deadline),
                (Decision::Unclassified, None),
                "{key} at {now}: {}",
                p.reason
            );
        }
    }

    fn purposes(&self, now: &str, key: &str) -> Vec<String> {
        self.plan(now, key).purposes
    }
}

/// The notice's example listing planned as `gallring plan --at 2027-01-01T00:00:00Z` does:
/// keys by decision (`delete!` for overdue ones).
fn example_listing(dir: &str) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in example_plans(dir, false) {
        let decision = if p.overdue {
            "delete!".to_string()
        } else {
            p.decision.as_str().to_string()
        };
        by.entry(decision).or_default().push(p.key);
    }
    for keys in by.values_mut() {
        keys.sort();
    }
    by
}

/// The example listing planned at 2027-01-01, with or without the notice's `requests.yaml`
/// (its requests, and the holds that carry out its restrictions).
fn example_plans(dir: &str, with_requests: bool) -> Vec<ObjectPlan> {
    let bucket = notice(dir);
    let objects = input::load_objects(&notice_dir(dir).join("objects.jsonl"))
        .unwrap_or_else(|e| panic!("policies/{dir}/objects.jsonl: {e}"));
    assert!(
        (10..=40).contains(&objects.len()),
        "policies/{dir}/objects.jsonl has {} lines",
        objects.len()
    );
    let holds: Vec<Hold> = bucket
        .holds
        .iter()
        .filter(|h| with_requests || !h.name.starts_with("SubjectRequest/"))
        .cloned()
        .collect();
    let requests = if with_requests {
        bucket.requests.clone()
    } else {
        Vec::new()
    };
    gallring::retention::plan_bucket_with(
        &bucket.policy,
        &bucket.rules,
        holds,
        requests,
        &objects,
        at("2027-01-01T00:00:00Z"),
    )
    .objects
}

/// What the notice's requests change in its example listing: key → (decision without, with).
fn request_changes(dir: &str) -> BTreeMap<String, (String, String)> {
    let without = example_plans(dir, false);
    let with = example_plans(dir, true);
    assert!(
        !notice(dir).requests.is_empty(),
        "policies/{dir}/requests.yaml has no request"
    );
    without
        .into_iter()
        .zip(with)
        .filter(|(a, b)| a.decision != b.decision)
        .map(|(a, b)| {
            assert_eq!(a.key, b.key);
            (
                a.key,
                (
                    a.decision.as_str().to_string(),
                    b.decision.as_str().to_string(),
                ),
            )
        })
        .collect()
}

fn changes(list: &[(&str, &str, &str)]) -> BTreeMap<String, (String, String)> {
    list.iter()
        .map(|(k, a, b)| (k.to_string(), (a.to_string(), b.to_string())))
        .collect()
}

#[test]
fn if_requests_change_the_example_listing_as_its_readme_says() {
    assert_eq!(
        request_changes(IF),
        changes(&[
            (
                "private/2026/01/15/c-20260115-a1b2/transcript.masked.json",
                "keep",
                "delete"
            ),
            (
                "business-service/2026/07/01/c-20260701-4411/transcript.masked.json",
                "keep",
                "delete"
            ),
            (
                "business-claims/2026/10/21/c-20261021-8f8f/audio.opus",
                "keep",
                "delete"
            ),
            (
                "private/2023/12/31/c-20231231-0a77/audio.opus",
                "delete",
                "held"
            ),
            (
                "private/2023/12/31/c-20231231-0a77/transcript.json",
                "delete",
                "held"
            ),
        ])
    );
}

#[test]
fn lb_requests_change_the_example_listing_as_its_readme_says() {
    let changed = request_changes(LB);
    assert!(
        !changed.is_empty() && changed.keys().all(|k| k.contains("cc-20261218-1401-80")),
        "{changed:?}"
    );
    assert!(
        changed.values().all(|(a, b)| a == "keep" && b == "delete"),
        "{changed:?}"
    );
}

#[test]
fn tryg_requests_change_the_example_listing_as_its_readme_says() {
    assert_eq!(
        request_changes(TRYG),
        changes(&[(
            "samtaler/2025/12/31/t-20251231-2340-e2/audio.wav",
            "delete",
            "held"
        )])
    );
}

#[test]
fn lf_requests_change_the_example_listing_as_its_readme_says() {
    let changed = request_changes(LF);
    assert!(
        !changed.is_empty()
            && changed
                .keys()
                .all(|k| k.contains("i-20261212-0940-b7") || k.contains("nki-2026-0009121")),
        "{changed:?}"
    );
    assert!(
        changed.values().all(|(a, b)| a == "keep" && b == "delete"),
        "{changed:?}"
    );
}

#[test]
fn claims_link_requests_change_the_example_listing_as_its_readme_says() {
    let changed = request_changes(CLAIMS_LINK);
    assert!(
        !changed.is_empty() && changed.keys().all(|k| k.contains("nps-2026-000790")),
        "{changed:?}"
    );
    assert!(
        changed.values().all(|(a, b)| a == "keep" && b == "delete"),
        "{changed:?}"
    );
}

fn count(by: &BTreeMap<String, Vec<String>>, decision: &str) -> usize {
    by.get(decision).map_or(0, Vec::len)
}

fn keys_of(by: &BTreeMap<String, Vec<String>>, decision: &str) -> Vec<String> {
    by.get(decision).cloned().unwrap_or_default()
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// 000 If (English)

const IF: &str = "000-if";

/// A call under If's bucket layout: `<queue>/<yyyy>/<mm>/<dd>/<id>/<artifact>`, recorded at
/// `recorded` (metadata `recorded-at`) and uploaded seven minutes later.
fn if_artifact(queue: &str, id: &str, artifact: &str, recorded: &str) -> ObjectInfo {
    let day = &recorded[..10];
    let uploaded = at(recorded) + TimeDelta::minutes(7);
    obj(
        &format!("{queue}/{}/{id}/{artifact}", day.replace('-', "/")),
        &uploaded.to_rfc3339(),
    )
    .meta("recorded-at", recorded)
}

#[test]
fn if_audio_and_transcripts_are_deleted_three_years_after_the_call_whatever_the_consent() {
    let b = notice(IF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            if_artifact("private", "c-1", "audio.opus", "2026-01-31T10:00:00Z")
                .tag("consent", "given"),
            if_artifact("private", "c-1", "transcript.json", "2026-01-31T10:00:00Z")
                .tag("consent", "given"),
            if_artifact("private", "c-2", "audio.opus", "2026-03-15T08:30:00Z")
                .tag("consent", "refused"),
            if_artifact(
                "business-claims",
                "c-3",
                "audio.opus",
                "2028-02-29T09:00:00Z",
            )
            .tag("consent", "given"),
            if_artifact(
                "business-service",
                "c-4",
                "audio.opus",
                "2026-07-01T14:45:00Z",
            )
            .tag("quality-optout", "yes"),
            if_artifact(
                "business-service",
                "c-4",
                "transcript.json",
                "2026-07-01T14:45:00Z",
            )
            .tag("quality-optout", "yes"),
        ],
    );
    // "All audio recordings and transcriptions are deleted after three years".
    t.assert_kept_until("private/2026/01/31/c-1/audio.opus", "2029-01-31T10:00:00Z");
    t.assert_kept_until(
        "private/2026/01/31/c-1/transcript.json",
        "2029-01-31T10:00:00Z",
    );
    t.assert_kept_until("private/2026/03/15/c-2/audio.opus", "2029-03-15T08:30:00Z");
    // Three calendar years from 29 February is 28 February.
    t.assert_kept_until(
        "business-claims/2028/02/29/c-3/audio.opus",
        "2031-02-28T09:00:00Z",
    );
    t.assert_kept_until(
        "business-service/2026/07/01/c-4/audio.opus",
        "2029-07-01T14:45:00Z",
    );
    t.assert_kept_until(
        "business-service/2026/07/01/c-4/transcript.json",
        "2029-07-01T14:45:00Z",
    );
    // Consent adds the quality purpose; the deadline is still documentation's three years.
    assert_eq!(
        t.purposes("2026-02-01T00:00:00Z", "private/2026/01/31/c-1/audio.opus"),
        ["documentation", "quality-consent"]
    );
}

#[test]
fn if_masked_transcripts_serve_trend_analysis_for_three_years_only_with_consent_or_without_opt_out()
{
    let b = notice(IF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            if_artifact(
                "private",
                "c-1",
                "transcript.masked.json",
                "2026-01-31T10:00:00Z",
            )
            .tag("consent", "given"),
            if_artifact(
                "private",
                "c-2",
                "transcript.masked.json",
                "2026-01-31T10:00:00Z",
            )
            .tag("consent", "refused"),
            if_artifact(
                "business-service",
                "c-3",
                "transcript.masked.json",
                "2026-05-31T23:59:00Z",
            )
            .tag("quality-optout", "no"),
            if_artifact(
                "business-service",
                "c-4",
                "transcript.masked.json",
                "2026-05-31T23:59:00Z",
            )
            .tag("quality-optout", "yes"),
            // No opt-out answer recorded: read as an opt-out (keeps less).
            if_artifact(
                "business-service",
                "c-5",
                "transcript.masked.json",
                "2026-05-31T23:59:00Z",
            ),
        ],
    );
    // "...we can continue to use a written transcript of the call for up to three years,
    // after which the transcript is deleted": gone by three years after the call (on the
    // Swedish calendar: 31 Jan 2026 11:00 CET -> 31 Jan 2029 11:00 CET = 10:00 UTC), deletion
    // planned the P2D grace earlier.
    t.assert_gone_by(
        "private/2026/01/31/c-1/transcript.masked.json",
        "2029-01-29T10:00:00Z",
        "2029-01-31T10:00:00Z",
    );
    // 31 May 23:59 UTC is 1 Jun 01:59 Swedish time (CEST): gone by 1 Jun 2029 01:59 CEST.
    t.assert_gone_by(
        "business-service/2026/05/31/c-3/transcript.masked.json",
        "2029-05-29T23:59:00Z",
        "2029-05-31T23:59:00Z",
    );
    // Without consent (or with an opt-out) nothing justifies a masked transcript.
    t.assert_deletable_at_once(
        "private/2026/01/31/c-2/transcript.masked.json",
        "2026-01-31T10:00:00Z",
    );
    t.assert_deletable_at_once(
        "business-service/2026/05/31/c-4/transcript.masked.json",
        "2026-05-31T23:59:00Z",
    );
    t.assert_deletable_at_once(
        "business-service/2026/05/31/c-5/transcript.masked.json",
        "2026-05-31T23:59:00Z",
    );
}

#[test]
fn if_withdrawn_consent_or_a_later_opt_out_ends_quality_use_but_not_documentation() {
    let b = notice(IF);
    let withdrawn = "gallring.io/withdrawn";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            if_artifact("private", "c-1", "audio.opus", "2026-04-20T10:11:09Z")
                .tag("consent", "given")
                .tag(withdrawn, "quality-consent"),
            if_artifact(
                "private",
                "c-1",
                "transcript.masked.json",
                "2026-04-20T10:11:09Z",
            )
            .tag("consent", "given")
            .tag(withdrawn, "quality-consent"),
            if_artifact(
                "business-service",
                "c-2",
                "audio.opus",
                "2026-06-01T12:00:00Z",
            )
            .tag("quality-optout", "no")
            .tag(withdrawn, "quality-business"),
            if_artifact(
                "business-service",
                "c-2",
                "transcript.masked.json",
                "2026-06-01T12:00:00Z",
            )
            .tag("quality-optout", "no")
            .tag(withdrawn, "quality-business"),
            // Documentation is not withdrawable: naming it changes nothing.
            if_artifact("private", "c-3", "transcript.json", "2026-06-01T12:00:00Z")
                .tag(withdrawn, "documentation"),
        ],
    );
    t.assert_kept_until("private/2026/04/20/c-1/audio.opus", "2029-04-20T10:11:09Z");
    assert_eq!(
        t.purposes("2026-05-01T00:00:00Z", "private/2026/04/20/c-1/audio.opus"),
        ["documentation"]
    );
    t.assert_deletable_at_once(
        "private/2026/04/20/c-1/transcript.masked.json",
        "2026-04-20T10:11:09Z",
    );
    t.assert_kept_until(
        "business-service/2026/06/01/c-2/audio.opus",
        "2029-06-01T12:00:00Z",
    );
    t.assert_deletable_at_once(
        "business-service/2026/06/01/c-2/transcript.masked.json",
        "2026-06-01T12:00:00Z",
    );
    t.assert_kept_until(
        "private/2026/06/01/c-3/transcript.json",
        "2029-06-01T12:00:00Z",
    );
}

#[test]
fn if_health_data_is_never_used_for_quality() {
    let b = notice(IF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            if_artifact("private", "c-1", "audio.opus", "2026-05-06T12:30:00Z")
                .tag("consent", "given")
                .tag("sensitive", "health"),
            if_artifact(
                "private",
                "c-1",
                "transcript.masked.json",
                "2026-05-06T12:30:00Z",
            )
            .tag("consent", "given")
            .tag("sensitive", "health"),
            if_artifact(
                "business-service",
                "c-2",
                "transcript.masked.json",
                "2026-05-06T12:30:00Z",
            )
            .tag("quality-optout", "no")
            .tag("sensitive", "health"),
        ],
    );
    assert_eq!(
        t.purposes("2026-05-07T00:00:00Z", "private/2026/05/06/c-1/audio.opus"),
        ["documentation"]
    );
    t.assert_kept_until("private/2026/05/06/c-1/audio.opus", "2029-05-06T12:30:00Z");
    t.assert_deletable_at_once(
        "private/2026/05/06/c-1/transcript.masked.json",
        "2026-05-06T12:30:00Z",
    );
    t.assert_deletable_at_once(
        "business-service/2026/05/06/c-2/transcript.masked.json",
        "2026-05-06T12:30:00Z",
    );
}

#[test]
fn if_a_claim_hold_on_the_audio_keeps_the_transcripts_of_the_call_until_the_claim_closes() {
    let b = notice(IF);
    let audio = "private/2026/01/31/c-9/audio.opus";
    let transcript = "private/2026/01/31/c-9/transcript.json";
    let masked = "private/2026/01/31/c-9/transcript.masked.json";
    let other = "private/2026/01/31/c-10/audio.opus";
    let objects = vec![
        if_artifact("private", "c-9", "audio.opus", "2026-01-31T10:00:00Z").tag("consent", "given"),
        if_artifact("private", "c-9", "transcript.json", "2026-01-31T10:00:00Z")
            .tag("consent", "given"),
        if_artifact(
            "private",
            "c-9",
            "transcript.masked.json",
            "2026-01-31T10:00:00Z",
        )
        .tag("consent", "given"),
        if_artifact("private", "c-10", "audio.opus", "2026-01-31T10:00:00Z"),
    ];
    // The claim selects only the audio; the recording id carries it to the transcripts.
    let claim = hold("claim-1", HoldReason::Claim, "CLM-1", keys(&[audio]));

    // Still open past the three years: held, no deadline.
    let open = Timeline::new(&b, vec![claim.clone()], objects.clone());
    for key in [audio, transcript, masked] {
        open.assert_held(key, "2026-06-01T00:00:00Z");
        open.assert_held(key, "2029-06-01T00:00:00Z");
    }
    open.assert_kept_until(other, "2029-01-31T10:00:00Z");

    // Closed after the three years: deletable at once on closure (holdRelease Claim P0D).
    let late = Timeline::new(
        &b,
        vec![released(claim.clone(), "2029-09-30T12:00:00Z")],
        objects.clone(),
    );
    for key in [audio, transcript, masked] {
        let p = late.plan("2029-09-30T12:00:00Z", key);
        assert_eq!(
            (p.decision, p.deadline),
            (Decision::Delete, Some(at("2029-09-30T12:00:00Z"))),
            "{key}: {}",
            p.reason
        );
    }

    // Closed within the three years: the normal deadlines stand (the masked transcript's
    // three years are a maximum: deletion two days before they end).
    let early = Timeline::new(&b, vec![released(claim, "2027-05-01T00:00:00Z")], objects);
    for key in [audio, transcript] {
        early.assert_kept_until(key, "2029-01-31T10:00:00Z");
    }
    early.assert_gone_by(masked, "2029-01-29T10:00:00Z", "2029-01-31T10:00:00Z");
}

#[test]
fn if_a_dispute_hold_from_holds_yaml_keeps_the_customers_earlier_calls_until_its_expiry_and_nothing_extra()
 {
    let b = notice(IF);
    let dispute = yaml_hold(&b, "dispute-arn-2026-1187");
    assert_eq!(dispute.reason, HoldReason::Dispute);
    let claim = yaml_hold(&b, "claim-clm-2026-004217");
    // A call of the disputing customer recorded in 2024: its three years end before the
    // dispute's expiry on 2027-06-30.
    let old = "private/2024/05/01/c-20240501-aa01/audio.opus";
    let recent = "private/2026/09/09/c-20260909-3c3c/transcript.json";
    // Recorded after the dispute began (ARN complaint of 30 Sep 2026; the hold's scope ends
    // at 1 Oct 2026 00:00 Swedish time = 30 Sep 22:00 UTC).
    let later = "business-claims/2026/10/21/c-20261021-8f8f/audio.opus";
    let just_before = "private/2026/09/30/c-20260930-0001/audio.opus";
    let just_after = "private/2026/09/30/c-20260930-0002/audio.opus";
    let claimed = "private/2026/03/12/c-20260312-5e1a/transcript.masked.json";
    let t = Timeline::new(
        &b,
        vec![dispute, claim],
        vec![
            if_artifact(
                "private",
                "c-20240501-aa01",
                "audio.opus",
                "2024-05-01T08:00:00Z",
            )
            .tag("subject", "cust-8c41d2"),
            if_artifact(
                "private",
                "c-20260909-3c3c",
                "transcript.json",
                "2026-09-09T08:00:12Z",
            )
            .tag("subject", "cust-8c41d2"),
            if_artifact(
                "business-claims",
                "c-20261021-8f8f",
                "audio.opus",
                "2026-10-21T13:14:15Z",
            )
            .tag("consent", "given")
            .tag("subject", "cust-8c41d2"),
            if_artifact(
                "private",
                "c-20260930-0001",
                "audio.opus",
                "2026-09-30T21:59:59Z",
            )
            .tag("subject", "cust-8c41d2"),
            if_artifact(
                "private",
                "c-20260930-0002",
                "audio.opus",
                "2026-09-30T22:00:00Z",
            )
            .tag("subject", "cust-8c41d2"),
            if_artifact(
                "private",
                "c-20260312-5e1a",
                "transcript.masked.json",
                "2026-03-12T07:58:41Z",
            )
            .tag("consent", "given"),
        ],
    );
    t.assert_held(old, "2027-05-15T00:00:00Z");
    t.assert_held(old, "2027-06-29T23:59:59Z");
    // After expiry: max(2027-05-01T08:00 normal, 2027-06-30T00:00 + P0D).
    let p = t.plan("2027-06-30T00:00:00Z", old);
    assert_eq!(
        (p.decision, p.deadline),
        (Decision::Delete, Some(at("2027-06-30T00:00:00Z"))),
        "{}",
        p.reason
    );
    // A recent call of the same customer, made before the dispute, simply returns to its
    // normal three years.
    t.assert_held(recent, "2027-01-01T00:00:00Z");
    t.assert_kept_until(recent, "2029-09-09T08:00:12Z");
    // Calls made after the dispute began are not held: three years from the call.
    t.assert_kept_until(later, "2029-10-21T13:14:15Z");
    t.assert_held(just_before, "2027-01-01T00:00:00Z");
    t.assert_kept_until(just_after, "2029-09-30T22:00:00Z");
    // The claim hold selects the recording id; the masked transcript is part of the call.
    t.assert_held(claimed, "2029-06-01T00:00:00Z");
}

#[test]
fn if_quality_may_use_audio_for_one_year_of_its_three_years_of_storage() {
    let b = notice(IF);
    let private = "private/2026/01/31/c-1/audio.opus";
    let business = "business-service/2026/07/01/c-2/audio.opus";
    let refused = "private/2026/01/31/c-3/audio.opus";
    let withdrawn = "private/2026/01/31/c-4/audio.opus";
    let health = "business-service/2026/07/01/c-5/audio.opus";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            if_artifact("private", "c-1", "audio.opus", "2026-01-31T10:00:00Z")
                .tag("consent", "given"),
            if_artifact(
                "business-service",
                "c-2",
                "audio.opus",
                "2026-07-01T14:45:00Z",
            )
            .tag("quality-optout", "no"),
            if_artifact("private", "c-3", "audio.opus", "2026-01-31T10:00:00Z")
                .tag("consent", "refused"),
            if_artifact("private", "c-4", "audio.opus", "2026-01-31T10:00:00Z")
                .tag("consent", "given")
                .tag("gallring.io/withdrawn", "quality-consent"),
            if_artifact(
                "business-service",
                "c-5",
                "audio.opus",
                "2026-07-01T14:45:00Z",
            )
            .tag("quality-optout", "no")
            .tag("sensitive", "health"),
        ],
    );
    // "...we will continue using the audio recording for this purpose for up to one year":
    // quality use ends a year after the call, storage (documentation) after three.
    let p = t.plan("2026-02-01T00:00:00Z", private);
    assert_eq!(
        p.uses
            .iter()
            .map(|u| (u.purpose.as_str(), u.until))
            .collect::<Vec<_>>(),
        [("quality-consent", at("2027-01-31T10:00:00Z"))]
    );
    t.assert_kept_until(private, "2029-01-31T10:00:00Z");
    // 1 Jul 16:45 CEST + 1 year = 1 Jul 2027 16:45 CEST = 14:45 UTC.
    let p = t.plan("2026-07-02T00:00:00Z", business);
    assert_eq!(
        p.uses
            .iter()
            .map(|u| (u.purpose.as_str(), u.until))
            .collect::<Vec<_>>(),
        [("quality-business", at("2027-07-01T14:45:00Z"))]
    );
    t.assert_kept_until(business, "2029-07-01T14:45:00Z");
    // No consent, a withdrawal, or health data: no quality use at all.
    for key in [refused, withdrawn, health] {
        let p = t.plan("2026-08-01T00:00:00Z", key);
        assert!(p.uses.is_empty(), "{key}: {:?}", p.uses);
        assert_eq!(p.purposes, ["documentation"], "{key}");
    }
    // One controller for every purpose.
    assert_eq!(
        t.plan("2026-02-01T00:00:00Z", private).controllers,
        ["If Skadeförsäkring AB (publ)"]
    );
}

#[test]
fn if_a_withdrawal_makes_the_masked_transcript_deletable_at_once_and_overdue_only_after_the_grace()
{
    let b = notice(IF);
    let dated = "private/2026/04/20/c-1/transcript.masked.json";
    let undated = "private/2026/04/20/c-2/transcript.masked.json";
    let w = "gallring.io/withdrawn";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            // Consent withdrawn by writing to registerutdrag@if.se; the withdrawal tooling
            // writes the (Swedish) date.
            if_artifact(
                "private",
                "c-1",
                "transcript.masked.json",
                "2026-04-20T10:11:09Z",
            )
            .tag("consent", "given")
            .tag(w, "quality-consent")
            .tag("gallring.io/withdrawn-at", "2026-12-31"),
            if_artifact(
                "private",
                "c-2",
                "transcript.masked.json",
                "2026-04-20T10:11:09Z",
            )
            .tag("consent", "given")
            .tag(w, "quality-consent"),
        ],
    );
    // "If you ... withdraw your consent, the recording will not be used for this purpose":
    // nothing keeps the masked transcript any more, from the call on.
    t.assert_deletable_at_once(dated, "2026-04-20T10:11:09Z");
    t.assert_deletable_at_once(undated, "2026-04-20T10:11:09Z");
    // Overdue only once the P2D grace has passed since the withdrawal: 31 Dec 2026 00:00
    // Swedish time = 30 Dec 23:00 UTC, + 2 days = 1 Jan 2027 23:00 UTC.
    assert!(!t.plan("2027-01-01T23:00:00Z", dated).overdue);
    assert!(t.plan("2027-01-01T23:00:01Z", dated).overdue);
    // Without the withdrawal's date the grace counts from the call: overdue since 22 Apr.
    assert!(t.plan("2026-04-22T10:11:10Z", undated).overdue);
}

#[test]
fn if_objects_no_rule_classifies_are_never_deleted() {
    let b = notice(IF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            if_artifact("private", "c-1", "screen.webm", "2026-12-30T09:12:00Z"),
            obj("exports/2026-q4-quality-sample.zip", "2026-12-15T16:00:00Z"),
        ],
    );
    t.assert_never_deleted("private/2026/12/30/c-1/screen.webm", "2026-12-30T00:00:00Z");
    t.assert_never_deleted("exports/2026-q4-quality-sample.zip", "2026-12-15T00:00:00Z");
}

#[test]
fn if_example_listing_plans_as_its_readme_describes() {
    let by = example_listing(IF);
    assert_eq!(count(&by, "delete!"), 0);
    assert_eq!(
        keys_of(&by, "delete"),
        sorted(&[
            "private/2026/04/20/c-20260420-0c3f/transcript.masked.json",
            "business-service/2026/12/30/c-20261230-e0e0/transcript.masked.json",
            "business-service/2026/12/30/c-20261230-77aa/transcript.masked.json",
            "private/2023/12/31/c-20231231-0a77/audio.opus",
            "private/2023/12/31/c-20231231-0a77/transcript.json",
        ])
    );
    assert_eq!(
        keys_of(&by, "unclassified"),
        sorted(&[
            "exports/2026-q4-quality-sample.zip",
            "private/2026/12/30/c-20261230-1212/screen.webm",
        ])
    );
    // The claim's three artifacts and the two artifacts of the customer's call of 2026-09-09;
    // the customer's call of 2026-10-21, after the dispute began, is kept, not held.
    assert_eq!(count(&by, "held"), 5);
    assert_eq!(count(&by, "keep"), 19);
}

// ---------------------------------------------------------------------------------------------
// 001 LB Forsikring (Danish)

const LB: &str = "001-lb-forsikring";

/// A call-centre artifact; the recorder uploads it when the call ends (the creation time is
/// the recording time).
fn lb_call(id: &str, artifact: &str, recorded: &str) -> ObjectInfo {
    let day = recorded[..10].replace('-', "/");
    obj(&format!("callcenter/{day}/{id}/{artifact}"), recorded)
}

fn lb_inspection(case: &str, id: &str, artifact: &str, recorded: &str) -> ObjectInfo {
    obj(&format!("skadeinspektion/{case}/{id}/{artifact}"), recorded)
}

#[test]
fn lb_call_centre_recordings_and_transcripts_are_deleted_thirty_days_after_the_call() {
    let b = notice(LB);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lb_call("cc-1", "audio.wav", "2026-01-31T10:00:00Z"),
            lb_call("cc-1", "transcript.json", "2026-01-31T10:00:00Z"),
            lb_call("cc-2", "audio.wav", "2026-12-15T16:20:00Z"),
        ],
    );
    // 2026 is not a leap year: 31 January + 30 days = 2 March.
    t.assert_kept_until(
        "callcenter/2026/01/31/cc-1/audio.wav",
        "2026-03-02T10:00:00Z",
    );
    t.assert_kept_until(
        "callcenter/2026/01/31/cc-1/transcript.json",
        "2026-03-02T10:00:00Z",
    );
    t.assert_kept_until(
        "callcenter/2026/12/15/cc-2/audio.wav",
        "2027-01-14T16:20:00Z",
    );
}

#[test]
fn lb_withdrawn_consent_makes_a_call_centre_recording_deletable_at_once() {
    let b = notice(LB);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lb_call("cc-1", "audio.wav", "2026-01-31T10:00:00Z")
                .tag("gallring.io/withdrawn", "call-centre"),
            lb_call("cc-1", "transcript.json", "2026-01-31T10:00:00Z")
                .tag("gallring.io/withdrawn", "call-centre"),
        ],
    );
    t.assert_deletable_at_once(
        "callcenter/2026/01/31/cc-1/audio.wav",
        "2026-01-31T10:00:00Z",
    );
    t.assert_deletable_at_once(
        "callcenter/2026/01/31/cc-1/transcript.json",
        "2026-01-31T10:00:00Z",
    );
}

#[test]
fn lb_an_access_request_within_thirty_days_keeps_the_call_up_to_one_year_from_the_request() {
    let b = notice(LB);
    let audio = "callcenter/2026/01/31/cc-1/audio.wav";
    let transcript = "callcenter/2026/01/31/cc-1/transcript.json";
    let objects = vec![
        lb_call("cc-1", "audio.wav", "2026-01-31T10:00:00Z"),
        lb_call("cc-1", "transcript.json", "2026-01-31T10:00:00Z"),
    ];
    // Requested on 2026-02-20, within the 30 days: the hold expires a year after the request.
    let request = expiring(
        hold(
            "indsigt-1",
            HoldReason::AccessRequest,
            "DSR-1",
            keys(&[audio]),
        ),
        "2027-02-20T00:00:00Z",
    );
    let t = Timeline::new(&b, vec![request.clone()], objects.clone());
    for key in [audio, transcript] {
        t.assert_held(key, "2026-02-20T00:00:00Z");
        t.assert_held(key, "2026-03-02T10:00:00Z");
        t.assert_held(key, "2027-02-19T23:59:59Z");
        // max(2026-03-02T10:00 normal, 2027-02-20T00:00 + P0D).
        let p = t.plan("2027-02-20T00:00:00Z", key);
        assert_eq!(
            (p.decision, p.deadline),
            (Decision::Delete, Some(at("2027-02-20T00:00:00Z"))),
            "{key}: {}",
            p.reason
        );
    }
    // Answered and closed early: deletable when the hold is deleted.
    let done = Timeline::new(
        &b,
        vec![released(request, "2026-04-01T12:00:00Z")],
        objects.clone(),
    );
    for key in [audio, transcript] {
        let p = done.plan("2026-04-01T12:00:00Z", key);
        assert_eq!(
            (p.decision, p.deadline),
            (Decision::Delete, Some(at("2026-04-01T12:00:00Z"))),
            "{key}: {}",
            p.reason
        );
    }

    // "...kunne gemme disse i op til 1 år": a hold without `expires`, or with one set too
    // late, still ends a year after it was created (maxHold P1Y): created 20 Feb 10:00 CET
    // (09:00 UTC) -> 20 Feb 2027 10:00 CET.
    for h in [
        created(
            hold(
                "indsigt-2",
                HoldReason::AccessRequest,
                "DSR-2",
                keys(&[audio]),
            ),
            "2026-02-20T09:00:00Z",
        ),
        created(
            expiring(
                hold(
                    "indsigt-3",
                    HoldReason::AccessRequest,
                    "DSR-3",
                    keys(&[audio]),
                ),
                "2027-06-01T00:00:00Z",
            ),
            "2026-02-20T09:00:00Z",
        ),
    ] {
        let t = Timeline::new(&b, vec![h], objects.clone());
        t.assert_held(audio, "2027-02-20T08:59:59Z");
        let p = t.plan("2027-02-20T09:00:00Z", audio);
        assert_eq!(
            (p.decision, p.deadline),
            (Decision::Delete, Some(at("2027-02-20T09:00:00Z"))),
            "{}",
            p.reason
        );
    }

    // The same from holds.yaml: request DSR-2026-0117 of 2026-12-02, expiring 2027-12-02.
    let yaml = Timeline::new(
        &b,
        vec![yaml_hold(&b, "indsigt-dsr-2026-0117")],
        vec![lb_call(
            "cc-20261120-0912-11",
            "transcript.json",
            "2026-11-20T09:12:00Z",
        )],
    );
    let key = "callcenter/2026/11/20/cc-20261120-0912-11/transcript.json";
    yaml.assert_held(key, "2027-12-01T23:59:59Z");
    let p = yaml.plan("2027-12-02T00:00:00Z", key);
    assert_eq!(
        (p.decision, p.deadline),
        (Decision::Delete, Some(at("2027-12-02T00:00:00Z"))),
        "{}",
        p.reason
    );
}

#[test]
fn lb_an_access_request_for_all_of_a_customers_calls_covers_only_the_calls_made_before_it() {
    let b = notice(LB);
    let before = "callcenter/2026/02/10/cc-1/audio.wav";
    let after = "callcenter/2026/02/21/cc-2/audio.wav";
    // Asked on 20 Feb 2026 for "my recorded calls": the calls that exist then (recorded within
    // the 30 days before), not the customer's later calls.
    let mut request = expiring(
        hold(
            "indsigt-4",
            HoldReason::AccessRequest,
            "DSR-4",
            subjects(&["lb-kunde-1"]),
        ),
        "2027-02-20T00:00:00Z",
    );
    request.select.recorded_before = Some(at("2026-02-20T12:00:00+01:00"));
    let t = Timeline::new(
        &b,
        vec![request],
        vec![
            lb_call("cc-1", "audio.wav", "2026-02-10T09:00:00Z").tag("subject", "lb-kunde-1"),
            lb_call("cc-2", "audio.wav", "2026-02-21T09:00:00Z").tag("subject", "lb-kunde-1"),
        ],
    );
    t.assert_held(before, "2027-02-19T00:00:00Z");
    // The later call keeps its own 30 days: 21 Feb + 30 days = 23 Mar.
    t.assert_kept_until(after, "2026-03-23T09:00:00Z");
}

#[test]
fn lb_a_complaint_keeps_the_call_until_finally_closed_and_then_for_the_three_year_limitation_period()
 {
    let b = notice(LB);
    let audio = "callcenter/2026/01/31/cc-1/audio.wav";
    let transcript = "callcenter/2026/01/31/cc-1/transcript.json";
    let objects = vec![
        lb_call("cc-1", "audio.wav", "2026-01-31T10:00:00Z"),
        lb_call("cc-1", "transcript.json", "2026-01-31T10:00:00Z"),
    ];
    let complaint = hold("klage-1", HoldReason::Complaint, "KL-1", keys(&[audio]));
    let open = Timeline::new(&b, vec![complaint.clone()], objects.clone());
    open.assert_held(transcript, "2026-09-01T00:00:00Z");
    // No limitation start stated on the hold: the fallback, the final closure on 2026-09-15
    // (the latest the period can start) + 3 years (forældelsesloven § 3).
    let closed = Timeline::new(
        &b,
        vec![released(complaint, "2026-09-15T12:00:00Z")],
        objects.clone(),
    );
    for key in [audio, transcript] {
        closed.assert_kept_until(key, "2029-09-15T12:00:00Z");
    }
    // A dispute is treated the same way.
    let dispute = released(
        hold(
            "tvist-1",
            HoldReason::Dispute,
            "TV-1",
            recording_ids(&["cc-1"]),
        ),
        "2027-03-01T00:00:00Z",
    );
    let t = Timeline::new(&b, vec![dispute], objects);
    t.assert_kept_until(transcript, "2030-03-01T00:00:00Z");
    // And the complaint of holds.yaml selects its call by recording id.
    let yaml = Timeline::new(
        &b,
        vec![yaml_hold(&b, "klage-kl-2026-0388")],
        vec![lb_call(
            "cc-20261214-0915-a7",
            "transcript.json",
            "2026-12-14T09:15:00Z",
        )],
    );
    yaml.assert_held(
        "callcenter/2026/12/14/cc-20261214-0915-a7/transcript.json",
        "2027-06-01T00:00:00Z",
    );
}

#[test]
fn lb_a_complaint_with_a_limitation_start_is_kept_until_three_years_after_the_claim_fell_due() {
    let b = notice(LB);
    let audio = "callcenter/2026/01/31/cc-1/audio.wav";
    let transcript = "callcenter/2026/01/31/cc-1/transcript.json";
    let objects = vec![
        lb_call("cc-1", "audio.wav", "2026-01-31T10:00:00Z"),
        lb_call("cc-1", "transcript.json", "2026-01-31T10:00:00Z"),
    ];
    // "...slettes samtalen/transskriptionen, når klagen/tvisten er endeligt afsluttet i
    // overensstemmelse med forældelsesreglerne": the customer's claim fell due on 15 Feb 2026
    // (forældelsesloven § 2), so its 3 years (§ 3) end on 15 Feb 2029 00:00 Danish time
    // (CET) = 14 Feb 23:00 UTC, whenever the complaint closed before that.
    let complaint = limitation_from(
        hold("klage-2", HoldReason::Complaint, "KL-2", keys(&[audio])),
        "2026-02-15T00:00:00+01:00",
    );
    let open = Timeline::new(&b, vec![complaint.clone()], objects.clone());
    open.assert_held(audio, "2029-06-01T00:00:00Z");
    let closed = Timeline::new(
        &b,
        vec![released(complaint.clone(), "2026-09-15T12:00:00Z")],
        objects.clone(),
    );
    for key in [audio, transcript] {
        closed.assert_kept_until(key, "2029-02-14T23:00:00Z");
        assert_eq!(
            closed.plan("2027-01-01T00:00:00Z", key).anchor_at,
            Some(at("2026-02-14T23:00:00Z")),
            "{key}: the floor counts from the limitation start"
        );
    }
    // Closed after the period has already run (a long complaint): nothing keeps it after the
    // closure, deletable at once.
    let late = Timeline::new(
        &b,
        vec![released(complaint, "2029-05-01T10:00:00Z")],
        objects.clone(),
    );
    for key in [audio, transcript] {
        let p = late.plan("2029-05-01T10:00:00Z", key);
        assert_eq!(p.decision, Decision::Delete, "{key}: {}", p.reason);
    }
}

#[test]
fn lb_a_complaint_closed_after_its_limitation_period_is_not_overdue_at_closure() {
    let b = notice(LB);
    let audio = "callcenter/2026/01/31/cc-1/audio.wav";
    let complaint = limitation_from(
        hold("klage-3", HoldReason::Complaint, "KL-3", keys(&[audio])),
        "2026-02-15T00:00:00+01:00",
    );
    let t = Timeline::new(
        &b,
        vec![released(complaint, "2029-05-01T10:00:00Z")],
        vec![lb_call("cc-1", "audio.wav", "2026-01-31T10:00:00Z")],
    );
    // Deletable from the closure (nothing kept it after 14 Feb 2029, but the complaint held it
    // until 1 May 2029); overdue only once the P2D grace has passed since the closure.
    let p = t.plan("2029-05-02T10:00:00Z", audio);
    assert_eq!(
        (p.decision, p.deadline, p.overdue),
        (Decision::Delete, Some(at("2029-05-01T10:00:00Z")), false),
        "{}",
        p.reason
    );
}

#[test]
fn lb_inspector_recordings_not_worth_investigating_are_deleted_at_once() {
    let b = notice(LB);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lb_inspection("SI-1", "si-1", "audio.wav", "2026-12-30T11:15:00Z")
                .tag("assessment", "not-relevant"),
            lb_inspection("SI-1", "si-1", "transcript.json", "2026-12-30T11:15:00Z")
                .tag("assessment", "not-relevant"),
        ],
    );
    t.assert_deletable_at_once(
        "skadeinspektion/SI-1/si-1/audio.wav",
        "2026-12-30T11:15:00Z",
    );
    t.assert_deletable_at_once(
        "skadeinspektion/SI-1/si-1/transcript.json",
        "2026-12-30T11:15:00Z",
    );
}

#[test]
fn lb_an_inspector_recording_assessed_not_relevant_weeks_later_is_deleted_from_the_assessment() {
    let b = notice(LB);
    let timed = "skadeinspektion/SI-1/si-1/audio.wav";
    let dated = "skadeinspektion/SI-1/si-2/audio.wav";
    let untimed = "skadeinspektion/SI-1/si-3/audio.wav";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            // Called on 1 Dec; assessed as not relevant 18 days later.
            lb_inspection("SI-1", "si-1", "audio.wav", "2026-12-01T10:00:00Z")
                .tag("assessment", "not-relevant")
                .tag("assessed-at", "2026-12-19T14:00:00+01:00"),
            lb_inspection("SI-1", "si-2", "audio.wav", "2026-12-01T10:00:00Z")
                .tag("assessment", "not-relevant")
                .tag("assessed-at", "2026-12-19"),
            lb_inspection("SI-1", "si-3", "audio.wav", "2026-12-01T10:00:00Z")
                .tag("assessment", "not-relevant"),
        ],
    );
    // "...slettes dog straks, hvis samtalen ikke giver anledning til yderligere
    // undersøgelser": deletable from the assessment (19 Dec 13:00 UTC), and overdue only once
    // the P2D grace has passed since then, not since the call.
    let p = t.plan("2026-12-19T13:00:00Z", timed);
    assert_eq!(
        (p.decision, p.deadline, p.overdue),
        (Decision::Delete, Some(at("2026-12-19T13:00:00Z")), false),
        "{}",
        p.reason
    );
    assert!(!t.plan("2026-12-21T13:00:00Z", timed).overdue);
    assert!(t.plan("2026-12-21T13:00:01Z", timed).overdue);
    // A Danish date: midnight in Copenhagen, 18 Dec 23:00 UTC; overdue after 20 Dec 23:00.
    let p = t.plan("2026-12-19T00:00:00Z", dated);
    assert_eq!(
        (p.decision, p.deadline),
        (Decision::Delete, Some(at("2026-12-18T23:00:00Z"))),
        "{}",
        p.reason
    );
    assert!(!t.plan("2026-12-20T23:00:00Z", dated).overdue);
    assert!(t.plan("2026-12-20T23:00:01Z", dated).overdue);
    // Without the assessment time: deletable from the call (the fallback keeps less), so
    // overdue since 3 Dec.
    t.assert_deletable_at_once(untimed, "2026-12-01T10:00:00Z");
    assert!(t.plan("2026-12-03T10:00:01Z", untimed).overdue);
}

#[test]
fn lb_inspector_recordings_that_matter_are_deleted_one_year_after_the_recording() {
    let b = notice(LB);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lb_inspection("SI-2", "si-2", "audio.wav", "2026-03-10T08:30:00Z")
                .tag("assessment", "relevant"),
            // Not assessed yet: the same one-year ceiling.
            lb_inspection("SI-3", "si-3", "transcript.json", "2026-12-20T09:45:00Z"),
            lb_inspection("SI-4", "si-4", "audio.wav", "2028-02-29T12:00:00Z")
                .tag("assessment", "relevant"),
            // A forwarded call-centre call: the inspector's copy follows the inspector rule
            // while the call-centre original still goes after 30 days.
            lb_inspection("SI-5", "cc-7", "audio.wav", "2026-02-02T14:02:00Z")
                .tag("assessment", "relevant"),
            lb_call("cc-7", "audio.wav", "2026-02-02T14:02:00Z"),
        ],
    );
    t.assert_kept_until(
        "skadeinspektion/SI-2/si-2/audio.wav",
        "2027-03-10T08:30:00Z",
    );
    t.assert_kept_until(
        "skadeinspektion/SI-3/si-3/transcript.json",
        "2027-12-20T09:45:00Z",
    );
    t.assert_kept_until(
        "skadeinspektion/SI-4/si-4/audio.wav",
        "2029-02-28T12:00:00Z",
    );
    t.assert_kept_until(
        "skadeinspektion/SI-5/cc-7/audio.wav",
        "2027-02-02T14:02:00Z",
    );
    t.assert_kept_until(
        "callcenter/2026/02/02/cc-7/audio.wav",
        "2026-03-04T14:02:00Z",
    );
}

#[test]
fn lb_a_reasoned_extension_keeps_inspector_recordings_until_at_most_the_limitation_date() {
    let b = notice(LB);
    let extension = yaml_hold(&b, "skadeinspektion-si-2026-0031-forlaenget");
    assert_eq!(extension.reason, HoldReason::FraudInvestigation);
    let audio = "skadeinspektion/SI-2026-0031/si-20260310-0830-01/audio.wav";
    let transcript = "skadeinspektion/SI-2026-0031/si-20260310-0830-01/transcript.json";
    let objects = vec![
        lb_inspection(
            "SI-2026-0031",
            "si-20260310-0830-01",
            "audio.wav",
            "2026-03-10T08:30:00Z",
        )
        .tag("assessment", "relevant"),
        lb_inspection(
            "SI-2026-0031",
            "si-20260310-0830-01",
            "transcript.json",
            "2026-03-10T08:30:00Z",
        )
        .tag("assessment", "relevant"),
        // The call-centre original of a call with the same call id is not extended.
        lb_call("si-20260310-0830-01", "audio.wav", "2026-03-10T08:30:00Z"),
    ];
    let t = Timeline::new(&b, vec![extension], objects.clone());
    // "I de tilfælde slettes optagelsen eller transskriptionen senest i overensstemmelse med
    // forældelsesreglerne": the hold's limitation start is 10 Mar 2026 (Danish midnight), so
    // it ends at the latest 3 years later, 10 Mar 2029 00:00 CET = 9 Mar 23:00 UTC.
    for key in [audio, transcript] {
        t.assert_held(key, "2027-03-10T08:30:00Z");
        t.assert_held(key, "2029-03-09T22:59:59Z");
        let p = t.plan("2029-03-09T23:00:00Z", key);
        assert_eq!(p.decision, Decision::Delete, "{key}: {}", p.reason);
    }
    // 10 Mar 09:30 CET + 30 days = 9 Apr 09:30 Danish summer time (CEST) = 07:30 UTC.
    t.assert_kept_until(
        "callcenter/2026/03/10/si-20260310-0830-01/audio.wav",
        "2026-04-09T07:30:00Z",
    );

    // An extension without a limitation start ends 3 years after it was decided (created
    // 2 Mar 2027 14:00 CET, 13:00 UTC): LB knew of its claim by then.
    let undated = created(
        hold(
            "forlaenget-2",
            HoldReason::FraudInvestigation,
            "SI-2026-0031",
            keys(&[audio]),
        ),
        "2027-03-02T13:00:00Z",
    );
    let t = Timeline::new(&b, vec![undated.clone()], objects.clone());
    t.assert_held(audio, "2030-03-02T12:59:59Z");
    let p = t.plan("2030-03-02T13:00:00Z", audio);
    assert_eq!(p.decision, Decision::Delete, "{}", p.reason);
    // The inspector ends the extension earlier: deletable then.
    let ended = Timeline::new(&b, vec![released(undated, "2027-09-01T08:00:00Z")], objects);
    let p = ended.plan("2027-09-01T08:00:00Z", audio);
    assert_eq!(
        (p.decision, p.deadline),
        (Decision::Delete, Some(at("2027-09-01T08:00:00Z"))),
        "{}",
        p.reason
    );
}

#[test]
fn lb_objects_no_rule_classifies_are_never_deleted() {
    let b = notice(LB);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            obj(
                "compliance/stikproever-2026-12.xlsx",
                "2026-12-31T07:00:00Z",
            ),
            lb_call("cc-1", "screen.mp4", "2026-12-31T14:05:00Z"),
        ],
    );
    t.assert_never_deleted(
        "compliance/stikproever-2026-12.xlsx",
        "2026-12-31T00:00:00Z",
    );
    t.assert_never_deleted(
        "callcenter/2026/12/31/cc-1/screen.mp4",
        "2026-12-31T00:00:00Z",
    );
}

#[test]
fn lb_example_listing_plans_as_its_readme_describes() {
    let by = example_listing(LB);
    assert_eq!(
        keys_of(&by, "delete!"),
        sorted(&["callcenter/2026/11/27/cc-20261127-1545-c1/audio.wav"])
    );
    assert_eq!(
        keys_of(&by, "held"),
        sorted(&[
            "callcenter/2026/11/20/cc-20261120-0912-11/audio.wav",
            "callcenter/2026/11/20/cc-20261120-0912-11/transcript.json",
            "callcenter/2026/12/01/cc-20261201-1604-2e/audio.wav",
            "callcenter/2026/12/14/cc-20261214-0915-a7/audio.wav",
            "callcenter/2026/12/14/cc-20261214-0915-a7/transcript.json",
            "skadeinspektion/SI-2026-0031/si-20260310-0830-01/audio.wav",
            "skadeinspektion/SI-2026-0031/si-20260310-0830-01/transcript.json",
        ])
    );
    assert_eq!(
        keys_of(&by, "delete"),
        sorted(&[
            // 1 Dec + 30 days = 31 Dec.
            "callcenter/2026/12/01/cc-20261201-1130-3f/audio.wav",
            "callcenter/2026/12/01/cc-20261201-1130-3f/transcript.json",
            // Consent withdrawn.
            "callcenter/2026/12/30/cc-20261230-1020-6d/audio.wav",
            "callcenter/2026/12/30/cc-20261230-1020-6d/transcript.json",
            // Assessed not relevant on 30 Dec: overdue only from 1 Jan 2027 14:00 / 15:20 UTC.
            "skadeinspektion/SI-2026-0049/si-20261212-1000-03/audio.wav",
            "skadeinspektion/SI-2026-0052/si-20261230-1115-07/audio.wav",
            "skadeinspektion/SI-2026-0052/si-20261230-1115-07/transcript.json",
        ])
    );
    assert_eq!(count(&by, "keep"), 8);
    assert_eq!(count(&by, "unclassified"), 2);
}

// ---------------------------------------------------------------------------------------------
// 002 Tryg (Danish)

const TRYG: &str = "002-tryg";

/// A Tryg object under `<area>/<yyyy>/<mm>/<dd>/<id>/<file>`, with metadata `call-start`,
/// uploaded `delay_minutes` after the call began.
fn tryg(area: &str, id: &str, file: &str, start: &str, delay_minutes: i64) -> ObjectInfo {
    let day = start[..10].replace('-', "/");
    let uploaded = at(start) + TimeDelta::minutes(delay_minutes);
    obj(&format!("{area}/{day}/{id}/{file}"), &uploaded.to_rfc3339()).meta("call-start", start)
}

#[test]
fn tryg_audio_without_consent_is_deleted_one_year_after_recording() {
    let b = notice(TRYG);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            tryg("samtaler", "t-1", "audio.wav", "2026-01-31T10:00:00Z", 12)
                .tag("consent", "refused"),
            tryg("samtaler", "t-2", "audio.wav", "2026-02-28T09:00:00Z", 12),
            // Called before midnight, uploaded after: the year counts from the call.
            tryg("samtaler", "t-3", "audio.wav", "2025-12-31T23:40:00Z", 22)
                .tag("consent", "refused"),
        ],
    );
    t.assert_kept_until("samtaler/2026/01/31/t-1/audio.wav", "2027-01-31T10:00:00Z");
    t.assert_kept_until("samtaler/2026/02/28/t-2/audio.wav", "2027-02-28T09:00:00Z");
    t.assert_kept_until("samtaler/2025/12/31/t-3/audio.wav", "2026-12-31T23:40:00Z");
}

#[test]
fn tryg_consent_adds_quality_use_but_the_archive_audio_still_goes_after_one_year() {
    let b = notice(TRYG);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            tryg("samtaler", "t-1", "audio.wav", "2026-01-31T10:00:00Z", 12)
                .tag("consent", "given"),
        ],
    );
    assert_eq!(
        t.purposes("2026-02-01T00:00:00Z", "samtaler/2026/01/31/t-1/audio.wav"),
        ["documentation", "quality"]
    );
    t.assert_kept_until("samtaler/2026/01/31/t-1/audio.wav", "2027-01-31T10:00:00Z");
    // "...og i 6 måneder, når formålet er til forbedring af kvaliteten": the archive audio may
    // serve quality for six months of its year: 31 Jan 11:00 CET + 6 months = 31 Jul 11:00
    // Danish summer time (CEST) = 09:00 UTC.
    let p = t.plan("2026-02-01T00:00:00Z", "samtaler/2026/01/31/t-1/audio.wav");
    assert_eq!(
        p.uses
            .iter()
            .map(|u| (u.purpose.as_str(), u.until))
            .collect::<Vec<_>>(),
        [("quality", at("2026-07-31T09:00:00Z"))]
    );
    assert_eq!(p.controllers, ["Tryg Forsikring A/S"]);
}

#[test]
fn tryg_quality_copies_are_deleted_six_months_after_the_call() {
    let b = notice(TRYG);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            // Copied to the quality library the night after the call.
            tryg(
                "kvalitet",
                "t-1",
                "audio.wav",
                "2026-01-31T10:00:00Z",
                16 * 60,
            )
            .tag("consent", "given"),
            tryg(
                "kvalitet",
                "t-2",
                "audio.wav",
                "2026-08-31T09:00:00Z",
                17 * 60,
            )
            .tag("consent", "given"),
        ],
    );
    // "...i 6 måneder, når formålet er til forbedring af kvaliteten ..., hvorefter de
    // slettes", on the Danish calendar: 31 Jan 11:00 CET -> 31 Jul 11:00 CEST = 09:00 UTC.
    t.assert_kept_until("kvalitet/2026/01/31/t-1/audio.wav", "2026-07-31T09:00:00Z");
    // Six calendar months from 31 August is the end of February: 31 Aug 11:00 CEST -> 28 Feb
    // 11:00 CET = 10:00 UTC.
    t.assert_kept_until("kvalitet/2026/08/31/t-2/audio.wav", "2027-02-28T10:00:00Z");
}

#[test]
fn tryg_a_quality_copy_without_a_consent_tag_still_goes_after_six_months_and_a_refused_one_at_once()
{
    let b = notice(TRYG);
    let untagged = "kvalitet/2026/12/21/t-1/audio.wav";
    let refused = "kvalitet/2026/12/21/t-2/audio.wav";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            tryg("kvalitet", "t-1", "audio.wav", "2026-12-21T16:10:00Z", 600),
            tryg("kvalitet", "t-2", "audio.wav", "2026-12-21T16:10:00Z", 600)
                .tag("consent", "refused"),
        ],
    );
    // A copy exists only for quality: six months, then deleted, tag or no tag.
    // 21 Dec 17:10 CET + 6 months = 21 Jun 17:10 CEST = 15:10 UTC.
    t.assert_kept_until(untagged, "2027-06-21T15:10:00Z");
    assert_eq!(t.purposes("2026-12-22T12:00:00Z", untagged), ["quality"]);
    // A copy of a call whose caller refused has no basis: deletable at once.
    t.assert_deletable_at_once(refused, "2026-12-21T16:10:00Z");
}

#[test]
fn tryg_transcripts_are_kept_three_years_only_on_consent() {
    let b = notice(TRYG);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            tryg(
                "samtaler",
                "t-1",
                "transcript.json",
                "2026-01-31T10:00:00Z",
                15,
            )
            .tag("consent", "given"),
            tryg(
                "samtaler",
                "t-2",
                "transcript.json",
                "2026-01-31T10:00:00Z",
                15,
            )
            .tag("consent", "refused"),
        ],
    );
    t.assert_kept_until(
        "samtaler/2026/01/31/t-1/transcript.json",
        "2029-01-31T10:00:00Z",
    );
    t.assert_deletable_at_once(
        "samtaler/2026/01/31/t-2/transcript.json",
        "2026-01-31T10:00:00Z",
    );
}

#[test]
fn tryg_withdrawn_consent_deletes_transcript_and_quality_copy_at_once_but_keeps_the_archive_audio()
{
    let b = notice(TRYG);
    let w = "gallring.io/withdrawn";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            tryg("samtaler", "t-1", "audio.wav", "2026-03-14T11:00:00Z", 10)
                .tag("consent", "given")
                .tag(w, "quality"),
            tryg(
                "samtaler",
                "t-1",
                "transcript.json",
                "2026-03-14T11:00:00Z",
                10,
            )
            .tag("consent", "given")
            .tag(w, "quality"),
            tryg("kvalitet", "t-1", "audio.wav", "2026-03-14T11:00:00Z", 900)
                .tag("consent", "given")
                .tag(w, "quality"),
        ],
    );
    t.assert_kept_until("samtaler/2026/03/14/t-1/audio.wav", "2027-03-14T11:00:00Z");
    t.assert_deletable_at_once(
        "samtaler/2026/03/14/t-1/transcript.json",
        "2026-03-14T11:00:00Z",
    );
    t.assert_deletable_at_once("kvalitet/2026/03/14/t-1/audio.wav", "2026-03-14T11:00:00Z");
}

#[test]
fn tryg_real_time_advisory_text_is_kept_masked_for_thirty_days_and_never_unmasked() {
    let b = notice(TRYG);
    // A complaint about the same call does not keep the masked advisory text.
    let complaint = hold(
        "klage-1",
        HoldReason::Complaint,
        "KL-1",
        recording_ids(&["t-1"]),
    );
    let t = Timeline::new(
        &b,
        vec![complaint],
        vec![
            tryg(
                "raadgivning",
                "t-1",
                "seg-0001.masked.json",
                "2026-01-31T10:00:00Z",
                0,
            ),
            tryg(
                "raadgivning",
                "t-1",
                "seg-0002.json",
                "2026-01-31T10:00:00Z",
                0,
            ),
            tryg("samtaler", "t-1", "audio.wav", "2026-01-31T10:00:00Z", 12),
        ],
    );
    t.assert_kept_until(
        "raadgivning/2026/01/31/t-1/seg-0001.masked.json",
        "2026-03-02T10:00:00Z",
    );
    t.assert_deletable_at_once(
        "raadgivning/2026/01/31/t-1/seg-0002.json",
        "2026-01-31T10:00:00Z",
    );
    t.assert_held("samtaler/2026/01/31/t-1/audio.wav", "2026-03-02T10:00:00Z");
}

#[test]
fn tryg_a_complaint_within_the_year_keeps_audio_and_transcript_until_closed_plus_three_years() {
    let b = notice(TRYG);
    let audio = "samtaler/2026/01/31/t-1/audio.wav";
    let transcript = "samtaler/2026/01/31/t-1/transcript.json";
    let copy = "kvalitet/2026/01/31/t-1/audio.wav";
    let objects = vec![
        tryg("samtaler", "t-1", "audio.wav", "2026-01-31T10:00:00Z", 12).tag("consent", "given"),
        tryg(
            "samtaler",
            "t-1",
            "transcript.json",
            "2026-01-31T10:00:00Z",
            12,
        )
        .tag("consent", "given"),
        tryg("kvalitet", "t-1", "audio.wav", "2026-01-31T10:00:00Z", 900).tag("consent", "given"),
    ];
    let complaint = hold("klage-1", HoldReason::Complaint, "KL-1", keys(&[audio]));
    let open = Timeline::new(&b, vec![complaint.clone()], objects.clone());
    open.assert_held(audio, "2027-06-01T00:00:00Z");
    open.assert_held(transcript, "2027-06-01T00:00:00Z");
    // The quality copy is not part of the case: it still goes after six months (31 Jul 11:00
    // Danish summer time = 09:00 UTC).
    open.assert_kept_until(copy, "2026-07-31T09:00:00Z");

    let closed = Timeline::new(
        &b,
        vec![released(complaint, "2026-11-30T00:00:00Z")],
        objects,
    );
    closed.assert_kept_until(audio, "2029-11-30T00:00:00Z");
    // max(2029-01-31T10:00 for quality, 2029-11-30T00:00 after the complaint).
    closed.assert_kept_until(transcript, "2029-11-30T00:00:00Z");

    // The claim case of holds.yaml keeps its call beyond the year.
    let yaml = Timeline::new(
        &b,
        vec![yaml_hold(&b, "skade-sk-2026-310552")],
        vec![tryg(
            "samtaler",
            "t-20260212-1130-9c",
            "audio.wav",
            "2026-02-12T11:30:00Z",
            22,
        )],
    );
    yaml.assert_held(
        "samtaler/2026/02/12/t-20260212-1130-9c/audio.wav",
        "2027-06-01T00:00:00Z",
    );
}

#[test]
fn tryg_a_case_keeps_the_call_until_three_years_after_its_limitation_start() {
    let b = notice(TRYG);
    let transcript = "samtaler/2026/03/02/t-1/transcript.json";
    let objects = vec![
        tryg(
            "samtaler",
            "t-1",
            "transcript.json",
            "2026-03-02T09:00:00Z",
            12,
        )
        .tag("consent", "given"),
    ];
    // "...gemme dokumentationen i henhold til forældelseslovens regler": a dispute whose
    // claim fell due on 1 Apr 2026 (Danish midnight, CEST: 31 Mar 22:00 UTC), closed on
    // 1 Dec 2026. The 3 years (§ 3) end on 1 Apr 2029 00:00 CEST = 31 Mar 22:00 UTC, not
    // 3 years after the closure; the consented transcript's own 3 years end earlier (2 Mar
    // 2029).
    let dispute = limitation_from(
        hold(
            "tvist-1",
            HoldReason::Dispute,
            "TV-1",
            recording_ids(&["t-1"]),
        ),
        "2026-04-01T00:00:00+02:00",
    );
    let closed = Timeline::new(
        &b,
        vec![released(dispute, "2026-12-01T10:00:00Z")],
        objects.clone(),
    );
    closed.assert_kept_until(transcript, "2029-03-31T22:00:00Z");

    // The claim case of holds.yaml states no limitation start: closed 1 Jun 2027, it keeps
    // its call three years from the closure (1 Jun 2030 02:00 CEST = 00:00 UTC).
    let claim = yaml_hold(&b, "skade-sk-2026-310552");
    assert_eq!(claim.limitation_start, None);
    let t = Timeline::new(
        &b,
        vec![released(claim, "2027-06-01T00:00:00Z")],
        vec![tryg(
            "samtaler",
            "t-20260212-1130-9c",
            "audio.wav",
            "2026-02-12T11:30:00Z",
            22,
        )],
    );
    t.assert_kept_until(
        "samtaler/2026/02/12/t-20260212-1130-9c/audio.wav",
        "2030-06-01T00:00:00Z",
    );
    // The complaint of holds.yaml counts from 24 Oct 2026 (Danish midnight, CEST): until
    // 24 Oct 2029 00:00 CEST = 23 Oct 22:00 UTC once closed.
    let complaint = yaml_hold(&b, "klage-kl-2026-77120");
    let t = Timeline::new(
        &b,
        vec![released(complaint, "2027-02-01T12:00:00Z")],
        vec![tryg(
            "samtaler",
            "t-20261010-0814-3a",
            "audio.wav",
            "2026-10-10T08:14:00Z",
            15,
        )],
    );
    t.assert_kept_until(
        "samtaler/2026/10/10/t-20261010-0814-3a/audio.wav",
        "2029-10-23T22:00:00Z",
    );
}

#[test]
fn tryg_a_case_reaches_only_calls_that_became_part_of_it_within_a_year() {
    let b = notice(TRYG);
    let old = "samtaler/2026/01/15/t-1/transcript.json";
    let recent = "samtaler/2026/06/15/t-2/transcript.json";
    // A complaint opened 1 Mar 2027 about two calls; "Såfremt din samtale inden for 1 år
    // indgår i en konkret klagesag": only calls made from 1 Mar 2026 on.
    let mut complaint = hold(
        "klage-2",
        HoldReason::Complaint,
        "KL-2",
        recording_ids(&["t-1", "t-2"]),
    );
    complaint.select.recorded_after = Some(at("2026-03-01T00:00:00+01:00"));
    let t = Timeline::new(
        &b,
        vec![complaint],
        vec![
            tryg(
                "samtaler",
                "t-1",
                "transcript.json",
                "2026-01-15T09:00:00Z",
                12,
            )
            .tag("consent", "given"),
            tryg(
                "samtaler",
                "t-2",
                "transcript.json",
                "2026-06-15T09:00:00Z",
                12,
            )
            .tag("consent", "given"),
        ],
    );
    // The older call keeps its consented three years and nothing more.
    t.assert_kept_until(old, "2029-01-15T09:00:00Z");
    t.assert_held(recent, "2027-03-02T00:00:00Z");
    t.assert_held(recent, "2029-07-01T00:00:00Z");
}

#[test]
fn tryg_an_access_or_restriction_request_keeps_the_call_until_answered_and_nothing_longer() {
    let b = notice(TRYG);
    let audio = "samtaler/2026/01/10/t-1/audio.wav";
    let request = expiring(
        hold(
            "indsigt-1",
            HoldReason::AccessRequest,
            "DSR-1",
            recording_ids(&["t-1"]),
        ),
        "2027-03-01T00:00:00Z",
    );
    let t = Timeline::new(
        &b,
        vec![request],
        vec![tryg(
            "samtaler",
            "t-1",
            "audio.wav",
            "2026-01-10T08:00:00Z",
            12,
        )],
    );
    t.assert_held(audio, "2027-01-10T08:00:00Z");
    // max(2027-01-10T08:00 normal, 2027-03-01T00:00 + P0D).
    let p = t.plan("2027-03-01T00:00:00Z", audio);
    assert_eq!(
        (p.decision, p.deadline),
        (Decision::Delete, Some(at("2027-03-01T00:00:00Z"))),
        "{}",
        p.reason
    );

    // holds.yaml: the access request of 2026-11-20's call expires 2027-01-18, well before the
    // call's year is over, so its normal deadline stands.
    let yaml = Timeline::new(
        &b,
        vec![
            yaml_hold(&b, "indsigt-dsr-2026-5531"),
            yaml_hold(&b, "begraensning-dsr-2026-5602"),
        ],
        vec![
            tryg(
                "samtaler",
                "t-20261120-1502-d1",
                "audio.wav",
                "2026-11-20T15:02:00Z",
                8,
            ),
            tryg(
                "samtaler",
                "t-20260105-0907-4f",
                "audio.wav",
                "2026-01-05T09:07:00Z",
                13,
            ),
        ],
    );
    let answered = "samtaler/2026/11/20/t-20261120-1502-d1/audio.wav";
    yaml.assert_held(answered, "2027-01-17T23:59:59Z");
    yaml.assert_kept_until(answered, "2027-11-20T15:02:00Z");
    // The restriction request (a Restriction hold) holds past the year.
    yaml.assert_held(
        "samtaler/2026/01/05/t-20260105-0907-4f/audio.wav",
        "2027-02-01T00:00:00Z",
    );
}

#[test]
fn tryg_objects_no_rule_classifies_are_never_deleted() {
    let b = notice(TRYG);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            obj(
                "eksport/2026-12-kvalitetsrapport.pdf",
                "2026-12-31T08:00:00Z",
            ),
            tryg("samtaler", "t-1", "screen.webm", "2026-12-21T16:10:00Z", 20),
        ],
    );
    t.assert_never_deleted(
        "samtaler/2026/12/21/t-1/screen.webm",
        "2026-12-21T00:00:00Z",
    );
    t.assert_never_deleted(
        "eksport/2026-12-kvalitetsrapport.pdf",
        "2026-12-31T00:00:00Z",
    );
}

#[test]
fn tryg_example_listing_plans_as_its_readme_describes() {
    let by = example_listing(TRYG);
    assert_eq!(count(&by, "delete!"), 0);
    assert_eq!(
        keys_of(&by, "delete"),
        sorted(&[
            "kvalitet/2026/06/30/t-20260630-1500-8e/audio.wav",
            "kvalitet/2026/12/30/t-20261230-1345-c0/audio.wav",
            "raadgivning/2026/12/01/t-20261201-1012-aa/seg-0001.masked.json",
            "raadgivning/2026/12/01/t-20261201-1012-aa/seg-0002.masked.json",
            "raadgivning/2026/12/31/t-20261231-1122-cc/seg-0003.json",
            "samtaler/2025/12/31/t-20251231-2340-e2/audio.wav",
            "samtaler/2026/12/30/t-20261230-1345-c0/transcript.json",
        ])
    );
    assert_eq!(count(&by, "held"), 6);
    // Including the quality copy without a consent tag: six months, until 21 Jun 2027.
    assert_eq!(count(&by, "keep"), 10);
    assert!(
        keys_of(&by, "keep")
            .contains(&"kvalitet/2026/12/21/t-20261221-1610-dd/audio.wav".to_string())
    );
    assert_eq!(count(&by, "unclassified"), 0);
}

// ---------------------------------------------------------------------------------------------
// 003 Länsförsäkringar (Swedish)

const LF: &str = "003-lansforsakringar";

fn lf_camera(site: &str, camera: &str, start: &str) -> ObjectInfo {
    let day = start[..10].replace('-', "/");
    let hhmm = format!("{}{}", &start[11..13], &start[14..16]);
    let uploaded = at(start) + TimeDelta::hours(1);
    obj(
        &format!("kamera/{site}/{day}/{camera}-{hhmm}.mp4"),
        &uploaded.to_rfc3339(),
    )
    .meta("recorded-at", start)
}

fn lf_visit(site: &str, id: &str, date: &str, registered: &str) -> ObjectInfo {
    obj(&format!("besok/{site}/{date}/{id}.json"), registered).meta("recorded-at", date)
}

fn lf_interaction(id: &str, file: &str, start: &str) -> ObjectInfo {
    let day = start[..10].replace('-', "/");
    let uploaded = at(start) + TimeDelta::minutes(20);
    obj(
        &format!("interaktioner/{day}/{id}/{file}"),
        &uploaded.to_rfc3339(),
    )
    .meta("recorded-at", start)
}

fn lf_feedback(id: &str, file: &str, answered: &str) -> ObjectInfo {
    let month = answered[..7].replace('-', "/");
    let uploaded = at(answered) + TimeDelta::minutes(1);
    obj(
        &format!("aterkoppling/{month}/{id}/{file}"),
        &uploaded.to_rfc3339(),
    )
    .meta("recorded-at", answered)
}

#[test]
fn lansforsakringar_camera_footage_is_kept_fourteen_days_and_thirty_at_tegeluddsvagen() {
    let b = notice(LF);
    let spec = policy_spec(LF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lf_camera("telegrafgatan-8a", "entre", "2026-03-10T14:00:00Z"),
            lf_camera("humlegardsgatan-20", "reception", "2026-03-10T14:00:00Z"),
            lf_camera("stora-brogatan-7", "kassa", "2026-03-10T14:00:00Z"),
            lf_camera("tegeluddsvagen-11-13", "lobby", "2026-03-10T14:00:00Z"),
        ],
    );
    // "Vi sparar inspelat bildmaterial i 14 dagar": 10 Mar 15:00 CET + 14 days = 24 Mar
    // 15:00 CET (before the change to summer time on 29 Mar) = 14:00 UTC.
    for site in [
        "telegrafgatan-8a/2026/03/10/entre",
        "humlegardsgatan-20/2026/03/10/reception",
        "stora-brogatan-7/2026/03/10/kassa",
    ] {
        let key = format!("kamera/{site}-1400.mp4");
        t.assert_kept_until(&key, "2026-03-24T14:00:00Z");
        let p = t.plan("2026-03-11T00:00:00Z", &key);
        assert_eq!(p.purposes, ["cctv"]);
        assert_eq!(p.kind.as_deref(), Some("cameraFootage"));
        // "Länsförsäkringar Stockholm är personuppgiftsansvarig för behandlingen på
        // Telegrafgatan, Humlegårdsgatan och Stora Brogatan."
        assert_eq!(p.controllers, ["Länsförsäkringar Stockholm"]);
        assert_eq!(
            controller_of(&spec, &p.purposes[0]),
            "Länsförsäkringar Stockholm"
        );
    }
    // "För Tegeluddsvägen 11-13 sparar vi dock bildmaterialet i 30 dagar": 10 Mar 15:00 CET
    // + 30 days = 9 Apr 15:00 Swedish summer time (CEST) = 13:00 UTC.
    let tegeludd = "kamera/tegeluddsvagen-11-13/2026/03/10/lobby-1400.mp4";
    t.assert_kept_until(tegeludd, "2026-04-09T13:00:00Z");
    let p = t.plan("2026-03-11T00:00:00Z", tegeludd);
    assert_eq!(p.purposes, ["cctv-tegeluddsvagen"]);
    // "Länsförsäkringar AB är personuppgiftsansvarig för behandlingen på Tegeluddsvägen."
    assert_eq!(p.controllers, ["Länsförsäkringar AB"]);
}

#[test]
fn lansforsakringar_camera_footage_handed_to_the_police_still_goes_after_its_fourteen_days() {
    let b = notice(LF);
    // The camera clause has no exception: "Vi lämnar ut bildmaterial till brottsbekämpande
    // myndigheter vid misstanke om brott" hands a copy over; the police-report exception
    // ("Ifall polisanmälan görs sparar vi uppgifterna så länge de behövs") is the threat
    // clause's. Every PoliceReport hold of holds.yaml is scoped to the threat purpose's kinds.
    let spec = policy_spec(LF);
    let threat_kinds: Vec<String> = spec
        .purposes
        .iter()
        .find(|p| p.name == "threat")
        .expect("purpose threat")
        .retain
        .keys()
        .cloned()
        .collect();
    let reports: Vec<&Hold> = b
        .holds
        .iter()
        .filter(|h| h.reason == HoldReason::PoliceReport)
        .collect();
    assert!(!reports.is_empty());
    for h in reports {
        let mut kinds: Vec<String> = h.select.kinds.iter().cloned().collect();
        kinds.sort();
        assert_eq!(kinds, threat_kinds, "{}", h.name);
    }
    let break_in = "kamera/telegrafgatan-8a/2026/12/14/entre-2100.mp4";
    let objects = vec![lf_camera(
        "telegrafgatan-8a",
        "entre",
        "2026-12-14T21:00:00Z",
    )];
    // A police report written as holds.yaml writes them, selecting the break-in footage.
    let mut report = hold(
        "polisanmalan-1",
        HoldReason::PoliceReport,
        "5000-K1299871-26",
        keys(&[break_in]),
    );
    report.select.kinds = threat_kinds.iter().cloned().collect();
    let t = Timeline::new(&b, vec![report], objects);
    // 14 Dec 22:00 CET + 14 days = 28 Dec 22:00 CET = 21:00 UTC.
    t.assert_kept_until(break_in, "2026-12-28T21:00:00Z");
}

#[test]
fn lansforsakringar_visitor_records_are_gone_one_day_from_the_visit_day_and_thirty_at_tegeluddsvagen()
 {
    let b = notice(LF);
    let one_day = "besok/humlegardsgatan-20/2026-03-10/v-1.json";
    let thirty = "besok/tegeluddsvagen-11-13/2026-03-10/v-2.json";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lf_visit(
                "humlegardsgatan-20",
                "v-1",
                "2026-03-10",
                "2026-03-10T07:42:10Z",
            ),
            lf_visit(
                "tegeluddsvagen-11-13",
                "v-2",
                "2026-03-10",
                "2026-03-10T13:31:09Z",
            ),
        ],
    );
    // "...sparas i 1 dag från dagen för besöket": from the start of the visit day, 10 Mar
    // 00:00 Swedish time (9 Mar 23:00 UTC), gone one day later, 11 Mar 00:00 CET = 10 Mar
    // 23:00 UTC. Lifecycle's two-day lag does not fit in one day: gallring deletes it itself,
    // one scan interval (PT1H) before, 22:00 UTC.
    t.assert_gone_by(one_day, "2026-03-10T22:00:00Z", "2026-03-10T23:00:00Z");
    let p = t.plan("2026-03-10T12:00:00Z", one_day);
    assert_eq!(p.deleter, Deleter::Operator, "{}", p.reason);
    assert_eq!(p.controllers, ["Länsförsäkringar Stockholm"]);
    // "...sparas i 30 dagar från dagen för besöket": 10 Mar 00:00 CET + 30 days = 9 Apr
    // 00:00 CEST = 8 Apr 22:00 UTC; deletion planned the P2D grace earlier.
    t.assert_gone_by(thirty, "2026-04-06T22:00:00Z", "2026-04-08T22:00:00Z");
    let p = t.plan("2026-03-10T14:00:00Z", thirty);
    assert_eq!(p.purposes, ["visitors-tegeluddsvagen"]);
    // "Länsförsäkringar AB är personuppgiftsansvarig för behandlingen."
    assert_eq!(p.controllers, ["Länsförsäkringar AB"]);
}

#[test]
fn lansforsakringar_threat_interactions_are_deleted_after_thirty_days_unless_reported_to_the_police()
 {
    let b = notice(LF);
    let video = "interaktioner/2026/03/10/i-2/video.mp4";
    let chat = "interaktioner/2026/03/10/i-2/chat.json";
    let objects = vec![
        lf_interaction("i-1", "call.wav", "2026-03-10T09:15:00Z").tag("flag", "threat"),
        lf_interaction("i-2", "video.mp4", "2026-03-10T09:30:00Z").tag("flag", "threat"),
        lf_interaction("i-2", "chat.json", "2026-03-10T09:30:00Z").tag("flag", "threat"),
    ];
    let t = Timeline::new(&b, vec![], objects.clone());
    // "Vi sparar uppgifterna för detta ändamål i 30 dagar om de inte leder till en
    // polisanmälan": 10 Mar 10:15 CET + 30 days = 9 Apr 10:15 CEST = 08:15 UTC.
    t.assert_kept_until(
        "interaktioner/2026/03/10/i-1/call.wav",
        "2026-04-09T08:15:00Z",
    );
    assert_eq!(
        t.purposes(
            "2026-03-11T00:00:00Z",
            "interaktioner/2026/03/10/i-1/call.wav"
        ),
        ["threat"]
    );
    t.assert_kept_until(chat, "2026-04-09T08:30:00Z");
    assert_eq!(
        t.plan("2026-03-11T00:00:00Z", chat).controllers,
        ["Länsförsäkringar Stockholm"]
    );

    // A police report on the video meeting, scoped like those of holds.yaml: the hold reaches
    // its chat too.
    let mut report = hold(
        "polisanmalan-1",
        HoldReason::PoliceReport,
        "5000-K1-26",
        keys(&[video]),
    );
    report.select.kinds = ["audio", "video", "chat", "email"]
        .into_iter()
        .map(String::from)
        .collect();
    let reported = Timeline::new(&b, vec![report.clone()], objects.clone());
    reported.assert_held(video, "2026-06-01T00:00:00Z");
    reported.assert_held(chat, "2026-06-01T00:00:00Z");
    // No longer needed for the legal claims on 2027-05-01: deletable then.
    let done = Timeline::new(&b, vec![released(report, "2027-05-01T00:00:00Z")], objects);
    for key in [video, chat] {
        let p = done.plan("2027-05-01T00:00:00Z", key);
        assert_eq!(
            (p.decision, p.deadline),
            (Decision::Delete, Some(at("2027-05-01T00:00:00Z"))),
            "{key}: {}",
            p.reason
        );
    }
    // The police report of holds.yaml.
    let yaml = Timeline::new(
        &b,
        vec![yaml_hold(&b, "polisanmalan-5000-k1203344-26")],
        vec![
            lf_interaction("i-20261118-0930-f2", "chat.json", "2026-11-18T09:30:00Z")
                .tag("flag", "threat"),
        ],
    );
    yaml.assert_held(
        "interaktioner/2026/11/18/i-20261118-0930-f2/chat.json",
        "2027-05-01T00:00:00Z",
    );
}

#[test]
fn lansforsakringar_quality_recordings_are_kept_thirty_days_under_the_controller_the_topic_decides()
{
    let b = notice(LF);
    let spec = policy_spec(LF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lf_interaction("i-1", "call.wav", "2026-01-31T10:00:00Z"),
            lf_interaction("i-2", "call.wav", "2026-01-31T10:00:00Z").tag("topic", "banking"),
            lf_interaction("i-3", "chat.json", "2026-12-20T15:30:00Z").tag("topic", "banking"),
            lf_interaction("i-4", "mail.eml", "2026-12-01T08:20:00Z"),
            lf_interaction("i-5", "video.mp4", "2026-02-15T13:00:00Z"),
        ],
    );
    t.assert_kept_until(
        "interaktioner/2026/01/31/i-1/call.wav",
        "2026-03-02T10:00:00Z",
    );
    t.assert_kept_until(
        "interaktioner/2026/01/31/i-2/call.wav",
        "2026-03-02T10:00:00Z",
    );
    t.assert_kept_until(
        "interaktioner/2026/12/20/i-3/chat.json",
        "2027-01-19T15:30:00Z",
    );
    t.assert_kept_until(
        "interaktioner/2026/12/01/i-4/mail.eml",
        "2026-12-31T08:20:00Z",
    );
    t.assert_kept_until(
        "interaktioner/2026/02/15/i-5/video.mp4",
        "2026-03-17T13:00:00Z",
    );
    let other = t.purposes(
        "2026-02-01T00:00:00Z",
        "interaktioner/2026/01/31/i-1/call.wav",
    );
    assert_eq!(other, ["quality"]);
    assert_eq!(
        controller_of(&spec, &other[0]),
        "Länsförsäkringar Stockholm"
    );
    let bank = t.purposes(
        "2026-02-01T00:00:00Z",
        "interaktioner/2026/01/31/i-2/call.wav",
    );
    assert_eq!(bank, ["quality-bank"]);
    assert_eq!(
        controller_of(&spec, &bank[0]),
        "Länsförsäkringar Bank AB (publ)"
    );
    // "Om interaktionen rör banktjänster är Länsförsäkringar Bank AB (publ)
    // personuppgiftsansvarig för behandlingarna, för andra ärenden är Länsförsäkringar
    // Stockholm personuppgiftsansvarig": the plans name them.
    assert_eq!(
        t.plan(
            "2026-02-01T00:00:00Z",
            "interaktioner/2026/01/31/i-1/call.wav"
        )
        .controllers,
        ["Länsförsäkringar Stockholm"]
    );
    assert_eq!(
        t.plan(
            "2026-12-21T00:00:00Z",
            "interaktioner/2026/12/20/i-3/chat.json"
        )
        .controllers,
        ["Länsförsäkringar Bank AB (publ)"]
    );
}

#[test]
fn lansforsakringar_a_customer_who_declines_the_recording_has_it_deleted_at_once() {
    let b = notice(LF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lf_interaction("i-1", "call.wav", "2026-12-31T09:15:00Z")
                .tag("gallring.io/withdrawn", "quality"),
            lf_interaction("i-2", "call.wav", "2026-12-31T09:15:00Z")
                .tag("topic", "banking")
                .tag("gallring.io/withdrawn", "quality-bank"),
        ],
    );
    t.assert_deletable_at_once(
        "interaktioner/2026/12/31/i-1/call.wav",
        "2026-12-31T09:15:00Z",
    );
    t.assert_deletable_at_once(
        "interaktioner/2026/12/31/i-2/call.wav",
        "2026-12-31T09:15:00Z",
    );
}

#[test]
fn lansforsakringar_feedback_answers_are_kept_eighteen_months_and_comments_twelve() {
    let b = notice(LF);
    let spec = policy_spec(LF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lf_feedback("nki-1", "svar.json", "2026-01-31T10:00:00Z")
                .tag("requested-by", "lf-stockholm"),
            lf_feedback("nki-1", "kommentar.txt", "2026-01-31T10:00:00Z")
                .tag("requested-by", "lf-stockholm"),
            lf_feedback("nki-2", "svar.json", "2026-08-31T18:00:00Z")
                .tag("requested-by", "lf-bank"),
            lf_feedback("nki-2", "kommentar.wav", "2026-08-31T18:00:00Z")
                .tag("requested-by", "lf-bank"),
        ],
    );
    // "Vi sparar uppgifterna om din återkoppling i 18 månader. ... raderar vi dem efter tolv
    // månader": 31 Jan 2026 11:00 CET + 18 months = 31 Jul 2027 11:00 CEST = 09:00 UTC.
    t.assert_kept_until(
        "aterkoppling/2026/01/nki-1/svar.json",
        "2027-07-31T09:00:00Z",
    );
    t.assert_kept_until(
        "aterkoppling/2026/01/nki-1/kommentar.txt",
        "2027-01-31T10:00:00Z",
    );
    // 31 August 20:00 CEST + 18 months = 29 February 2028 (a leap year) 20:00 CET = 19:00
    // UTC; + 12 months = 31 August 2027 20:00 CEST = 18:00 UTC.
    t.assert_kept_until(
        "aterkoppling/2026/08/nki-2/svar.json",
        "2028-02-29T19:00:00Z",
    );
    t.assert_kept_until(
        "aterkoppling/2026/08/nki-2/kommentar.wav",
        "2027-08-31T18:00:00Z",
    );
    let bank = t.purposes(
        "2026-09-01T00:00:00Z",
        "aterkoppling/2026/08/nki-2/svar.json",
    );
    assert_eq!(bank, ["feedback-bank"]);
    assert_eq!(
        controller_of(&spec, &bank[0]),
        "Länsförsäkringar Bank AB (publ)"
    );
    // "Det bolag inom länsförsäkringsgruppen som efterfrågar din återkoppling är
    // personuppgiftsansvarig".
    assert_eq!(
        t.plan(
            "2026-09-01T00:00:00Z",
            "aterkoppling/2026/08/nki-2/svar.json"
        )
        .controllers,
        ["Länsförsäkringar Bank AB (publ)"]
    );
}

#[test]
fn lansforsakringar_an_objection_to_the_survey_deletes_the_feedback_at_once() {
    let b = notice(LF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lf_feedback("nki-1", "svar.json", "2026-12-30T19:03:00Z")
                .tag("requested-by", "lf-stockholm")
                .tag("gallring.io/withdrawn", "feedback"),
            lf_feedback("nki-1", "kommentar.txt", "2026-12-30T19:03:00Z")
                .tag("requested-by", "lf-stockholm")
                .tag("gallring.io/withdrawn", "feedback"),
        ],
    );
    t.assert_deletable_at_once(
        "aterkoppling/2026/12/nki-1/svar.json",
        "2026-12-30T19:03:00Z",
    );
    t.assert_deletable_at_once(
        "aterkoppling/2026/12/nki-1/kommentar.txt",
        "2026-12-30T19:03:00Z",
    );
}

#[test]
fn lansforsakringar_objects_without_a_known_site_or_controller_are_never_deleted() {
    let b = notice(LF);
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            lf_camera("sveavagen-44", "entre", "2026-12-30T09:00:00Z"),
            lf_feedback("nki-9", "svar.json", "2026-12-29T10:10:00Z"),
            obj("rapporter/incidenter-2026.xlsx", "2026-12-31T12:00:00Z"),
        ],
    );
    t.assert_never_deleted(
        "kamera/sveavagen-44/2026/12/30/entre-0900.mp4",
        "2026-12-30T00:00:00Z",
    );
    t.assert_never_deleted(
        "aterkoppling/2026/12/nki-9/svar.json",
        "2026-12-29T00:00:00Z",
    );
    t.assert_never_deleted("rapporter/incidenter-2026.xlsx", "2026-12-31T00:00:00Z");
}

#[test]
fn lansforsakringar_example_listing_plans_as_its_readme_describes() {
    let by = example_listing(LF);
    assert_eq!(
        keys_of(&by, "delete!"),
        sorted(&[
            // The break-in footage an earlier policy held for the police: 14 days ended on
            // 28 Dec 22:00/23:00 CET, overdue since 30 Dec.
            "kamera/telegrafgatan-8a/2026/12/14/entre-2100.mp4",
            "kamera/telegrafgatan-8a/2026/12/14/entre-2200.mp4",
            // A visit of 31 Dec: gone by 1 Jan 00:00 Swedish time, and the listing is at
            // 01:00 Swedish time.
            "besok/humlegardsgatan-20/2026-12-31/v-88213.json",
        ])
    );
    assert_eq!(count(&by, "delete"), 7);
    // The Tegeluddsvägen visit of 3 Dec is gone by 2 Jan 00:00 Swedish time: deletable since
    // 31 Dec 00:00, not overdue.
    assert!(
        keys_of(&by, "delete")
            .contains(&"besok/tegeluddsvagen-11-13/2026-12-03/v-40511.json".to_string())
    );
    assert_eq!(count(&by, "keep"), 15);
    assert_eq!(
        keys_of(&by, "held"),
        sorted(&[
            "interaktioner/2026/11/18/i-20261118-0930-f2/chat.json",
            "interaktioner/2026/11/18/i-20261118-0930-f2/video.mp4",
        ])
    );
    assert_eq!(
        keys_of(&by, "unclassified"),
        sorted(&[
            "aterkoppling/2026/12/nki-2026-0122001/svar.json",
            "kamera/sveavagen-44/2026/12/30/entre-0900.mp4",
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// 004 Claims Link (Swedish)

const CLAIMS_LINK: &str = "004-claims-link";

#[test]
fn claims_link_survey_answers_are_gone_within_180_days_of_the_answer() {
    let b = notice(CLAIMS_LINK);
    let key = "undersokningar/2026/01/nps-1.json";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            // Exported by the survey tool the night after the answer.
            obj(key, "2026-02-01T01:00:00Z")
                .meta("answered-at", "2026-01-31T10:00:00Z")
                .tag("subject", "cl-k-1"),
        ],
    );
    // "...inte att sparas i mer än 180 dagar efter att du svarat på undersökningen": answered
    // 31 Jan 11:00 Swedish time (CET); + 180 days = 30 Jul 11:00 Swedish time (CEST), i.e.
    // 09:00 UTC. Gone by then; deletion planned the P2D grace earlier, 28 Jul 09:00 UTC.
    t.assert_gone_by(key, "2026-07-28T09:00:00Z", "2026-07-30T09:00:00Z");
    let p = t.plan("2026-02-02T00:00:00Z", key);
    assert_eq!(p.controllers, ["Claims Link AB"]);
}

#[test]
fn claims_link_a_survey_answer_without_a_usable_answer_time_counts_from_the_earliest_it_can_have_been_given()
 {
    let b = notice(CLAIMS_LINK);
    let missing = "undersokningar/2026/07/nps-2.json";
    let garbled = "undersokningar/2026/07/nps-3.json";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            obj(missing, "2026-07-05T01:00:00Z"),
            obj(garbled, "2026-07-05T01:00:00Z").meta("answered-at", "igår"),
        ],
    );
    // Exported 5 Jul 01:00 UTC; an answer reaches the bucket at most 30 days after it was
    // given (maxAgeAtUpload P30D), so it was given on 5 Jun 01:00 UTC (03:00 CEST) at the
    // earliest. + 180 days = 2 Dec 03:00 Swedish time (CET) = 02:00 UTC; deletion two days
    // earlier, 30 Nov 02:00 UTC. Counted from the export it would be 1 Jan 2027.
    for key in [missing, garbled] {
        t.assert_gone_by(key, "2026-11-30T02:00:00Z", "2026-12-02T02:00:00Z");
    }
    assert!(
        t.plan("2026-07-06T00:00:00Z", missing)
            .reason
            .contains("`answered-at` is missing"),
        "the plan says the answer time is missing"
    );
}

#[test]
fn claims_link_a_late_export_does_not_push_the_180_days() {
    let b = notice(CLAIMS_LINK);
    let with_time = "undersokningar/2026/03/nps-4.json";
    let without_time = "undersokningar/2026/03/nps-5.json";
    let t = Timeline::new(
        &b,
        vec![],
        vec![
            // Answered 1 Mar, exported 19 days late after a backlog.
            obj(with_time, "2026-03-20T01:00:00Z").meta("answered-at", "2026-03-01T12:00:00Z"),
            obj(without_time, "2026-03-20T01:00:00Z"),
        ],
    );
    // From the answer: 1 Mar 13:00 CET + 180 days = 28 Aug 13:00 CEST = 11:00 UTC.
    t.assert_gone_by(with_time, "2026-08-26T11:00:00Z", "2026-08-28T11:00:00Z");
    // Without the answer time: from 20 Mar 01:00 UTC − 30 days = 18 Feb 01:00 UTC (02:00 CET);
    // + 180 days = 17 Aug 02:00 CEST = 00:00 UTC: earlier than the answer's own 180 days,
    // never later.
    t.assert_gone_by(without_time, "2026-08-15T00:00:00Z", "2026-08-17T00:00:00Z");
}

#[test]
fn claims_link_an_answer_exported_later_than_thirty_days_still_goes_180_days_after_the_answer() {
    let b = notice(CLAIMS_LINK);
    let key = "undersokningar/2026/01/nps-6.json";
    // Answered 10 Jan, exported 69 days later (beyond maxAgeAtUpload): the answer time is
    // older than the bound, but the notice's 180 days still run from the answer.
    let t = Timeline::new(
        &b,
        vec![],
        vec![obj(key, "2026-03-20T01:00:00Z").meta("answered-at", "2026-01-10")],
    );
    // 10 Jan 00:00 Swedish time (09 Jan 23:00 UTC) + 180 days = 9 Jul 00:00 CEST = 8 Jul
    // 22:00 UTC.
    let p = t.plan("2026-03-21T00:00:00Z", key);
    assert_eq!(p.maximum, Some(at("2026-07-08T22:00:00Z")), "{}", p.reason);
}

#[test]
fn claims_link_case_files_kept_for_the_contract_and_by_law_are_never_deleted() {
    let b = notice(CLAIMS_LINK);
    let files = [
        "arenden/CL-2026-0142/samtal/2026-03-02-0915.wav",
        "arenden/CL-2026-0142/anteckningar/2026-03-02.txt",
        "arenden/CL-2026-0142/epost/2026-03-04-forsakringsbolag.eml",
    ];
    let t = Timeline::new(
        &b,
        vec![],
        files
            .iter()
            // Even once the contract has ended: the notice names no period after it.
            .map(|k| {
                obj(k, "2026-03-02T09:31:00Z")
                    .tag("subject", "cl-k-2")
                    .meta("contract-ended-at", "2026-06-30")
            })
            .collect(),
    );
    for key in files {
        t.assert_never_deleted(key, "2026-03-02T00:00:00Z");
    }
}

#[test]
fn claims_link_example_listing_plans_as_its_readme_describes() {
    let by = example_listing(CLAIMS_LINK);
    assert_eq!(count(&by, "delete!"), 0);
    // nps-2026-000412: answered 6 Jul 11:12 CEST, gone by 2 Jan 2027 11:12 CET, deletion due
    // 31 Dec. nps-2026-000420: exported 5 Aug 01:00 UTC without answered-at, counted from
    // 6 Jul 01:00 UTC (03:00 CEST): gone by 2 Jan 2027 03:00 CET, deletion due 31 Dec.
    assert_eq!(
        keys_of(&by, "delete"),
        sorted(&[
            "undersokningar/2026/07/nps-2026-000412.json",
            "undersokningar/2026/07/nps-2026-000420.json",
        ])
    );
    assert_eq!(count(&by, "keep"), 5);
    assert_eq!(count(&by, "held"), 0);
    assert_eq!(count(&by, "unclassified"), 7);
    assert!(
        keys_of(&by, "unclassified")
            .iter()
            .all(|k| k.starts_with("arenden/"))
    );
}
