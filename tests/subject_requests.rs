//! Data-subject requests (issue 12) carried out by real passes on Ceph RGW, started by
//! `scripts/s3-up.sh` (`GALLRING_S3_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`). Every test makes its own bucket and checks the outcome by reading the
//! bucket itself (versions, tags, legal holds, the manifest object), not the pass's report
//! alone. Without the environment the tests fail and say how to start the store: they never
//! skip.
//!
//! Layout of every bucket: `voice/<id>.wav` is audio (it carries the `subject` tag),
//! `text/<id>.json` its transcript and `masked/<id>.txt` its masked transcript (neither carries
//! the subject: they are reached through the recording id, and they list *before* the audio),
//! `sales/<id>.wav` sales audio. Recording times come from the `recorded-at` tag, so calls can
//! be placed in the past while the pass runs on the store's own clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ObjectLockLegalHoldStatus, VersioningConfiguration,
};
use chrono::{DateTime, TimeDelta, Utc};

use gallring::metrics::Metrics;
use gallring::reconcile::{PassConfig, PassReport, reconcile};
use gallring::retention::{
    BucketRules, ClassifyRule, Enforcement, Hold, HoldReason, HoldSelector, IsoDuration, Policy,
    Purpose, RecordedAtSource, RecordingIdSource, RequestPhase, RequestType, SubjectRequest,
};
use gallring::store::s3::{S3Settings, S3Store};

const RETENTION_TAG: &str = "gallring.io/retention";

fn endpoint() -> String {
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        if std::env::var(var).map_or(true, |v| v.is_empty()) {
            panic!(
                "{var} is not set: run `eval \"$(scripts/s3-up.sh)\"` first (scripts/test.sh does)"
            );
        }
    }
    match std::env::var("GALLRING_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!(
            "GALLRING_S3_ENDPOINT is not set: run `eval \"$(scripts/s3-up.sh)\"` first (scripts/test.sh does)"
        ),
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Utc::now().format("%H%M%S%f"))
        .chars()
        .take(63)
        .collect()
}

fn settings(bucket: &str) -> S3Settings {
    let mut s = S3Settings::new(bucket);
    s.endpoint = Some(endpoint());
    s.max_attempts = 2;
    s.request_timeout = Duration::from_secs(10);
    s
}

/// A plain SDK client configured as the adapter's: the independent view of the bucket.
async fn raw() -> aws_sdk_s3::Client {
    S3Store::connect(settings("any"), Arc::new(gallring::store::NoopObserver))
        .await
        .client()
        .clone()
}

async fn store(bucket: &str) -> S3Store {
    S3Store::connect(settings(bucket), Arc::new(Metrics::new().expect("metrics"))).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Unversioned,
    Versioned,
    /// Object Lock (versioned), no default retention: holds become S3 legal holds.
    ObjectLock,
}

async fn new_bucket(c: &aws_sdk_s3::Client, label: &str, layout: Layout) -> String {
    let bucket = unique(label);
    c.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(layout == Layout::ObjectLock)
        .send()
        .await
        .expect("bucket");
    if layout == Layout::Versioned {
        c.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
    }
    bucket
}

/// A time `ago` before now, in whole seconds (as the `recorded-at` tag carries it).
fn before_now(ago: TimeDelta) -> DateTime<Utc> {
    DateTime::from_timestamp((Utc::now() - ago).timestamp(), 0).expect("in range")
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The body every recording carries: the manifest must never contain it.
fn content(key: &str) -> Vec<u8> {
    format!("CONFIDENTIAL-CALL-CONTENT of {key}").into_bytes()
}

/// Uploads a recording recorded at `at`, with the `subject` tag when given.
async fn put(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    subject: Option<&str>,
    at: DateTime<Utc>,
) -> Option<String> {
    let mut tagging = format!("recorded-at={}", stamp(at));
    if let Some(s) = subject {
        tagging.push_str(&format!("&subject={s}"));
    }
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(content(key)))
        .tagging(tagging)
        .send()
        .await
        .expect("put object")
        .version_id()
        .map(str::to_string)
}

/// Every version of every recording (the state prefix left out), as (key, version id).
async fn versions(c: &aws_sdk_s3::Client, bucket: &str) -> BTreeSet<(String, String)> {
    let out = c
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .expect("versions");
    assert!(!out.is_truncated().unwrap_or(false), "one page is enough");
    out.versions()
        .iter()
        .filter_map(|v| Some((v.key()?.to_string(), v.version_id()?.to_string())))
        .filter(|(k, _)| !k.starts_with(".gallring/"))
        .collect()
}

/// Keys of the current recordings (the state prefix left out).
async fn keys(c: &aws_sdk_s3::Client, bucket: &str) -> BTreeSet<String> {
    let out = c
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .filter(|k| !k.starts_with(".gallring/"))
        .collect()
}

async fn tags(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> BTreeMap<String, String> {
    c.get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("tags")
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn legal_hold(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<String>,
) -> Option<ObjectLockLegalHoldStatus> {
    c.get_object_legal_hold()
        .bucket(bucket)
        .key(key)
        .set_version_id(version)
        .send()
        .await
        .ok()
        .and_then(|o| o.legal_hold().and_then(|l| l.status()).cloned())
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn counts(items: &[(&str, u64)]) -> BTreeMap<String, u64> {
    items.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn purpose(
    legal_basis: &str,
    withdrawable: bool,
    kept_on_erasure: bool,
    retain: &[(&str, IsoDuration)],
) -> Purpose {
    Purpose {
        legal_basis: legal_basis.to_string(),
        kept_on_erasure,
        retain_means: Default::default(),
        from: None,
        use_for: Default::default(),
        controller: None,
        withdrawable,
        retain: retain.iter().map(|(k, d)| (k.to_string(), *d)).collect(),
    }
}

const LEGITIMATE_INTERESTS: &str = "Art. 6(1)(f) legitimate interests";
const LEGAL_OBLIGATION: &str = "Art. 6(1)(c) legal obligation";
const CONSENT: &str = "Art. 6(1)(a) consent";

fn policy(purposes: Vec<(&str, Purpose)>) -> Policy {
    Policy {
        controller: "Controller A/S".to_string(),
        hold_max: Default::default(),
        time_zone: chrono_tz::Tz::UTC,
        name: "RetentionPolicy/it/requests".into(),
        purposes: purposes
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect(),
        // No holdRelease: a lifted restriction leaves no floor.
        hold_release: BTreeMap::new(),
    }
}

/// Documentation keeps audio and transcripts a year (legitimate interests, not withdrawable).
fn documentation() -> (&'static str, Purpose) {
    (
        "documentation",
        purpose(
            LEGITIMATE_INTERESTS,
            false,
            false,
            &[
                ("audio", IsoDuration::months(12)),
                ("transcript", IsoDuration::months(12)),
                ("sales-audio", IsoDuration::months(12)),
            ],
        ),
    )
}

fn classify(prefix: &str, kind: &str, purposes: &[&str]) -> ClassifyRule {
    ClassifyRule {
        name: kind.into(),
        prefix: Some(prefix.into()),
        glob: None,
        tags: BTreeMap::new(),
        kind: kind.into(),
        purposes: purposes.iter().map(|p| p.to_string()).collect(),
        purposes_from_tag: None,
    }
}

/// The bucket: recording id from the key, subject from the `subject` tag, recording time from
/// `recorded-at`; gallring deletes itself (Operator).
fn rules(classify: Vec<ClassifyRule>) -> BucketRules {
    BucketRules {
        name: "RecordingBucket/it/calls".into(),
        prefix: None,
        classify,
        recording_id: Some(RecordingIdSource::KeyPattern(
            regex::Regex::new(r"^[a-z]+/(?P<id>[^.]+)").expect("regex"),
        )),
        subject_tag: Some("subject".into()),
        recorded_at: RecordedAtSource::Tag("recorded-at".into()),
        recorded_at_max_age: None,
        grace: IsoDuration::days(2),
        scan_interval: IsoDuration::days(1),
        verify_interval: IsoDuration::days(7),
        enforcement: Enforcement::Operator,
    }
}

fn calls_rules() -> BucketRules {
    rules(vec![
        classify("voice/", "audio", &["documentation"]),
        classify("text/", "transcript", &["documentation"]),
    ])
}

fn request(name: &str, kind: RequestType, received_at: DateTime<Utc>) -> SubjectRequest {
    SubjectRequest {
        name: name.into(),
        kind,
        recording_ids: BTreeSet::new(),
        subjects: BTreeSet::new(),
        keys: BTreeSet::new(),
        purposes: BTreeSet::new(),
        received_at,
        reference: format!("DSR-{}", name.rsplit('/').next().unwrap_or(name)),
        lifted_at: None,
    }
}

/// One pass as a host runs it: restrictions also passed as holds; decided by the real clock
/// (the pass takes the earlier of it and the store's).
async fn pass(
    s: &S3Store,
    p: &Policy,
    r: &BucketRules,
    mut holds: Vec<Hold>,
    requests: Vec<SubjectRequest>,
) -> PassReport {
    holds.extend(requests.iter().filter_map(SubjectRequest::as_hold));
    let report = Box::pin(reconcile(
        s,
        p,
        r,
        holds,
        Utc::now(),
        PassConfig {
            page_size: 2,
            concurrency: 4,
            requests,
            ..PassConfig::default()
        },
        &|_| {},
    ))
    .await
    .expect("the pass runs");
    assert_eq!(
        (report.object_errors, report.delete_failures),
        (0, 0),
        "{:?}",
        report.sample_errors
    );
    assert!(
        report.deletes_blocked.is_none(),
        "{:?}",
        report.deletes_blocked
    );
    report
}

/// 1. Erasure by subject, unversioned bucket: the subject's calls up to the request are gone
///    with every artifact (the transcript without the subject tag too); another subject's call
///    and the subject's later call stay.
#[tokio::test]
async fn an_erasure_by_subject_deletes_every_artifact_of_the_subjects_earlier_calls() {
    let c = raw().await;
    let bucket = new_bucket(&c, "it-dsr-erase", Layout::Unversioned).await;
    let received = before_now(TimeDelta::days(1));
    let month_ago = before_now(TimeDelta::days(30));
    for id in ["a1", "a2"] {
        put(
            &c,
            &bucket,
            &format!("voice/{id}.wav"),
            Some("A"),
            month_ago,
        )
        .await;
        put(&c, &bucket, &format!("text/{id}.json"), None, month_ago).await;
    }
    put(&c, &bucket, "voice/b1.wav", Some("B"), month_ago).await;
    put(&c, &bucket, "text/b1.json", None, month_ago).await;
    // A's call after the request was received: new processing, not erased.
    let later = before_now(TimeDelta::hours(1));
    put(&c, &bucket, "voice/a3.wav", Some("A"), later).await;
    put(&c, &bucket, "text/a3.json", None, later).await;

    let (p, r) = (policy(vec![documentation()]), calls_rules());
    let s = store(&bucket).await;
    let mut erase = request("it/erase-a", RequestType::Erasure, received);
    erase.subjects = set(&["A"]);
    let report = pass(&s, &p, &r, vec![], vec![erase]).await;

    assert_eq!(
        keys(&c, &bucket).await,
        set(&[
            "text/a3.json",
            "text/b1.json",
            "voice/a3.wav",
            "voice/b1.wav"
        ]),
        "A's two earlier calls are gone (audio and transcript), B's call and A's later call stay"
    );
    let rr = &report.requests["it/erase-a"];
    assert_eq!(rr.kind, RequestType::Erasure);
    assert_eq!(rr.phase, RequestPhase::Completed, "{rr:?}");
    let by_kind = counts(&[("audio", 2), ("transcript", 2)]);
    assert!(rr.matched.is_empty(), "nothing selected is left: {rr:?}");
    assert_eq!(rr.deleted, by_kind, "{rr:?}");
    assert!(rr.kept.is_empty() && rr.exceptions.is_empty(), "{rr:?}");
    assert_eq!(rr.exceptions_total, 0);
    assert_eq!((rr.reappeared, rr.reappeared_now), (0, 0));
    assert_eq!(report.deleted, 4, "nothing else was deleted");
    assert_eq!(report.deleted_by_kind, by_kind);
    // The survivors are kept a year, as before the request.
    assert_ne!(
        tags(&c, &bucket, "voice/a3.wav")
            .await
            .get(RETENTION_TAG)
            .map(String::as_str),
        Some("held")
    );
}

/// 2. Erasure on a versioned bucket: every version of the erased recording is gone (by
///    recording id, whatever each version's recording time), every other version untouched.
#[tokio::test]
async fn an_erasure_on_a_versioned_bucket_deletes_every_version_of_the_recording() {
    let c = raw().await;
    let bucket = new_bucket(&c, "it-dsr-versions", Layout::Versioned).await;
    let received = before_now(TimeDelta::days(1));
    let month_ago = before_now(TimeDelta::days(30));
    put(&c, &bucket, "voice/v1.wav", Some("A"), month_ago).await;
    put(&c, &bucket, "voice/v1.wav", Some("A"), month_ago).await;
    // A version written after the request: recording ids select whatever the time.
    put(
        &c,
        &bucket,
        "voice/v1.wav",
        Some("A"),
        before_now(TimeDelta::hours(1)),
    )
    .await;
    put(&c, &bucket, "text/v1.json", None, month_ago).await;
    put(&c, &bucket, "text/v1.json", None, month_ago).await;
    put(&c, &bucket, "voice/k1.wav", Some("B"), month_ago).await;
    put(&c, &bucket, "voice/k1.wav", Some("B"), month_ago).await;
    put(&c, &bucket, "text/k1.json", None, month_ago).await;
    let before = versions(&c, &bucket).await;
    assert_eq!(before.len(), 8, "{before:?}");
    let others: BTreeSet<(String, String)> = before
        .iter()
        .filter(|(k, _)| k.contains("k1"))
        .cloned()
        .collect();
    assert_eq!(others.len(), 3);

    let (p, r) = (policy(vec![documentation()]), calls_rules());
    let s = store(&bucket).await;
    let mut erase = request("it/erase-v1", RequestType::Erasure, received);
    erase.recording_ids = set(&["v1"]);
    let report = pass(&s, &p, &r, vec![], vec![erase]).await;
    assert!(report.versioned);

    assert_eq!(
        versions(&c, &bucket).await,
        others,
        "no version of v1 is left; k1's versions are all there"
    );
    let markers = c
        .list_object_versions()
        .bucket(&bucket)
        .prefix("voice/v1")
        .send()
        .await
        .expect("versions");
    assert!(
        markers.delete_markers().is_empty(),
        "deleted by version id, no delete marker hides anything"
    );
    let rr = &report.requests["it/erase-v1"];
    assert_eq!(rr.phase, RequestPhase::Completed, "{rr:?}");
    let by_kind = counts(&[("audio", 3), ("transcript", 2)]);
    assert!(rr.matched.is_empty(), "no version is left: {rr:?}");
    assert_eq!(rr.deleted, by_kind, "{rr:?}");
    assert_eq!(report.deleted, 5);
}

/// 3. Art. 17(3): an erasure does not reach a held call (Object Lock legal hold, `held` tag) nor
///    what a legal obligation keeps; each exception names what keeps it, and the request is
///    partially completed.
#[tokio::test]
async fn an_erasure_keeps_held_calls_and_legal_obligations_and_names_each_exception() {
    let c = raw().await;
    let bucket = new_bucket(&c, "it-dsr-except", Layout::ObjectLock).await;
    let received = before_now(TimeDelta::days(1));
    let month_ago = before_now(TimeDelta::days(30));
    let held_audio = put(&c, &bucket, "voice/h1.wav", Some("A"), month_ago).await;
    let held_text = put(&c, &bucket, "text/h1.json", None, month_ago).await;
    put(&c, &bucket, "voice/e1.wav", Some("A"), month_ago).await;
    put(&c, &bucket, "text/e1.json", None, month_ago).await;
    put(&c, &bucket, "sales/s1.wav", Some("A"), month_ago).await;
    put(&c, &bucket, "voice/b1.wav", Some("B"), month_ago).await;

    let p = policy(vec![
        documentation(),
        (
            "bookkeeping",
            purpose(
                LEGAL_OBLIGATION,
                false,
                true,
                &[("sales-audio", IsoDuration::months(60))],
            ),
        ),
    ]);
    let r = rules(vec![
        classify("voice/", "audio", &["documentation"]),
        classify("text/", "transcript", &["documentation"]),
        classify("sales/", "sales-audio", &["documentation", "bookkeeping"]),
    ]);
    let hold = Hold {
        name: "it/litigation".into(),
        reason: HoldReason::Dispute,
        case: "CASE-7".into(),
        select: HoldSelector {
            recording_ids: set(&["h1"]),
            ..HoldSelector::default()
        },
        expires: None,
        review_by: None,
        released_at: None,
        limitation_start: None,
        created_at: None,
    };
    let s = store(&bucket).await;
    let mut erase = request("it/erase-a", RequestType::Erasure, received);
    erase.subjects = set(&["A"]);
    let report = pass(&s, &p, &r, vec![hold], vec![erase]).await;
    assert!(report.object_lock);

    assert_eq!(
        keys(&c, &bucket).await,
        set(&[
            "sales/s1.wav",
            "text/h1.json",
            "voice/b1.wav",
            "voice/h1.wav"
        ]),
        "only the unheld call without a legal obligation is erased"
    );
    assert!(
        !versions(&c, &bucket)
            .await
            .iter()
            .any(|(k, _)| k.contains("e1")),
        "no version of e1 is left"
    );
    for (key, version) in [("voice/h1.wav", held_audio), ("text/h1.json", held_text)] {
        assert_eq!(
            legal_hold(&c, &bucket, key, version).await,
            Some(ObjectLockLegalHoldStatus::On),
            "{key}: S3 protects the held call"
        );
        assert_eq!(
            tags(&c, &bucket, key)
                .await
                .get(RETENTION_TAG)
                .map(String::as_str),
            Some("held"),
            "{key}"
        );
    }
    assert_ne!(
        tags(&c, &bucket, "sales/s1.wav")
            .await
            .get(RETENTION_TAG)
            .map(String::as_str),
        Some("held"),
        "the sales audio is kept by its purpose, not held"
    );

    let rr = &report.requests["it/erase-a"];
    assert_eq!(rr.phase, RequestPhase::PartiallyCompleted, "{rr:?}");
    // `matched` is what is still there: the exceptions.
    assert_eq!(
        rr.matched,
        counts(&[("audio", 1), ("sales-audio", 1), ("transcript", 1)]),
        "{rr:?}"
    );
    assert_eq!(
        rr.deleted,
        counts(&[("audio", 1), ("transcript", 1)]),
        "{rr:?}"
    );
    assert_eq!(
        rr.kept,
        counts(&[("audio", 1), ("sales-audio", 1), ("transcript", 1)]),
        "{rr:?}"
    );
    assert_eq!(rr.exceptions_total, 3);
    let kept_by: BTreeMap<&str, &str> = rr
        .exceptions
        .iter()
        .map(|e| (e.key.as_str(), e.kept_by.as_str()))
        .collect();
    assert_eq!(kept_by.len(), 3, "{:?}", rr.exceptions);
    for key in ["voice/h1.wav", "text/h1.json"] {
        assert!(
            kept_by[key].contains("hold") && kept_by[key].contains("it/litigation"),
            "{key}: {}",
            kept_by[key]
        );
    }
    assert_eq!(
        kept_by["sales/s1.wav"],
        format!("purpose bookkeeping ({LEGAL_OBLIGATION})")
    );
}

/// 4. Reappearance: after an erasure completed and its request is gone from the host, a
///    re-upload of the erased recording (no subject tag, recorded after the request) is erased
///    again by the journal's tombstone, and reported under the request's name.
#[tokio::test]
async fn an_erased_recording_that_reappears_is_deleted_again_after_the_request_is_gone() {
    let c = raw().await;
    let bucket = new_bucket(&c, "it-dsr-reappear", Layout::Unversioned).await;
    let received = before_now(TimeDelta::days(1));
    let month_ago = before_now(TimeDelta::days(30));
    put(&c, &bucket, "voice/r1.wav", Some("A"), month_ago).await;
    put(&c, &bucket, "text/r1.json", None, month_ago).await;
    put(&c, &bucket, "voice/b1.wav", Some("B"), month_ago).await;
    let (p, r) = (policy(vec![documentation()]), calls_rules());
    let s = store(&bucket).await;
    let mut erase = request("it/erase-a", RequestType::Erasure, received);
    erase.subjects = set(&["A"]);

    let first = pass(&s, &p, &r, vec![], vec![erase]).await;
    assert_eq!(
        first.requests["it/erase-a"].phase,
        RequestPhase::Completed,
        "{:?}",
        first.requests
    );
    assert_eq!(keys(&c, &bucket).await, set(&["voice/b1.wav"]));

    // The SubjectRequest is deleted from the cluster: the host passes no request any more.
    let quiet = pass(&s, &p, &r, vec![], vec![]).await;
    assert_eq!(quiet.deleted, 0);
    assert!(
        quiet.requests.is_empty(),
        "nothing erased again, nothing to report: {:?}",
        quiet.requests
    );

    // The call is uploaded again, without its subject tag and dated after the request.
    put(
        &c,
        &bucket,
        "voice/r1.wav",
        None,
        before_now(TimeDelta::minutes(5)),
    )
    .await;
    assert_eq!(
        keys(&c, &bucket).await,
        set(&["voice/b1.wav", "voice/r1.wav"])
    );
    let again = pass(&s, &p, &r, vec![], vec![]).await;
    assert_eq!(
        keys(&c, &bucket).await,
        set(&["voice/b1.wav"]),
        "the reappeared recording is erased again"
    );
    assert_eq!(again.deleted, 1);
    let rr = again
        .requests
        .get("it/erase-a")
        .unwrap_or_else(|| panic!("reported under its name: {:?}", again.requests));
    assert_eq!(rr.reappeared_now, 1, "{rr:?}");
    assert_eq!(rr.reappeared, 1, "{rr:?}");
    assert_eq!(
        rr.deleted,
        counts(&[("audio", 2), ("transcript", 1)]),
        "deleted under the request in all passes: {rr:?}"
    );
}

/// 5. Withdrawal: the withdrawable quality purpose ends for the subject's call, so the masked
///    transcript it alone kept is deleted; the audio documentation keeps stays with its
///    deadline; another subject's masked transcript stays.
#[tokio::test]
async fn a_withdrawal_ends_the_quality_purpose_and_only_what_it_alone_kept_is_deleted() {
    let c = raw().await;
    let bucket = new_bucket(&c, "it-dsr-withdraw", Layout::Unversioned).await;
    // Three months ago: inside quality's six months, so only the withdrawal can end it.
    let recorded = before_now(TimeDelta::days(91));
    put(&c, &bucket, "voice/w1.wav", Some("A"), recorded).await;
    put(&c, &bucket, "masked/w1.txt", None, recorded).await;
    put(&c, &bucket, "voice/w2.wav", Some("B"), recorded).await;
    put(&c, &bucket, "masked/w2.txt", None, recorded).await;
    let p = policy(vec![
        (
            "documentation",
            purpose(
                LEGITIMATE_INTERESTS,
                false,
                false,
                &[("audio", IsoDuration::months(12))],
            ),
        ),
        (
            "quality",
            purpose(
                CONSENT,
                true,
                false,
                &[("masked-transcript", IsoDuration::months(6))],
            ),
        ),
    ]);
    let r = rules(vec![
        classify("voice/", "audio", &["documentation"]),
        classify("masked/", "masked-transcript", &["quality"]),
    ]);
    let s = store(&bucket).await;
    let all = set(&[
        "masked/w1.txt",
        "masked/w2.txt",
        "voice/w1.wav",
        "voice/w2.wav",
    ]);

    let before = pass(&s, &p, &r, vec![], vec![]).await;
    assert_eq!(before.deleted, 0);
    assert_eq!(keys(&c, &bucket).await, all, "within every retention");

    // Received now (a moment ago: the pass decides by the store's whole-second clock).
    let mut withdraw = request(
        "it/withdraw-a",
        RequestType::Withdrawal,
        before_now(TimeDelta::seconds(2)),
    );
    withdraw.subjects = set(&["A"]);
    let report = pass(&s, &p, &r, vec![], vec![withdraw]).await;
    let mut left = all.clone();
    left.remove("masked/w1.txt");
    assert_eq!(
        keys(&c, &bucket).await,
        left,
        "A's masked transcript is deleted; the audio and B's call stay"
    );
    assert_eq!(report.deleted, 1);
    let rr = &report.requests["it/withdraw-a"];
    assert_eq!(rr.kind, RequestType::Withdrawal);
    assert_eq!(rr.phase, RequestPhase::Completed, "{rr:?}");
    assert_eq!(rr.matched, counts(&[("audio", 1)]), "{rr:?}");
    assert_eq!(rr.deleted, counts(&[("masked-transcript", 1)]), "{rr:?}");
    assert!(
        tags(&c, &bucket, "voice/w1.wav")
            .await
            .get(RETENTION_TAG)
            .is_some_and(|t| t != "held"),
        "the audio stays under documentation"
    );
}

/// 6. Restriction (a hold of reason Restriction): a call past its deadline is not deleted while
///    the restriction lasts (S3 legal hold and the `held` tag), and is deleted once `liftedAt`
///    has passed (no holdRelease for Restriction: no floor).
#[tokio::test]
async fn a_restriction_keeps_an_overdue_call_until_it_is_lifted() {
    let c = raw().await;
    let bucket = new_bucket(&c, "it-dsr-restrict", Layout::ObjectLock).await;
    let two_years_ago = before_now(TimeDelta::days(730));
    let v = put(&c, &bucket, "voice/x1.wav", Some("A"), two_years_ago).await;
    put(&c, &bucket, "text/x1.json", None, two_years_ago).await;
    put(&c, &bucket, "voice/y1.wav", Some("B"), two_years_ago).await;
    let (p, r) = (policy(vec![documentation()]), calls_rules());
    let s = store(&bucket).await;
    let lifted_at = Utc::now() + TimeDelta::seconds(8);
    let mut restrict = request(
        "it/restrict-a",
        RequestType::Restriction,
        before_now(TimeDelta::days(1)),
    );
    restrict.subjects = set(&["A"]);
    restrict.lifted_at = Some(lifted_at);

    let during = pass(&s, &p, &r, vec![], vec![restrict.clone()]).await;
    assert!(
        Utc::now() < lifted_at,
        "the premise: the first pass ended before the restriction is lifted"
    );
    assert_eq!(
        keys(&c, &bucket).await,
        set(&["text/x1.json", "voice/x1.wav"]),
        "B's overdue call is deleted; A's restricted call is not"
    );
    assert_eq!(
        legal_hold(&c, &bucket, "voice/x1.wav", v.clone()).await,
        Some(ObjectLockLegalHoldStatus::On)
    );
    for key in ["voice/x1.wav", "text/x1.json"] {
        assert_eq!(
            tags(&c, &bucket, key)
                .await
                .get(RETENTION_TAG)
                .map(String::as_str),
            Some("held"),
            "{key}"
        );
    }
    let rr = &during.requests["it/restrict-a"];
    assert_eq!(rr.kind, RequestType::Restriction);
    assert_eq!(rr.phase, RequestPhase::Completed, "{rr:?}");
    assert_eq!(
        rr.matched,
        counts(&[("audio", 1), ("transcript", 1)]),
        "{rr:?}"
    );
    assert!(rr.deleted.is_empty(), "{rr:?}");
    assert_eq!(
        during.summary.held_by_hold.get("it/restrict-a"),
        Some(&2),
        "{:?}",
        during.summary
    );

    // Lifted: the host still lists the request (and its hold, now ended).
    let wait = lifted_at + TimeDelta::seconds(2) - Utc::now();
    tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
    let after = pass(&s, &p, &r, vec![], vec![restrict]).await;
    assert_eq!(after.legal_holds_cleared, 2, "{after:?}");
    assert_eq!(after.deleted, 2);
    assert!(
        versions(&c, &bucket).await.is_empty(),
        "no version of the restricted call is left once lifted"
    );
}

/// 7. Access: a JSON manifest in the state location lists exactly the subject's recordings with
///    their kinds, purposes and legal bases and deadlines, and no content; nothing else changes.
#[tokio::test]
async fn an_access_request_writes_a_manifest_of_the_subjects_recordings_without_content() {
    let c = raw().await;
    let bucket = new_bucket(&c, "it-dsr-access", Layout::Unversioned).await;
    let t1 = before_now(TimeDelta::days(40));
    let t2 = before_now(TimeDelta::days(10));
    put(&c, &bucket, "voice/a1.wav", Some("A"), t1).await;
    put(&c, &bucket, "text/a1.json", None, t1).await;
    put(&c, &bucket, "voice/a2.wav", Some("A"), t2).await;
    put(&c, &bucket, "text/a2.json", None, t2).await;
    put(&c, &bucket, "voice/b1.wav", Some("B"), t1).await;
    put(&c, &bucket, "text/b1.json", None, t1).await;
    let before = keys(&c, &bucket).await;
    let (p, r) = (policy(vec![documentation()]), calls_rules());
    let s = store(&bucket).await;
    let mut access = request(
        "it/access-a",
        RequestType::Access,
        before_now(TimeDelta::seconds(2)),
    );
    access.subjects = set(&["A"]);
    let report = pass(&s, &p, &r, vec![], vec![access]).await;

    assert_eq!(report.deleted, 0);
    assert_eq!(
        keys(&c, &bucket).await,
        before,
        "an access request only reads"
    );
    let rr = &report.requests["it/access-a"];
    assert_eq!(rr.kind, RequestType::Access);
    assert_eq!(rr.phase, RequestPhase::Completed, "{rr:?}");
    assert_eq!(
        rr.matched,
        counts(&[("audio", 2), ("transcript", 2)]),
        "{rr:?}"
    );
    let key = ".gallring/requests/it_access-a.json";
    assert_eq!(
        rr.manifest.as_deref(),
        Some(format!("s3://{bucket}/{key}").as_str())
    );

    let object = c
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("the manifest is in the state location");
    assert_eq!(object.content_type(), Some("application/json"));
    let body = object
        .body
        .collect()
        .await
        .expect("its body")
        .into_bytes()
        .to_vec();
    let text = String::from_utf8(body).expect("UTF-8");
    assert!(
        !text.contains("CONFIDENTIAL-CALL-CONTENT"),
        "no recording's content in the manifest:\n{text}"
    );
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(manifest["request"], "it/access-a");
    assert_eq!(manifest["bucket"], bucket.as_str());
    assert_eq!(manifest["controller"], "Controller A/S");
    let entries = manifest["recordings"].as_array().expect("recordings");
    let listed: BTreeMap<&str, &serde_json::Value> = entries
        .iter()
        .map(|e| (e["key"].as_str().expect("key"), e))
        .collect();
    assert_eq!(listed.len(), entries.len(), "each object once: {text}");
    let expected = [
        ("text/a1.json", "transcript", t1),
        ("text/a2.json", "transcript", t2),
        ("voice/a1.wav", "audio", t1),
        ("voice/a2.wav", "audio", t2),
    ];
    assert_eq!(
        listed.keys().copied().collect::<Vec<_>>(),
        expected.iter().map(|(k, _, _)| *k).collect::<Vec<_>>(),
        "exactly A's objects:\n{text}"
    );
    for (key, kind, recorded) in expected {
        let e = listed[key];
        assert_eq!(e["kind"], kind, "{key}");
        assert_eq!(
            e["purposes"],
            serde_json::json!({ "documentation": LEGITIMATE_INTERESTS }),
            "{key}"
        );
        let deadline: DateTime<Utc> =
            serde_json::from_value(e["deadline"].clone()).expect("a deadline");
        let year_later = IsoDuration::months(12)
            .add_in(recorded, chrono_tz::Tz::UTC)
            .expect("in range");
        assert_eq!(deadline, year_later, "{key}: a year from its recording");
        let at: DateTime<Utc> =
            serde_json::from_value(e["recordedAt"].clone()).expect("recordedAt");
        assert_eq!(at, recorded, "{key}");
        assert_eq!(e["size"], content(key).len() as u64, "{key}");
    }
}

/// A restriction that has been lifted is done: the call it kept that is past its deadline is
/// deleted by retention (not "erased again": it never was erased, so nothing reappeared), and
/// the call still within its retention stays without leaving the request open for ever.
#[tokio::test]
async fn a_lifted_restriction_is_completed_and_what_retention_then_deletes_is_no_reappearance() {
    let c = raw().await;
    let bucket = new_bucket(&c, "it-dsr-lifted", Layout::Unversioned).await;
    put(
        &c,
        &bucket,
        "voice/old.wav",
        Some("A"),
        before_now(TimeDelta::days(730)),
    )
    .await;
    put(
        &c,
        &bucket,
        "voice/new.wav",
        Some("A"),
        before_now(TimeDelta::days(30)),
    )
    .await;
    let (p, r) = (policy(vec![documentation()]), calls_rules());
    let s = store(&bucket).await;
    let lifted_at = Utc::now() + TimeDelta::seconds(6);
    let mut restrict = request(
        "it/restrict-a",
        RequestType::Restriction,
        before_now(TimeDelta::days(1)),
    );
    restrict.subjects = set(&["A"]);
    restrict.lifted_at = Some(lifted_at);

    let during = pass(&s, &p, &r, vec![], vec![restrict.clone()]).await;
    assert!(
        Utc::now() < lifted_at,
        "the premise: lifted after the first pass"
    );
    assert_eq!(
        during.requests["it/restrict-a"].phase,
        RequestPhase::Completed
    );
    assert_eq!(
        keys(&c, &bucket).await,
        set(&["voice/new.wav", "voice/old.wav"])
    );

    let wait = lifted_at + TimeDelta::seconds(2) - Utc::now();
    tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
    let after = pass(&s, &p, &r, vec![], vec![restrict]).await;
    assert_eq!(
        keys(&c, &bucket).await,
        set(&["voice/new.wav"]),
        "once lifted, the overdue call is deleted and the other kept"
    );
    let rr = &after.requests["it/restrict-a"];
    assert_eq!(
        (rr.reappeared_now, rr.reappeared),
        (0, 0),
        "a restriction erases nothing, so nothing reappears: {rr:?}"
    );
    assert_eq!(
        rr.phase,
        RequestPhase::Completed,
        "a lifted restriction asks nothing more of the bucket: {rr:?}"
    );
}

/// An erasure's exception is erased once its hold is released: the request completes, and the
/// object (never deleted before) is not reported as an erased recording that reappeared.
#[tokio::test]
async fn an_exception_erased_after_its_hold_is_released_completes_the_erasure_without_a_reappearance()
 {
    let c = raw().await;
    let bucket = new_bucket(&c, "it-dsr-release", Layout::ObjectLock).await;
    let month_ago = before_now(TimeDelta::days(30));
    put(&c, &bucket, "voice/h1.wav", Some("A"), month_ago).await;
    put(&c, &bucket, "voice/e1.wav", Some("A"), month_ago).await;
    let (p, r) = (policy(vec![documentation()]), calls_rules());
    let mut hold = Hold {
        name: "it/complaint".into(),
        reason: HoldReason::Complaint,
        case: "C-1".into(),
        select: HoldSelector {
            recording_ids: set(&["h1"]),
            ..HoldSelector::default()
        },
        expires: None,
        review_by: None,
        released_at: None,
        limitation_start: None,
        created_at: None,
    };
    let s = store(&bucket).await;
    let mut erase = request(
        "it/erase-a",
        RequestType::Erasure,
        before_now(TimeDelta::days(1)),
    );
    erase.subjects = set(&["A"]);

    let first = pass(&s, &p, &r, vec![hold.clone()], vec![erase.clone()]).await;
    assert_eq!(keys(&c, &bucket).await, set(&["voice/h1.wav"]));
    assert_eq!(
        first.requests["it/erase-a"].phase,
        RequestPhase::PartiallyCompleted
    );

    // The complaint is closed (no holdRelease for complaints: no floor).
    hold.released_at = Some(Utc::now() - TimeDelta::seconds(2));
    let second = pass(&s, &p, &r, vec![hold], vec![erase]).await;
    assert!(
        versions(&c, &bucket).await.is_empty(),
        "the former exception is erased once released"
    );
    let rr = &second.requests["it/erase-a"];
    assert_eq!(rr.phase, RequestPhase::Completed, "{rr:?}");
    assert_eq!(rr.deleted, counts(&[("audio", 2)]), "{rr:?}");
    assert_eq!(
        (rr.reappeared_now, rr.reappeared),
        (0, 0),
        "the held call never was deleted, so it did not reappear: {rr:?}"
    );
}
