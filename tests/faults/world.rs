//! One scenario's world: its own Object Lock (or plain) bucket on Ceph (seeded directly, with a
//! foreign lifecycle rule), the fault proxy in front of Ceph, the manifests `gallring run`
//! reads, the runs of the real binary (to the end, or killed with SIGKILL), and a check after
//! every run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, ObjectLockLegalHold, ObjectLockLegalHoldStatus,
};
use chrono::{DateTime, TimeDelta, Utc};

use gallring::store::s3::S3Store;

use super::checker::{self, Checker, FOREIGN_RULE_ID};
use super::model::{HoldDef, Kind, Model, Obj, RequestDef};
use super::proxy::{FaultPlan, FaultProxy};
use super::rng::{Rng, base_seed, scenario_seed};

/// Longest a `--once` pass may take before the suite calls it hung.
const PASS_LIMIT: Duration = Duration::from_secs(120);

pub fn endpoint() -> String {
    std::env::var("GALLRING_S3_ENDPOINT").expect(
        "GALLRING_S3_ENDPOINT is not set: run `eval \"$(scripts/s3-up.sh)\"` first (scripts/test.sh does)",
    )
}

/// An object to seed.
#[derive(Debug, Clone)]
pub struct ObjSpec {
    pub key: String,
    pub kind: Kind,
    pub recorded_at: DateTime<Utc>,
    pub tags: BTreeMap<String, String>,
    pub foreign_legal_hold: bool,
}

/// Foreign tag keys, in the order they are given out (the first is the subject id).
const TAG_KEYS: [&str; 10] = [
    "subject", "team", "site", "lang", "queue", "agent", "channel", "campaign", "region", "product",
];

impl ObjSpec {
    fn new(key: String, kind: Kind, age: TimeDelta) -> ObjSpec {
        ObjSpec {
            key,
            kind,
            recorded_at: Utc::now() - age,
            tags: BTreeMap::new(),
            foreign_legal_hold: false,
        }
    }

    /// `calls/<id>/audio.wav`, recorded `age_hours` ago.
    pub fn audio(id: &str, age_hours: i64) -> ObjSpec {
        ObjSpec::new(
            format!("calls/{id}/audio.wav"),
            Kind::Audio,
            TimeDelta::hours(age_hours),
        )
    }

    /// `calls/<id>/transcript.json`, recorded `age_hours` ago.
    pub fn transcript(id: &str, age_hours: i64) -> ObjSpec {
        ObjSpec::new(
            format!("calls/{id}/transcript.json"),
            Kind::Transcript,
            TimeDelta::hours(age_hours),
        )
    }

    /// An object no classify rule matches.
    pub fn unclassified(key: &str) -> ObjSpec {
        ObjSpec::new(key.to_string(), Kind::Unclassified, TimeDelta::days(90))
    }

    /// `n` foreign tags (at most 10), values with spaces and punctuation S3 allows.
    pub fn tags(mut self, n: usize) -> ObjSpec {
        let id = self.key.split('/').nth(1).unwrap_or("x").to_string();
        for k in TAG_KEYS.iter().take(n.min(10)) {
            let v = match *k {
                "subject" => format!("subj-{id}"),
                "team" => "Claims Nord".to_string(),
                "site" => "Ballerup 2".to_string(),
                "lang" => "da-DK".to_string(),
                _ => format!("{k}:{id}/v1+x=y"),
            };
            self.tags.insert((*k).to_string(), v);
        }
        self
    }

    /// One foreign tag more.
    pub fn tag(mut self, key: &str, value: &str) -> ObjSpec {
        self.tags.insert(key.to_string(), value.to_string());
        self
    }

    pub fn foreign_legal_hold(mut self) -> ObjSpec {
        self.foreign_legal_hold = true;
        self
    }
}

/// Ages (hours before now) that keep every deadline days away from any run of the suite, and
/// never give a lifecycle day class (7 or 14 days from creation) by accident.
pub mod age {
    use super::Rng;
    /// Audio and transcript both before their deadline (2–5 days old).
    pub fn fresh(rng: &mut Rng) -> i64 {
        rng.range(48, 120) as i64
    }
    /// Audio past its deadline + grace, transcript not yet due (9.5–11 days old).
    pub fn middle(rng: &mut Rng) -> i64 {
        rng.range(228, 264) as i64
    }
    /// Both past deadline + grace (20–40 days old).
    pub fn old(rng: &mut Rng) -> i64 {
        rng.range(480, 960) as i64
    }
}

/// How to kill a run.
#[derive(Debug, Clone, Copy)]
pub enum Kill {
    /// SIGKILL this long after the start.
    After(Duration),
    /// SIGKILL once the proxy has seen this many more requests.
    AfterRequests(u64),
    /// SIGKILL as soon as the proxy withheld the response of its hang trigger.
    OnHang,
}

/// Flags of one run of `gallring run`.
#[derive(Debug, Clone)]
pub struct RunOpts {
    pub once: bool,
    pub max_attempts: u32,
    pub concurrency: u16,
    pub page_size: i32,
    pub request_timeout: u64,
    pub kill: Option<Kill>,
}

impl RunOpts {
    /// `--once` with the defaults (4 attempts, 16 in flight, 1000 per page).
    pub fn clean() -> RunOpts {
        RunOpts {
            once: true,
            max_attempts: 4,
            concurrency: 16,
            page_size: 1000,
            request_timeout: 10,
            kill: None,
        }
    }

    /// `--once` with random retries, concurrency and page size: with one attempt every fault
    /// reaches gallring's own handling; with four, the SDK's retries absorb most.
    pub fn random(rng: &mut Rng) -> RunOpts {
        RunOpts {
            once: true,
            max_attempts: *rng.pick(&[1, 1, 2, 4]),
            concurrency: *rng.pick(&[1, 4, 16]),
            page_size: *rng.pick(&[1000, 1000, 9, 4]),
            request_timeout: 10,
            kill: None,
        }
    }

    pub fn killed(mut self, kill: Kill) -> RunOpts {
        self.kill = Some(kill);
        self
    }

    pub fn attempts(mut self, n: u32) -> RunOpts {
        self.max_attempts = n;
        self
    }
}

/// What a run came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code; `None` when killed.
    pub code: Option<i32>,
    pub killed: bool,
    pub log: PathBuf,
}

/// A run of `gallring run` that [`Scenario::start`] began and [`Scenario::finish`] ends.
pub struct Running {
    child: Guard,
    opts: RunOpts,
    log: PathBuf,
    label: String,
    start: Instant,
    seen_before: u64,
    hung_before: u64,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The whole log of the run.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_else(|e| panic!("log {}: {e}", self.log.display()))
    }

    /// The `unknown=N` field of the pass's warning about objects of unknown state (0 when the
    /// pass did not warn).
    pub fn reported_unknown(&self) -> u64 {
        self.log_text()
            .lines()
            .filter_map(|l| {
                let rest = &l[l.find(" unknown=")? + " unknown=".len()..];
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .next_back()
            .unwrap_or(0)
    }

    /// The `overdue=N` field of the pass summary in the log.
    pub fn reported_overdue(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines()
            .filter(|l| l.contains(" objects=") && l.contains(" overdue="))
            .filter_map(|l| {
                let rest = &l[l.find(" overdue=")? + " overdue=".len()..];
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .next_back()
    }
}

/// How a scenario's bucket and policy differ from the default (an Object Lock bucket, and a
/// policy with the one non-withdrawable purpose `documentation`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A plain bucket: no versioning, no Object Lock (deletes go by key).
    pub unversioned: bool,
    /// The policy also has the withdrawable purpose `quality` (consent): audio tagged
    /// `consent=given` is kept [`super::model::QUALITY_DAYS`] days unless consent is withdrawn.
    pub consent: bool,
    /// `verifyInterval: PT1S`: every pass reads every object's tags again (the index decides
    /// nothing from memory), for cases about tags someone else writes.
    pub verify_every_pass: bool,
    /// `--journal-signing-key`: every journal segment is sealed with this key file.
    pub journal_signing_key: Option<PathBuf>,
    /// The policy also has the purpose `bookkeeping` (Art. 6(1)(c) legal obligation, kept on
    /// erasure): audio tagged `ledger=yes` is kept [`super::model::BOOKKEEPING_DAYS`] days.
    pub legal_obligation: bool,
    /// `--seen-shard-entries`: the journal's first-seen times in shards this small, so that
    /// every pass crosses several and checkpoints rewrite and retire shards under the faults.
    pub seen_shard_entries: Option<u32>,
}

/// The scenario: bucket, proxy, manifests, model, checker and counts.
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub rng: Rng,
    pub s3: Client,
    pub bucket: String,
    pub proxy: FaultProxy,
    pub dir: PathBuf,
    pub model: Model,
    pub checker: Checker,
    pub runs: u64,
    pub passes_ok: u64,
    pub passes_failed: u64,
    pub kills: u64,
    /// The most requests and the longest time a complete pass took (kill calibration).
    pub pass_requests: u64,
    pub pass_time: Duration,
    pub options: Options,
    started: Instant,
    last_log: Option<PathBuf>,
}

impl Scenario {
    /// A fresh Object Lock bucket with a foreign lifecycle rule, and a proxy in front of Ceph.
    pub async fn new(name: &str) -> Scenario {
        Scenario::with(name, Options::default()).await
    }

    /// A fresh bucket as `options` say, with a foreign lifecycle rule, and a proxy in front of
    /// Ceph.
    pub async fn with(name: &str, options: Options) -> Scenario {
        let endpoint = endpoint();
        let seed = scenario_seed(name);
        println!(
            "FAULTS: {name}: seed {seed} (GALLRING_FAULT_SEED={} replays the suite)",
            base_seed()
        );
        let s3 = S3Store::sdk_client(Some(endpoint.clone())).await;
        let short: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(20)
            .collect::<String>()
            .to_ascii_lowercase();
        let bucket = format!("faults-{short}-{}", Utc::now().format("%H%M%S%f"))
            .chars()
            .take(63)
            .collect::<String>();
        s3.create_bucket()
            .bucket(&bucket)
            .set_object_lock_enabled_for_bucket((!options.unversioned).then_some(true))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
        // A foreign rule that can expire nothing gallring governs (nothing lives under it).
        let rule = LifecycleRule::builder()
            .id(FOREIGN_RULE_ID)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("nothing/").build())
            .expiration(LifecycleExpiration::builder().days(3650).build())
            .build()
            .expect("rule");
        s3.put_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .expect("configuration"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("foreign lifecycle rule on {bucket}: {e:?}"));
        let mut checker = Checker::default();
        checker.object_lock = !options.unversioned;
        checker.baseline(&s3, &bucket).await;
        let upstream = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let proxy = FaultProxy::start(&upstream, seed).await;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("faults")
            .join(format!("{name}-{}", Utc::now().format("%H%M%S")));
        std::fs::create_dir_all(dir.join("manifests")).expect("scenario directory");
        Scenario {
            name: name.to_string(),
            seed,
            rng: Rng::new(seed),
            s3,
            bucket,
            proxy,
            dir,
            model: Model {
                quality_days: options.consent.then_some(super::model::QUALITY_DAYS),
                bookkeeping_days: options
                    .legal_obligation
                    .then_some(super::model::BOOKKEEPING_DAYS),
                ..Model::default()
            },
            checker,
            runs: 0,
            passes_ok: 0,
            passes_failed: 0,
            kills: 0,
            pass_requests: 0,
            pass_time: Duration::ZERO,
            options,
            started: Instant::now(),
            last_log: None,
        }
    }

    /// Uploads the objects straight to Ceph (metadata `call-start`, tags, foreign legal holds)
    /// and records them in the model.
    pub async fn seed(&mut self, specs: Vec<ObjSpec>) {
        let s3 = &self.s3;
        let bucket = &self.bucket;
        let unversioned = self.options.unversioned;
        let seeded: Vec<Obj> =
            futures::future::join_all(specs.into_iter().map(|spec| async move {
                let mut req = s3
                    .put_object()
                    .bucket(bucket)
                    .key(&spec.key)
                    .body(ByteStream::from(
                        format!("recording {} {}", spec.key, spec.recorded_at).into_bytes(),
                    ))
                    .metadata(
                        "call-start",
                        spec.recorded_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    );
                if !spec.tags.is_empty() {
                    req = req.tagging(query_string(&spec.tags));
                }
                let out = req
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("seed {}: {e:?}", spec.key));
                let version_id = match out.version_id() {
                    Some(v) => v.to_string(),
                    None if unversioned => "null".to_string(),
                    None => panic!("seed {}: an Object Lock bucket is versioned", spec.key),
                };
                if spec.foreign_legal_hold {
                    s3.put_object_legal_hold()
                        .bucket(bucket)
                        .key(&spec.key)
                        .version_id(&version_id)
                        .legal_hold(
                            ObjectLockLegalHold::builder()
                                .status(ObjectLockLegalHoldStatus::On)
                                .build(),
                        )
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("legal hold on {}: {e:?}", spec.key));
                }
                Obj {
                    key: spec.key,
                    version_id,
                    kind: spec.kind,
                    recorded_at: spec.recorded_at,
                    foreign_tags: spec.tags,
                    foreign_legal_hold: spec.foreign_legal_hold,
                }
            }))
            .await;
        self.model.objs.extend(seeded);
        // The seeded state must pass the checker before gallring runs.
        self.check("seeded").await;
    }

    pub fn add_hold(&mut self, hold: HoldDef) {
        self.model.holds.push(hold);
    }

    /// Writes the policy, the bucket (its endpoint is the proxy), the holds in effect and the
    /// data-subject requests in the manifests.
    pub fn write_manifests(&self) {
        let dir = self.dir.join("manifests");
        let (mut policy, mut bucket) = (POLICY.to_string(), BUCKET.to_string());
        assert!(
            POLICY.contains(QUALITY_ANCHOR) && BUCKET.contains(CONSENT_ANCHOR),
            "the variants' anchors are in the manifests"
        );
        if self.options.consent {
            policy = policy.replace(QUALITY_ANCHOR, QUALITY_PURPOSE);
            bucket = bucket.replace(CONSENT_ANCHOR, CONSENT_RULE);
        }
        if self.options.legal_obligation {
            policy = policy.replace(QUALITY_ANCHOR, BOOKKEEPING_PURPOSE);
            // The ledger rule goes first (the first rule that matches classifies), with the
            // consent choice read as the audio rule reads it.
            let consent = if self.options.consent {
                CONSENT_FROM_TAG
            } else {
                ""
            };
            bucket = bucket.replace(
                LEDGER_ANCHOR,
                &format!("{LEDGER_RULE}{consent}{LEDGER_ANCHOR}"),
            );
        }
        let bucket = if self.options.verify_every_pass {
            bucket.replace(
                "  scanInterval: PT1S\n",
                "  scanInterval: PT1S\n  verifyInterval: PT1S\n",
            )
        } else {
            bucket
        };
        std::fs::write(dir.join("policy.yaml"), policy).expect("policy manifest");
        std::fs::write(
            dir.join("bucket.yaml"),
            bucket
                .replace("BUCKET", &self.bucket)
                .replace("ENDPOINT", &self.proxy.endpoint()),
        )
        .expect("bucket manifest");
        let holds: Vec<String> = self
            .model
            .holds
            .iter()
            .filter(|h| h.released_at.is_none())
            .map(hold_manifest)
            .collect();
        let path = dir.join("holds.yaml");
        if holds.is_empty() {
            let _ = std::fs::remove_file(path);
        } else {
            std::fs::write(path, holds.join("---\n")).expect("holds manifest");
        }
        let requests: Vec<String> = self
            .model
            .requests
            .iter()
            .filter(|r| r.removed_at.is_none())
            .map(request_manifest)
            .collect();
        let path = dir.join("requests.yaml");
        if requests.is_empty() {
            let _ = std::fs::remove_file(path);
        } else {
            std::fs::write(path, requests.join("---\n")).expect("requests manifest");
        }
    }

    /// Writes a SubjectRequest into the manifests (with everything else in the model): the
    /// model lets it count from right after the write.
    pub fn add_request(&mut self, request: RequestDef) {
        let name = request.name.clone();
        self.model.requests.push(request);
        self.write_manifests();
        self.model.request_mut(&name).written_at = Some(Utc::now());
    }

    /// Takes a SubjectRequest out of the manifests (its resource deleted): an erasure or a
    /// withdrawal stays in effect from the journal; a restriction ends.
    pub fn remove_request(&mut self, name: &str) {
        self.model.request_mut(name).removed_at = Some(Utc::now());
        self.write_manifests();
    }

    /// Takes a hold out of the manifests: a release, from now.
    pub fn release(&mut self, name: &str) {
        self.model.hold_mut(name).released_at = Some(Utc::now());
        self.write_manifests();
    }

    /// Runs `gallring run` once (to the end, or killed), then checks the store.
    pub async fn run(&mut self, opts: RunOpts, label: &str) -> Outcome {
        let running = self.start(opts, label);
        self.finish(running).await
    }

    /// Starts `gallring run` and returns at once: the test can act on the store, the proxy or
    /// the manifests while it runs, then [`Scenario::finish`]es it.
    pub fn start(&mut self, opts: RunOpts, label: &str) -> Running {
        self.runs += 1;
        let log = self.dir.join(format!("{:03}-{label}.log", self.runs));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gallring"));
        cmd.arg("run")
            .arg("--manifests")
            .arg(self.dir.join("manifests"))
            .args(["--metrics-addr", "none"])
            .args(["--max-attempts", &opts.max_attempts.to_string()])
            .args(["--concurrency", &opts.concurrency.to_string()])
            .args(["--page-size", &opts.page_size.to_string()])
            .args(["--request-timeout", &opts.request_timeout.to_string()]);
        if opts.once {
            cmd.arg("--once");
        }
        if let Some(k) = &self.options.journal_signing_key {
            cmd.arg("--journal-signing-key").arg(k);
        }
        if let Some(n) = self.options.seen_shard_entries {
            cmd.args(["--seen-shard-entries", &n.to_string()]);
        }
        cmd.env("RUST_LOG", "info,aws_config=warn,aws_smithy_runtime=warn")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        Running {
            seen_before: self.proxy.seen(),
            hung_before: self.proxy.hung(),
            start: Instant::now(),
            child: Guard::spawn(cmd),
            opts,
            log,
            label: label.to_string(),
        }
    }

    /// Waits for a started run to end (or kills it as its options say), then checks the store.
    pub async fn finish(&mut self, running: Running) -> Outcome {
        let Running {
            mut child,
            opts,
            log,
            label,
            start,
            seen_before,
            hung_before,
        } = running;
        let limit = if opts.once {
            PASS_LIMIT
        } else {
            Duration::from_secs(30)
        };
        let mut killed = false;
        let code = loop {
            if let Some(status) = child.try_wait() {
                break status.code();
            }
            let due = match opts.kill {
                Some(Kill::After(d)) => start.elapsed() >= d,
                Some(Kill::AfterRequests(n)) => self.proxy.seen() >= seen_before + n,
                Some(Kill::OnHang) => self.proxy.hung() > hung_before,
                None => false,
            };
            if due {
                child.kill();
                killed = true;
                break None;
            }
            if start.elapsed() > limit {
                child.kill();
                if opts.kill.is_none() && opts.once {
                    panic!(
                        "{}: a `gallring run --once` pass did not end within {limit:?} (log {})",
                        self.name,
                        log.display()
                    );
                }
                killed = true;
                break None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let elapsed = start.elapsed();
        let requests = self.proxy.seen() - seen_before;
        if killed {
            self.kills += 1;
        } else if code == Some(0) {
            self.passes_ok += 1;
        } else {
            self.passes_failed += 1;
        }
        if !killed && opts.once {
            self.pass_requests = self.pass_requests.max(requests);
            self.pass_time = self.pass_time.max(elapsed);
        }
        self.last_log = Some(log.clone());
        self.check(&label).await;
        Outcome { code, killed, log }
    }

    /// A run killed at a random point: after a random time, after a random number of
    /// requests, or (without `--once`) a looping host killed after a few passes.
    pub async fn run_killed(&mut self, label: &str) -> Outcome {
        let requests = self.pass_requests.max(60);
        let millis = (self.pass_time.as_millis() as u64).max(600);
        let mut opts = RunOpts::random(&mut self.rng);
        opts.max_attempts = opts.max_attempts.max(2);
        let kill = match self.rng.below(3) {
            0 => Kill::AfterRequests(self.rng.range(1, requests)),
            1 => Kill::After(Duration::from_millis(self.rng.range(20, millis))),
            _ => {
                opts.once = false;
                Kill::After(Duration::from_millis(self.rng.range(300, millis * 3)))
            }
        };
        self.run(opts.killed(kill), label).await
    }

    /// Runs the checker; any violation fails the test with everything needed to replay it.
    pub async fn check(&mut self, label: &str) {
        let violations = self
            .checker
            .check(&self.s3, &self.bucket, &self.model, label)
            .await;
        if !violations.is_empty() {
            let log = self
                .last_log
                .as_ref()
                .map_or_else(|| "(no run yet)".to_string(), |p| p.display().to_string());
            panic!(
                "{}: {} invariant violation(s) after `{label}` (seed {}, replay with GALLRING_FAULT_SEED={}; last log {log}; bucket {}):\n  - {}\nproxy: {}",
                self.name,
                violations.len(),
                self.seed,
                base_seed(),
                self.bucket,
                violations.join("\n  - "),
                self.proxy.stats().describe_faults(),
            );
        }
    }

    /// Runs passes until the journal shows every hold in the manifests applied (faults may
    /// stop a pass before it journals anything); faults are switched off after a few tries.
    pub async fn until_holds_journaled(&mut self, label: &str) {
        for attempt in 0..8 {
            let records = checker::journal_records(&self.s3, &self.bucket).await;
            let missing: Vec<String> = self
                .model
                .holds
                .iter()
                .filter(|h| h.released_at.is_none())
                .filter(|h| checker::facts_for(&records, "holdApplied", &h.case).is_empty())
                .map(|h| h.case.clone())
                .collect();
            if missing.is_empty() {
                return;
            }
            if attempt == 5 {
                self.proxy.set_plan(FaultPlan::none());
            }
            let opts = if attempt >= 5 {
                RunOpts::clean()
            } else {
                RunOpts::random(&mut self.rng)
            };
            self.run(opts, label).await;
        }
        panic!(
            "{}: the holds were never journaled (log {:?})",
            self.name, self.last_log
        );
    }

    /// The last run's log, for messages.
    pub fn last_log(&self) -> String {
        self.last_log
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string())
    }

    /// Prints the scenario's `FAULTS:` summary line.
    pub fn summary(&self, extra: &str) {
        let stats = self.proxy.stats();
        println!(
            "FAULTS: {}: seed {} | {} runs ({} passes ok, {} failed, {} killed) in {:.1}s | {} requests through the proxy, faults {} ({}) | {} checks, {} object checks, {} objects deleted, 0 violations{}{}",
            self.name,
            self.seed,
            self.runs,
            self.passes_ok,
            self.passes_failed,
            self.kills,
            self.started.elapsed().as_secs_f64(),
            stats.requests,
            stats.faults_total(),
            stats.describe_faults(),
            self.checker.checks,
            self.checker.objects_checked,
            self.checker.gone.len(),
            if extra.is_empty() { "" } else { " | " },
            extra,
        );
    }
}

/// `k=v&k2=v2`, percent-encoded as the `x-amz-tagging` header wants.
fn query_string(tags: &BTreeMap<String, String>) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    tags.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The child process, killed with SIGKILL if the test ends first; a shell watchdog kills it
/// if the test process itself dies.
struct Guard {
    child: Child,
    watchdog: Option<Child>,
}

impl Guard {
    fn spawn(mut cmd: Command) -> Guard {
        let child = cmd.spawn().expect("gallring starts");
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {test} 2>/dev/null; do kill -0 {child} 2>/dev/null || exit 0; sleep 1; done; kill -9 {child} 2>/dev/null",
                test = std::process::id(),
                child = child.id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Guard { child, watchdog }
    }

    fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.kill();
        }
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A finished scenario takes its bucket off RGW's lifecycle list: RGW's one lifecycle worker
/// walks every bucket with a configuration, and dozens of finished scenarios would delay the
/// lifecycle cases of the other suites (tests/s3_reconcile.rs) past their deadline. Best
/// effort: the bucket and its objects stay for inspection.
impl Drop for Scenario {
    fn drop(&mut self) {
        // A client of its own on a runtime of its own: the test's runtime may be gone.
        let bucket = self.bucket.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let s3 = S3Store::sdk_client(Some(endpoint())).await;
                tokio::time::timeout(
                    Duration::from_secs(10),
                    s3.delete_bucket_lifecycle().bucket(&bucket).send(),
                )
                .await
                .ok()?
                .ok()
            })
        })
        .join();
    }
}

fn hold_manifest(h: &HoldDef) -> String {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "apiVersion: gallring.io/v1alpha1
kind: LegalHold
metadata:
  name: {name}
  namespace: faults
spec:
  bucketRef:
    name: calls
  reason: {reason}
  case: {case}
  owner: fault-suite
  select:
    recordingIds: [{ids}]
    keys: [{keys}]
",
        name = h.name,
        reason = h.reason.as_str(),
        case = h.case,
        ids = list(&h.recording_ids),
        keys = list(&h.keys),
    )
}

fn request_manifest(r: &RequestDef) -> String {
    let mut spec = format!("  type: {}\n", r.kind.as_str());
    if let Some(subject) = &r.subject {
        spec.push_str(&format!("  subject: \"{subject}\"\n"));
    }
    let list = |items: &[String]| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !r.recording_ids.is_empty() {
        spec.push_str(&format!("  recordingIds: [{}]\n", list(&r.recording_ids)));
    }
    if !r.purposes.is_empty() {
        spec.push_str(&format!("  purposes: [{}]\n", list(&r.purposes)));
    }
    format!(
        "apiVersion: gallring.io/v1alpha1
kind: SubjectRequest
metadata:
  name: {name}
  namespace: faults
spec:
  bucketRef:
    name: calls
{spec}  receivedAt: \"{received}\"
  reference: \"{reference}\"
  owner: fault-suite
",
        name = r.name,
        received = r
            .received_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        reference = r.reference,
    )
}

const POLICY: &str = "apiVersion: gallring.io/v1alpha1
kind: RetentionPolicy
metadata:
  name: recordings
  namespace: faults
spec:
  controller:
    legalName: Fault Suite Forsikring A/S
  purposes:
    - name: documentation
      legalBasis:
        article6: legitimateInterests
      withdrawable: false
      retain:
        audio: P7D
        transcript: P14D
  holdRelease:
    - reason: Dispute
      keep: P3Y
    - reason: Complaint
      keep: P0D
    - reason: Claim
      keep: P0D
";

/// Where the `quality` purpose goes in [`POLICY`] (consent scenarios).
const QUALITY_ANCHOR: &str = "  holdRelease:\n";
const QUALITY_PURPOSE: &str = "    - name: quality
      legalBasis:
        article6: consent
      withdrawable: true
      retain:
        audio: P30D
  holdRelease:
";

/// The `bookkeeping` purpose (legal-obligation scenarios), before [`QUALITY_ANCHOR`].
const BOOKKEEPING_PURPOSE: &str = "    - name: bookkeeping
      legalBasis:
        article6: legalObligation
      withdrawable: false
      retain:
        audio: P21D
  holdRelease:
";

/// Where the ledger rule goes in [`BUCKET`]: before the audio rule.
const LEDGER_ANCHOR: &str = "    - name: audio\n";
/// Audio tagged `ledger=yes` also serves `bookkeeping` (legal-obligation scenarios).
const LEDGER_RULE: &str = "    - name: ledger-audio
      match:
        glob: \"calls/*/audio.wav\"
        tags:
          ledger: \"yes\"
      kind: audio
      purposes: [documentation, bookkeeping]
";
/// The ledger rule's consent choice, as [`CONSENT_RULE`] reads it (consent scenarios too).
const CONSENT_FROM_TAG: &str = "      purposesFromTag:
        key: consent
        values:
          given: [quality]
";

/// Where audio gets `quality` from its `consent` tag in [`BUCKET`] (consent scenarios).
const CONSENT_ANCHOR: &str = "      kind: audio\n      purposes: [documentation]\n";
const CONSENT_RULE: &str = "      kind: audio
      purposes: [documentation]
      purposesFromTag:
        key: consent
        values:
          given: [quality]
";

const BUCKET: &str = "apiVersion: gallring.io/v1alpha1
kind: RecordingBucket
metadata:
  name: calls
  namespace: faults
spec:
  s3:
    bucket: BUCKET
    endpoint: ENDPOINT
    forcePathStyle: true
  policyRef:
    name: recordings
  classify:
    - name: audio
      match:
        glob: \"calls/*/audio.wav\"
      kind: audio
      purposes: [documentation]
    - name: transcript
      match:
        glob: \"calls/*/transcript.json\"
      kind: transcript
      purposes: [documentation]
  recordingId:
    keyPattern: \"^calls/(?P<id>[^/]+)/\"
  subject:
    tag: subject
  recordedAt:
    metadata: call-start
  enforcement: Both
  gracePeriod: P2D
  scanInterval: PT1S
";
