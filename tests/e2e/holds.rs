//! LegalHolds: applied and released through the finalizer, and holds that protect nothing.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::fixtures::{bucket, hold, policy, seed_calls};
use crate::harness::{
    E2e, KEEP_UNTIL_TAG, RETENTION_TAG, Setup, conditions_text, figure, parse_time, samples,
    wait_for,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_protects_its_objects_and_its_release_leaves_a_keep_until_floor() {
    let mut e = E2e::new(test_name!(), "hold", Setup::default()).await;
    let keys = seed_calls(&e, &["c-1", "c-2", "c-3"]).await;
    let (held, free): (Vec<&String>, Vec<&String>) =
        keys.iter().partition(|k| k.starts_with("calls/c-1/"));
    e.apply(policy("calls", "P1Y")).await;
    e.apply(bucket(
        "calls",
        &e.bucket,
        &e.s3proxy.endpoint(),
        "calls",
        "PT1H",
    ))
    .await;
    e.spawn("a", &[]);
    e.wait_ready("calls", Duration::from_secs(90)).await;
    for k in &keys {
        let t = e.retention(k).await;
        assert!(
            t.as_deref().is_some_and(|t| t.starts_with("expire-")),
            "{k}: {t:?}"
        );
    }

    // Applied: the call's audio and transcript (linked by recording id) become `held`.
    let created = Instant::now();
    e.apply(hold(
        "complaint-1",
        "calls",
        json!({"recordingIds": ["c-1"]}),
    ))
    .await;
    wait_for(
        "the held call's objects tagged held",
        Duration::from_secs(60),
        || async {
            for k in &held {
                if e.retention(k).await.as_deref() != Some("held") {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let protect = created.elapsed();
    figure(
        "LegalHold creation to its objects tagged held in S3 (s)",
        format!("{:.2}", protect.as_secs_f64()),
    );
    for k in &free {
        assert_ne!(
            e.retention(k).await.as_deref(),
            Some("held"),
            "{k} is not under the hold"
        );
    }
    let h = e
        .wait_condition(
            "LegalHold",
            "complaint-1",
            "Ready",
            Duration::from_secs(30),
            |c| c.is_true(),
        )
        .await;
    assert_eq!(
        h["status"]["matched"].as_u64(),
        Some(held.len() as u64),
        "{}",
        h["status"]
    );
    let finalizers = h["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        finalizers.iter().any(|f| f == "gallring.io/release"),
        "{finalizers:?}"
    );

    // Explained from the cluster, the kubectl way: `kubectl gallring explain` finds the
    // binary as the plugin `kubectl-gallring`, reads the RecordingBucket, its policy and holds
    // and its Secret's credentials (nothing ambient: no AWS_* variables).
    let plugins = e.dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    let plugin = plugins.join("kubectl-gallring");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gallring"), &plugin).expect("plugin link");
    let path = format!(
        "{}:{}",
        plugins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("kubectl")
        .args([
            "gallring",
            "explain",
            held[0].as_str(),
            "--bucket",
            "calls",
            "-n",
        ])
        .arg(&e.ns)
        .env_clear()
        .env("PATH", &path)
        .env("HOME", e.dir.join("home"))
        .env(
            "KUBECONFIG",
            std::env::var("KUBECONFIG").expect("the admin kubeconfig"),
        )
        .output()
        .expect("kubectl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubectl gallring explain: {err}\n{text}"
    );
    assert!(text.contains(&format!("{}/complaint-1", e.ns)), "{text}");
    assert!(text.contains("gallring.io/retention=held"), "{text}");
    assert!(!err.contains("default AWS credential chain"), "{err}");
    // A bucket that is not there is named, with a non-zero exit.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(["explain", held[0].as_str(), "--bucket", "no-such", "-n"])
        .arg(&e.ns)
        .output()
        .expect("gallring runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("RecordingBucket {}/no-such not found", e.ns)),
        "{err}"
    );

    // Released: the LegalHold disappears only after its objects carry a keep-until floor
    // (release + the policy's holdRelease P3Y for Complaint) instead of `held`.
    let deleted = Instant::now();
    e.delete("LegalHold", "complaint-1").await;
    let mut polls = 0;
    loop {
        polls += 1;
        let exists = e.get("LegalHold", "complaint-1").await.is_some();
        if !exists {
            break;
        }
        assert!(
            deleted.elapsed() < Duration::from_secs(60),
            "the LegalHold is still there 60 s after its deletion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone_after = deleted.elapsed();
    // Read right after the hold vanished from the API.
    let floor_min = Utc::now() + TimeDelta::days(3 * 365 - 2);
    for k in &held {
        let tags = e.tags(k).await.expect("the released object still exists");
        let retention = tags.get(RETENTION_TAG).cloned().unwrap_or_default();
        assert!(
            !retention.is_empty() && retention != "held",
            "{k}: the LegalHold was gone but {RETENTION_TAG}={retention:?}; {tags:?}"
        );
        let floor = tags.get(KEEP_UNTIL_TAG).and_then(|v| parse_time(v));
        assert!(
            floor.is_some_and(|f| f >= floor_min),
            "{k}: the LegalHold was gone but {KEEP_UNTIL_TAG} is {:?} (want ≥ {floor_min}); tags {tags:?}",
            tags.get(KEEP_UNTIL_TAG)
        );
    }
    figure(
        "LegalHold deletion to finalizer done (s)",
        format!("{:.2} ({polls} polls)", gone_after.as_secs_f64()),
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_that_matches_nothing_or_names_a_missing_bucket_is_not_ready_and_says_why() {
    let mut e = E2e::new(test_name!(), "nomatch", Setup::default()).await;
    let keys = seed_calls(&e, &["c-1"]).await;
    e.apply(policy("calls", "P1Y")).await;
    e.apply(bucket(
        "calls",
        &e.bucket,
        &e.s3proxy.endpoint(),
        "calls",
        "PT1H",
    ))
    .await;
    e.spawn("a", &[]);
    e.wait_ready("calls", Duration::from_secs(90)).await;

    // An empty prefix would select the whole bucket: the API server refuses it.
    let mut everything = hold("everything", "calls", json!({"prefix": ""}));
    everything["apiVersion"] = json!("gallring.io/v1alpha1");
    everything["metadata"]["namespace"] = json!(e.ns);
    let refused = e
        .api("LegalHold")
        .create(
            &Default::default(),
            &serde_json::from_value(everything).expect("LegalHold"),
        )
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 422),
        "a hold with an empty prefix must be refused by the API server: {refused:?}"
    );

    // A mistyped recording id ("c-l" for "c-1") protects nothing: that must be visible.
    e.apply(hold("typo", "calls", json!({"recordingIds": ["c-l"]})))
        .await;
    e.apply(hold(
        "orphan",
        "no-such-bucket",
        json!({"recordingIds": ["c-1"]}),
    ))
    .await;
    let typo = e
        .wait_condition("LegalHold", "typo", "Ready", Duration::from_secs(60), |c| {
            c.status == "False" && c.reason == "NoMatch"
        })
        .await;
    println!("typo: {}", conditions_text(&typo));
    let orphan = e
        .wait_condition(
            "LegalHold",
            "orphan",
            "Ready",
            Duration::from_secs(60),
            |c| c.status == "False" && c.reason == "BucketNotFound",
        )
        .await;
    println!("orphan: {}", conditions_text(&orphan));
    let warning = wait_for(
        "a Warning Event on the hold that matches nothing",
        Duration::from_secs(30),
        || async {
            e.events("LegalHold", "typo")
                .await
                .into_iter()
                .find(|(t, _, _)| t == "Warning")
        },
    )
    .await;
    println!("typo Event: {warning:?}");
    for k in &keys {
        assert_ne!(e.retention(k).await.as_deref(), Some("held"), "{k}");
    }
    e.finish().await;
}

/// Issue 10 on the real cluster and store: a purpose of another controller reaches the
/// bucket's status and metrics, a LegalHold's scope limits it to one kind and its recording
/// window (checked in the store's tags), and its limitation start sets the floor on release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_hold_keeps_only_its_scope_and_controllers_reach_status_and_metrics() {
    let mut e = E2e::new(test_name!(), "scope", Setup::default()).await;
    let keys = seed_calls(&e, &["s-1", "s-2"]).await;
    let mut p = policy("calls", "P1Y");
    // Transcripts also serve a purpose of another controller.
    p["spec"]["timeZone"] = json!("Europe/Copenhagen");
    p["spec"]["purposes"]
        .as_array_mut()
        .expect("purposes")
        .push(json!({
            "name": "advice",
            "legalBasis": {"article6": "contract"},
            "retain": {"transcript": "P6M"},
            "useFor": {"transcript": "P1M"},
            "controller": {"legalName": "E2E Bank AB"}
        }));
    e.apply(p).await;
    let mut b = bucket("calls", &e.bucket, &e.s3proxy.endpoint(), "calls", "PT1H");
    b["spec"]["classify"][1]["purposes"] = json!(["documentation", "advice"]);
    e.apply(b).await;
    // The operator seals its journal with a key made by `gallring journal keygen`.
    let key_file = e.dir.join("journal.key");
    let _ = std::fs::remove_file(&key_file);
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(["journal", "keygen", "--out"])
        .arg(&key_file)
        .output()
        .expect("keygen runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let public = String::from_utf8_lossy(&made.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("public key ").map(str::to_string))
        .expect("a public key");
    let key_arg = key_file.to_str().expect("utf-8 path").to_string();
    e.spawn("a", &["--journal-signing-key", &key_arg]);
    let rb = e.wait_ready("calls", Duration::from_secs(90)).await;
    assert_eq!(
        rb["status"]["journalPublicKey"].as_str(),
        Some(public.as_str()),
        "{}",
        rb["status"]
    );
    let controllers = rb["status"]["controllers"].clone();
    let count = |name: &str| {
        controllers
            .as_array()
            .and_then(|a| a.iter().find(|c| c["legalName"] == name))
            .and_then(|c| c["objects"].as_u64())
    };
    assert_eq!(count("E2E Forsikring A/S"), Some(4), "{controllers}");
    assert_eq!(count("E2E Bank AB"), Some(2), "{controllers}");
    let started = Instant::now();
    let metrics = loop {
        let text = e.op("a").metrics_text().await.unwrap_or_default();
        if !samples(
            &text,
            "gallring_controller_objects",
            &[("controller", "E2E Bank AB")],
        )
        .is_empty()
            || started.elapsed() > Duration::from_secs(30)
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let bank = samples(
        &metrics,
        "gallring_controller_objects",
        &[("controller", "E2E Bank AB")],
    );
    assert_eq!(bank.first().map(|s| s.1), Some(2.0), "{bank:?}");

    // The hold on call s-1 is scoped to audio; the one on s-2 to recordings made before
    // yesterday, which s-2 (recorded now) is not.
    let mut audio_only = hold("audio-only", "calls", json!({"recordingIds": ["s-1"]}));
    audio_only["spec"]["scope"] = json!({"kinds": ["audio"]});
    audio_only["spec"]["limitationStart"] = json!("2024-01-01T00:00:00Z");
    e.apply(audio_only).await;
    let yesterday =
        (Utc::now() - TimeDelta::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut earlier = hold("earlier-calls", "calls", json!({"recordingIds": ["s-2"]}));
    earlier["spec"]["scope"] = json!({"recordedBefore": yesterday});
    e.apply(earlier).await;
    wait_for("the scoped audio held", Duration::from_secs(60), || async {
        (e.retention("calls/s-1/audio.wav").await.as_deref() == Some("held")).then_some(())
    })
    .await;
    e.wait_condition(
        "LegalHold",
        "earlier-calls",
        "Ready",
        Duration::from_secs(60),
        |c| c.reason == "NoMatch",
    )
    .await;
    for k in keys.iter().filter(|k| k.as_str() != "calls/s-1/audio.wav") {
        assert_ne!(
            e.retention(k).await.as_deref(),
            Some("held"),
            "{k} is outside every hold's scope"
        );
    }
    // The journal (holds applied, legal holds set) verifies from the cluster, against the
    // key the RecordingBucket's status publishes.
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(["journal", "verify", "--bucket", "calls", "-n"])
        .arg(&e.ns)
        .output()
        .expect("verify runs");
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(text.contains("verified    yes"), "{text}");
    assert!(
        text.contains("(checked against the expected key)"),
        "{text}"
    );
    assert!(text.contains(&public), "{text}");

    // A window whose end is not after its start is refused by the API server, naming it.
    let mut bad = hold("bad-window", "calls", json!({"recordingIds": ["s-1"]}));
    bad["spec"]["scope"] = json!({
        "recordedAfter": "2026-02-01T00:00:00Z",
        "recordedBefore": "2026-01-01T00:00:00Z"
    });
    let refused = e
        .try_apply(bad)
        .await
        .expect_err("an empty window is refused");
    assert!(
        refused.contains("recordedAfter must be before recordedBefore"),
        "{refused}"
    );

    // Released: the floor counts from the limitation start (2024-01-01 + P3Y = 2027-01-01),
    // not from today, so the keep-until tag is not three years from now.
    e.delete("LegalHold", "audio-only").await;
    wait_for("the hold released", Duration::from_secs(60), || async {
        e.get("LegalHold", "audio-only")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    let tags = e.tags("calls/s-1/audio.wav").await.expect("still there");
    assert_ne!(
        tags.get(RETENTION_TAG).map(String::as_str),
        Some("held"),
        "{tags:?}"
    );
    let floor = tags.get(KEEP_UNTIL_TAG).and_then(|v| parse_time(v));
    assert!(
        floor.is_none_or(|f| f < Utc::now() + TimeDelta::days(400)),
        "a floor from the limitation start ends by 2027-01-01, not three years on: {tags:?}"
    );
    e.finish().await;
}
