//! SubjectRequests (issue 12) on the real API server and store: one request of each type
//! against one bucket, read back with the admin client and from S3 directly; an invalid one the
//! API server's CEL rules cannot catch; and an open one past its due date, flagged by its
//! PastDue condition and `gallring_subject_requests_past_due`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Months, SubsecRound, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::fixtures::hold;
use crate::harness::{
    E2e, SECRET, Setup, condition, conditions_text, figure, parse_time, run, samples, wait_for,
};

/// The policy: audio is kept a year for documentation (legitimate interests, not withdrawable)
/// and two for quality (consent, withdrawable); transcripts two years for quality and three
/// for training (legitimate interests, opt-out: withdrawable). No `holdRelease` for
/// `Restriction`: a lifted restriction keeps nothing extra.
fn request_policy() -> Value {
    json!({
        "kind": "RetentionPolicy",
        "metadata": {"name": "calls"},
        "spec": {
            "controller": {"legalName": "E2E Forsikring A/S"},
            "purposes": [
                {
                    "name": "documentation",
                    "legalBasis": {"article6": "legitimateInterests"},
                    "retain": {"audio": "P1Y"}
                },
                {
                    "name": "quality",
                    "legalBasis": {"article6": "consent"},
                    "withdrawable": true,
                    "retain": {"audio": "P2Y", "transcript": "P2Y"}
                },
                {
                    "name": "training",
                    "legalBasis": {"article6": "legitimateInterests"},
                    "withdrawable": true,
                    "retain": {"transcript": "P3Y"}
                }
            ],
            "holdRelease": [{"reason": "Complaint", "keep": "P3Y"}]
        }
    })
}

/// A RecordingBucket over `s3_bucket`: calls as `calls/<id>/audio.wav` (tagged with the
/// subject) and `calls/<id>/transcript.json` (linked by the recording id), recorded at the
/// `call-start` metadata.
fn request_bucket(name: &str, s3_bucket: &str, endpoint: &str, enforcement: &str) -> Value {
    json!({
        "kind": "RecordingBucket",
        "metadata": {"name": name},
        "spec": {
            "s3": {
                "bucket": s3_bucket,
                "endpoint": endpoint,
                "region": "us-east-1",
                "forcePathStyle": true,
                "credentials": {"secretRef": {"name": SECRET}}
            },
            "policyRef": {"name": "calls"},
            "classify": [
                {"match": {"glob": "calls/**/audio.*"}, "kind": "audio", "purposes": ["documentation", "quality"]},
                {"match": {"glob": "calls/**/transcript.*"}, "kind": "transcript", "purposes": ["quality", "training"]}
            ],
            "recordingId": {"keyPattern": "^calls/(?P<id>[^/]+)/"},
            "subject": {"tag": "subject"},
            "recordedAt": {"metadata": "call-start"},
            "enforcement": enforcement,
            "scanInterval": "PT15S"
        }
    })
}

/// A SubjectRequest; `select` has `subject` and/or `recordingIds` (and `purposes`).
fn request(name: &str, bucket: &str, type_: &str, select: Value, received: DateTime<Utc>) -> Value {
    let mut spec = json!({
        "bucketRef": {"name": bucket},
        "type": type_,
        "receivedAt": received.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "reference": format!("DSR-E2E-{name}"),
        "owner": "privacy-team"
    });
    for (k, v) in select.as_object().expect("an object") {
        spec[k] = v.clone();
    }
    json!({"kind": "SubjectRequest", "metadata": {"name": name}, "spec": spec})
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Puts one call's audio (tagged with its subject) and transcript into `s3_bucket`.
async fn put_call(e: &E2e, s3_bucket: &str, id: &str, subject: &str, recorded: DateTime<Utc>) {
    let start = rfc3339(recorded);
    for (file, tags) in [
        ("audio.wav", format!("subject={subject}&source=e2e")),
        ("transcript.json", "source=e2e".to_string()),
    ] {
        let key = format!("calls/{id}/{file}");
        e.s3.put_object()
            .bucket(s3_bucket)
            .key(&key)
            .body(ByteStream::from(b"recording".to_vec()))
            .tagging(tags)
            .metadata("call-start", &start)
            .send()
            .await
            .unwrap_or_else(|err| panic!("put {s3_bucket}/{key}: {err:?}"));
    }
}

fn expire_days(tag: Option<&str>) -> Option<u32> {
    tag?.strip_prefix("expire-")?
        .strip_suffix('d')?
        .parse()
        .ok()
}

fn phase(obj: &Value) -> Option<&str> {
    obj["status"]["phase"].as_str()
}

/// Waits until the SubjectRequest has `want` as its phase; returns it.
async fn wait_phase(e: &E2e, name: &str, want: &str, timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        let obj = e.get("SubjectRequest", name).await;
        if let Some(o) = &obj
            && phase(o) == Some(want)
        {
            return obj.expect("checked");
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for SubjectRequest {name} to be {want}; it has: {}",
            obj.as_ref()
                .map_or("nothing (no such object)".into(), |o| o["status"]
                    .to_string())
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `status.dueBy` is `receivedAt` plus one calendar month (the policy's zone is UTC).
fn assert_due(obj: &Value, received: DateTime<Utc>) {
    let due = obj["status"]["dueBy"]
        .as_str()
        .and_then(parse_time)
        .unwrap_or_else(|| panic!("no status.dueBy: {}", obj["status"]));
    let want = received
        .checked_add_months(Months::new(1))
        .expect("a month later");
    assert_eq!(
        due, want,
        "{}: dueBy must be receivedAt {received} + 1 month",
        obj["metadata"]["name"]
    );
}

fn kind_count(obj: &Value, kind: &str, field: &str) -> Option<u64> {
    obj["status"]["kinds"][kind][field].as_u64()
}

async fn metric(e: &mut E2e, name: &str, bucket: &str, type_: &str) -> Option<f64> {
    let ns = e.ns.clone();
    let text = e.op("a").metrics_text().await?;
    samples(
        &text,
        name,
        &[("namespace", &ns), ("bucket", bucket), ("type", type_)],
    )
    .first()
    .map(|s| s.1)
}

/// What is wrong with an Erasure of subject e (e-1 free, e-2 under `hold`) as read now from
/// its status and from S3; empty when it is carried out and answered as it must be.
async fn erasure_problems(
    e: &E2e,
    obj: &Value,
    received: DateTime<Utc>,
    hold: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let status = &obj["status"];
    for k in ["calls/e-1/audio.wav", "calls/e-1/transcript.json"] {
        if e.tags(k).await.is_some() {
            out.push(format!("{k} is still in S3 (erased, no hold)"));
        }
    }
    for k in ["calls/e-2/audio.wav", "calls/e-2/transcript.json"] {
        let t = e.retention(k).await;
        if t.as_deref() != Some("held") {
            out.push(format!(
                "{k}: the LegalHold keeps it, but its retention tag is {t:?}"
            ));
        }
    }
    if phase(obj) != Some("PartiallyCompleted") {
        out.push(format!("phase {:?}, not PartiallyCompleted", phase(obj)));
    }
    let ready = condition(obj, "Ready");
    if !ready
        .as_ref()
        .is_some_and(|c| c.is_true() && c.reason == "PartiallyCompleted")
    {
        out.push(format!("Ready: {}", conditions_text(obj)));
    }
    let due = status["dueBy"].as_str().and_then(parse_time);
    let want_due = received.checked_add_months(Months::new(1));
    if due != want_due {
        out.push(format!(
            "dueBy {due:?}, not receivedAt + 1 month {want_due:?}"
        ));
    }
    if status["completedAt"].as_str().is_none() {
        out.push("no completedAt".into());
    }
    let exceptions = status["exceptions"].as_array().cloned().unwrap_or_default();
    let excepted: BTreeSet<&str> = exceptions
        .iter()
        .filter_map(|x| x["key"].as_str())
        .collect();
    let want: BTreeSet<&str> = ["calls/e-2/audio.wav", "calls/e-2/transcript.json"].into();
    if excepted != want {
        out.push(format!(
            "exceptions name {excepted:?}, not e-2's two objects"
        ));
    }
    for x in &exceptions {
        if !x["keptBy"].as_str().is_some_and(|k| k.contains(hold)) {
            out.push(format!("exception {x} does not name the hold {hold}"));
        }
    }
    if status["exceptionsTotal"].as_u64() != Some(2) {
        out.push(format!("exceptionsTotal {}", status["exceptionsTotal"]));
    }
    for kind in ["audio", "transcript"] {
        let counts = (
            kind_count(obj, kind, "matched"),
            kind_count(obj, kind, "deleted"),
            kind_count(obj, kind, "kept"),
        );
        // Still present: e-2's; deleted: e-1's; kept: e-2's.
        if counts != (Some(1), Some(1), Some(1)) {
            out.push(format!(
                "kinds.{kind} (matched, deleted, kept) = {counts:?}, want 1, 1, 1: {}",
                status["kinds"]
            ));
        }
    }
    if status["matched"].as_u64() != Some(2) {
        out.push(format!(
            "matched {} (the selected objects still present are e-2's two)",
            status["matched"]
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_requests_of_every_type_are_carried_out_on_the_store_and_answered_in_status() {
    let mut e = E2e::new(test_name!(), "sreq", Setup::default()).await;
    // Problems that need not stop the scenario (a first answer the product puts right later, a
    // request that never reaches an object): collected, and they fail the test at the end.
    let mut problems: Vec<String> = Vec::new();
    let now = Utc::now().trunc_subsecs(0);
    let four_years_ago = now - TimeDelta::days(4 * 365 + 1);
    let bucket_name = e.bucket.clone();
    // Erasure: subject e, e-2 under a LegalHold. Withdrawal: subject w. Objection: call o-1.
    // Access: subject a (two calls). Restriction: call r-1, past every deadline, as x-1 (no
    // request) is. Nothing asks anything of c-1.
    for (id, subject, recorded) in [
        ("e-1", "subj-e", now),
        ("e-2", "subj-e", now),
        ("w-1", "subj-w", now),
        ("o-1", "subj-o", now),
        ("a-1", "subj-a", now - TimeDelta::days(30)),
        ("a-2", "subj-a", now),
        ("r-1", "subj-r", four_years_ago),
        ("x-1", "subj-x", four_years_ago),
        ("c-1", "subj-c", now),
    ] {
        put_call(&e, &bucket_name, id, subject, recorded).await;
    }
    let keys_of = |id: &str| {
        [
            format!("calls/{id}/audio.wav"),
            format!("calls/{id}/transcript.json"),
        ]
    };
    // A second store bucket, watched under Observe: an erasure there cannot be carried out.
    let archive_s3 = format!("{}-obs", e.bucket);
    e.s3.create_bucket()
        .bucket(&archive_s3)
        .send()
        .await
        .unwrap_or_else(|err| panic!("creating S3 bucket {archive_s3}: {err:?}"));
    put_call(&e, &archive_s3, "p-1", "subj-p", now - TimeDelta::days(100)).await;

    e.apply(request_policy()).await;
    let endpoint = e.s3proxy.endpoint();
    e.apply(request_bucket("calls", &bucket_name, &endpoint, "Both"))
        .await;
    e.apply(request_bucket("archive", &archive_s3, &endpoint, "Observe"))
        .await;
    // In place before the first pass: the hold on e-2, the restriction on r-1, a withdrawal
    // naming a purpose that is not withdrawable (CEL cannot know the policy), and an erasure
    // received 40 days ago on the Observe bucket.
    e.apply(hold(
        "complaint-e",
        "calls",
        json!({"recordingIds": ["e-2"]}),
    ))
    .await;
    let restrict_received = now - TimeDelta::hours(1);
    e.apply(request(
        "restrict",
        "calls",
        "Restriction",
        json!({"recordingIds": ["r-1"]}),
        restrict_received,
    ))
    .await;
    e.apply(request(
        "invalid",
        "calls",
        "Withdrawal",
        json!({"subject": "subj-w", "purposes": ["documentation"]}),
        now,
    ))
    .await;
    let overdue_received = now - TimeDelta::days(40);
    e.apply(request(
        "overdue",
        "archive",
        "Erasure",
        json!({"recordingIds": ["p-1"]}),
        overdue_received,
    ))
    .await;
    // What CEL does catch is refused by the API server.
    let refused = e
        .try_apply(request("no-selection", "calls", "Erasure", json!({}), now))
        .await
        .expect_err("a request selecting nothing is refused");
    assert!(refused.contains("set subject or recordingIds"), "{refused}");

    e.spawn("a", &[]);
    e.wait_ready("calls", Duration::from_secs(90)).await;
    e.wait_ready("archive", Duration::from_secs(90)).await;

    // ---- Restriction: r-1 is past every deadline, yet held; x-1, just as old, is deleted.
    let restrict = wait_phase(&e, "restrict", "Completed", Duration::from_secs(60)).await;
    println!("restrict: {}", restrict["status"]);
    assert_eq!(
        restrict["status"]["matched"].as_u64(),
        Some(2),
        "{}",
        restrict["status"]
    );
    assert_due(&restrict, restrict_received);
    for k in keys_of("r-1") {
        assert_eq!(
            e.retention(&k).await.as_deref(),
            Some("held"),
            "{k}: under the restriction"
        );
    }
    for k in keys_of("x-1") {
        wait_for(
            &format!("{k} deleted (past its deadline, no restriction)"),
            Duration::from_secs(60),
            || async { e.tags(&k).await.is_none().then_some(()) },
        )
        .await;
    }

    // ---- Invalid: a purpose the policy does not let a withdrawal end.
    let invalid = e
        .wait_condition(
            "SubjectRequest",
            "invalid",
            "Ready",
            Duration::from_secs(60),
            |c| c.reason == "InvalidSpec",
        )
        .await;
    let ready = condition(&invalid, "Ready").expect("Ready");
    assert_eq!(phase(&invalid), Some("Failed"), "{}", invalid["status"]);
    assert_eq!(ready.status, "False", "{}", conditions_text(&invalid));
    assert!(
        ready.message.contains("spec.purposes[0]") && ready.message.contains("documentation"),
        "the Ready message names the field: {}",
        ready.message
    );

    // ---- Past due: the erasure on the Observe bucket cannot be carried out and stays open.
    let overdue = e
        .wait_condition(
            "SubjectRequest",
            "overdue",
            "PastDue",
            Duration::from_secs(60),
            |c| c.is_true(),
        )
        .await;
    println!("overdue: {}", overdue["status"]);
    assert_eq!(phase(&overdue), Some("Failed"), "{}", overdue["status"]);
    assert_eq!(
        condition(&overdue, "Ready").map(|c| c.reason),
        Some("EnforcementObserve".to_string()),
        "{}",
        conditions_text(&overdue)
    );
    assert_due(&overdue, overdue_received);
    for k in keys_of("p-1") {
        let there = e.s3.head_object().bucket(&archive_s3).key(&k).send().await;
        assert!(there.is_ok(), "{archive_s3}/{k}: Observe deletes nothing");
    }
    let started = Instant::now();
    let past_due = loop {
        let v = metric(
            &mut e,
            "gallring_subject_requests_past_due",
            "archive",
            "Erasure",
        )
        .await;
        if v.is_some_and(|v| v > 0.0) || started.elapsed() > Duration::from_secs(30) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        past_due,
        Some(1.0),
        "gallring_subject_requests_past_due{{bucket=archive,type=Erasure}}"
    );
    let oldest = metric(
        &mut e,
        "gallring_subject_request_oldest_open_age_seconds",
        "archive",
        "Erasure",
    )
    .await;
    assert!(
        oldest.is_some_and(|s| s >= 40.0 * 86_400.0),
        "oldest open age: {oldest:?}"
    );

    // ---- Before the other requests: the retention tags the withdrawal and objection move.
    let w_audio = "calls/w-1/audio.wav";
    let o_transcript = "calls/o-1/transcript.json";
    let w_audio_before = expire_days(e.retention(w_audio).await.as_deref());
    let o_transcript_before = expire_days(e.retention(o_transcript).await.as_deref());
    assert!(
        matches!(w_audio_before, Some(730 | 731)),
        "{w_audio}: quality keeps it two years: {w_audio_before:?}"
    );
    assert!(
        matches!(o_transcript_before, Some(1095 | 1096)),
        "{o_transcript}: training keeps it three years: {o_transcript_before:?}"
    );

    // ---- Erasure, withdrawal, objection and access, filed now.
    // Not before the calls' `call-start` (`now`): a request about a subject covers only the
    // calls recorded up to its receivedAt, and this point can come within the same second as
    // `now` (one second earlier, as this once was, left the erasure nothing to match).
    let received = Utc::now().trunc_subsecs(0).max(now);
    let erase_history = e.watch("SubjectRequest", "erase");
    let filed = Instant::now();
    e.apply(request(
        "erase",
        "calls",
        "Erasure",
        json!({"subject": "subj-e"}),
        received,
    ))
    .await;
    e.apply(request(
        "withdraw",
        "calls",
        "Withdrawal",
        json!({"subject": "subj-w"}),
        received,
    ))
    .await;
    e.apply(request(
        "object",
        "calls",
        "Objection",
        json!({"recordingIds": ["o-1"], "purposes": ["training"]}),
        received,
    ))
    .await;
    e.apply(request(
        "access",
        "calls",
        "Access",
        json!({"subject": "subj-a"}),
        received,
    ))
    .await;

    // Erasure: e-1 is gone from S3, e-2 stays under the hold, named as the exception; checked
    // on the first answer (a problem there is collected and fails the test at the end, so the
    // rest still runs) and then as it must stay.
    let erase = wait_phase(&e, "erase", "PartiallyCompleted", Duration::from_secs(60)).await;
    figure(
        "SubjectRequest Erasure filed to PartiallyCompleted (s)",
        format!("{:.1}", filed.elapsed().as_secs_f64()),
    );
    println!("erase, first answer: {}", erase["status"]);
    let hold_name = format!("{}/complaint-e", e.ns);
    for p in erasure_problems(&e, &erase, received, &hold_name).await {
        problems.push(format!(
            "Erasure `erase` when it first read PartiallyCompleted: {p}"
        ));
    }
    let started = Instant::now();
    let erase = loop {
        let o = e.get("SubjectRequest", "erase").await.expect("erase");
        let problems = erasure_problems(&e, &o, received, &hold_name).await;
        if problems.is_empty() {
            break o;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "60 s after its first answer, the erasure is still not carried out as it must be:\n{}\nstatus: {}",
            problems.join("\n"),
            o["status"]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("erase: {}", erase["status"]);

    // Withdrawal of every withdrawable purpose: the transcript (quality, training) is deleted;
    // the audio's deadline moves from quality's two years to documentation's one.
    let withdraw = wait_phase(&e, "withdraw", "Completed", Duration::from_secs(60)).await;
    println!("withdraw: {}", withdraw["status"]);
    assert_due(&withdraw, received);
    if kind_count(&withdraw, "transcript", "deleted") != Some(1)
        || e.tags("calls/w-1/transcript.json").await.is_some()
    {
        problems.push(format!(
            "Withdrawal `withdraw` (subject subj-w) read Completed while w-1's transcript, which \
             only withdrawable purposes keep, was not deleted: {}",
            withdraw["status"]
        ));
    }
    let started = Instant::now();
    while e.tags("calls/w-1/transcript.json").await.is_some() {
        if started.elapsed() > Duration::from_secs(45) {
            problems.push(
                "calls/w-1/transcript.json is still in S3 45 s (three passes) after the \
                 withdrawal of every withdrawable purpose of subject subj-w was answered"
                    .into(),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let w_audio_after = wait_for(
        "the withdrawn audio re-tagged for one year",
        Duration::from_secs(30),
        || async {
            let d = expire_days(e.retention(w_audio).await.as_deref());
            matches!(d, Some(365 | 366)).then_some(d)
        },
    )
    .await;
    println!("{w_audio}: expire days {w_audio_before:?} -> {w_audio_after:?}");
    assert_eq!(
        condition(&withdraw, "Ready").map(|c| c.is_true()),
        Some(true),
        "{}",
        conditions_text(&withdraw)
    );

    // Objection to training on o-1: the transcript's deadline moves from three years to two
    // (quality is left); the audio is untouched.
    let object = wait_phase(&e, "object", "Completed", Duration::from_secs(60)).await;
    println!("object: {}", object["status"]);
    assert_due(&object, received);
    let o_transcript_after = wait_for(
        "the objected transcript re-tagged for two years",
        Duration::from_secs(30),
        || async {
            let d = expire_days(e.retention(o_transcript).await.as_deref());
            matches!(d, Some(730 | 731)).then_some(d)
        },
    )
    .await;
    println!("{o_transcript}: expire days {o_transcript_before:?} -> {o_transcript_after:?}");
    assert!(
        matches!(
            expire_days(e.retention("calls/o-1/audio.wav").await.as_deref()),
            Some(730 | 731)
        ),
        "the objection names training, which the audio does not serve"
    );
    assert_eq!(
        object["status"]["matched"].as_u64(),
        Some(2),
        "{}",
        object["status"]
    );

    // Access: a manifest in the state location listing the subject's four objects.
    let access = wait_phase(&e, "access", "Completed", Duration::from_secs(60)).await;
    println!("access: {}", access["status"]);
    assert_due(&access, received);
    if access["status"]["matched"].as_u64() != Some(4) {
        problems.push(format!(
            "Access `access` (subject subj-a) answered with matched {}, not a-1's and a-2's \
             four objects: {}",
            access["status"]["matched"], access["status"]
        ));
    }
    let manifest = access["status"]["manifest"]
        .as_str()
        .unwrap_or_else(|| panic!("status.manifest: {}", access["status"]))
        .to_string();
    let (m_bucket, m_key) = manifest
        .strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .unwrap_or_else(|| panic!("manifest is s3://bucket/key: {manifest}"));
    assert_eq!(m_bucket, e.bucket);
    let body =
        e.s3.get_object()
            .bucket(m_bucket)
            .key(m_key)
            .send()
            .await
            .unwrap_or_else(|err| panic!("the manifest {manifest} in S3: {err:?}"))
            .body
            .collect()
            .await
            .expect("the manifest's body")
            .into_bytes();
    let doc: Value = serde_json::from_slice(&body).expect("the manifest is JSON");
    std::fs::write(e.dir.join("access-manifest.json"), &body).expect("manifest copy");
    let listed: BTreeSet<&str> = doc["recordings"]
        .as_array()
        .unwrap_or_else(|| panic!("manifest recordings: {doc}"))
        .iter()
        .filter_map(|r| r["key"].as_str())
        .collect();
    let want: BTreeSet<String> = ["a-1", "a-2"].iter().flat_map(|id| keys_of(id)).collect();
    if listed != want.iter().map(String::as_str).collect() {
        problems.push(format!(
            "the access manifest {manifest} lists {listed:?}; the subject's keys are {want:?}"
        ));
    }
    assert!(
        listed.iter().all(|k| want.contains(*k)),
        "the manifest lists another subject's keys: {doc}"
    );
    assert_eq!(doc["reference"], "DSR-E2E-access", "{doc}");
    let audio = doc["recordings"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["key"] == "calls/a-1/audio.wav"))
        .expect("a-1's audio");
    assert!(
        audio["purposes"]["documentation"].as_str().is_some() && audio["deadline"].is_string(),
        "each entry says why and until when: {audio}"
    );

    // ---- `kubectl get subjectrequests` shows the Phase and Due columns.
    let kubectl = std::path::PathBuf::from("kubectl");
    let (ok, out, err) = run(
        &kubectl,
        &[
            "get".into(),
            "subjectrequests".into(),
            "-n".into(),
            e.ns.clone(),
        ],
    )
    .await;
    assert!(ok, "kubectl get subjectrequests: {err}");
    println!("{out}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    for col in ["TYPE", "BUCKET", "REFERENCE", "PHASE", "DUE", "MATCHED"] {
        assert!(header.contains(&col), "column {col}: {out}");
    }
    let at = |c: &str| header.iter().position(|h| *h == c).expect("column");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    for (name, obj) in [
        ("erase", &erase),
        ("withdraw", &withdraw),
        ("object", &object),
        ("access", &access),
        ("restrict", &restrict),
        ("overdue", &overdue),
    ] {
        let row = rows
            .iter()
            .find(|r| r.first() == Some(&name))
            .unwrap_or_else(|| panic!("no row {name}: {out}"));
        assert_eq!(row.get(at("PHASE")).copied(), phase(obj), "{name}: {out}");
        assert_eq!(
            row.get(at("DUE")).copied(),
            obj["status"]["dueBy"].as_str(),
            "{name}: {out}"
        );
    }

    // ---- Metrics: every answered request is closed; the invalid withdrawal is Failed, which
    // the gauge counts as open ("phase Pending, InProgress or Failed"). Both writers of the
    // gauges (the bucket's pass and the SubjectRequest controller) must say so: the value
    // holds across the passes that follow a change to the invalid request.
    for t in ["Objection", "Erasure", "Restriction", "Access"] {
        let open = metric(&mut e, "gallring_subject_requests_open", "calls", t).await;
        assert_eq!(
            open,
            Some(0.0),
            "gallring_subject_requests_open{{bucket=calls,type={t}}}"
        );
    }
    let mut touched = request(
        "invalid",
        "calls",
        "Withdrawal",
        json!({"subject": "subj-w", "purposes": ["documentation"]}),
        now,
    );
    touched["spec"]["owner"] = json!("privacy-team-2");
    e.apply(touched).await;
    let started = Instant::now();
    let mut seen: Vec<(f64, Option<f64>)> = Vec::new();
    while started.elapsed() < Duration::from_secs(40) {
        let v = metric(
            &mut e,
            "gallring_subject_requests_open",
            "calls",
            "Withdrawal",
        )
        .await;
        if seen.last().is_none_or(|(_, last)| *last != v) {
            seen.push((started.elapsed().as_secs_f64(), v));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settled: Vec<Option<f64>> = seen
        .iter()
        .skip_while(|(_, v)| *v != Some(1.0))
        .map(|(_, v)| *v)
        .collect();
    if settled.is_empty() || settled.iter().any(|v| *v != Some(1.0)) {
        problems.push(format!(
            "gallring_subject_requests_open{{bucket=calls,type=Withdrawal}} must be 1 (the \
             Failed withdrawal `invalid`) and stay so; over 40 s after changing it, the values \
             (s, value) were {seen:?}"
        ));
    }

    // ---- An erased recording that reappears (a restore without its subject tag) is erased
    // again from the journal's tombstone, counted and reported. Before it, nothing reappeared.
    let settled = e.get("SubjectRequest", "erase").await.expect("erase");
    let reappeared_before = settled["status"]["reappeared"].as_u64().unwrap_or(0);
    if reappeared_before != 0 {
        problems.push(format!(
            "Erasure `erase` counts {reappeared_before} reappeared object(s) before any \
             reappeared (an object its first pass missed, deleted by a later one, is not a \
             reappearance); Events: {:?}",
            e.events("SubjectRequest", "erase").await
        ));
    }
    let deleted_before = kind_count(&settled, "transcript", "deleted").unwrap_or(0);
    e.put(
        "calls/e-1/transcript.json",
        b"restored",
        &[("source", "restore")],
        &[("call-start", rfc3339(now).as_str())],
    )
    .await;
    let again = wait_for(
        "the reappeared transcript erased again",
        Duration::from_secs(60),
        || async {
            if e.tags("calls/e-1/transcript.json").await.is_some() {
                return None;
            }
            let o = e.get("SubjectRequest", "erase").await?;
            (o["status"]["reappeared"].as_u64() == Some(reappeared_before + 1)).then_some(o)
        },
    )
    .await;
    assert_eq!(
        kind_count(&again, "transcript", "deleted"),
        Some(deleted_before + 1),
        "{}",
        again["status"]
    );
    assert_eq!(
        phase(&again),
        Some("PartiallyCompleted"),
        "{}",
        again["status"]
    );
    let events = wait_for(
        "a Warning Event about the reappeared recording",
        Duration::from_secs(30),
        || async {
            let ev = e.events("SubjectRequest", "erase").await;
            ev.iter()
                .any(|(t, r, _)| t == "Warning" && r == "ErasedRecordingReappeared")
                .then_some(ev)
        },
    )
    .await;
    println!("erase Events: {events:?}");
    // The erasure never went back to an open phase once answered.
    let phases: Vec<String> = erase_history
        .all()
        .iter()
        .filter_map(|(_, v)| phase(v).map(str::to_string))
        .collect();
    let answered = phases
        .iter()
        .position(|p| p == "PartiallyCompleted")
        .expect("the watch saw the answer");
    assert!(
        phases[answered..].iter().all(|p| p == "PartiallyCompleted"),
        "the erasure's phase went back after it was answered: {phases:?}"
    );

    // ---- Restriction lifted by deleting the request: a later pass releases the hold, and r-1,
    // past its deadline with no holdRelease for Restriction, is deleted.
    let lifted = Instant::now();
    e.delete("SubjectRequest", "restrict").await;
    for k in keys_of("r-1") {
        wait_for(
            &format!("{k} deleted once the restriction is gone"),
            Duration::from_secs(90),
            || async { e.tags(&k).await.is_none().then_some(()) },
        )
        .await;
    }
    figure(
        "SubjectRequest Restriction deleted to its past-deadline call deleted (s)",
        format!("{:.1}", lifted.elapsed().as_secs_f64()),
    );
    // Still there, and kept to a deadline: c-1 (no request), o-1 (objection), w-1's audio
    // (withdrawal), a-* (access).
    for k in keys_of("c-1")
        .into_iter()
        .chain(keys_of("o-1"))
        .chain(keys_of("a-1"))
        .chain(keys_of("a-2"))
        .chain([w_audio.to_string()])
    {
        let t = e.retention(&k).await;
        assert!(
            t.as_deref().is_some_and(|t| t != "held"),
            "{k}: still there, under no hold: {t:?}"
        );
    }
    e.finish().await;
    assert!(
        problems.is_empty(),
        "the scenario ran to its end, with these problems:\n- {}",
        problems.join("\n- ")
    );
}
