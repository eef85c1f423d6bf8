//! What the operator costs the store: a failing bucket backs off, a quiet bucket is listed only
//! as often as its scan interval allows.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::fixtures::{bucket, policy, seed_calls};
use crate::harness::{E2e, History, Setup, conditions_text, figure, samples, wait_for};
use crate::proxy::S3Request;

const WINDOW: Duration = Duration::from_secs(120);

/// Requests grouped into bursts separated by more than `gap` (one burst ≈ one pass).
fn bursts(reqs: &[S3Request], gap: TimeDelta) -> usize {
    let mut n = 0;
    let mut last: Option<DateTime<Utc>> = None;
    for r in reqs {
        if last.is_none_or(|l| r.at - l > gap) {
            n += 1;
        }
        last = Some(r.at);
    }
    n
}

/// Versions of the object written in [from, to] (each is a status write by the operator).
fn writes_between(h: &History, from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
    h.all()
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_bucket_is_retried_with_exponential_backoff() {
    // The S3 bucket does not exist: every pass fails.
    let mut e = E2e::new(
        test_name!(),
        "failing",
        Setup {
            no_bucket: true,
            ..Setup::default()
        },
    )
    .await;
    e.apply(policy("calls", "P1Y")).await;
    e.apply(bucket(
        "calls",
        &e.bucket,
        &e.s3proxy.endpoint(),
        "calls",
        "PT1H",
    ))
    .await;
    let history = e.watch("RecordingBucket", "calls");
    e.spawn("a", &[]);
    let first = wait_for(
        "the first S3 request of the failing bucket",
        Duration::from_secs(60),
        || async { e.s3proxy.requests_on(&e.bucket).first().cloned() },
    )
    .await;
    let end = first.at + TimeDelta::from_std(WINDOW).expect("window");
    tokio::time::sleep((end - Utc::now()).to_std().unwrap_or_default()).await;
    let status_writes = writes_between(&history, first.at, end);
    let reqs: Vec<S3Request> = e
        .s3proxy
        .requests_on(&e.bucket)
        .into_iter()
        .filter(|r| r.at <= end)
        .collect();
    let passes = bursts(&reqs, TimeDelta::seconds(3));
    let b = e.get("RecordingBucket", "calls").await.expect("bucket");
    println!("failing bucket: {}", conditions_text(&b));
    let times: Vec<String> = reqs
        .iter()
        .map(|r| {
            format!(
                "+{:.1}s {} {}",
                (r.at - first.at).as_seconds_f64(),
                r.method,
                r.target
            )
        })
        .collect();
    println!("S3 requests of the failing bucket:\n{}", times.join("\n"));
    if let Some(m) = e.op("a").metrics_text().await {
        for l in m
            .lines()
            .filter(|l| l.contains("backoff") && !l.starts_with('#'))
        {
            println!("metric: {l}");
        }
        for (s, v) in samples(&m, "gallring_scans_total", &[]) {
            println!("metric: {s} {v}");
        }
    }
    figure(
        "failing bucket: S3 requests over 2 minutes",
        format!(
            "{} in {passes} passes; {status_writes} status writes",
            reqs.len()
        ),
    );
    assert!(
        passes <= 7 && reqs.len() <= 60,
        "a failing bucket made {} S3 requests in {passes} passes over 2 minutes: no exponential backoff",
        reqs.len()
    );
    assert!(
        status_writes <= passes + 2,
        "{status_writes} status writes for {passes} failed passes: volatile text in the condition?"
    );
    if let Some(d) = crate::harness::condition(&b, "Degraded") {
        println!("Degraded={} {}: {}", d.status, d.reason, d.message);
    }
    let ready = crate::harness::condition(&b, "Ready");
    assert!(
        ready.as_ref().is_some_and(|c| c.status == "False"),
        "a bucket whose store fails is not Ready: {}",
        conditions_text(&b)
    );
    // Its S3 bucket does not exist, so it has no lifecycle rules to remove: deleting the
    // RecordingBucket must not hang on its finalizer.
    e.delete("RecordingBucket", "calls").await;
    wait_for(
        "the RecordingBucket of a missing S3 bucket to be deleted",
        Duration::from_secs(30),
        || async {
            e.get("RecordingBucket", "calls")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_with_nothing_changing_is_listed_only_as_often_as_its_scan_interval_allows() {
    let mut e = E2e::new(test_name!(), "quiet", Setup::default()).await;
    seed_calls(&e, &["c-1", "c-2", "c-3"]).await;
    e.apply(policy("calls", "P1Y")).await;
    e.apply(bucket(
        "calls",
        &e.bucket,
        &e.s3proxy.endpoint(),
        "calls",
        "PT30S",
    ))
    .await;
    let history = e.watch("RecordingBucket", "calls");
    e.spawn("a", &[]);
    e.wait_ready("calls", Duration::from_secs(90)).await;
    let interval = Duration::from_secs(30);
    let start = Utc::now();
    tokio::time::sleep(WINDOW).await;
    let end = start + TimeDelta::from_std(WINDOW).expect("window");
    let status_writes = writes_between(&history, start, end);
    let in_window: Vec<S3Request> = e
        .s3proxy
        .requests_on(&e.bucket)
        .into_iter()
        .filter(|r| r.at >= start && r.at <= end)
        .collect();
    // Listings of the recordings (gallring's own state prefix is not a scan).
    let listings: Vec<&S3Request> = in_window
        .iter()
        .filter(|r| r.is_listing() && !r.prefix().is_some_and(|p| p.starts_with(".gallring")))
        .collect();
    let allowed = (WINDOW.as_secs() / interval.as_secs()) as usize;
    // Passes per hour from the mean gap between listings (a count over the window is off by
    // one at its edges).
    let per_hour = match (listings.first(), listings.last()) {
        (Some(a), Some(b)) if listings.len() > 1 => {
            3600.0 / ((b.at - a.at).as_seconds_f64() / (listings.len() - 1) as f64)
        }
        _ => listings.len() as f64 * 3600.0 / WINDOW.as_secs_f64(),
    };
    let lines: Vec<String> = listings
        .iter()
        .map(|r| format!("+{:.1}s {}", (r.at - start).as_seconds_f64(), r.target))
        .collect();
    println!("listings in the window:\n{}", lines.join("\n"));
    // What one steady pass costs, by request kind.
    let mut kinds = std::collections::BTreeMap::new();
    for r in &in_window {
        let sub = r
            .target
            .split_once('?')
            .map(|(_, q)| q.split(['=', '&']).next().unwrap_or("").to_string())
            .unwrap_or_default();
        *kinds
            .entry(format!("{} ?{sub}", r.method))
            .or_insert(0usize) += 1;
    }
    println!("S3 requests in the window by kind: {kinds:?}");
    figure(
        "quiet bucket (scanInterval PT30S, 6 objects): passes per hour",
        format!(
            "{per_hour:.0} ({} listings, {} S3 requests, {status_writes} status writes in 2 minutes)",
            listings.len(),
            in_window.len()
        ),
    );
    assert!(
        listings.len() <= allowed + 2,
        "{} listings in {WINDOW:?} with scanInterval {interval:?}: a reconcile storm",
        listings.len()
    );
    assert!(
        listings.len() + 1 >= allowed,
        "only {} listings in {WINDOW:?} with scanInterval {interval:?}: the interval is not kept",
        listings.len()
    );
    assert!(
        status_writes <= listings.len() + 1,
        "{status_writes} status writes for {} passes",
        listings.len()
    );
    e.finish().await;
}
