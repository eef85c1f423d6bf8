//! Reconcile passes against real S3 servers. Every test makes its own bucket.
//! - Ceph RGW, started by `scripts/s3-up.sh` (`GALLRING_S3_ENDPOINT`): a lifecycle "day" there
//!   lasts 10 seconds, so lifecycle expiry really runs, and tag writes move `LastModified`.
//! - moto 5.1.22, AWS S3's semantics, started by `scripts/moto-up.sh`
//!   (`GALLRING_MOTO_ENDPOINT`): every test that does not need lifecycle execution or RGW's
//!   moving `LastModified` also runs there (`moto::…`, issue 13), so both backends hold the
//!   same guarantees.
//!
//! Without a backend's endpoint its tests fail and say how to start it: they never skip.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ObjectLockLegalHoldStatus, Tag, Tagging, VersioningConfiguration,
};
use chrono::{TimeDelta, Utc};

use gallring::metrics::Metrics;
use gallring::reconcile::{PassConfig, PassReport, reconcile};
use gallring::retention::{
    BucketRules, ClassifyRule, Enforcement, Hold, HoldReason, HoldSelector, IsoDuration, Policy,
    Purpose, RecordedAtSource, RecordingIdSource,
};
use gallring::store::s3::{S3Settings, S3Store, StaticCredentials};

/// The S3 server a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Ceph,
    Moto,
}

impl Backend {
    fn endpoint(self) -> String {
        let (var, script) = match self {
            Backend::Ceph => ("GALLRING_S3_ENDPOINT", "s3-up.sh"),
            Backend::Moto => ("GALLRING_MOTO_ENDPOINT", "moto-up.sh"),
        };
        match std::env::var(var) {
            Ok(e) if !e.is_empty() => e,
            _ => panic!(
                "{var} is not set: run `eval \"$(scripts/{script})\"` first (scripts/test.sh does)"
            ),
        }
    }

    /// Ceph: the environment's (AWS_*). moto accepts any key: fixed ones keep its tests
    /// independent of the Ceph environment.
    fn credentials(self) -> Option<StaticCredentials> {
        (self == Backend::Moto).then(|| StaticCredentials {
            access_key_id: "gallring-moto-access".to_string(),
            secret_access_key: "gallring-moto-secret".to_string(),
            session_token: None,
        })
    }
}

/// Runs each named test (an `async fn(Backend)`) on both servers: `ceph::NAME`, `moto::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod ceph {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Ceph).await;
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Moto).await;
                }
            )*
        }
    };
}

on_both_backends!(
    observe_mode_leaves_the_bucket_exactly_as_it_was,
    the_overdue_gauge_counts_an_object_made_overdue_behind_the_operators_back,
    on_an_object_lock_bucket_a_held_version_survives_and_is_deleted_after_release,
    a_versioned_bucket_is_deleted_version_by_version,
    a_missing_bucket_is_a_clear_error_and_nothing_else,
    with_an_index_a_steady_pass_reads_no_object_and_a_new_host_starts_from_the_snapshot,
    a_delete_refused_by_default_governance_retention_is_a_failure_not_a_deletion,
    gallring_run_once_exits_non_zero_when_a_deletion_fails,
    in_operator_mode_a_delete_marker_left_over_deleted_versions_is_removed,
);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Utc::now().format("%H%M%S%f"))
        .chars()
        .take(63)
        .collect()
}

fn settings(b: Backend, bucket: &str) -> S3Settings {
    let mut s = S3Settings::new(bucket);
    s.endpoint = Some(b.endpoint());
    s.static_credentials = b.credentials();
    s.max_attempts = 2;
    s.request_timeout = Duration::from_secs(10);
    s
}

/// A plain SDK client configured as the adapter's.
async fn raw(b: Backend) -> aws_sdk_s3::Client {
    S3Store::connect(settings(b, "any"), Arc::new(gallring::store::NoopObserver))
        .await
        .client()
        .clone()
}

async fn store(b: Backend, bucket: &str, metrics: Arc<Metrics>) -> S3Store {
    S3Store::connect(settings(b, bucket), metrics).await
}

/// Audio under `audio/` kept `retain` for documentation; `recorded-at` tag when present.
fn setup(retain: IsoDuration, enforcement: Enforcement) -> (Policy, BucketRules) {
    let policy = Policy {
        controller: "Controller A/S".to_string(),
        hold_max: Default::default(),
        time_zone: chrono_tz::Tz::UTC,
        name: "RetentionPolicy/it/p".into(),
        purposes: [(
            "documentation".to_string(),
            Purpose {
                legal_basis: String::new(),
                kept_on_erasure: false,
                retain_means: Default::default(),
                from: None,
                use_for: Default::default(),
                controller: None,
                withdrawable: false,
                retain: [("audio".to_string(), retain)].into(),
            },
        )]
        .into(),
        hold_release: BTreeMap::new(),
    };
    let rules = BucketRules {
        name: "RecordingBucket/it/b".into(),
        prefix: None,
        classify: vec![ClassifyRule {
            name: "audio".into(),
            prefix: Some("audio/".into()),
            glob: None,
            tags: BTreeMap::new(),
            kind: "audio".into(),
            purposes: vec!["documentation".into()],
            purposes_from_tag: None,
        }],
        recording_id: Some(RecordingIdSource::KeyPattern(
            regex::Regex::new(r"^audio/(?P<id>[^.]+)").expect("regex"),
        )),
        subject_tag: None,
        recorded_at: RecordedAtSource::Tag("recorded-at".into()),
        recorded_at_max_age: None,
        grace: IsoDuration::days(2),
        scan_interval: IsoDuration::days(1),
        verify_interval: IsoDuration::days(7),
        enforcement,
    };
    (policy, rules)
}

fn hold_on(key: &str) -> Hold {
    Hold {
        limitation_start: None,
        created_at: None,
        name: "it/complaint".into(),
        reason: HoldReason::Complaint,
        case: "IT-1".into(),
        select: HoldSelector {
            keys: [key.to_string()].into(),
            ..Default::default()
        },
        expires: None,
        review_by: None,
        released_at: None,
    }
}

/// A new plain bucket named after `label`.
async fn new_bucket(c: &aws_sdk_s3::Client, label: &str) -> String {
    let bucket = unique(label);
    c.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    bucket
}

async fn put(c: &aws_sdk_s3::Client, bucket: &str, key: &str, tags: &str) -> Option<String> {
    let mut req = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(b"recording"))
        // Needed where a default retention applies (AWS, moto).
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32);
    if !tags.is_empty() {
        req = req.tagging(tags);
    }
    req.send()
        .await
        .expect("put object")
        .version_id()
        .map(str::to_string)
}

async fn pass(s: &S3Store, p: &Policy, r: &BucketRules, holds: Vec<Hold>) -> PassReport {
    reconcile(
        s,
        p,
        r,
        holds,
        Utc::now(),
        PassConfig {
            page_size: 2,
            concurrency: 4,
            ..PassConfig::default()
        },
        &|_| {},
    )
    .await
    .expect("the pass runs")
}

/// Keys of recordings (gallring's own journal under `.gallring/` left out).
async fn keys(c: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
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

/// Versions of recordings (the journal's left out).
async fn recording_versions(c: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = c
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .expect("versions");
    out.versions()
        .iter()
        .filter_map(|v| v.key().map(str::to_string))
        .filter(|k| !k.starts_with(".gallring/"))
        .collect()
}

async fn tags(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> BTreeMap<String, String> {
    let t = c
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("tags");
    t.tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

#[tokio::test]
async fn lifecycle_really_expires_tagged_objects_and_spares_held_and_unclassified_ones() {
    let c = raw(Backend::Ceph).await;
    let bucket = new_bucket(&c, "it-lc").await;
    put(&c, &bucket, "audio/a.wav", "team=claims").await;
    put(&c, &bucket, "audio/b.wav", "").await;
    put(&c, &bucket, "audio/held.wav", "").await;
    put(&c, &bucket, "other/unclassified.bin", "").await;
    // P1D: lifecycle Days=1, which this RGW runs as 10 seconds.
    let (p, r) = setup(IsoDuration::days(1), Enforcement::Lifecycle);
    let s = store(
        Backend::Ceph,
        &bucket,
        Arc::new(Metrics::new().expect("metrics")),
    )
    .await;
    let report = pass(&s, &p, &r, vec![hold_on("audio/held.wav")]).await;
    assert_eq!(report.summary.held, 1);
    assert_eq!(report.summary.unclassified, 1);
    assert_eq!(
        tags(&c, &bucket, "audio/a.wav")
            .await
            .get("gallring.io/retention")
            .map(String::as_str),
        Some("expire-1d")
    );
    assert_eq!(
        tags(&c, &bucket, "audio/a.wav")
            .await
            .get("team")
            .map(String::as_str),
        Some("claims"),
        "foreign tag kept"
    );

    let started = Instant::now();
    loop {
        let left = keys(&c, &bucket).await;
        if !left.contains(&"audio/a.wav".to_string()) && !left.contains(&"audio/b.wav".to_string())
        {
            assert!(
                left.contains(&"audio/held.wav".to_string()),
                "held object survives: {left:?}"
            );
            assert!(
                left.contains(&"other/unclassified.bin".to_string()),
                "unclassified object survives: {left:?}"
            );
            break;
        }
        assert!(
            // RGW's one lifecycle worker walks every bucket with a configuration in turn.
            started.elapsed() < Duration::from_secs(300),
            "lifecycle did not expire the tagged objects: {left:?}"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // A few more lifecycle days: still nothing held or unclassified disappears.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let left = keys(&c, &bucket).await;
    assert_eq!(
        left,
        vec![
            "audio/held.wav".to_string(),
            "other/unclassified.bin".to_string()
        ]
    );
}

async fn observe_mode_leaves_the_bucket_exactly_as_it_was(b: Backend) {
    let c = raw(b).await;
    let bucket = new_bucket(&c, "it-observe").await;
    put(&c, &bucket, "audio/old.wav", "recorded-at=2020-01-01").await;
    put(&c, &bucket, "audio/new.wav", "team=claims").await;
    let snapshot = |c: aws_sdk_s3::Client, bucket: String| async move {
        let mut out = Vec::new();
        for k in keys(&c, &bucket).await {
            out.push((k.clone(), tags(&c, &bucket, &k).await));
        }
        let lc = c
            .get_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .send()
            .await
            .is_ok();
        (out, lc)
    };
    let before = snapshot(c.clone(), bucket.clone()).await;
    let (p, r) = setup(IsoDuration::months(12), Enforcement::Observe);
    let s = store(b, &bucket, Arc::new(Metrics::new().expect("metrics"))).await;
    let report = pass(&s, &p, &r, vec![]).await;
    assert_eq!(
        report.summary.overdue, 1,
        "the 2020 recording is reported overdue"
    );
    assert_eq!((report.tags_written, report.deleted), (0, 0));
    assert_eq!(snapshot(c.clone(), bucket.clone()).await, before);
}

async fn the_overdue_gauge_counts_an_object_made_overdue_behind_the_operators_back(b: Backend) {
    let c = raw(b).await;
    let bucket = new_bucket(&c, "it-overdue").await;
    put(&c, &bucket, "audio/x.wav", "").await;
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (p, r) = setup(IsoDuration::months(12), Enforcement::Lifecycle);
    let s = store(b, &bucket, metrics.clone()).await;
    let first = pass(&s, &p, &r, vec![]).await;
    metrics.record_pass("it", &bucket, &first, 0.1);
    assert_eq!(metrics.overdue("it", &bucket), 0);

    // Someone rewrites the recording time to three years ago, keeping the operator's tag.
    let mut t = tags(&c, &bucket, "audio/x.wav").await;
    t.insert(
        "recorded-at".into(),
        (Utc::now() - TimeDelta::days(3 * 365))
            .format("%Y-%m-%d")
            .to_string(),
    );
    let tag_set: Vec<Tag> = t
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("tag"))
        .collect();
    c.put_object_tagging()
        .bucket(&bucket)
        .key("audio/x.wav")
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(tag_set))
                .build()
                .expect("tagging"),
        )
        .send()
        .await
        .expect("tagged behind the operator's back");

    let second = pass(&s, &p, &r, vec![]).await;
    metrics.record_pass("it", &bucket, &second, 0.1);
    assert_eq!(
        metrics.overdue("it", &bucket),
        1,
        "Lifecycle mode deletes nothing: the breach shows"
    );
    assert!(metrics.render().contains(&format!(
        "gallring_overdue_objects{{bucket=\"{bucket}\",namespace=\"it\"}} 1"
    )));

    let (p, r) = setup(IsoDuration::months(12), Enforcement::Both);
    let third = pass(&s, &p, &r, vec![]).await;
    metrics.record_pass("it", &bucket, &third, 0.1);
    assert_eq!(third.deleted, 1);
    assert_eq!(metrics.overdue("it", &bucket), 0);
    assert!(keys(&c, &bucket).await.is_empty());
}

async fn on_an_object_lock_bucket_a_held_version_survives_and_is_deleted_after_release(b: Backend) {
    let c = raw(b).await;
    let bucket = unique("it-lock");
    c.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("lock bucket");
    let v_old = put(&c, &bucket, "audio/old.wav", "recorded-at=2020-01-01").await;
    put(&c, &bucket, "audio/other.wav", "recorded-at=2020-01-01").await;
    let (p, r) = setup(IsoDuration::months(12), Enforcement::Operator);
    let s = store(b, &bucket, Arc::new(Metrics::new().expect("metrics"))).await;

    let report = pass(&s, &p, &r, vec![hold_on("audio/old.wav")]).await;
    assert!(report.object_lock && report.versioned);
    assert_eq!(
        report.deleted, 1,
        "the unheld object past its deadline is deleted (every version)"
    );
    assert_eq!(report.summary.held, 1);
    let lh = c
        .get_object_legal_hold()
        .bucket(&bucket)
        .key("audio/old.wav")
        .set_version_id(v_old.clone())
        .send()
        .await
        .expect("legal hold readable");
    assert_eq!(
        lh.legal_hold().and_then(|l| l.status()),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    // S3 itself refuses to delete the held version.
    let direct = c
        .delete_object()
        .bucket(&bucket)
        .key("audio/old.wav")
        .set_version_id(v_old.clone())
        .send()
        .await;
    assert!(direct.is_err(), "Object Lock protects the held version");

    let mut released = hold_on("audio/old.wav");
    // Released two seconds ago: the pass decides by the earlier of its clock and the store's
    // (whose `Date` has whole seconds), so a release dated "now" takes effect a pass later.
    released.released_at = Some(Utc::now() - chrono::Duration::seconds(2));
    let report = pass(&s, &p, &r, vec![released]).await;
    assert_eq!(report.legal_holds_cleared, 1);
    assert_eq!(report.deleted, 1);
    let versions = recording_versions(&c, &bucket).await;
    assert!(versions.is_empty(), "no version remains: {versions:?}");
}

async fn a_versioned_bucket_is_deleted_version_by_version(b: Backend) {
    let c = raw(b).await;
    let bucket = new_bucket(&c, "it-versions").await;
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
    for _ in 0..3 {
        put(&c, &bucket, "audio/v.wav", "recorded-at=2020-01-01").await;
    }
    let (p, r) = setup(IsoDuration::months(12), Enforcement::Operator);
    let s = store(b, &bucket, Arc::new(Metrics::new().expect("metrics"))).await;
    let report = pass(&s, &p, &r, vec![]).await;
    assert_eq!(report.deleted, 3);
    assert_eq!(report.summary.objects, 0);
    assert!(recording_versions(&c, &bucket).await.is_empty());
}

async fn a_missing_bucket_is_a_clear_error_and_nothing_else(b: Backend) {
    let (p, r) = setup(IsoDuration::months(12), Enforcement::Both);
    let s = store(
        b,
        "gallring-no-such-bucket",
        Arc::new(Metrics::new().expect("metrics")),
    )
    .await;
    let err = reconcile(
        &s,
        &p,
        &r,
        vec![],
        Utc::now(),
        PassConfig::default(),
        &|_| {},
    )
    .await
    .expect_err("missing bucket");
    assert_eq!(
        err.category(),
        gallring::store::ErrorCategory::NoSuchBucket.as_str()
    );
    assert!(err.to_string().contains("gallring-no-such-bucket"), "{err}");
}

/// README "Creation time does not move": with `recordedAt` the creation time, the deadline
/// counts from the first `LastModified` gallring saw (journaled as `objectsFirstSeen` before
/// its first tag write), not from the one Ceph RGW moves to when gallring writes the tags.
/// Audio kept 20 s: pass 1, 8 s after the upload, tags it (RGW moves `LastModified` by ~8 s);
/// pass 2, 22 s after the upload, deletes it, although by the moved time it would still have
/// ~6 s to go. Both passes decide with the real clock (a pass uses the earlier of `now` and
/// the store's `Date`).
/// On Ceph RGW, where gallring's tag write moves `LastModified`, a hold scoped by recording
/// time (recorded before a moment between the upload and that write) holds the audio it
/// selects and, linked by recording id, its transcript: both are dated by when gallring first
/// saw them, not by the moved time. The tags are read back with a client of the test's own.
#[tokio::test]
async fn a_hold_scoped_by_recording_time_holds_the_linked_transcript_after_tag_writes_moved_it() {
    let c = raw(Backend::Ceph).await;
    let bucket = new_bucket(&c, "it-scoped").await;
    let (mut p, mut r) = setup(IsoDuration::days(365), Enforcement::Lifecycle);
    r.recorded_at = RecordedAtSource::LastModified;
    r.classify.push(ClassifyRule {
        name: "transcript".into(),
        prefix: Some("text/".into()),
        glob: None,
        tags: BTreeMap::new(),
        kind: "transcript".into(),
        purposes: vec!["documentation".into()],
        purposes_from_tag: None,
    });
    r.recording_id = Some(RecordingIdSource::KeyPattern(
        regex::Regex::new(r"^[a-z]+/(?P<id>[^.]+)").expect("regex"),
    ));
    for purpose in p.purposes.values_mut() {
        purpose
            .retain
            .insert("transcript".into(), IsoDuration::days(365));
    }
    put(&c, &bucket, "audio/r1.wav", "").await;
    put(&c, &bucket, "text/r1.json", "").await;
    let uploaded = Utc::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = store(
        Backend::Ceph,
        &bucket,
        Arc::new(Metrics::new().expect("metrics")),
    )
    .await;
    let first = pass(&s, &p, &r, vec![]).await;
    assert_eq!(first.tags_written, 2, "{:?}", first.summary);
    let listed = c
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("audio/")
        .send()
        .await
        .expect("list");
    let moved = listed.contents()[0].last_modified().expect("LastModified");
    let moved = chrono::DateTime::from_timestamp(moved.secs(), 0).expect("in range");
    let before = uploaded + TimeDelta::seconds(1);
    assert!(
        moved > before,
        "the premise: the tag write moved LastModified past {before} (listed {moved})"
    );

    let mut hold = hold_on("audio/r1.wav");
    hold.select = HoldSelector {
        prefix: Some("audio/".into()),
        recorded_before: Some(before),
        ..Default::default()
    };
    let second = pass(&s, &p, &r, vec![hold]).await;
    assert_eq!(second.summary.held, 2, "{:?}", second.summary);
    for key in ["audio/r1.wav", "text/r1.json"] {
        assert_eq!(
            tags(&c, &bucket, key)
                .await
                .get("gallring.io/retention")
                .map(String::as_str),
            Some("held"),
            "{key}"
        );
    }
}

#[tokio::test]
async fn deadlines_count_from_the_first_creation_time_even_when_tag_writes_move_it() {
    let c = raw(Backend::Ceph).await;
    let bucket = new_bucket(&c, "it-firstseen").await;
    let retain = IsoDuration {
        seconds: 20,
        ..IsoDuration::default()
    };
    let (p, mut r) = setup(retain, Enforcement::Operator);
    r.recorded_at = RecordedAtSource::LastModified;
    let key = "audio/moved.wav";
    put(&c, &bucket, key, "team=claims").await;
    let listed = |c: aws_sdk_s3::Client, bucket: String| async move {
        let out = c
            .list_objects_v2()
            .bucket(&bucket)
            .prefix("audio/")
            .send()
            .await
            .expect("list");
        let o = out
            .contents()
            .first()
            .cloned()
            .expect("the recording is listed");
        let t = o.last_modified().expect("LastModified");
        chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).expect("in range")
    };
    let created = listed(c.clone(), bucket.clone()).await;
    let wait_until = |t: chrono::DateTime<Utc>| async move {
        if let Ok(d) = (t - Utc::now()).to_std() {
            tokio::time::sleep(d).await;
        }
    };
    let config = || PassConfig {
        max_clock_skew: TimeDelta::days(1),
        ..PassConfig::default()
    };
    let s = store(
        Backend::Ceph,
        &bucket,
        Arc::new(Metrics::new().expect("metrics")),
    )
    .await;

    wait_until(created + TimeDelta::seconds(8)).await;
    let first = reconcile(&s, &p, &r, vec![], Utc::now(), config(), &|_| {})
        .await
        .expect("pass 1");
    assert_eq!(
        (first.deleted, first.tags_written),
        (0, 1),
        "8 s old, kept 20 s: tagged, not deleted"
    );
    let moved = listed(c.clone(), bucket.clone()).await;
    assert!(
        moved >= created + TimeDelta::seconds(7),
        "the premise: Ceph RGW moves LastModified on a tag write (created {created}, now listed {moved})"
    );

    wait_until(created + TimeDelta::seconds(22)).await;
    let now = Utc::now();
    assert!(
        now < moved + TimeDelta::seconds(20),
        "by the moved LastModified ({moved}) the recording is not due yet at {now}"
    );
    let second = reconcile(&s, &p, &r, vec![], now, config(), &|_| {})
        .await
        .expect("pass 2");
    assert!(
        second.last_modified_moved >= 1,
        "the pass counts the moved LastModified: {}",
        second.last_modified_moved
    );
    assert_eq!(
        second.deleted, 1,
        "due 20 s after its first LastModified ({created}); pass at {now}: {:?}",
        second.summary
    );
    assert!(keys(&c, &bucket).await.is_empty(), "the recording is gone");
}

async fn with_an_index_a_steady_pass_reads_no_object_and_a_new_host_starts_from_the_snapshot(
    b: Backend,
) {
    let c = raw(b).await;
    let bucket = new_bucket(&c, "it-index").await;
    let recent = (Utc::now() - TimeDelta::days(10))
        .format("%Y-%m-%d")
        .to_string();
    for i in 0..6 {
        put(
            &c,
            &bucket,
            &format!("audio/a{i}.wav"),
            &format!("recorded-at={recent}"),
        )
        .await;
    }
    put(&c, &bucket, "audio/old.wav", "recorded-at=2020-01-01").await;
    let (p, r) = setup(IsoDuration::months(12), Enforcement::Operator);
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let s = store(b, &bucket, metrics.clone()).await;
    let dir = std::env::temp_dir().join(unique("gallring-index"));
    let first = gallring::state::index::Indexes::new(Some(dir.join("first")));
    let with = |ix: &gallring::state::index::Indexes| PassConfig {
        page_size: 2,
        concurrency: 4,
        index: gallring::reconcile::IndexConfig::for_bucket(ix, "it/b", &r),
        ..PassConfig::default()
    };
    let run = |config: PassConfig| {
        let (s, p, r) = (&s, &p, &r);
        async move {
            // Boxed, as the hosts do: the pass is a large future in a debug build.
            Box::pin(reconcile(s, p, r, vec![], Utc::now(), config, &|_| {}))
                .await
                .expect("the pass runs")
        }
    };
    let reads = || {
        let text = metrics.render();
        ["GetObjectTagging", "HeadObject"]
            .iter()
            .map(|op| {
                text.lines()
                    .filter(|l| l.starts_with("gallring_s3_requests_total") && l.contains(op))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>()
            })
            .sum::<f64>()
    };

    let cold = run(with(&first)).await;
    assert_eq!(
        (cold.index.changed, cold.deleted),
        (7, 1),
        "{:?}",
        cold.index
    );
    assert!(cold.index.snapshot_entries.is_some(), "{:?}", cold.index);

    let before = reads();
    let steady = run(with(&first)).await;
    assert_eq!(steady.index.hits, 6, "{:?}", steady.index);
    assert_eq!(
        reads() - before,
        1.0,
        "only the snapshot's HEAD: {:?}",
        steady.index
    );
    assert_eq!(steady.tags_written, 0);

    // Replaced behind gallring's back with a recording from 2020: read and deleted.
    c.put_object()
        .bucket(&bucket)
        .key("audio/a0.wav")
        .body(ByteStream::from_static(b"another recording"))
        .tagging("recorded-at=2020-01-01")
        .send()
        .await
        .expect("replace");
    let changed = run(with(&first)).await;
    assert_eq!(
        (changed.index.changed, changed.index.hits, changed.deleted),
        (1, 5, 1),
        "{:?}",
        changed.index
    );

    // A new host with an empty disk: warm from the (older) snapshot, same decisions as a
    // pass without any index.
    let second = gallring::state::index::Indexes::new(Some(dir.join("second")));
    let warm = run(with(&second)).await;
    assert!(warm.index.restored >= 6, "{:?}", warm.index);
    assert_eq!(warm.index.hits, 5, "{:?}", warm.index);
    let none = run(PassConfig {
        page_size: 2,
        concurrency: 4,
        ..PassConfig::default()
    })
    .await;
    assert_eq!(warm.summary, none.summary);
    assert_eq!(
        keys(&c, &bucket)
            .await
            .iter()
            .filter(|k| k.starts_with("audio/"))
            .count(),
        5
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An Object Lock bucket whose default retention is GOVERNANCE for a day: every new version
/// is retained, so S3 refuses to delete it by version id.
async fn governance_bucket(c: &aws_sdk_s3::Client, label: &str) -> String {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    let bucket = unique(label);
    c.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("lock bucket");
    c.put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "default retention: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        });
    bucket
}

/// Issue 13, finding 1: on an Object Lock bucket with default GOVERNANCE retention,
/// DeleteObjects answers AccessDenied for the version, and moto (like AWS) leaves
/// `<VersionId>` out of the error entry. The deletion is a failure: not counted as deleted,
/// not journaled as confirmed, the object stays overdue, and the version stays.
async fn a_delete_refused_by_default_governance_retention_is_a_failure_not_a_deletion(b: Backend) {
    let c = raw(b).await;
    let bucket = governance_bucket(&c, "it-governance").await;
    let v = put(&c, &bucket, "audio/old.wav", "recorded-at=2020-01-01").await;
    assert!(v.is_some(), "an Object Lock bucket is versioned");
    let (p, r) = setup(IsoDuration::months(12), Enforcement::Operator);
    let s = store(b, &bucket, Arc::new(Metrics::new().expect("metrics"))).await;
    let report = pass(&s, &p, &r, vec![]).await;
    assert_eq!(
        (report.deleted, report.delete_failures),
        (0, 1),
        "the refused version is a failure: {:?}",
        report.sample_errors
    );
    assert_eq!(report.summary.overdue, 1, "it is still overdue");
    assert!(
        report
            .sample_errors
            .iter()
            .any(|e| e.contains("audio/old.wav") && e.contains("AccessDenied")),
        "{:?}",
        report.sample_errors
    );
    assert_eq!(
        recording_versions(&c, &bucket).await,
        ["audio/old.wav"],
        "the version stays"
    );
    let journal = journal_text(&c, &bucket).await;
    assert!(
        journal.contains("deletionsIntended"),
        "the deletion was intended:\n{journal}"
    );
    assert!(
        !journal.contains("deletionsConfirmed"),
        "no deletion is journaled as confirmed:\n{journal}"
    );
}

/// Every journal segment of a bucket, concatenated.
async fn journal_text(c: &aws_sdk_s3::Client, bucket: &str) -> String {
    let listed = c
        .list_objects_v2()
        .bucket(bucket)
        .prefix(".gallring/journal/")
        .send()
        .await
        .expect("list the journal");
    let mut out = String::new();
    for key in listed.contents().iter().filter_map(|o| o.key()) {
        let body = c
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("a segment")
            .body
            .collect()
            .await
            .expect("its body");
        out.push_str(&String::from_utf8_lossy(&body.into_bytes()));
    }
    out
}

/// Issue 13, finding 1: `gallring run --once` (the real binary, on the store that refuses)
/// exits non-zero when a deletion fails, and says which.
async fn gallring_run_once_exits_non_zero_when_a_deletion_fails(b: Backend) {
    let c = raw(b).await;
    let bucket = governance_bucket(&c, "it-runonce").await;
    put(&c, &bucket, "audio/old.wav", "recorded-at=2020-01-01").await;
    let dir = std::env::temp_dir().join(unique("gallring-runonce"));
    std::fs::create_dir_all(&dir).expect("manifest dir");
    std::fs::write(
        dir.join("manifests.yaml"),
        RUN_ONCE_MANIFESTS
            .replace("BUCKET", &bucket)
            .replace("ENDPOINT", &b.endpoint()),
    )
    .expect("manifests");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gallring"));
    cmd.args(["run", "--once", "--metrics-addr", "none", "--manifests"])
        .arg(&dir)
        .env("RUST_LOG", "info,aws_config=warn,aws_smithy_runtime=warn")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .stdin(std::process::Stdio::null());
    if let Some(creds) = b.credentials() {
        cmd.env("AWS_ACCESS_KEY_ID", creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", creds.secret_access_key);
    }
    let out = cmd.output().expect("gallring runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "exit {:?}:\n{log}", out.status);
    assert!(
        log.contains("AccessDenied") && log.contains("1 failed"),
        "the log names the failed deletion:\n{log}"
    );
    assert_eq!(
        recording_versions(&c, &bucket).await,
        ["audio/old.wav"],
        "the version stays"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Audio kept a year, deleted by gallring itself.
const RUN_ONCE_MANIFESTS: &str = "apiVersion: gallring.io/v1alpha1
kind: RetentionPolicy
metadata:
  name: p
  namespace: it
spec:
  controller:
    legalName: Controller A/S
  purposes:
    - name: documentation
      legalBasis:
        article6: legitimateInterests
      retain:
        audio: P1Y
---
apiVersion: gallring.io/v1alpha1
kind: RecordingBucket
metadata:
  name: b
  namespace: it
spec:
  s3:
    bucket: BUCKET
    endpoint: ENDPOINT
    forcePathStyle: true
  policyRef:
    name: p
  classify:
    - name: audio
      match:
        glob: \"audio/*\"
      kind: audio
      purposes: [documentation]
  recordedAt:
    tag: recorded-at
  enforcement: Operator
";

/// Issue 13, finding 4: the owner deleted a recording without a version id (a delete marker
/// now hides its version); in `Operator` mode gallring deletes the version at its deadline and
/// then the marker it left alone (no lifecycle rule does in that mode). A marker over a
/// version gallring keeps stays: removing it would bring the version back.
async fn in_operator_mode_a_delete_marker_left_over_deleted_versions_is_removed(b: Backend) {
    let c = raw(b).await;
    let bucket = new_bucket(&c, "it-markers").await;
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
    put(&c, &bucket, "audio/old.wav", "recorded-at=2020-01-01").await;
    let recent = (Utc::now() - TimeDelta::days(10))
        .format("%Y-%m-%d")
        .to_string();
    put(
        &c,
        &bucket,
        "audio/new.wav",
        &format!("recorded-at={recent}"),
    )
    .await;
    for key in ["audio/old.wav", "audio/new.wav"] {
        c.delete_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .expect("a delete marker");
    }
    let markers = |c: aws_sdk_s3::Client, bucket: String| async move {
        let out = c
            .list_object_versions()
            .bucket(&bucket)
            .prefix("audio/")
            .send()
            .await
            .expect("versions");
        out.delete_markers()
            .iter()
            .filter_map(|m| m.key().map(str::to_string))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        markers(c.clone(), bucket.clone()).await,
        ["audio/new.wav", "audio/old.wav"]
    );

    let (p, r) = setup(IsoDuration::months(12), Enforcement::Operator);
    let s = store(b, &bucket, Arc::new(Metrics::new().expect("metrics"))).await;
    let report = pass(&s, &p, &r, vec![]).await;
    assert_eq!(
        (report.deleted, report.object_errors),
        (1, 0),
        "{:?}",
        report.sample_errors
    );
    assert_eq!(
        recording_versions(&c, &bucket).await,
        ["audio/new.wav"],
        "the old version is deleted, the new one kept"
    );
    assert_eq!(
        markers(c.clone(), bucket.clone()).await,
        ["audio/new.wav"],
        "the orphaned marker is gone, the one over a kept version stays"
    );
}
