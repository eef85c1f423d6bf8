//! Leader election between replicas, and fencing of a leader cut off from the API server.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::fixtures::{bucket, policy};
use crate::harness::{E2e, Setup, figure, wait_for};
use crate::proxy::S3Request;

const STARTING: &str = "starting controllers";

fn logged_start(e: &mut E2e, identity: &str) -> bool {
    e.op(identity)
        .log_text()
        .to_ascii_lowercase()
        .contains(STARTING)
}

async fn wait_holder(e: &E2e, want: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    wait_for(&format!("Lease held by {want}"), timeout, || async {
        (e.lease_holder().await.as_deref() == Some(want)).then_some(())
    })
    .await;
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_and_the_other_takes_over_after_sigkill_and_after_sigterm() {
    let mut e = E2e::new(test_name!(), "replicas", Setup::default()).await;
    e.spawn("replica-a", &[]);
    e.spawn("replica-b", &[]);
    let leader = wait_for("a Lease holder", Duration::from_secs(60), || async {
        e.lease_holder().await
    })
    .await;
    assert!(
        leader == "replica-a" || leader == "replica-b",
        "holder {leader}"
    );
    let standby = if leader == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    };
    // Several retry periods: the standby must keep standing by.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(e.lease_holder().await.as_deref(), Some(leader.as_str()));
    wait_for(
        "the leader to log that it starts its controllers",
        Duration::from_secs(10),
        || {
            let started = logged_start(&mut e, &leader);
            async move { started.then_some(()) }
        },
    )
    .await;
    assert!(
        !logged_start(&mut e, standby),
        "the standby started controllers while {leader} leads"
    );
    // Both serve /readyz: a standby is ready (it can take over), not a failing pod.
    for id in [leader.as_str(), standby] {
        let addr = e.op(id).metrics;
        assert!(
            crate::harness::http_get(addr, "/readyz").await.is_some(),
            "{id}: /readyz is not 200"
        );
    }

    // SIGKILL: the standby takes over once the Lease expires.
    let killed = Instant::now();
    e.op(&leader).kill();
    wait_holder(&e, standby, Duration::from_secs(60)).await;
    let kill_takeover = killed.elapsed();
    figure(
        "leader takeover after SIGKILL (s)",
        format!("{:.1}", kill_takeover.as_secs_f64()),
    );
    wait_for(
        "the new leader to start its controllers",
        Duration::from_secs(10),
        || {
            let started = logged_start(&mut e, standby);
            async move { started.then_some(()) }
        },
    )
    .await;
    let lease = e.lease().await.expect("Lease").spec.expect("spec");
    let duration = u64::try_from(lease.lease_duration_seconds.unwrap_or(15)).unwrap_or(15);
    assert!(
        kill_takeover <= Duration::from_secs(duration + 10),
        "takeover after SIGKILL took {kill_takeover:?} with a {duration} s lease"
    );

    // SIGTERM: the leader releases the Lease and a fresh standby takes over at once.
    e.spawn("replica-c", &[]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(e.lease_holder().await.as_deref(), Some(standby));
    let termed = Instant::now();
    let status = e.op(standby).terminate(Duration::from_secs(30)).await;
    let exited = termed.elapsed();
    wait_holder(&e, "replica-c", Duration::from_secs(60)).await;
    let term_takeover = termed.elapsed();
    figure(
        "leader takeover after SIGTERM (s)",
        format!(
            "{:.1} (old leader exited in {:.1} s)",
            term_takeover.as_secs_f64(),
            exited.as_secs_f64()
        ),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM: the leader should exit cleanly, got {status:?}"
    );
    assert!(
        e.op(standby)
            .log_text()
            .to_ascii_lowercase()
            .contains("released"),
        "the old leader logs that it released the Lease"
    );
    assert!(
        term_takeover <= Duration::from_secs(8),
        "takeover after SIGTERM took {term_takeover:?}: the Lease was not released"
    );
    e.finish().await;
}

fn tag_writes(reqs: &[S3Request]) -> usize {
    reqs.iter()
        .filter(|r| r.method == "PUT" && r.target.contains("tagging"))
        .count()
}

/// A long first pass: `keys` in the bucket under a one-year policy, every S3 request delayed
/// by `delay`, and `identity` leading with one object at a time. Returns once that pass has
/// written `tags` tags.
async fn start_long_pass(
    e: &mut E2e,
    keys: Vec<String>,
    delay: Duration,
    identity: &str,
    tags: usize,
) {
    e.put_many(keys, 32).await;
    e.apply(policy("calls", "P1Y")).await;
    e.apply(bucket(
        "calls",
        &e.bucket,
        &e.s3proxy.endpoint(),
        "calls",
        "PT1H",
    ))
    .await;
    e.s3proxy.set_delay(delay);
    e.spawn(identity, &["--concurrency=1"]);
    wait_for(
        "the pass to be writing tags",
        Duration::from_secs(120),
        || async { (tag_writes(&e.s3proxy.requests_on(&e.bucket)) >= tags).then_some(()) },
    )
    .await;
    assert_eq!(e.lease_holder().await.as_deref(), Some(identity));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_stops_writing_to_s3_before_its_lease_can_expire() {
    const OBJECTS: usize = 2000;
    let mut e = E2e::new(test_name!(), "fencing", Setup::default()).await;
    let keys: Vec<String> = (0..OBJECTS)
        .map(|i| format!("calls/f-{i:05}/audio.wav"))
        .collect();
    start_long_pass(&mut e, keys, Duration::from_millis(20), "leader", 30).await;

    let cut: DateTime<Utc> = Utc::now();
    e.api_proxy.cut();
    let written_at_cut = tag_writes(&e.s3proxy.requests_on(&e.bucket));
    // Two lease durations: any write still coming would be after another replica could lead.
    tokio::time::sleep(Duration::from_secs(35)).await;

    let lease = e.lease().await.expect("Lease").spec.expect("spec");
    let renewed = lease
        .renew_time
        .as_ref()
        .and_then(|t| DateTime::<Utc>::from_timestamp_micros(t.0.as_microsecond()))
        .expect("renewTime");
    let duration = TimeDelta::seconds(i64::from(lease.lease_duration_seconds.unwrap_or(15)));
    let expiry = renewed + duration;
    let reqs = e.s3proxy.requests_on(&e.bucket);
    let writes: Vec<&S3Request> = reqs.iter().filter(|r| r.is_write()).collect();
    let last = writes.last().expect("writes before the cut").at;
    let after_cut = writes.iter().filter(|r| r.at > cut).count();
    assert!(
        tag_writes(&reqs) < OBJECTS,
        "the pass finished before the cut ({} tag writes): raise OBJECTS or the delay",
        tag_writes(&reqs)
    );
    println!(
        "cut at {cut}; lease renewed last at {renewed} for {duration}; last S3 write at {last}; {after_cut} writes after the cut ({written_at_cut} tag writes at the cut)"
    );
    figure(
        "fencing: last S3 write after the API cut (s)",
        format!(
            "{:.1} ({after_cut} writes after the cut; lease could expire {:.1} s after the cut)",
            (last - cut).as_seconds_f64(),
            (expiry - cut).as_seconds_f64()
        ),
    );
    assert!(
        last < expiry,
        "the leader wrote to S3 at {last}, after its lease could expire ({expiry} = renewTime {renewed} + {duration}): not fenced"
    );
    e.finish().await;
}

/// SIGTERM while a long first pass runs: the leader stops writing at once, exits within the
/// pod's grace period and releases the Lease (it used to wait for the pass to end, which the
/// kubelet cuts short with SIGKILL); the next leader finishes the pass, and every object is
/// then tagged with its retention, read from the store directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_pass_stops_its_writes_and_the_next_leader_finishes_it() {
    const OBJECTS: usize = 600;
    let mut e = E2e::new(test_name!(), "sigterm", Setup::default()).await;
    let keys: Vec<String> = (0..OBJECTS)
        .map(|i| format!("calls/t-{i:05}/audio.wav"))
        .collect();
    // About 50 s in all.
    start_long_pass(&mut e, keys.clone(), Duration::from_millis(40), "first", 20).await;

    let termed = Instant::now();
    let status = e.op("first").terminate(Duration::from_secs(30)).await;
    let exited = termed.elapsed();
    let written = tag_writes(&e.s3proxy.requests_on(&e.bucket));
    figure(
        "SIGTERM during a pass: exit (s)",
        format!(
            "{:.1} ({written} of {OBJECTS} tags written)",
            exited.as_secs_f64()
        ),
    );
    assert!(
        written < OBJECTS,
        "the pass finished before SIGTERM ({written} tag writes): raise OBJECTS or the delay"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM mid-pass: the leader should exit cleanly within 30 s, got {status:?} after {exited:?}"
    );
    assert!(
        exited < Duration::from_secs(15),
        "SIGTERM mid-pass: exit took {exited:?}"
    );
    let log = e.op("first").log_text().to_ascii_lowercase();
    assert!(log.contains("released"), "the Lease is released:\n{log}");

    // The next leader takes over at once and finishes the pass.
    e.s3proxy.set_delay(Duration::ZERO);
    e.spawn("second", &[]);
    wait_holder(&e, "second", Duration::from_secs(30)).await;
    let mut untagged = Vec::new();
    let started = Instant::now();
    loop {
        untagged.clear();
        for k in &keys {
            let r = e.retention(k).await;
            if !r.as_deref().is_some_and(|v| v.starts_with("expire-")) {
                untagged.push(format!("{k}: {r:?}"));
            }
        }
        if untagged.is_empty() || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(
        untagged.is_empty(),
        "{} object(s) without their retention tag after the second leader's pass, e.g. {:?}",
        untagged.len(),
        untagged.first()
    );
    e.finish().await;
}
