//! Reconciling buckets: the Tryg manifests against `gallring plan`, a policy change, a Secret
//! that arrives after its bucket, and two buckets governing the same objects.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures::{bucket, policy, seed_calls, seed_tryg, tryg};
use crate::harness::{
    E2e, RETENTION_TAG, Setup, condition, conditions_text, figure, run, wait_for,
};

fn expire_days(tag: Option<&str>) -> Option<u32> {
    tag?.strip_prefix("expire-")?
        .strip_suffix('d')?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_reconcile_of_the_tryg_manifests_agrees_with_gallring_plan() {
    let mut e = E2e::new(test_name!(), "tryg", Setup::default()).await;
    let seeded = seed_tryg(&e, 30).await;
    // The first pass decides by a clock in whole seconds (the store's `Date`), so a pass that
    // starts within a second of the seeding can decide at a time before the last upload: the
    // segment due at upload is then kept by the first pass and deleted by the next, before
    // the tags below are read. A second later, every upload is before the first decision.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // What `plan` gets: the bucket as listed from S3 before the operator touches it.
    let listing = e.listing_jsonl().await;
    assert_eq!(
        listing.lines().count(),
        seeded.len(),
        "listing of the seeded bucket"
    );
    let objects = e.dir.join("objects.jsonl");
    std::fs::write(&objects, &listing).expect("objects.jsonl");
    let (pol, bkt) = tryg(&e, &e.s3proxy.endpoint());
    let manifests = e.dir.join("manifests");
    std::fs::create_dir_all(&manifests).expect("manifests dir");
    for (file, m) in [("policy.yaml", &pol), ("bucket.yaml", &bkt)] {
        std::fs::write(
            manifests.join(file),
            serde_norway::to_string(m).expect("YAML"),
        )
        .expect("manifest");
    }
    let name = bkt["metadata"]["name"].as_str().expect("name").to_string();
    e.apply(pol).await;
    e.apply(bkt).await;

    // The first pass's status, whatever passes follow it.
    let history = e.watch("RecordingBucket", &name);
    let start = Instant::now();
    e.spawn("a", &[]);
    e.wait_ready(&name, Duration::from_secs(120)).await;
    let b = wait_for(
        "the watch to see the first pass's status",
        Duration::from_secs(10),
        || async { history.first(|v| !v["status"]["lastScan"].is_null()) },
    )
    .await;
    assert!(
        condition(&b, "Ready").is_some_and(|c| c.is_true()),
        "after the first pass: {}",
        conditions_text(&b)
    );
    figure(
        "tryg first pass, operator start to Ready (s)",
        format!(
            "{:.1} ({} objects)",
            start.elapsed().as_secs_f64(),
            seeded.len()
        ),
    );
    let status = &b["status"];
    // The pass decides by the earlier of the two clocks (see the README's "Trust and time"),
    // which can be up to a second before lastScan; the fixture has an object due right at
    // upload, so the plan must use the pass's own decision time.
    let at = status["decidedAt"]
        .as_str()
        .expect("status.decidedAt after a pass")
        .to_string();

    // `gallring plan` on the same objects at the pass's decision time.
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_gallring"));
    let plan_args = |fmt: &str| -> Vec<String> {
        vec![
            "plan".into(),
            "--manifests".into(),
            manifests.display().to_string(),
            "--objects".into(),
            objects.display().to_string(),
            "--at".into(),
            at.clone(),
            "-o".into(),
            fmt.into(),
        ]
    };
    let (ok, json_rows, err) = run(&bin, &plan_args("json")).await;
    assert!(ok, "gallring plan failed: {err}");
    let (ok, table, err) = run(&bin, &plan_args("table")).await;
    assert!(ok, "gallring plan failed: {err}");
    std::fs::write(e.dir.join("plan.txt"), &table).expect("plan.txt");
    let rows: Vec<Value> = json_rows
        .lines()
        .map(|l| serde_json::from_str(l).expect("plan JSON line"))
        .collect();
    assert_eq!(rows.len(), seeded.len(), "plan rows");

    // Status counts = the plan's. The operator deletes what is overdue (and what lifecycle
    // cannot express) in the same pass; its counts may describe the bucket before those
    // deletions or after them, but must be one or the other.
    let count = |d: &str| rows.iter().filter(|r| r["decision"] == d).count() as u64;
    let deleted_by_operator = |r: &Value| {
        r["decision"] == "delete" && (r["deleter"] == "operator" || r["overdue"] == true)
    };
    let deleted = rows.iter().filter(|r| deleted_by_operator(r)).count() as u64;
    let overdue = rows.iter().filter(|r| r["overdue"] == true).count() as u64;
    let overdue_left = rows
        .iter()
        .filter(|r| r["overdue"] == true && !deleted_by_operator(r))
        .count() as u64;
    let before = [
        ("objects", rows.len() as u64),
        ("retained", count("keep")),
        ("held", count("held")),
        ("unclassified", count("unclassified")),
        ("overdue", overdue),
    ];
    let after = [
        ("objects", rows.len() as u64 - deleted),
        ("retained", count("keep")),
        ("held", count("held")),
        ("unclassified", count("unclassified")),
        ("overdue", overdue_left),
    ];
    let got: Vec<(&'static str, Option<u64>)> = before
        .iter()
        .map(|(k, _)| (*k, status[*k].as_u64()))
        .collect();
    fn want(e: &[(&'static str, u64)]) -> Vec<(&'static str, Option<u64>)> {
        e.iter().map(|(k, v)| (*k, Some(*v))).collect()
    }
    assert!(
        got == want(&before) || got == want(&after),
        "status counts {got:?} differ from `gallring plan --at {at}`: {:?} before its {deleted} deletions, {:?} after; status: {status}\nplan:\n{table}",
        want(&before),
        want(&after)
    );
    assert!(
        deleted > 0 && count("keep") > 0 && count("unclassified") > 0,
        "the seed should give every decision\n{table}"
    );

    // Tags read from S3 = the plan's; objects the operator deletes are gone.
    let mut wrong = Vec::new();
    for r in &rows {
        let key = r["key"].as_str().expect("key");
        let tag = r["tag"].as_str();
        let gone_expected =
            r["decision"] == "delete" && (r["deleter"] == "operator" || r["overdue"] == true);
        match e.tags(key).await {
            None if gone_expected => {}
            None => wrong.push(format!(
                "{key}: gone, plan says {} with tag {tag:?}",
                r["decision"]
            )),
            Some(_) if gone_expected => wrong.push(format!(
                "{key}: still there, plan says the operator deletes it"
            )),
            Some(t) => {
                // An unclassified object gallring never tagged stays untouched.
                let tag = if r["decision"] == "unclassified" {
                    None
                } else {
                    tag
                };
                if t.get(RETENTION_TAG).map(String::as_str) != tag {
                    wrong.push(format!(
                        "{key}: {RETENTION_TAG}={:?}, plan says {tag:?} ({})",
                        t.get(RETENTION_TAG),
                        r["decision"]
                    ));
                }
                // Foreign tags are kept.
                if key.starts_with("samtaler/") && !t.contains_key("consent") {
                    wrong.push(format!("{key}: the consent tag is gone: {t:?}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "S3 differs from `gallring plan --at {at}`:\n{}\nplan:\n{table}",
        wrong.join("\n")
    );

    // Lifecycle rules in S3 = the rules the plan lists.
    let planned: BTreeSet<String> = table
        .lines()
        .skip_while(|l| !l.starts_with("Lifecycle rules the bucket should have"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let lc =
        e.s3.get_bucket_lifecycle_configuration()
            .bucket(&e.bucket)
            .send()
            .await
            .expect("the operator wrote lifecycle rules");
    let actual: BTreeSet<String> = lc
        .rules()
        .iter()
        .filter_map(|r| r.id().map(str::to_string))
        .filter(|id| id.starts_with("gallring-"))
        .collect();
    assert!(!planned.is_empty(), "{table}");
    assert_eq!(actual, planned, "lifecycle rule ids in S3 vs plan");
    let lifecycle = condition(&b, "LifecycleSynced").expect("LifecycleSynced");
    assert!(lifecycle.is_true(), "{}", conditions_text(&b));
    // Nothing is wrong with this bucket: no reconcile of it may fail, not even transiently.
    let failed: Vec<String> = e.operators[0]
        .log_text()
        .lines()
        .filter(|l| l.contains("reconcile failed"))
        .map(str::to_string)
        .collect();
    assert!(
        failed.is_empty(),
        "a healthy bucket's reconcile failed:\n{}",
        failed.join("\n")
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_retain_duration_changes_the_objects_retention_tags() {
    let mut e = E2e::new(test_name!(), "policy", Setup::default()).await;
    let keys = seed_calls(&e, &["c-1", "c-2"]).await;
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
        let days = expire_days(e.retention(k).await.as_deref());
        assert!(
            matches!(days, Some(365 | 366)),
            "{k}: P1Y is 365 or 366 days, got {days:?}"
        );
    }

    let edited = Instant::now();
    e.apply(policy("calls", "P2Y")).await;
    wait_for(
        "every object re-tagged for P2Y",
        Duration::from_secs(60),
        || async {
            for k in &keys {
                let days = expire_days(e.retention(k).await.as_deref());
                if !matches!(days, Some(730 | 731)) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    figure(
        "policy edit to objects re-tagged (s)",
        format!("{:.1}", edited.elapsed().as_secs_f64()),
    );
    let b = e.wait_ready("calls", Duration::from_secs(30)).await;
    let lc = condition(&b, "LifecycleSynced").expect("LifecycleSynced");
    assert!(lc.is_true(), "{}", conditions_text(&b));
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_created_after_its_bucket_makes_the_bucket_ready_within_seconds() {
    let mut e = E2e::new(
        test_name!(),
        "secret",
        Setup {
            no_secret: true,
            ..Setup::default()
        },
    )
    .await;
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
    let b = e
        .wait_condition(
            "RecordingBucket",
            "calls",
            "Ready",
            Duration::from_secs(60),
            |c| c.status == "False",
        )
        .await;
    println!("without its Secret: {}", conditions_text(&b));
    // Long enough for retries to back off past the bound: only a watch on the Secret makes it.
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(
        e.retention(&keys[0]).await,
        None,
        "nothing written without credentials"
    );
    assert!(
        e.s3proxy.requests_on(&e.bucket).is_empty(),
        "no S3 request without credentials (no ambient identity): {:?}",
        e.s3proxy.requests_on(&e.bucket)
    );

    let created = Instant::now();
    e.create_secret().await;
    e.wait_ready("calls", Duration::from_secs(60)).await;
    let took = created.elapsed();
    figure(
        "Secret created after its bucket: to bucket Ready (s)",
        format!("{:.1}", took.as_secs_f64()),
    );
    assert!(
        took <= Duration::from_secs(15),
        "the bucket became Ready {took:?} after its Secret was created: Secrets are not watched"
    );
    assert!(e.retention(&keys[0]).await.is_some());
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_recording_buckets_over_overlapping_prefixes_conflict_and_neither_writes() {
    let mut e = E2e::new(test_name!(), "conflict", Setup::default()).await;
    let keys = seed_calls(&e, &["c-1", "c-2"]).await;
    e.apply(policy("calls", "P1Y")).await;
    let endpoint = e.s3proxy.endpoint();
    e.apply(bucket("calls", &e.bucket, &endpoint, "calls", "PT1H"))
        .await;
    let mut copy = bucket("calls-copy", &e.bucket, &endpoint, "calls", "PT1H");
    copy["spec"]["s3"]["prefix"] = json!("calls/");
    e.apply(copy).await;
    e.spawn("a", &[]);
    let mut seen = BTreeMap::new();
    for name in ["calls", "calls-copy"] {
        let b = e
            .wait_condition(
                "RecordingBucket",
                name,
                "Conflict",
                Duration::from_secs(60),
                |c| c.is_true(),
            )
            .await;
        println!("{name}: {}", conditions_text(&b));
        seen.insert(name, b);
    }
    // Give a would-be writer time for a pass.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let writes: Vec<String> = e
        .s3proxy
        .requests()
        .iter()
        .filter(|r| r.is_write())
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert!(
        writes.is_empty(),
        "buckets in conflict wrote to S3:\n{}",
        writes.join("\n")
    );
    for k in &keys {
        assert_eq!(e.retention(k).await, None, "{k} was tagged");
    }
    for (name, b) in &seen {
        let ready = condition(b, "Ready");
        assert!(
            !ready.as_ref().is_some_and(|c| c.is_true()),
            "{name} is Ready while in conflict: {}",
            conditions_text(b)
        );
    }
    e.finish().await;
}

/// The bucket's lifecycle rule ids, sorted.
async fn rule_ids(e: &E2e) -> Vec<String> {
    match e
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(&e.bucket)
        .send()
        .await
    {
        Ok(lc) => {
            let mut ids: Vec<String> = lc
                .rules()
                .iter()
                .filter_map(|r| r.id().map(str::to_string))
                .collect();
            ids.sort();
            ids
        }
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_recording_bucket_removes_only_its_own_lifecycle_rules() {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
        LifecycleRuleFilter,
    };
    let mut e = E2e::new(test_name!(), "ondelete", Setup::default()).await;
    seed_calls(&e, &["c-1"]).await;
    // A rule of another team, which gallring must leave alone.
    let foreign = LifecycleRule::builder()
        .id("team-exports")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("exports/").build())
        .expiration(LifecycleExpiration::builder().days(400).build())
        .build()
        .expect("rule");
    e.s3.put_bucket_lifecycle_configuration()
        .bucket(&e.bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(foreign)
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("foreign lifecycle rule");
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
    let ids = rule_ids(&e).await;
    assert!(
        ids.iter().any(|i| i.starts_with("gallring-")) && ids.iter().any(|i| i == "team-exports"),
        "after the pass: {ids:?}"
    );

    e.delete("RecordingBucket", "calls").await;
    wait_for(
        "the RecordingBucket to be gone",
        Duration::from_secs(60),
        || async {
            e.get("RecordingBucket", "calls")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        rule_ids(&e).await,
        vec!["team-exports".to_string()],
        "after the RecordingBucket was deleted, only the foreign rule stays"
    );
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_without_credentials_does_not_borrow_the_operators_identity_unless_the_chart_allows_it()
 {
    let mut e = E2e::new(test_name!(), "ambient", Setup::default()).await;
    let keys = seed_calls(&e, &["c-1"]).await;
    e.apply(policy("calls", "P1Y")).await;
    let mut b = bucket("calls", &e.bucket, &e.s3proxy.endpoint(), "calls", "PT1H");
    b["spec"]["s3"]
        .as_object_mut()
        .expect("s3")
        .remove("credentials");
    e.apply(b).await;
    // This once, the operator's own environment has working credentials: it must not use them.
    let ambient = [
        ("AWS_ACCESS_KEY_ID", e.env.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", e.env.secret_key.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    let vars: Vec<(&str, &str)> = ambient.iter().map(|(k, v)| (*k, v.as_str())).collect();
    e.spawn_with_env("a", &[], &vars);
    let refused = e
        .wait_condition(
            "RecordingBucket",
            "calls",
            "Ready",
            Duration::from_secs(60),
            |c| c.status == "False",
        )
        .await;
    println!("without credentials: {}", conditions_text(&refused));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        e.s3proxy.requests().is_empty(),
        "the operator used its own identity for a bucket without credentials: {:?}",
        e.s3proxy.requests()
    );
    assert_eq!(e.retention(&keys[0]).await, None);
    e.op("a").kill();

    // The explicit opt-in (chart value allowAmbientCredentials) lends it.
    e.helm_upgrade(&[("allowAmbientCredentials", "true")]).await;
    assert!(
        e.chart_args
            .iter()
            .any(|a| a == "--allow-ambient-credentials"),
        "the chart passes the opt-in: {:?}",
        e.chart_args
    );
    e.spawn_with_env("b", &[], &vars);
    e.wait_ready("calls", Duration::from_secs(60)).await;
    assert!(e.retention(&keys[0]).await.is_some());
    e.finish().await;
}
