//! "Never early" as a property of the pass and its journal (issue 8): random interleavings of
//! holds applied and released, writes that fail before or after they take effect, crashes,
//! clock skew and holds created while a pass runs, on a small bucket in the in-memory store.
//!
//! After every step an oracle that does not call the engine checks what is in the store:
//! - no object disappeared before the later of its deadline (recordedAt + the policy's
//!   retention for its kind, computed here by hand) and the floor (end + the policy's
//!   `holdRelease` for the reason) of every hold that selected it;
//! - no object disappeared while a hold selected it, and no unclassified object disappeared;
//! - no Object Lock legal hold the test set itself (someone else's) was lifted, and no legal
//!   hold at all while a hold the pass knew of selects the object;
//! - after a pass without any fault: no retention tag lets S3 lifecycle expire an object before
//!   that time (nor at all while a hold selects it).
//!
//! Faults: a write (tags, legal hold, DeleteObjects, DeleteObject, lifecycle, a journal
//! segment) fails either before it is applied or after (the write happened, its answer was
//! lost); reads of tags, metadata, legal holds, HEADs and journal objects fail too. A crash is a
//! killed process: at its k-th write the store applies that write or not, revokes the pass's
//! [`Fence`] and fails every later request, so the pass stops where a killed process would
//! (the kill can land between two writes of one object, which a fence check cannot). The next
//! pass is a fresh one (its own `Journal::load`) on the same store.
//!
//! Time: the test's clock is the truth. A pass may see its local clock or the store's `Date`
//! off by up to two days (never both: with two wrong clocks nothing can be safe), or no `Date`
//! at all (then the local clock is right).
//!
//! A hold that disappears from the host's list is a release only if gallring could know it
//! existed: the oracle counts its floor once a pass returned `Ok` while it was active in the
//! list (that pass journaled it). A hold removed before any pass saw it leaves nothing to
//! remember.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Months, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::retention::{
    ClassifyRule, Enforcement, HoldReason, HoldSelector, IsoDuration, Purpose, RETENTION_TAG,
    RecordedAtSource, RecordingIdSource,
};
use crate::store::memory::{Fault, MemoryStore};
use crate::store::{
    BucketInfo, DeleteFailure, ErrorCategory, ObjectHead, ObjectId, ObjectStore, Operation, Page,
    StoreError, StoreResult, StoredRule,
};

// ---------------------------------------------------------------------------------------------
// The faulty store

/// A small deterministic generator (SplitMix64), seeded from the proptest input.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with `pct` percent probability.
    fn chance(&mut self, pct: u8) -> bool {
        self.next() % 100 < u64::from(pct)
    }
}

/// The faults of one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Faults {
    seed: u64,
    /// Percent of writes that fail.
    write_fail_pct: u8,
    /// Percent of failed writes that took effect before the error (a lost answer).
    lost_answer_pct: u8,
    /// Percent of reads (tags, metadata, legal holds, HEADs, journal objects) that fail.
    read_fail_pct: u8,
    /// The process is killed at this write (counted from 1).
    crash_at_write: Option<u16>,
    /// Whether the write the process was killed at reached the store.
    crash_write_applied: bool,
}

impl Faults {
    fn none() -> Self {
        Faults {
            seed: 0,
            write_fail_pct: 0,
            lost_answer_pct: 0,
            read_fail_pct: 0,
            crash_at_write: None,
            crash_write_applied: false,
        }
    }

    fn is_clean(&self) -> bool {
        self.write_fail_pct == 0 && self.read_fail_pct == 0 && self.crash_at_write.is_none()
    }
}

/// What happens to one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Apply,
    /// Fails without taking effect.
    FailBefore,
    /// Takes effect, then fails (the answer was lost).
    FailAfter,
}

#[derive(Debug)]
struct FaultState {
    rng: SplitMix,
    faults: Faults,
    writes: u16,
    crashed: bool,
    read_faults: u32,
    /// What was injected, for the failure message.
    log: Vec<String>,
}

/// An [`ObjectStore`] over a [`MemoryStore`] that fails chosen requests and can be killed.
struct FaultyStore<'a> {
    inner: &'a MemoryStore,
    fence: Fence,
    state: Mutex<FaultState>,
}

impl<'a> FaultyStore<'a> {
    fn new(inner: &'a MemoryStore, fence: Fence, faults: Faults) -> Self {
        FaultyStore {
            inner,
            fence,
            state: Mutex::new(FaultState {
                rng: SplitMix(faults.seed),
                faults,
                writes: 0,
                crashed: false,
                read_faults: 0,
                log: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    fn read_faults(&self) -> bool {
        self.lock().read_faults > 0
    }

    fn error(&self, operation: Operation, key: Option<&str>, message: &str) -> StoreError {
        StoreError {
            bucket: self.inner.bucket().to_string(),
            operation,
            key: key.map(str::to_string),
            category: ErrorCategory::ServerError,
            message: message.to_string(),
            request_id: None,
        }
    }

    fn write_verdict(&self, operation: Operation, key: Option<&str>) -> Verdict {
        let mut s = self.lock();
        if s.crashed {
            return Verdict::FailBefore;
        }
        s.writes += 1;
        let n = s.writes;
        if s.faults.crash_at_write == Some(n) {
            s.crashed = true;
            self.fence.revoke();
            let applied = s.faults.crash_write_applied;
            s.log.push(format!(
                "write {n} {operation} {}: crash ({})",
                key.unwrap_or("-"),
                if applied { "applied" } else { "not applied" }
            ));
            return if applied {
                Verdict::FailAfter
            } else {
                Verdict::FailBefore
            };
        }
        let pct = s.faults.write_fail_pct;
        if !s.rng.chance(pct) {
            return Verdict::Apply;
        }
        let lost = s.faults.lost_answer_pct;
        let verdict = if s.rng.chance(lost) {
            Verdict::FailAfter
        } else {
            Verdict::FailBefore
        };
        s.log.push(format!(
            "write {n} {operation} {}: {verdict:?}",
            key.unwrap_or("-")
        ));
        verdict
    }

    /// Reads fail after a crash; `faulty` reads also fail at the read fault rate.
    fn read_fails(&self, operation: Operation, key: Option<&str>, faulty: bool) -> bool {
        let mut s = self.lock();
        if s.crashed {
            return true;
        }
        let pct = s.faults.read_fail_pct;
        if faulty && s.rng.chance(pct) {
            s.read_faults += 1;
            s.log
                .push(format!("read {operation} {}: fails", key.unwrap_or("-")));
            return true;
        }
        false
    }

    async fn write<T>(
        &self,
        operation: Operation,
        key: Option<&str>,
        request: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        match self.write_verdict(operation, key) {
            Verdict::Apply => request.await,
            Verdict::FailBefore => Err(self.error(operation, key, "injected: not applied")),
            Verdict::FailAfter => {
                let _ = request.await;
                Err(self.error(operation, key, "injected: applied, answer lost"))
            }
        }
    }

    async fn read<T>(
        &self,
        operation: Operation,
        key: Option<&str>,
        faulty: bool,
        request: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        if self.read_fails(operation, key, faulty) {
            return Err(self.error(operation, key, "injected: read failed"));
        }
        request.await
    }
}

impl ObjectStore for FaultyStore<'_> {
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }
    async fn bucket_info(&self) -> StoreResult<BucketInfo> {
        self.read(Operation::HeadBucket, None, false, self.inner.bucket_info())
            .await
    }
    async fn list_page(
        &self,
        prefix: Option<&str>,
        versions: bool,
        continuation: Option<String>,
        page_size: i32,
    ) -> StoreResult<Page> {
        let request = self
            .inner
            .list_page(prefix, versions, continuation, page_size);
        self.read(Operation::ListObjects, None, false, request)
            .await
    }
    async fn list_page_after(
        &self,
        prefix: Option<&str>,
        after: &str,
        page_size: i32,
    ) -> StoreResult<Page> {
        let request = self.inner.list_page_after(prefix, after, page_size);
        self.read(Operation::ListObjects, None, false, request)
            .await
    }
    async fn get_tags(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        let op = Operation::GetObjectTagging;
        self.read(op, Some(&id.key), true, self.inner.get_tags(id))
            .await
    }
    async fn put_tags(&self, id: &ObjectId, tags: &BTreeMap<String, String>) -> StoreResult<()> {
        let op = Operation::PutObjectTagging;
        self.write(op, Some(&id.key), self.inner.put_tags(id, tags))
            .await
    }
    async fn head_object(&self, id: &ObjectId) -> StoreResult<Option<ObjectHead>> {
        let op = Operation::HeadObject;
        self.read(op, Some(&id.key), true, self.inner.head_object(id))
            .await
    }
    async fn get_metadata(&self, id: &ObjectId) -> StoreResult<BTreeMap<String, String>> {
        let op = Operation::HeadObject;
        self.read(op, Some(&id.key), true, self.inner.get_metadata(id))
            .await
    }
    async fn get_lifecycle(&self) -> StoreResult<Option<Vec<StoredRule>>> {
        let op = Operation::GetBucketLifecycle;
        self.read(op, None, false, self.inner.get_lifecycle()).await
    }
    async fn put_lifecycle(&self, rules: &[StoredRule]) -> StoreResult<()> {
        let op = Operation::PutBucketLifecycle;
        self.write(op, None, self.inner.put_lifecycle(rules)).await
    }
    async fn set_legal_hold(&self, id: &ObjectId, on: bool) -> StoreResult<()> {
        let op = Operation::PutObjectLegalHold;
        self.write(op, Some(&id.key), self.inner.set_legal_hold(id, on))
            .await
    }
    async fn get_legal_hold(&self, id: &ObjectId) -> StoreResult<bool> {
        let op = Operation::GetObjectLegalHold;
        self.read(op, Some(&id.key), true, self.inner.get_legal_hold(id))
            .await
    }
    async fn delete_objects(&self, ids: &[ObjectId]) -> StoreResult<Vec<DeleteFailure>> {
        let op = Operation::DeleteObjects;
        let key = ids.first().map(|id| id.key.as_str());
        self.write(op, key, self.inner.delete_objects(ids)).await
    }
    async fn delete_object(&self, id: &ObjectId, if_match: Option<&str>) -> StoreResult<()> {
        let op = Operation::DeleteObject;
        self.write(op, Some(&id.key), self.inner.delete_object(id, if_match))
            .await
    }
    async fn get_object(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let op = Operation::GetObject;
        self.read(op, Some(key), true, self.inner.get_object(key))
            .await
    }
    fn server_time(&self) -> Option<DateTime<Utc>> {
        self.inner.server_time()
    }
    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        retain_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let op = Operation::PutObject;
        let request = self.inner.put_object(key, body, content_type, retain_until);
        self.write(op, Some(key), request).await
    }
}

// ---------------------------------------------------------------------------------------------
// The world: a small bucket, a policy, and a sequence of steps

/// The test starts here; objects were created up to 400 days before.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

const RECORDINGS: u8 = 6;
const CASES: u8 = 3;
const RECORDED_AT_KEY: &str = "recorded-at";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Audio,
    Transcript,
    /// No classify rule matches: never deleted.
    Misc,
}

#[derive(Debug, Clone)]
struct ObjSpec {
    kind: Kind,
    recording: u8,
    /// Seconds before [`start`] the object was created.
    age: i64,
    foreign_tags: usize,
    /// A foreign `case` tag, which tag holds select on.
    case: Option<u8>,
    /// Someone else's Object Lock legal hold, set before gallring runs.
    foreign_legal_hold: bool,
    /// The `recorded-at` metadata, in seconds from the creation (negative: earlier).
    recorded_offset: Option<i64>,
}

/// A retention as calendar months and days.
type Period = (u32, u32);

#[derive(Debug, Clone, Copy)]
enum Select {
    Key(u8),
    Prefix(u8),
    Recording(u8),
    Tag(u8),
}

/// The clocks a pass sees. The test's clock is the truth; at most one of the two is off.
#[derive(Debug, Clone, Copy)]
enum Clocks {
    Agree,
    /// The local clock is off by this many seconds (negative: behind).
    LocalOff(i64),
    /// The store's `Date` is off by this many seconds.
    StoreOff(i64),
    /// The store's answers carry no `Date`.
    NoStoreDate,
}

/// What the pass reads when it re-reads the host's holds before deleting.
#[derive(Debug, Clone, Copy)]
enum HoldsNow {
    /// The host offers no re-read.
    NotOffered,
    /// The same holds as at the start.
    Same,
    /// The re-read fails.
    Fails,
    /// A hold created while the pass ran.
    NewHold { select: Select, reason: u8 },
}

#[derive(Debug, Clone)]
enum Step {
    /// A new hold; `expires_in` hours after it is applied it ends by itself (an access
    /// request's one year).
    Apply {
        select: Select,
        reason: u8,
        expires_in: Option<u32>,
    },
    /// Releases one of the holds not yet released: with `released_at` (the host keeps
    /// reporting it), or by dropping it from the host's list.
    Release {
        pick: u8,
        drop: bool,
    },
    Advance {
        hours: u32,
    },
    Pass {
        faults: Faults,
        clocks: Clocks,
        holds_now: HoldsNow,
    },
    /// The local index is lost (a new leader, a new disk): the next pass restores the last
    /// snapshot, which may be stale.
    LoseIndex,
}

#[derive(Debug, Clone)]
struct World {
    objects: Vec<ObjSpec>,
    audio: Period,
    transcript: Period,
    /// holdRelease for Complaint and Dispute; Claim has none.
    complaint_release: Period,
    dispute_release: Period,
    object_lock: bool,
    versioned: bool,
    operator_only: bool,
    recorded_at_metadata: bool,
    /// The store stamps tag and legal-hold writes into `LastModified`, as Ceph RGW 16 does
    /// (issue 8, item 11): deadlines must still count from the creation.
    moves_last_modified: bool,
    page_size: i32,
    concurrency: usize,
    /// Passes use an index kept between them, with this verification interval in hours.
    index: Option<u32>,
    steps: Vec<Step>,
}

const REASONS: [HoldReason; 3] = [
    HoldReason::Complaint,
    HoldReason::Dispute,
    HoldReason::Claim,
];

fn period() -> impl Strategy<Value = Period> {
    (0u32..14, 0u32..120)
}

fn obj_spec() -> impl Strategy<Value = ObjSpec> {
    (
        prop_oneof![
            4 => Just(Kind::Audio),
            3 => Just(Kind::Transcript),
            1 => Just(Kind::Misc)
        ],
        0..RECORDINGS,
        0i64..400 * 86_400,
        0usize..=10,
        prop::option::of(0..CASES),
        prop::bool::weighted(0.2),
        prop::option::of(-60i64 * 86_400..2 * 86_400),
    )
        .prop_map(
            |(kind, recording, age, foreign, case, foreign_legal_hold, recorded_offset)| ObjSpec {
                kind,
                recording,
                age,
                foreign_tags: foreign.min(10 - usize::from(case.is_some())),
                case,
                foreign_legal_hold,
                recorded_offset,
            },
        )
}

fn faults() -> impl Strategy<Value = Faults> {
    prop_oneof![
        1 => Just(Faults::none()),
        3 => (
            any::<u64>(),
            prop_oneof![3 => 0u8..10, 1 => 10u8..60],
            0u8..=100,
            prop_oneof![3 => 0u8..5, 1 => 5u8..30],
            prop::option::of(1u16..25),
            any::<bool>(),
        )
            .prop_map(
                |(seed, write_fail_pct, lost_answer_pct, read_fail_pct, crash_at_write, applied)| {
                    Faults {
                        seed,
                        write_fail_pct,
                        lost_answer_pct,
                        read_fail_pct,
                        crash_at_write,
                        crash_write_applied: applied,
                    }
                }
            ),
    ]
}

fn select() -> impl Strategy<Value = Select> {
    prop_oneof![
        any::<u8>().prop_map(Select::Key),
        any::<u8>().prop_map(Select::Prefix),
        any::<u8>().prop_map(Select::Recording),
        any::<u8>().prop_map(Select::Tag),
    ]
}

fn clocks() -> impl Strategy<Value = Clocks> {
    // Up to two minutes (around the 60 s bound) or two days off, either way.
    let off = prop_oneof![-120i64..120, -2 * 86_400i64..2 * 86_400];
    prop_oneof![
        4 => Just(Clocks::Agree),
        1 => off.clone().prop_map(Clocks::LocalOff),
        1 => off.prop_map(Clocks::StoreOff),
        1 => Just(Clocks::NoStoreDate),
    ]
}

fn holds_now() -> impl Strategy<Value = HoldsNow> {
    prop_oneof![
        2 => Just(HoldsNow::NotOffered),
        2 => Just(HoldsNow::Same),
        1 => Just(HoldsNow::Fails),
        2 => (select(), 0u8..3).prop_map(|(select, reason)| HoldsNow::NewHold { select, reason }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (select(), 0u8..3, prop::option::of(0u32..100 * 24)).prop_map(
            |(select, reason, expires_in)| Step::Apply { select, reason, expires_in }
        ),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(pick, drop)| Step::Release { pick, drop }),
        3 => prop_oneof![0u32..48, 0u32..200 * 24].prop_map(|hours| Step::Advance { hours }),
        5 => (faults(), clocks(), holds_now()).prop_map(|(faults, clocks, holds_now)| Step::Pass {
            faults,
            clocks,
            holds_now
        }),
        1 => Just(Step::LoseIndex),
    ]
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(obj_spec(), 5..=20),
        (period(), period(), period(), period()),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        (1i32..8, 1usize..4, any::<bool>()),
        prop::option::of(1u32..400),
        prop::collection::vec(step(), 1..30),
    )
        .prop_map(
            |(
                objects,
                (audio, transcript, complaint_release, dispute_release),
                (object_lock, versioned, operator_only, recorded_at_metadata),
                (page_size, concurrency, moves_last_modified),
                index,
                steps,
            )| World {
                index,
                objects,
                audio,
                transcript,
                complaint_release,
                dispute_release,
                object_lock,
                versioned: versioned || object_lock,
                operator_only,
                recorded_at_metadata,
                moves_last_modified,
                page_size,
                concurrency,
                steps,
            },
        )
}

fn key_of(i: usize, o: &ObjSpec) -> String {
    match o.kind {
        Kind::Audio => format!("audio/r{}/{i:02}.wav", o.recording),
        Kind::Transcript => format!("text/r{}/{i:02}.json", o.recording),
        Kind::Misc => format!("misc/r{}/{i:02}.bin", o.recording),
    }
}

fn iso(p: Period) -> IsoDuration {
    IsoDuration {
        months: p.0,
        days: p.1,
        seconds: 0,
    }
}

fn policy(w: &World) -> Policy {
    Policy {
        controller: "Controller A/S".to_string(),
        hold_max: Default::default(),
        time_zone: chrono_tz::Tz::UTC,
        name: "RetentionPolicy/test/calls".into(),
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
                retain: [
                    ("audio".to_string(), iso(w.audio)),
                    ("transcript".to_string(), iso(w.transcript)),
                ]
                .into(),
            },
        )]
        .into(),
        hold_release: [
            (HoldReason::Complaint, iso(w.complaint_release)),
            (HoldReason::Dispute, iso(w.dispute_release)),
        ]
        .into(),
    }
}

fn rules(w: &World) -> BucketRules {
    let rule = |prefix: &str, kind: &str| ClassifyRule {
        name: kind.into(),
        prefix: Some(prefix.into()),
        glob: None,
        tags: BTreeMap::new(),
        kind: kind.into(),
        purposes: vec!["documentation".into()],
        purposes_from_tag: None,
    };
    BucketRules {
        name: "RecordingBucket/test/calls".into(),
        prefix: None,
        classify: vec![rule("audio/", "audio"), rule("text/", "transcript")],
        recording_id: Some(RecordingIdSource::KeyPattern(
            regex::Regex::new(r"^[a-z]+/(?P<id>r[0-9]+)/").expect("valid regex"),
        )),
        subject_tag: None,
        recorded_at: if w.recorded_at_metadata {
            RecordedAtSource::Metadata(RECORDED_AT_KEY.into())
        } else {
            RecordedAtSource::LastModified
        },
        recorded_at_max_age: None,
        grace: IsoDuration::days(2),
        scan_interval: IsoDuration::days(1),
        verify_interval: IsoDuration::days(7),
        enforcement: if w.operator_only {
            Enforcement::Operator
        } else {
            Enforcement::Both
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle: what the test knows, computed without the engine

/// `t + months + days`, calendar months in UTC (the notices' arithmetic, by hand).
fn plus(t: DateTime<Utc>, p: Period) -> DateTime<Utc> {
    t.checked_add_months(Months::new(p.0))
        .and_then(|t| t.checked_add_signed(TimeDelta::days(i64::from(p.1))))
        .expect("in range")
}

/// One object as the test made it.
#[derive(Debug, Clone)]
struct Known {
    key: String,
    version_id: Option<String>,
    created: DateTime<Utc>,
    recording: String,
    case: Option<String>,
    /// `None`: unclassified, never deletable.
    deadline: Option<DateTime<Utc>>,
    foreign_legal_hold: bool,
}

/// A hold as the test applied and released it.
#[derive(Debug, Clone)]
struct TestHold {
    hold: Hold,
    /// Keys it selects (directly, or through a linked recording id), fixed when applied.
    selects: BTreeSet<String>,
    applied_at: DateTime<Utc>,
    /// When, and whether by dropping it from the host's list.
    released: Option<(DateTime<Utc>, bool)>,
    /// A pass returned `Ok` while the hold was active in the host's list: it is journaled.
    journaled: bool,
    /// Created while a pass ran: that pass only sees it when it re-reads the holds.
    mid_pass: bool,
}

impl TestHold {
    /// When the hold stops protecting: its release or its expiry, whichever comes first.
    fn ends_at(&self) -> Option<DateTime<Utc>> {
        match (self.hold.expires, self.released.map(|(at, _)| at)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn active_at(&self, t: DateTime<Utc>) -> bool {
        self.applied_at <= t && self.ends_at().is_none_or(|end| t < end)
    }

    /// The floor the hold leaves once it ends, if gallring can know about it.
    fn floor(&self, w: &World) -> Option<DateTime<Utc>> {
        let at = self.ends_at()?;
        if self.released.is_some_and(|(_, dropped)| dropped) && !self.journaled {
            return None;
        }
        Some(match self.hold.reason {
            HoldReason::Complaint => plus(at, w.complaint_release),
            HoldReason::Dispute => plus(at, w.dispute_release),
            _ => at,
        })
    }

    /// What the host passes to the pass: `None` once dropped.
    fn host_view(&self) -> Option<Hold> {
        match self.released {
            None => Some(self.hold.clone()),
            Some((at, false)) => Some(Hold {
                released_at: Some(at),
                ..self.hold.clone()
            }),
            Some((_, true)) => None,
        }
    }
}

struct Run<'w> {
    w: &'w World,
    store: MemoryStore,
    objects: Vec<Known>,
    holds: Vec<TestHold>,
    now: DateTime<Utc>,
    visible: BTreeSet<String>,
    /// Holds the last pass was given at its start (not those created while it ran).
    planned_with: BTreeSet<String>,
    /// Keys whose Object Lock legal hold was on after the last step.
    legal_holds: BTreeSet<String>,
    /// Retention tags after the last step.
    tags: BTreeMap<String, Option<String>>,
    /// What happened so far, for the failure message.
    history: Vec<String>,
    /// The local index passes share (with `World::index`).
    index: Option<Arc<crate::state::index::Index>>,
}

impl<'w> Run<'w> {
    async fn new(w: &'w World) -> Run<'w> {
        let mut store = MemoryStore::new("calls");
        if w.moves_last_modified {
            store = store.tag_writes_move_last_modified();
        }
        if w.object_lock {
            store = store.object_lock();
        } else if w.versioned {
            store = store.versioned();
        }
        let mut objects = Vec::new();
        for (i, o) in w.objects.iter().enumerate() {
            let key = key_of(i, o);
            let created = start() - TimeDelta::seconds(o.age);
            let mut tags: Vec<(String, String)> = (0..o.foreign_tags)
                .map(|f| (format!("f{f}"), "x".to_string()))
                .collect();
            let case = o.case.map(|c| format!("c{c}"));
            if let Some(c) = &case {
                tags.push(("case".into(), c.clone()));
            }
            let tag_refs: Vec<(&str, &str)> =
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let version_id = store.put(&key, created, 100, &tag_refs);
            // The recording time: the metadata when configured and a date, clamped to the
            // creation (a recording is made before it is uploaded); else the creation.
            let mut recorded = created;
            if w.recorded_at_metadata
                && let Some(offset) = o.recorded_offset
            {
                let value = created + TimeDelta::seconds(offset);
                store.set_metadata(&key, &[(RECORDED_AT_KEY, &value.to_rfc3339())]);
                recorded = value.min(created);
            }
            let deadline = match o.kind {
                Kind::Audio => Some(plus(recorded, w.audio)),
                Kind::Transcript => Some(plus(recorded, w.transcript)),
                Kind::Misc => None,
            };
            let foreign_legal_hold = w.object_lock && o.foreign_legal_hold;
            if foreign_legal_hold {
                let id = ObjectId {
                    key: key.clone(),
                    version_id: version_id.clone(),
                };
                store
                    .set_legal_hold(&id, true)
                    .await
                    .expect("a legal hold on a fresh Object Lock bucket");
            }
            objects.push(Known {
                key,
                version_id,
                created,
                recording: format!("r{}", o.recording),
                case,
                deadline,
                foreign_legal_hold,
            });
        }
        let mut run = Run {
            w,
            store,
            objects,
            holds: Vec::new(),
            now: start(),
            visible: BTreeSet::new(),
            planned_with: BTreeSet::new(),
            legal_holds: BTreeSet::new(),
            tags: BTreeMap::new(),
            history: Vec::new(),
            index: w.index.map(|_| Arc::new(new_index())),
        };
        run.store.set_clock(run.now);
        run.visible = run.current_keys().await;
        run.legal_holds = run.legal_holds_on(&run.visible);
        run
    }

    fn legal_holds_on(&self, keys: &BTreeSet<String>) -> BTreeSet<String> {
        keys.iter()
            .filter(|k| self.store.legal_hold(k))
            .cloned()
            .collect()
    }

    /// Keys the current listing shows (gallring's own state left out).
    async fn current_keys(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        let mut token = None;
        loop {
            let page = self
                .store
                .list_page(None, false, token, 1000)
                .await
                .expect("the fake lists");
            keys.extend(
                page.objects
                    .into_iter()
                    .filter(|o| !o.key.starts_with(crate::state::journal::DEFAULT_PREFIX))
                    .map(|o| o.key),
            );
            token = page.next;
            if token.is_none() {
                return keys;
            }
        }
    }

    /// The LastModified a HEAD shows now (what RGW's lifecycle counts from).
    async fn head_last_modified(&self, o: &Known) -> DateTime<Utc> {
        let id = ObjectId {
            key: o.key.clone(),
            version_id: o.version_id.clone(),
        };
        self.store
            .head_object(&id)
            .await
            .ok()
            .flatten()
            .map_or(o.created, |h| h.last_modified)
    }

    fn known(&self, key: &str) -> Option<&Known> {
        self.objects.iter().find(|o| o.key == key)
    }

    /// A new hold selecting what `select` names among the objects still there, applied now.
    fn new_hold(&self, select: Select, reason: u8, expires_in: Option<u32>) -> TestHold {
        let n = self.objects.len();
        let mut selector = HoldSelector::default();
        let direct: Vec<&Known> = match select {
            Select::Key(i) => {
                let k = self.objects[usize::from(i) % n].key.clone();
                selector.keys.insert(k.clone());
                self.objects.iter().filter(|o| o.key == k).collect()
            }
            Select::Prefix(p) => {
                let r = p / 5 % RECORDINGS;
                let prefix = match p % 5 {
                    0 => "audio/".to_string(),
                    1 => "text/".to_string(),
                    2 => format!("audio/r{r}/"),
                    3 => format!("text/r{r}/"),
                    _ => "misc/".to_string(),
                };
                let found = self
                    .objects
                    .iter()
                    .filter(|o| o.key.starts_with(&prefix))
                    .collect();
                selector.prefix = Some(prefix);
                found
            }
            Select::Recording(r) => {
                let id = format!("r{}", r % RECORDINGS);
                let found = self.objects.iter().filter(|o| o.recording == id).collect();
                selector.recording_ids.insert(id);
                found
            }
            Select::Tag(c) => {
                let case = format!("c{}", c % CASES);
                let found = self
                    .objects
                    .iter()
                    .filter(|o| o.case.as_deref() == Some(case.as_str()))
                    .collect();
                selector.tags.insert("case".into(), Some(case));
                found
            }
        };
        // A hold reaches every artifact of a recording it selects an artifact of, among the
        // objects still there.
        let visible = &self.visible;
        let ids: BTreeSet<&str> = direct
            .iter()
            .filter(|o| visible.contains(&o.key))
            .map(|o| o.recording.as_str())
            .collect();
        let selects: BTreeSet<String> = self
            .objects
            .iter()
            .filter(|o| visible.contains(&o.key) && ids.contains(o.recording.as_str()))
            .map(|o| o.key.clone())
            .collect();
        let name = format!("test/h{}", self.holds.len());
        TestHold {
            hold: Hold {
                limitation_start: None,
                created_at: None,
                name: name.clone(),
                reason: REASONS[usize::from(reason) % REASONS.len()],
                case: format!("case-{name}"),
                select: selector,
                expires: expires_in.map(|h| self.now + TimeDelta::hours(i64::from(h))),
                review_by: None,
                released_at: None,
            },
            selects,
            applied_at: self.now,
            released: None,
            journaled: false,
            mid_pass: false,
        }
    }

    fn apply(&mut self, select: Select, reason: u8, expires_in: Option<u32>) {
        let h = self.new_hold(select, reason, expires_in);
        self.history.push(format!(
            "{}: apply {} ({}, expires {:?}) {:?} selecting {:?}",
            self.now, h.hold.name, h.hold.reason, h.hold.expires, h.hold.select, h.selects
        ));
        self.holds.push(h);
    }

    fn release(&mut self, pick: u8, drop: bool) {
        let open: Vec<usize> = (0..self.holds.len())
            .filter(|i| self.holds[*i].released.is_none())
            .collect();
        if open.is_empty() {
            return;
        }
        let i = open[usize::from(pick) % open.len()];
        self.holds[i].released = Some((self.now, drop));
        self.history.push(format!(
            "{}: release {} by {}",
            self.now,
            self.holds[i].hold.name,
            if drop { "dropping it" } else { "released_at" }
        ));
    }

    /// Runs a pass; also says whether any read failed in it.
    async fn pass(
        &mut self,
        faults: Faults,
        clocks: Clocks,
        holds_now: HoldsNow,
    ) -> (Result<PassReport, PassError>, bool) {
        let (local, store_date) = match clocks {
            Clocks::Agree => (self.now, Some(self.now)),
            Clocks::LocalOff(s) => (self.now + TimeDelta::seconds(s), Some(self.now)),
            Clocks::StoreOff(s) => (self.now, Some(self.now + TimeDelta::seconds(s))),
            Clocks::NoStoreDate => (self.now, None),
        };
        self.store.set_clock(store_date.unwrap_or(self.now));
        self.store.set_server_time(store_date);
        let host: Vec<Hold> = self.holds.iter().filter_map(TestHold::host_view).collect();
        self.planned_with = host.iter().map(|h| h.name.clone()).collect();
        let source = match holds_now {
            HoldsNow::NotOffered => None,
            HoldsNow::Same => Some(Ok(host.clone())),
            HoldsNow::Fails => Some(Err("injected: the holds could not be read".to_string())),
            HoldsNow::NewHold { select, reason } => {
                let mut h = self.new_hold(select, reason, None);
                h.mid_pass = true;
                self.history.push(format!(
                    "{}: during the next pass, apply {} ({}) {:?} selecting {:?}",
                    self.now, h.hold.name, h.hold.reason, h.hold.select, h.selects
                ));
                let mut now_holds = host.clone();
                now_holds.push(h.hold.clone());
                self.holds.push(h);
                Some(Ok(now_holds))
            }
        };
        let fence = Fence::closed();
        fence.extend_to(Instant::now() + Duration::from_secs(3600));
        let store = FaultyStore::new(&self.store, fence.clone(), faults);
        let config = PassConfig {
            page_size: self.w.page_size,
            concurrency: self.w.concurrency,
            fence,
            holds_now: source.map(|answer| {
                HoldsSource(Arc::new(move || {
                    let answer = answer.clone();
                    Box::pin(async move { answer })
                }))
            }),
            index: self.index.as_ref().map(|ix| IndexConfig {
                index: ix.clone(),
                verify_interval: TimeDelta::hours(i64::from(self.w.index.unwrap_or(1))),
                snapshot_interval: TimeDelta::hours(12),
            }),
            ..PassConfig::default()
        };
        let result = reconcile(
            &store,
            &policy(self.w),
            &rules(self.w),
            host,
            local,
            config,
            &|_| {},
        )
        .await;
        self.history.push(format!(
            "{}: pass (local clock {local}, store Date {store_date:?}) {faults:?} -> {}; \
             injected {:?}",
            self.now,
            match &result {
                Ok(r) => format!(
                    "ok (deleted {}, blocked {:?})",
                    r.deleted,
                    r.deletes_blocked.as_ref().map(|b| b.reason)
                ),
                Err(e) => format!("error: {e}"),
            },
            store.log()
        ));
        let now = self.now;
        for h in &mut self.holds {
            if result.is_ok() && !h.mid_pass && h.released.is_none() && h.active_at(now) {
                h.journaled = true;
            }
            // From the next pass on, the host reports it from the start.
            h.mid_pass = false;
        }
        (result, store.read_faults())
    }

    /// The earliest time `o` may be gone, and why.
    fn required(&self, o: &Known) -> (Option<DateTime<Utc>>, String) {
        let Some(mut until) = o.deadline else {
            return (None, "unclassified".into());
        };
        let mut why = format!("deadline {until}");
        for h in self.holds.iter().filter(|h| h.selects.contains(&o.key)) {
            if let Some(floor) = h.floor(self.w)
                && floor > until
            {
                until = floor;
                why = format!("floor {floor} of {}", h.hold.name);
            }
        }
        (Some(until), why)
    }

    fn report(&self) -> String {
        self.history.join("\n  ")
    }

    /// The retention tag of `key` now.
    fn retention_tag(&self, key: &str) -> Option<String> {
        self.store
            .tags(key)
            .and_then(|t| t.get(RETENTION_TAG).cloned())
    }

    /// Active holds selecting `key` that the last pass was given at its start.
    fn known_holds_on(&self, key: &str) -> Vec<&TestHold> {
        self.holds
            .iter()
            .filter(|h| {
                h.selects.contains(key)
                    && h.active_at(self.now)
                    && self.planned_with.contains(&h.hold.name)
            })
            .collect()
    }

    /// Whether the retention tag `tag` on `o` is safe now: no `expire-<N>d` while a known hold
    /// selects it, nor one that lets S3 lifecycle expire it before its deadline and floors.
    async fn check_tag(&self, o: &Known, tag: Option<&str>) -> Result<(), TestCaseError> {
        let Some(days) = tag.and_then(expire_days) else {
            return Ok(());
        };
        let now = self.now;
        if let Some(h) = self.known_holds_on(&o.key).first() {
            prop_assert!(
                false,
                "{} is held by {} but tagged {tag:?} at {now}\n  {}",
                o.key,
                h.hold.name,
                self.report()
            );
        }
        // S3 lifecycle expires the object N days (rounded up to midnight) after the
        // LastModified it has then (RGW moves it on tag writes, never back), or at its next
        // run if that has passed.
        let mtime = self.head_last_modified(o).await.max(o.created);
        let expires = (mtime + TimeDelta::days(i64::from(days))).max(now);
        let (until, why) = self.required(o);
        prop_assert!(
            until.is_some_and(|u| expires >= u),
            "{} tagged {tag:?} at {now}: lifecycle expires it at {expires}, before {why}\n  {}",
            o.key,
            self.report()
        );
        Ok(())
    }

    /// The oracle after every step.
    async fn check(&mut self, after: After) -> Result<(), TestCaseError> {
        let now = self.now;
        let current = self.current_keys().await;
        // Nothing is gone before its deadline and floors, nor while a hold selects it.
        for key in self.visible.difference(&current) {
            let o = self.known(key).expect("only known objects exist");
            let (until, why) = self.required(o);
            prop_assert!(
                until.is_some_and(|u| now >= u),
                "{key} deleted at {now}, before {why}\n  {}",
                self.report()
            );
            for h in self.holds.iter().filter(|h| h.selects.contains(key)) {
                prop_assert!(
                    !h.active_at(now),
                    "{key} deleted at {now} while {} holds it\n  {}",
                    h.hold.name,
                    self.report()
                );
            }
        }
        // Someone else's legal holds stay.
        for o in self.objects.iter().filter(|o| o.foreign_legal_hold) {
            prop_assert!(
                current.contains(&o.key) && self.store.legal_hold(&o.key),
                "someone else's legal hold on {} was lifted (or the object deleted) by {now}\n  {}",
                o.key,
                self.report()
            );
        }
        let legal_holds = self.legal_holds_on(&current);
        let tags: BTreeMap<String, Option<String>> = current
            .iter()
            .map(|k| (k.clone(), self.retention_tag(k)))
            .collect();
        // Every pass, whatever failed in it (unreadable objects included).
        let lowering_checked = matches!(after, After::Pass { .. });
        if lowering_checked {
            // What the pass wrote never lowers protection below what it knew: no legal hold
            // lifted and no expiring tag written while a hold it knew of selects the object,
            // and no tag that lets lifecycle expire an object early.
            for key in self.legal_holds.intersection(&current) {
                if let Some(h) = self.known_holds_on(key).first()
                    && !legal_holds.contains(key)
                {
                    prop_assert!(
                        false,
                        "the legal hold of {key} was lifted at {now} while {} holds it\n  {}",
                        h.hold.name,
                        self.report()
                    );
                }
            }
            for (key, tag) in &tags {
                if self.tags.get(key) != Some(tag) {
                    let o = self.known(key).expect("only known objects exist");
                    self.check_tag(o, tag.as_deref()).await?;
                }
            }
        }
        if let After::Pass { clean: true, .. } = after {
            // After a pass without faults every tag is right.
            for (key, tag) in &tags {
                let o = self.known(key).expect("only known objects exist");
                self.check_tag(o, tag.as_deref()).await?;
                if self.w.object_lock
                    && let Some(h) = self.known_holds_on(key).first()
                {
                    prop_assert!(
                        legal_holds.contains(key),
                        "{key} is held by {} at {now} but has no legal hold after a clean pass\n  {}",
                        h.hold.name,
                        self.report()
                    );
                }
            }
        }
        self.visible = current;
        self.legal_holds = legal_holds;
        self.tags = tags;
        Ok(())
    }
}

/// What the step before a check was.
#[derive(Debug, Clone, Copy)]
enum After {
    Other,
    Pass {
        /// No fault was injected and the pass returned `Ok`.
        clean: bool,
    },
}

/// `expire-<N>d` → N.
fn expire_days(tag: &str) -> Option<u32> {
    tag.strip_prefix("expire-")?.strip_suffix('d')?.parse().ok()
}

async fn play(w: &World) -> Result<(), TestCaseError> {
    let mut run = Run::new(w).await;
    for step in &w.steps {
        let after = match step {
            Step::Apply {
                select,
                reason,
                expires_in,
            } => {
                run.apply(*select, *reason, *expires_in);
                After::Other
            }
            Step::Release { pick, drop } => {
                run.release(*pick, *drop);
                After::Other
            }
            Step::Advance { hours } => {
                run.now += TimeDelta::hours(i64::from(*hours));
                After::Other
            }
            Step::LoseIndex => {
                if run.index.is_some() {
                    run.index = Some(Arc::new(new_index()));
                    run.history
                        .push(format!("{}: the local index is lost", run.now));
                }
                After::Other
            }
            Step::Pass {
                faults,
                clocks,
                holds_now,
            } => {
                let (result, _read_faults) = run.pass(*faults, *clocks, *holds_now).await;
                prop_assert!(
                    result.is_ok() || !faults.is_clean(),
                    "a pass without faults failed: {:?}\n  {}",
                    result.err(),
                    run.report()
                );
                After::Pass {
                    clean: faults.is_clean() && result.is_ok(),
                }
            }
        };
        run.check(after).await?;
    }
    // However the interleaving went, a last pass without faults leaves everything consistent.
    run.now += TimeDelta::hours(1);
    let (result, _) = run
        .pass(Faults::none(), Clocks::Agree, HoldsNow::NotOffered)
        .await;
    prop_assert!(
        result.is_ok(),
        "the final pass failed: {:?}\n  {}",
        result.err(),
        run.report()
    );
    run.check(After::Pass { clean: true }).await
}

/// 64 cases by default (a few seconds in a debug build); `PROPTEST_CASES=5000` searches deeper.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn new_index() -> crate::state::index::Index {
    crate::state::index::Index::in_memory().expect("an in-memory index")
}

fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 1024,
        // The failure message carries the whole minimal world; nothing is written to the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_object_is_ever_deleted_before_its_deadline_or_floor_whatever_fails(w in world()) {
        block_on(play(&w))?;
    }
}

// ---------------------------------------------------------------------------------------------
// What the property found

/// Found by the property (fixed): the pass journals
/// `legalHoldsSet` for a page *before* it sets the legal holds (write-ahead, so a crash after
/// the set cannot leave a legal hold gallring does not know it owns). When the set then fails
/// (a 503, a crash between the journal append and the set, or a lost answer to the journal
/// append itself), the next pass trusts the journal: `handle_object` only sets a legal hold
/// when `!journal.set_by_gallring(&id)`, so it skips the set, writes the `held` tag, and the
/// object stays held by its tag alone, without the S3-enforced legal hold, for as long as the
/// hold lasts. The fix: a held object's legal hold is read on every pass and set again when
/// off (the journal already says it is gallring's).
#[tokio::test]
async fn a_failed_legal_hold_write_is_retried_by_the_next_pass() {
    let store = MemoryStore::new("calls").object_lock();
    store.set_clock(start());
    let key = "audio/r1/00.wav";
    store.put(key, start() - TimeDelta::days(10), 100, &[]);
    let w = World {
        objects: Vec::new(),
        audio: (12, 0),
        transcript: (12, 0),
        complaint_release: (0, 0),
        dispute_release: (0, 0),
        object_lock: true,
        versioned: true,
        operator_only: false,
        recorded_at_metadata: false,
        moves_last_modified: false,
        index: None,
        page_size: 1000,
        concurrency: 1,
        steps: Vec::new(),
    };
    let hold = Hold {
        limitation_start: None,
        created_at: None,
        name: "test/complaint".into(),
        reason: HoldReason::Complaint,
        case: "C-1".into(),
        select: HoldSelector {
            keys: [key.to_string()].into(),
            ..Default::default()
        },
        expires: None,
        review_by: None,
        released_at: None,
    };
    let (policy, rules) = (policy(&w), rules(&w));
    let pass = |now: DateTime<Utc>| {
        reconcile(
            &store,
            &policy,
            &rules,
            vec![hold.clone()],
            now,
            PassConfig::default(),
            &|_| {},
        )
    };
    // One transient failure of the legal-hold write, then none.
    store.inject(Fault {
        operation: Operation::PutObjectLegalHold,
        key: Some(key.into()),
        category: ErrorCategory::ServerError,
        times: 1,
    });
    let first = pass(start()).await.expect("the pass runs");
    assert_eq!(first.object_errors, 1, "the legal-hold write failed");
    assert!(!store.legal_hold(key));
    let second = pass(start() + TimeDelta::hours(1))
        .await
        .expect("the pass runs");
    assert_eq!(second.summary.held, 1);
    assert!(
        store.legal_hold(key),
        "a pass without faults leaves the held object without its legal hold (tags: {:?})",
        store.tags(key)
    );
}

/// Found by the property (fixed; a legal hold lifted while its hold was active). A hold selects by tag
/// (or subject), and the link pass cannot read the tags of the one object it selects directly
/// (one failed GetObjectTagging). The pass then cannot link the hold to that object's
/// recording id, and plans the recording's other artifacts as not held. It notices
/// (`HoldsUnlinked`) and blocks its own deletions, but still applies the plan otherwise: it
/// replaces their `held` tag with an `expire-<N>d` tag that lets S3 lifecycle expire them at
/// its next run, and lifts the legal hold gallring set, while the hold is active. The next
/// pass that reads the tags puts both back. The fix: a pass whose link pass had unreadable
/// objects only protects (legal holds, `held` tags) and writes nothing else.
#[tokio::test]
async fn an_unreadable_object_in_the_link_pass_does_not_unhold_its_linked_artifacts() {
    let store = MemoryStore::new("calls").object_lock();
    store.set_clock(start());
    // The audio carries the case tag the hold selects; the transcript of the same call is held
    // through the recording id. Both are past their deadline.
    let audio = "audio/r0/00.wav";
    let transcript = "text/r0/01.json";
    store.put(
        audio,
        start() - TimeDelta::days(400),
        100,
        &[("case", "c2")],
    );
    store.put(transcript, start() - TimeDelta::days(400), 100, &[]);
    let w = World {
        objects: Vec::new(),
        audio: (12, 0),
        transcript: (12, 0),
        complaint_release: (0, 0),
        dispute_release: (0, 0),
        object_lock: true,
        versioned: true,
        operator_only: false,
        recorded_at_metadata: false,
        moves_last_modified: false,
        index: None,
        page_size: 1000,
        concurrency: 1,
        steps: Vec::new(),
    };
    let hold = Hold {
        limitation_start: None,
        created_at: None,
        name: "test/complaint".into(),
        reason: HoldReason::Complaint,
        case: "C-1".into(),
        select: HoldSelector {
            tags: [("case".to_string(), Some("c2".to_string()))].into(),
            ..Default::default()
        },
        expires: None,
        review_by: None,
        released_at: None,
    };
    let (policy, rules) = (policy(&w), rules(&w));
    let pass = |now: DateTime<Utc>| {
        reconcile(
            &store,
            &policy,
            &rules,
            vec![hold.clone()],
            now,
            PassConfig::default(),
            &|_| {},
        )
    };
    let held = |key: &str| {
        (
            store
                .tags(key)
                .and_then(|t| t.get(RETENTION_TAG).cloned())
                .unwrap_or_default(),
            store.legal_hold(key),
        )
    };
    let first = pass(start()).await.expect("the pass runs");
    assert_eq!(first.summary.held, 2);
    assert_eq!(held(transcript), ("held".to_string(), true));
    // The link pass reads the audio's tags first: that one read fails.
    store.inject(Fault {
        operation: Operation::GetObjectTagging,
        key: Some(audio.into()),
        category: ErrorCategory::ServerError,
        times: 1,
    });
    // Whether the pass goes on (it does today, its deletions blocked) or stops, it must not
    // lower the transcript's protection.
    if let Ok(second) = pass(start() + TimeDelta::hours(1)).await {
        assert_eq!(second.deleted, 0);
    }
    assert_eq!(
        held(transcript),
        ("held".to_string(), true),
        "the hold is active: the transcript must keep its `held` tag and its legal hold"
    );
}

/// Found by the property (fixed; a floor that started before its hold went). A complaint hold
/// is journaled, then dropped from the host's list; the next pass runs on a local clock 13.5 h
/// behind the store's. It dated the disappearance by the earlier of its two clocks, so the
/// hold's floor (release + holdRelease) started 13.5 h before the hold really went, and the
/// transcript got an `expire-<N>d` tag that let lifecycle expire it that much before its floor.
/// The fix: when the two clocks disagree (beyond the store `Date`'s whole seconds), a
/// disappearance is dated by the later one (at most one of the two is wrong).
#[tokio::test]
async fn a_hold_dropped_while_the_local_clock_is_behind_keeps_its_whole_floor() {
    let object = |kind, recording, age| ObjSpec {
        kind,
        recording,
        age,
        foreign_tags: 0,
        case: None,
        foreign_legal_hold: false,
        recorded_offset: None,
    };
    let clean = |clocks| Step::Pass {
        faults: Faults::none(),
        clocks,
        holds_now: HoldsNow::NotOffered,
    };
    let w = World {
        objects: vec![
            object(Kind::Transcript, 1, 11_604_765),
            object(Kind::Audio, 2, 0),
        ],
        audio: (12, 94),
        transcript: (5, 78),
        complaint_release: (6, 46),
        dispute_release: (0, 0),
        object_lock: false,
        versioned: false,
        operator_only: false,
        recorded_at_metadata: false,
        moves_last_modified: false,
        index: None,
        page_size: 1,
        concurrency: 1,
        steps: vec![
            Step::Advance { hours: 2310 },
            Step::Apply {
                select: Select::Recording(1),
                reason: 0,
                expires_in: None,
            },
            clean(Clocks::Agree),
            Step::Release {
                pick: 0,
                drop: true,
            },
            clean(Clocks::LocalOff(-48_765)),
        ],
    };
    if let Err(e) = play(&w).await {
        panic!("{e}");
    }
}
