//! One benchmark phase against the local S3 server, printed as one JSON line. Run through
//! `scripts/bench.sh`, which seeds the bucket and runs each phase in its own process so that
//! peak RSS (VmHWM) belongs to that phase alone.
//!
//! Phases:
//! - `raw-list`: ListObjectsV2 over the bucket, page by page (the floor for any scan); with
//!   `--ranges N`, cut every 900 keys and N ranges listed side by side, by hand.
//! - `raw-tag`: GetObjectTagging then PutObjectTagging (the tags read plus one) on every
//!   object with N in flight: the floor for a pass that must tag every object and keep the
//!   tags others put there (a tag write replaces the whole set).
//! - `raw-hold`: the keys `pass --hold-keys` would select, protected by hand (the floor for a
//!   hold).
//! - `pass`: one gallring reconcile pass (classify + tag; run twice: cold, then warm).
//! - `wait-held`: the checker of `scripts/hold-latency.sh` (reads the store until every
//!   selected key is held; prints the time from the `--go` file's t0).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{Tag, Tagging};
use chrono::Utc;
use clap::{Parser, ValueEnum};
use futures::StreamExt;

use gallring::reconcile::{PassConfig, reconcile};
use gallring::retention::{
    BucketRules, ClassifyRule, Enforcement, IsoDuration, Policy, Purpose, RecordedAtSource,
};
use gallring::store::s3::{S3Settings, S3Store};
use gallring::store::{Operation, RequestObserver};

#[derive(Parser)]
struct Args {
    #[arg(value_enum)]
    phase: Phase,
    #[arg(long, default_value = "bench")]
    bucket: String,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// `pass` with the local index in this directory (issue 9); without it, no index.
    #[arg(long)]
    index_dir: Option<std::path::PathBuf>,
    /// `raw-list` in ranges cut every 900 keys of the seeded layout (`--count`), this many
    /// side by side, as a pass with an index lists; 0: one listing from the start.
    #[arg(long, default_value_t = 0)]
    ranges: usize,
    /// `pass` with a new hold on this many objects (keys spread over the bucket): reports
    /// the time until the hold-first step has protected them (`protect_seconds`).
    #[arg(long, default_value_t = 0)]
    hold_keys: u32,
    /// `raw-list` of every version (ListObjectVersions), as a pass lists a versioned bucket.
    #[arg(long)]
    versions: bool,
    /// `pass` over a bucket that links artifacts by recording id (the number in the key), so
    /// that a hold by key is linked as in a bucket of audio and transcripts. Use an index
    /// directory of its own: the rules differ.
    #[arg(long)]
    recording_ids: bool,
    /// `pass --hold-keys`: the hold's name (default: a new one each run, so that each run's
    /// hold is new); the same name in later runs measures steady passes with that hold.
    #[arg(long)]
    hold_name: Option<String>,
    /// Shifts the held keys (so that holds of one run select disjoint, untagged objects).
    #[arg(long, default_value_t = 0)]
    hold_offset: u32,
    /// The bucket's object count (to spread the held keys).
    #[arg(long, default_value_t = 20_000)]
    count: u32,
    /// `wait-held`: starts its clock at the Unix time (seconds) this file holds, once it exists.
    #[arg(long)]
    go: Option<std::path::PathBuf>,
    /// `wait-held`: gives up after this many seconds from that time.
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// `wait-held`: the tag (`KEY=VALUE`) that shows a key held; `baseline-held=1` waits for
    /// `raw-hold`'s keys.
    #[arg(long, default_value = "gallring.io/retention=held")]
    held_tag: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Phase {
    RawList,
    RawTag,
    /// The floor for a hold: the keys `pass --hold-keys` selects, each protected by hand as
    /// gallring must (tags and legal hold read, legal hold set, tags written with `held`
    /// added), with the same requests in flight; no listing.
    RawHold,
    Pass,
    /// The checker of `scripts/hold-latency.sh`: reads the store directly until every key
    /// `--hold-keys` selects is tagged `held`; prints the time from the `--go` file's t0.
    WaitHeld,
}

struct Counter {
    requests: AtomicU64,
    trace: Option<Instant>,
}

impl RequestObserver for Counter {
    fn observe(&self, op: Operation, outcome: &'static str, seconds: f64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(t0) = self.trace {
            let end = t0.elapsed().as_secs_f64();
            eprintln!("trace {:8.4} {:8.4} {op:?} {outcome}", end - seconds, end);
        }
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn client() -> aws_sdk_s3::Client {
    S3Store::sdk_client(Some(
        std::env::var("GALLRING_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:7480".into()),
    ))
    .await
}

async fn list_keys(c: &aws_sdk_s3::Client, bucket: &str) -> Result<(Vec<String>, u64), String> {
    let mut keys = Vec::new();
    let mut requests = 0;
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| format!("ListObjectsV2: {e:?}"))?;
        requests += 1;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return Ok((keys, requests));
        }
    }
}

/// Every version in the bucket, listed from the start (a versioned bucket's listing, which a
/// pass does not cut): the number of versions and the requests.
async fn list_versions(c: &aws_sdk_s3::Client, bucket: &str) -> Result<(u64, u64), String> {
    let (mut versions, mut requests) = (0u64, 0u64);
    let (mut key, mut version) = (None, None);
    loop {
        let page = c
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key)
            .set_version_id_marker(version)
            .send()
            .await
            .map_err(|e| format!("ListObjectVersions: {e:?}"))?;
        requests += 1;
        versions += (page.versions().len() + page.delete_markers().len()) as u64;
        if page.is_truncated() != Some(true) {
            return Ok((versions, requests));
        }
        key = page.next_key_marker().map(str::to_string);
        version = page.next_version_id_marker().map(str::to_string);
        if key.is_none() {
            return Err("ListObjectVersions: truncated without a key marker".into());
        }
    }
}

/// Where a pass with an index cuts the listing of the seeded layout: every 900th key.
fn layout_cuts(count: u32) -> Vec<String> {
    let mut keys: Vec<String> = (0..count)
        .map(|i| format!("bench/{:03}/{i:08}.wav", i % 256))
        .collect();
    keys.sort_unstable();
    keys.into_iter().skip(899).step_by(900).collect()
}

/// ListObjectsV2 in ranges cut at `cuts`, `in_flight` ranges at a time, by hand: the floor
/// for the steady pass's listing (gallring's `ListAhead` does the same).
async fn list_ranges(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    cuts: &[String],
    in_flight: usize,
) -> Result<(u64, u64), String> {
    let mut ranges: Vec<(Option<String>, Option<String>)> = Vec::new();
    let mut after = None;
    for cut in cuts {
        ranges.push((after.replace(cut.clone()), Some(cut.clone())));
    }
    ranges.push((after, None));
    let counted = futures::stream::iter(ranges)
        .map(|(after, through)| async move {
            let (mut objects, mut requests, mut token) = (0u64, 0u64, None::<String>);
            loop {
                let page = c
                    .list_objects_v2()
                    .bucket(bucket)
                    .set_start_after(after.clone().filter(|_| token.is_none()))
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(|e| format!("ListObjectsV2: {e:?}"))?;
                requests += 1;
                let mut past = false;
                for o in page.contents() {
                    match (o.key(), through.as_deref()) {
                        (Some(k), Some(t)) if k > t => past = true,
                        _ => objects += 1,
                    }
                }
                token = page.next_continuation_token().map(str::to_string);
                if past || token.is_none() {
                    return Ok::<_, String>((objects, requests));
                }
            }
        })
        .buffered(in_flight)
        .collect::<Vec<_>>()
        .await;
    let mut total = (0, 0);
    for r in counted {
        let (o, q) = r?;
        total = (total.0 + o, total.1 + q);
    }
    Ok(total)
}

/// The keys a hold of `--hold-keys` selects: spread evenly over the bucket.
fn held_keys(args: &Args) -> Vec<String> {
    let step = args.count.checked_div(args.hold_keys).unwrap_or(1).max(1);
    (0..args.hold_keys)
        .map(|j| {
            let i = (j * step + args.hold_offset) % args.count.max(1);
            format!("bench/{:03}/{i:08}.wav", i % 256)
        })
        .collect()
}

/// One key protected by hand: what a hold costs at least on an Object Lock bucket (without
/// one, the legal hold requests are skipped).
async fn raw_hold(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    lock: bool,
) -> Result<(), String> {
    use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
    let current = read_tags(c, bucket, key).await?;
    if lock {
        let on = c
            .get_object_legal_hold()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()
            .and_then(|r| r.legal_hold().and_then(|h| h.status().cloned()))
            == Some(ObjectLockLegalHoldStatus::On);
        if !on {
            c.put_object_legal_hold()
                .bucket(bucket)
                .key(key)
                .legal_hold(
                    ObjectLockLegalHold::builder()
                        .status(ObjectLockLegalHoldStatus::On)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| format!("{key}: {e:?}"))?;
        }
    }
    write_tags_with(c, bucket, key, current, "baseline-held").await
}

/// A key's tags, as GetObjectTagging gives them.
async fn read_tags(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Vec<Tag>, String> {
    let out = c
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("{key}: {e:?}"))?;
    Ok(out.tag_set().to_vec())
}

/// Writes `tags` with `extra=1` set (the others kept, as a tag write replaces the whole set).
async fn write_tags_with(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    mut tags: Vec<Tag>,
    extra: &str,
) -> Result<(), String> {
    tags.retain(|t| t.key() != extra);
    tags.push(
        Tag::builder()
            .key(extra)
            .value("1")
            .build()
            .expect("a valid pattern"),
    );
    let tagging = Tagging::builder()
        .set_tag_set(Some(tags))
        .build()
        .map_err(|e| e.to_string())?;
    c.put_object_tagging()
        .bucket(bucket)
        .key(key)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| format!("{key}: {e:?}"))?;
    Ok(())
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `wait-held` reads the missing keys in key order, a window at a time, as the operator
/// protects them (its hold-first step goes through the index in key order): a window found
/// all held is followed at once by the next, one with a key still missing is read again after
/// a pause. The reads so follow the operator's progress, and the last key is confirmed soon
/// after it is written, without rounds over every key (the checker shares two cores with the
/// store and the operator).
const WINDOW: usize = 16;

/// One read of a key's tags: the key, its tags, and when the request started and ended.
type Read = (String, Result<Vec<Tag>, String>, f64, f64);
const PAUSE: Duration = Duration::from_millis(10);

/// Each key became held after the start of its last read that showed it not held, and before
/// the end of its first read that showed it held: the time every key was held lies between
/// the latest of the former (`after`) and the latest of the latter (`seconds`), from t0.
async fn wait_held(args: &Args) -> Result<String, String> {
    let go = args.go.as_ref().ok_or("wait-held needs --go FILE")?;
    let (tag_key, tag_value) = args
        .held_tag
        .split_once('=')
        .ok_or_else(|| format!("--held-tag {}: not KEY=VALUE", args.held_tag))?;
    let c = client().await;
    let mut remaining = held_keys(args);
    remaining.sort();
    let waited = Instant::now();
    let t0: f64 = loop {
        if let Ok(text) = std::fs::read_to_string(go)
            && !text.trim().is_empty()
        {
            break text
                .trim()
                .parse()
                .map_err(|e| format!("{}: not a Unix time: {e}", go.display()))?;
        }
        if waited.elapsed() > Duration::from_secs(900) {
            return Err(format!("no t0 in {} within 900 s", go.display()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let (mut after, mut held_by) = (t0, t0);
    let (mut windows, mut requests) = (0u64, 0u64);
    while !remaining.is_empty() {
        if unix_now() - t0 > args.timeout {
            return Err(format!(
                "{} of {} keys still not held after {:.0} s; first: {}",
                remaining.len(),
                args.hold_keys,
                args.timeout,
                remaining[0]
            ));
        }
        let window: Vec<String> = remaining.iter().take(WINDOW).cloned().collect();
        windows += 1;
        requests += window.len() as u64;
        let reads: Vec<Read> = futures::stream::iter(window.iter().cloned())
            .map(|k| {
                let c = c.clone();
                let bucket = args.bucket.clone();
                async move {
                    let start = unix_now();
                    let tags = read_tags(&c, &bucket, &k).await;
                    (k, tags, start, unix_now())
                }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        let mut held = std::collections::BTreeSet::new();
        for (key, tags, start, end) in reads {
            let is_held = tags?
                .iter()
                .any(|t| t.key() == tag_key && t.value() == tag_value);
            if is_held {
                held_by = held_by.max(end);
                held.insert(key);
            } else {
                after = after.max(start);
            }
        }
        let all = held.len() == window.len();
        remaining.retain(|k| !held.contains(k));
        if !all {
            tokio::time::sleep(PAUSE).await;
        }
    }
    Ok(format!(
        "{{\"seconds\":{:.3},\"after\":{:.3},\"rounds\":{windows},\"requests\":{requests}}}",
        held_by - t0,
        after - t0
    ))
}

fn bench_policy() -> (Policy, BucketRules) {
    let policy = Policy {
        controller: "Controller A/S".to_string(),
        hold_max: Default::default(),
        time_zone: chrono_tz::Tz::UTC,
        name: "RetentionPolicy/bench/bench".into(),
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
                retain: [("audio".to_string(), IsoDuration::months(12))].into(),
            },
        )]
        .into(),
        hold_release: BTreeMap::new(),
    };
    let rules = BucketRules {
        name: "RecordingBucket/bench/bench".into(),
        prefix: None,
        classify: vec![ClassifyRule {
            name: "audio".into(),
            prefix: Some("bench/".into()),
            glob: None,
            tags: BTreeMap::new(),
            kind: "audio".into(),
            purposes: vec!["documentation".into()],
            purposes_from_tag: None,
        }],
        recording_id: None,
        subject_tag: None,
        recorded_at: RecordedAtSource::LastModified,
        recorded_at_max_age: None,
        grace: IsoDuration::days(2),
        scan_interval: IsoDuration::days(1),
        verify_interval: IsoDuration::days(7),
        enforcement: Enforcement::Lifecycle,
    };
    (policy, rules)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    let result: Result<(u64, u64), String> = match args.phase {
        // Its own line: times from t0, not a phase's throughput.
        Phase::WaitHeld => {
            return match wait_held(&args).await {
                Ok(line) => {
                    println!("{line}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("wait-held: {e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Phase::RawList if args.ranges > 0 => {
            let c = client().await;
            list_ranges(&c, &args.bucket, &layout_cuts(args.count), args.ranges).await
        }
        Phase::RawList if args.versions => {
            let c = client().await;
            list_versions(&c, &args.bucket).await
        }
        Phase::RawList => {
            let c = client().await;
            list_keys(&c, &args.bucket)
                .await
                .map(|(k, r)| (k.len() as u64, r))
        }
        Phase::RawTag => {
            let c = client().await;
            match list_keys(&c, &args.bucket).await {
                Err(e) => Err(e),
                Ok((keys, list_requests)) => {
                    let list_time = started.elapsed();
                    let t0 = Instant::now();
                    let n = keys.len() as u64;
                    let failures = futures::stream::iter(keys)
                        .map(|k| {
                            let c = c.clone();
                            let bucket = args.bucket.clone();
                            async move {
                                let current = read_tags(&c, &bucket, &k).await?;
                                write_tags_with(&c, &bucket, &k, current, "baseline").await?;
                                Ok::<(), String>(())
                            }
                        })
                        .buffer_unordered(args.concurrency)
                        .filter(|r| futures::future::ready(r.is_err()))
                        .count()
                        .await;
                    eprintln!(
                        "raw-tag: listing took {:.2}s, tagging {:.2}s",
                        list_time.as_secs_f64(),
                        t0.elapsed().as_secs_f64()
                    );
                    if failures > 0 {
                        Err(format!("{failures} tagging failures"))
                    } else {
                        Ok((n, list_requests + 2 * n))
                    }
                }
            }
        }
        Phase::RawHold => {
            let c = client().await;
            let lock = c
                .get_object_lock_configuration()
                .bucket(&args.bucket)
                .send()
                .await
                .is_ok_and(|r| r.object_lock_configuration().is_some());
            // In key order, as gallring's hold-first step goes through the index.
            let mut keys = held_keys(&args);
            keys.sort();
            let n = keys.len() as u64;
            let failures = futures::stream::iter(keys)
                .map(|k| {
                    let c = c.clone();
                    let bucket = args.bucket.clone();
                    async move { raw_hold(&c, &bucket, &k, lock).await }
                })
                .buffer_unordered(args.concurrency)
                .filter(|r| futures::future::ready(r.is_err()))
                .count()
                .await;
            eprintln!(
                "raw-hold: {n} keys protected by hand in {:.3}s (Object Lock: {lock})",
                started.elapsed().as_secs_f64()
            );
            if failures > 0 {
                Err(format!("{failures} of {n} keys failed"))
            } else {
                Ok((n, n * if lock { 4 } else { 2 }))
            }
        }
        Phase::Pass => {
            let counter = Arc::new(Counter {
                requests: AtomicU64::new(0),
                trace: std::env::var_os("BENCH_TRACE").map(|_| started),
            });
            let mut settings = S3Settings::new(&args.bucket);
            settings.endpoint = std::env::var("GALLRING_S3_ENDPOINT").ok();
            settings.request_timeout = Duration::from_secs(30);
            let store = S3Store::connect(settings, counter.clone()).await;
            let (policy, mut rules) = bench_policy();
            if args.recording_ids {
                rules.recording_id = Some(gallring::retention::RecordingIdSource::KeyPattern(
                    regex::Regex::new(r"/(?P<id>[0-9]+)\.wav$").expect("a valid pattern"),
                ));
            }
            let indexes = gallring::state::index::Indexes::new(args.index_dir.clone());
            let config = PassConfig {
                page_size: 1000,
                concurrency: args.concurrency,
                index: args.index_dir.as_ref().and_then(|_| {
                    gallring::reconcile::IndexConfig::for_bucket(&indexes, "bench/bench", &rules)
                }),
                ..PassConfig::default()
            };
            let protected_at: std::sync::Mutex<Option<(f64, u64)>> = Default::default();
            let progress = |p: gallring::reconcile::Progress| {
                if p.pages == 0 {
                    *protected_at.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((started.elapsed().as_secs_f64(), p.protected));
                } else if p.pages.is_multiple_of(5) {
                    eprintln!("pass: {} objects listed", p.listed);
                }
            };
            let holds = if args.hold_keys == 0 {
                vec![]
            } else {
                let keys = held_keys(&args);
                vec![gallring::retention::Hold {
                    limitation_start: None,
                    created_at: None,
                    name: args.hold_name.clone().unwrap_or_else(|| {
                        format!("bench/hold-{}-{}", args.hold_keys, Utc::now().timestamp())
                    }),
                    reason: gallring::retention::HoldReason::Complaint,
                    case: "BENCH".into(),
                    select: gallring::retention::HoldSelector {
                        keys: keys.into_iter().collect(),
                        ..Default::default()
                    },
                    expires: None,
                    review_by: None,
                    released_at: None,
                }]
            };
            let result = reconcile(
                &store,
                &policy,
                &rules,
                holds,
                Utc::now(),
                config,
                &progress,
            )
            .await;
            if let Some((secs, n)) = *protected_at.lock().unwrap_or_else(|e| e.into_inner()) {
                eprintln!("pass: {n} objects protected ahead of the listing");
                println!("{{\"protect_seconds\":{secs:.3},\"protected\":{n}}}");
            }
            match result {
                Ok(report) => Ok((
                    {
                        eprintln!("pass: index {:?}", report.index);
                        report.summary.objects
                    },
                    counter.requests.load(Ordering::Relaxed),
                )),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok((objects, requests)) => {
            println!(
                "{{\"objects\":{objects},\"seconds\":{secs:.3},\"objects_per_second\":{:.1},\"requests\":{requests},\"requests_per_object\":{:.3},\"peak_rss_kib\":{}}}",
                objects as f64 / secs.max(1e-9),
                requests as f64 / (objects.max(1) as f64),
                peak_rss_kib()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
