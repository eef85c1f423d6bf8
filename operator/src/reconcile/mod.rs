//! One reconcile pass over one bucket, independent of the host: read the bucket, decide with
//! the pure engine, apply what the enforcement mode allows, and report counts as data.
//!
//! Write order is chosen so that a crash at any point leaves nothing deletable early and no held
//! object unprotected:
//! - a newly held object gets its Object Lock legal hold first, then the `held` tag (which no
//!   lifecycle rule matches);
//! - a released object gets its new tag first, then the legal hold is lifted;
//! - `gallring.io/keep-until` is written in the same tag write that changes the retention tag;
//! - lifecycle rules only ever match `expire-<N>d` tags, and such a tag is only written when
//!   creation + N days is not before the object's deadline.

pub mod cache;
pub mod fence;
mod protect;
pub mod requests;

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use futures::StreamExt;
use serde::Serialize;

use crate::retention::lifecycle::{self, LifecycleRule};
use crate::retention::{
    BucketRules, Decision, Deleter, Hold, HoldLinker, KEEP_UNTIL_TAG, ObjectInfo, ObjectPlan,
    Planner, Policy, RETENTION_TAG, RecordedAtSource, RecordingIdSource, Summary,
};
use crate::retention::{WITHDRAWN_AT_TAG, WITHDRAWN_TAG};
use crate::state::journal::{
    Fact, FirstSeen, HoldRecord, IntendedDeletion, Journal, JournalError, JournalState, VersionRef,
    WithdrawalSeen,
};
use crate::state::seen::Upto;
use crate::store::{
    ErrorCategory, ObjectHead, ObjectId, ObjectStore, Operation, StoreError, StoredRule,
    lifecycle_map,
};

pub use cache::{IndexConfig, IndexReport};
pub use fence::Fence;

/// Tuning for a pass.
#[derive(Debug, Clone)]
pub struct PassConfig {
    /// Objects per listing page (S3 maximum 1,000).
    pub page_size: i32,
    /// Per-object requests in flight at once.
    pub concurrency: usize,
    /// Checked before every write: a pass whose host lost leadership stops writing.
    pub fence: Fence,
    /// Re-reads the host's holds right before each delete batch: a hold created during the
    /// pass stops its deletions.
    pub holds_now: Option<HoldsSource>,
    /// Operator deletions stop when the local clock and the store's differ by more.
    pub max_clock_skew: chrono::Duration,
    /// Where the journal is (`spec.state`).
    pub state: crate::retention::StateLocation,
    /// The local index: without one, every object is read in every pass.
    pub index: Option<IndexConfig>,
    /// Seals every journal segment written (issue 11); `None`: the chain alone.
    pub signer: Option<std::sync::Arc<crate::state::seal::Signer>>,
    /// How long the store's lifecycle "day" is: a day on AWS S3; seconds on a test store such
    /// as Ceph RGW with `rgw lc debug interval`. Only used to tell a lifecycle expiry from a
    /// removal by someone else in the journal.
    pub lifecycle_day: chrono::Duration,
    /// The host's data-subject requests for this bucket (restrictions also as holds).
    pub requests: Vec<crate::retention::SubjectRequest>,
    /// First-seen entries per journal shard ([`crate::state::seen`]).
    pub seen_shard_entries: usize,
}

impl Default for PassConfig {
    fn default() -> Self {
        PassConfig {
            page_size: 1000,
            concurrency: 16,
            fence: Fence::default(),
            holds_now: None,
            max_clock_skew: chrono::Duration::seconds(DEFAULT_MAX_CLOCK_SKEW_SECONDS),
            state: crate::retention::StateLocation::default(),
            index: None,
            signer: None,
            lifecycle_day: chrono::Duration::days(1),
            requests: Vec::new(),
            seen_shard_entries: crate::state::seen::SHARD_ENTRIES,
        }
    }
}

/// The default bound on clock skew between gallring and the store.
pub const DEFAULT_MAX_CLOCK_SKEW_SECONDS: i64 = 60;

/// The host's holds as they are now (an error keeps the pass from deleting).
pub type HoldsFuture = futures::future::BoxFuture<'static, Result<Vec<Hold>, String>>;

/// Where a pass re-reads the host's holds.
#[derive(Clone)]
pub struct HoldsSource(pub std::sync::Arc<dyn Fn() -> HoldsFuture + Send + Sync>);

impl std::fmt::Debug for HoldsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HoldsSource")
    }
}

/// What happened to the lifecycle configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum LifecycleOutcome {
    /// The owned rules already matched.
    InSync { rules: usize },
    /// The owned rules were rewritten (foreign rules kept).
    Updated { rules: usize },
    /// Observe mode: not written; `drift` tells whether a write would have changed anything.
    NotWritten { drift: bool },
    /// The existing configuration could not be read or understood; left untouched.
    Untouched { reason: String },
    /// Not written: the store would lose part of the rules named (ids, comma-separated), which
    /// gallring does not own. A person must look; gallring changes nothing meanwhile.
    Refused { rules: String, reason: String },
}

impl LifecycleOutcome {
    pub fn in_sync(&self) -> bool {
        matches!(
            self,
            LifecycleOutcome::InSync { .. }
                | LifecycleOutcome::Updated { .. }
                | LifecycleOutcome::NotWritten { drift: false }
        )
    }
}

/// The result of a pass, as data: status and metrics are computed from it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassReport {
    pub now: DateTime<Utc>,
    /// The clock the pass decided by: the earlier of `now` and the store's.
    pub decided_at: DateTime<Utc>,
    pub versioned: bool,
    pub object_lock: bool,
    /// Counts over the objects that remain after this pass's deletions.
    pub summary: Summary,
    pub lifecycle: LifecycleOutcome,
    pub lifecycle_rules: Vec<LifecycleRule>,
    pub tags_written: u64,
    pub legal_holds_set: u64,
    pub legal_holds_cleared: u64,
    pub deleted: u64,
    pub deleted_bytes: u64,
    pub delete_failures: u64,
    /// Per-object failures (tagging, legal hold); the pass goes on past them.
    pub object_errors: u64,
    /// The first few per-object errors, for logs and Events.
    pub sample_errors: Vec<String>,
    /// Deleted objects per artifact kind.
    pub deleted_by_kind: BTreeMap<String, u64>,
    /// Deleted objects per data controller of their purposes.
    pub deleted_by_controller: BTreeMap<String, u64>,
    /// The public key the journal's seals verify under (hex Ed25519), when the host signs.
    pub journal_public_key: Option<String>,
    /// The first few deleted keys with the reason, for logs and Events.
    pub deleted_sample: Vec<String>,
    /// Facts made durable in the journal by this pass.
    pub journal_facts: u64,
    /// Whether this quiet pass wrote the journal's checkpoint, so later loads read no
    /// segment from before it.
    pub journal_settled: bool,
    /// Ids of foreign lifecycle rules that can expire governed objects (or the journal) by
    /// S3's own clock, whatever their deadline or hold.
    pub dangerous_rules: Vec<String>,
    /// Objects whose state could not be read (tags or metadata unreadable): neither decided
    /// nor counted in `summary`; they may be overdue.
    pub unknown_objects: u64,
    pub unknown_bytes: u64,
    /// Why operator deletions did not run in this pass (clock skew, holds changed mid-pass,
    /// holds that could not be linked); the objects stay and are counted as they are.
    pub deletes_blocked: Option<Blocked>,
    /// Deletions due but not made because of `deletes_blocked`.
    pub deletes_deferred: u64,
    /// Planned deletions skipped because the object changed after it was listed (a new
    /// upload under the same key).
    pub deletes_skipped_changed: u64,
    /// Local clock minus the store's (from the responses' `Date`), when known.
    pub clock_skew_seconds: Option<i64>,
    /// Objects whose listed `LastModified` moved after gallring first saw them with the same
    /// content (a store that moves it on tag writes); deadlines count from the first one.
    pub last_modified_moved: u64,
    /// Withdrawals read from tags and journaled in this pass (effective from the next pass).
    pub withdrawals_journaled: u64,
    /// What the index saved and cost.
    pub index: IndexReport,
    /// Objects a hold applied in this pass protected through the index, before the listing.
    pub protected_ahead: u64,
    /// Versions gallring did not delete that a complete listing no longer shows (with an
    /// index): expired by a lifecycle rule, or removed by others (journaled either way).
    pub gone_by_lifecycle: u64,
    pub gone_by_others: u64,
    /// What the pass made of each data-subject request, by name.
    pub requests: BTreeMap<String, requests::RequestReport>,
    /// Per request, while the pass runs.
    #[serde(skip)]
    pub request_tallies: BTreeMap<String, crate::retention::RequestTally>,
}

/// Why a pass made no operator deletions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocked {
    /// `ClockSkew`, `HoldsChanged`, `HoldsUnreadable` or `HoldsUnlinked` (condition reasons).
    pub reason: &'static str,
    pub message: String,
}

impl Blocked {
    fn new(reason: &'static str, message: String) -> Self {
        Blocked { reason, message }
    }
}

/// A pass that could not run or was stopped: nothing after the failure was written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PassError {
    /// The bucket as a whole is unreachable or denied.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host lost leadership: the pass stopped before its next write.
    #[error("leadership lost: the pass stopped before its next write")]
    Fenced,
    /// gallring's journal could not be read or written: nothing that lowers protection ran.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl PassError {
    /// The closed set used in metric and Event labels.
    pub fn category(&self) -> &'static str {
        match self {
            PassError::Store(e) => e.category.as_str(),
            PassError::Fenced => "fenced",
            PassError::Journal(JournalError::Store(e)) => e.category.as_str(),
            PassError::Journal(JournalError::Corrupt { .. }) => "journal_corrupt",
        }
    }

    /// The message without volatile parts (request ids), for conditions.
    pub fn stable(&self) -> String {
        match self {
            PassError::Store(e) | PassError::Journal(JournalError::Store(e)) => e.stable(),
            PassError::Fenced | PassError::Journal(_) => self.to_string(),
        }
    }
}

/// Progress after each listing page.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub listed: u64,
    pub pages: u64,
    /// Objects protected ahead of the listing for holds applied in this pass (reported once,
    /// before the first page).
    pub protected: u64,
}

impl Progress {
    /// Logs what a host's operators want to see as it happens: a new hold's objects protected
    /// (before the listing, so that the time from the hold to its protection is on record).
    pub fn log_protected(&self, bucket: &dyn std::fmt::Display) {
        if self.pages == 0 && self.protected > 0 {
            tracing::info!(
                bucket = %bucket,
                protected = self.protected,
                "new holds' objects protected ahead of the listing"
            );
        }
    }
}

/// Listing pages the lister may run ahead of the pass.
const LIST_AHEAD: usize = 4;
/// Ranges of the listing requested side by side, where the index says where to cut it.
const RANGES_IN_FLIGHT: usize = 8;
/// Entries the index puts in one range of the listing: under a page, so that a range that
/// gained a few objects since still takes one request.
fn range_entries(page_size: i32) -> usize {
    (usize::try_from(page_size).unwrap_or(1) * 9 / 10).max(1)
}
/// Objects decided from the index between two yields to the lister.
const YIELD_EVERY: usize = 128;
const MAX_SAMPLE_ERRORS: usize = 5;
const MAX_SAMPLE_DELETED: usize = 8;

/// The tag set to write: the current one with the operator's keys changed, or `None` when the
/// current one is already right. Foreign tags are never changed or dropped.
pub fn merge_tags(
    current: &BTreeMap<String, String>,
    plan: &ObjectPlan,
) -> Option<BTreeMap<String, String>> {
    let want = plan.tag.as_ref()?;
    // The usual case, the tag already there and no floor to mirror, without a copy.
    if plan.keep_until.is_none() && current.get(RETENTION_TAG) == Some(want) {
        return None;
    }
    let mut next = current.clone();
    let governed = current.contains_key(RETENTION_TAG) || plan.decision != Decision::Unclassified;
    if !governed {
        // An unclassified object the operator never tagged stays untouched.
        return None;
    }
    next.insert(RETENTION_TAG.to_string(), want.clone());
    if let Some(floor) = plan.keep_until {
        let existing = current
            .get(KEEP_UNTIL_TAG)
            .and_then(|v| crate::retention::classify::parse_instant(v));
        if existing.is_none_or(|e| floor > e) {
            next.insert(
                KEEP_UNTIL_TAG.to_string(),
                floor.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
    }
    if next.len() > crate::retention::MAX_TAGS && !current.contains_key(KEEP_UNTIL_TAG) {
        // No room for the floor's mirror: the floor itself is in the journal, and the
        // retention tag (which lifecycle reads) matters more.
        next.remove(KEEP_UNTIL_TAG);
    }
    (next != *current && next.len() <= crate::retention::MAX_TAGS).then_some(next)
}

/// Everything one object needs decided and applied.
struct ObjectOutcome {
    plan: ObjectPlan,
    tags_written: bool,
    /// gallring turned this version's legal hold on (journaled after the page).
    legal_hold_set: bool,
    /// gallring turned off a legal hold it had set (journaled after the page).
    legal_hold_cleared: bool,
    delete: bool,
    /// Writes were due but leadership was lost: nothing was written.
    fenced: bool,
    /// Needs a legal hold that gallring will set: its writes wait until the page's intents
    /// are journaled.
    deferred: Option<ObjectInfo>,
    error: Option<StoreError>,
    /// Its tags or metadata could not be read: nothing decided, nothing written.
    unknown: bool,
    /// A withdrawal its tag asks for that the journal does not have yet.
    new_withdrawal: Option<WithdrawalSeen>,
    etag: Option<String>,
    listed_modified: DateTime<Utc>,
    /// The object as read in this pass (tags as written when this pass wrote them): the
    /// index entry. `None` when it was decided from the index or could not be read.
    seen: Option<ObjectInfo>,
    /// What the index said (`None` without an index).
    lookup: Option<cache::Lookup>,
    /// Decided from the index, without a request.
    hit: bool,
}

impl ObjectOutcome {
    fn new(plan: ObjectPlan, listed: &crate::store::ListedObject) -> Self {
        ObjectOutcome {
            plan,
            tags_written: false,
            legal_hold_set: false,
            legal_hold_cleared: false,
            delete: false,
            fenced: false,
            deferred: None,
            error: None,
            unknown: false,
            new_withdrawal: None,
            etag: listed.etag.clone(),
            listed_modified: listed.last_modified,
            seen: None,
            lookup: None,
            hit: false,
        }
    }
}

/// Where linking lists (`None`: the whole bucket), from what the holds need and what a listing
/// of the whole bucket would cost in pages where the index knows (`full_pages`). A hold by key
/// or prefix lists its own ranges, unless they are more listings than the whole bucket: many
/// single keys spread over a small bucket.
pub(crate) fn link_ranges(
    scope: crate::retention::LinkScope,
    requests_need_listing: bool,
    prefix: Option<&str>,
    full_pages: Option<u64>,
) -> Vec<Option<String>> {
    use crate::retention::LinkScope;
    let whole = vec![prefix.map(str::to_string)];
    match scope {
        _ if requests_need_listing => whole,
        LinkScope::Everything => whole,
        LinkScope::Nothing => Vec::new(),
        LinkScope::Ranges(r) if r.len() as u64 > full_pages.unwrap_or(MAX_LINK_RANGES) => whole,
        LinkScope::Ranges(r) => r.into_iter().map(Some).collect(),
    }
}

/// Without an index to size the bucket: at most this many listings of a hold's own ranges.
const MAX_LINK_RANGES: u64 = 64;

pub(crate) fn needs_tags(rules: &BucketRules, holds: &[Hold]) -> bool {
    // Tags are always read in the main pass; for the linking pass only when holds or ids use them.
    matches!(rules.recording_id, Some(RecordingIdSource::Tag(_)))
        || holds
            .iter()
            .any(|h| !h.select.tags.is_empty() || !h.select.subjects.is_empty())
}

pub(crate) async fn fetch_object<S: ObjectStore>(
    store: &S,
    rules: &BucketRules,
    listed: &crate::store::ListedObject,
    with_tags: bool,
) -> Result<ObjectInfo, StoreError> {
    let id = ObjectId {
        key: listed.key.clone(),
        version_id: listed.version_id.clone(),
    };
    let tags = if with_tags {
        store.get_tags(&id).await?
    } else {
        BTreeMap::new()
    };
    let metadata = match rules.recorded_at {
        RecordedAtSource::Metadata(_) if with_tags => store.get_metadata(&id).await?,
        _ => BTreeMap::new(),
    };
    Ok(ObjectInfo {
        key: listed.key.clone(),
        version_id: listed.version_id.clone(),
        last_modified: listed.last_modified,
        size: listed.size,
        tags,
        metadata,
    })
}

/// Runs one pass, with the journal in the recordings bucket. `holds` are the bucket's holds
/// (active, expired or released); `now` is read by the host.
pub async fn reconcile<S: ObjectStore>(
    store: &S,
    policy: &Policy,
    rules: &BucketRules,
    holds: Vec<Hold>,
    now: DateTime<Utc>,
    config: PassConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<PassReport, PassError> {
    reconcile_in(store, store, policy, rules, holds, now, config, progress).await
}

/// Runs one pass with the journal in `state` (`config.state` says where in it).
#[allow(clippy::too_many_arguments)]
pub async fn reconcile_in<S: ObjectStore, J: ObjectStore>(
    store: &S,
    state: &J,
    policy: &Policy,
    rules: &BucketRules,
    holds: Vec<Hold>,
    now: DateTime<Utc>,
    config: PassConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<PassReport, PassError> {
    // A policy's `maxHold` ends a hold as its `expires` would.
    let holds = policy.cap_holds(holds);
    let info = store.bucket_info().await?;
    // A cold local index starts from the last snapshot (a new leader, a new host), before the
    // listing, which is cut where the index says.
    let restored = match &config.index {
        Some(ix) => {
            let key = cache::snapshot_key(&config.state.prefix);
            Some(cache::restore_if_empty(&ix.index, state, &key).await)
        }
        None => None,
    };
    // Where the last complete listing was cut, or else every 900th key of the index: a cut
    // anywhere else costs one more request, never an object (see `ListAhead`). Off the
    // runtime's threads: without recorded cuts it reads every key of the index (about 2 s at
    // 10 million).
    let splits = match &config.index {
        Some(ix) if !info.versioned => {
            let index = ix.index.clone();
            let every = range_entries(config.page_size);
            tokio::task::spawn_blocking(move || match index.cuts() {
                Ok(cuts) if !cuts.is_empty() => Ok(cuts),
                _ => index.split_keys(every),
            })
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
        }
        // A version listing is not cut (see `ObjectStore::list_page_after`).
        _ => Vec::new(),
    };
    // The listing runs ahead of the pass from the start (up to `LIST_AHEAD` pages), beside
    // the journal's load and the hold-first step: a pass with nothing to do costs about its
    // listing. Listing is only reading; every decision waits for the journal. On a task of its
    // own where the store allows: parsing a page then overlaps the work on the one before.
    let (pages_tx, pages_rx) = futures::channel::mpsc::channel(LIST_AHEAD);
    let job = crate::store::ListAhead {
        prefix: rules.prefix.clone(),
        versions: info.versioned,
        page_size: config.page_size,
        tx: pages_tx,
        splits,
        ranges_in_flight: RANGES_IN_FLIGHT,
        // The journal's keys, when it is in this bucket: never governed (`is_state_key`).
        skip: (state.bucket() == store.bucket() && !config.state.prefix.is_empty())
            .then(|| config.state.prefix.clone()),
    };
    let pass = pass(
        store, state, policy, rules, holds, now, config, progress, info, restored, pages_rx,
    );
    match store.spawn_listing(job) {
        Ok(_listing) => pass.await,
        Err(job) => {
            let ((), report) = futures::join!(job.run(store), pass);
            report
        }
    }
}

/// Pages listed ahead of the pass that reads them.
type PagesRx = futures::channel::mpsc::Receiver<Result<crate::store::Page, StoreError>>;

/// The next page the lister sent.
async fn next_page(
    rx: &mut PagesRx,
    store: &impl ObjectStore,
) -> Result<crate::store::Page, StoreError> {
    use futures::StreamExt;
    match rx.next().await {
        Some(page) => page,
        // The lister sends until the last page or an error: only a panic ends it before.
        None => Err(StoreError {
            bucket: store.bucket().to_string(),
            operation: crate::store::Operation::ListObjects,
            key: None,
            category: ErrorCategory::Other,
            message: "the listing stopped before its last page".into(),
            request_id: None,
        }),
    }
}

/// The pass proper, reading the listing from `listing` (pages the lister sent).
#[allow(clippy::too_many_arguments)]
async fn pass<S: ObjectStore, J: ObjectStore>(
    store: &S,
    state: &J,
    policy: &Policy,
    rules: &BucketRules,
    holds: Vec<Hold>,
    now: DateTime<Utc>,
    config: PassConfig,
    progress: &(dyn Fn(Progress) + Sync),
    info: crate::store::BucketInfo,
    restored: Option<Result<u64, crate::state::index::IndexError>>,
    mut listing: PagesRx,
) -> Result<PassReport, PassError> {
    // The journal's prefix in the recordings bucket, when it is there: never governed.
    let own_prefix = (state.bucket() == store.bucket()).then_some(config.state.prefix.as_str());
    let enforcement = rules.enforcement;
    let writes = enforcement != crate::retention::Enforcement::Observe;

    // Two clocks: the pass decides, and dates what it observes, by the earlier one, so a fast
    // local clock (or a fast store) never deletes early. Beyond a bound, operator deletions
    // stop altogether.
    let store_now = store.server_time();
    let clock_skew = store_now.map(|s| (now - s).num_seconds());
    let early = store_now.map_or(now, |s| s.min(now));
    let mut deletes_blocked = clock_skew
        .filter(|k| k.abs() > config.max_clock_skew.num_seconds())
        .map(|k| {
            Blocked::new(
                "ClockSkew",
                format!(
                    "the local clock differs from the store's by {k} s (limit {} s): no deletions until the clocks agree",
                    config.max_clock_skew.num_seconds()
                ),
            )
        });

    // The journal first: a release must be durable before anything acts on it.
    let mut journal = Journal::load(state, &config.state.prefix)
        .await?
        .retain_for(config.state.retention)
        .signed_by(config.signer.clone())
        .with_shard_entries(config.seen_shard_entries);
    let records_at_load = journal.next_seq();
    // Records are dated by the pass's clock, a lower bound of the store's: the store's clock
    // has moved on since, so a later pass never decides by an earlier time than an earlier
    // pass wrote (the `Date` header has whole seconds; two passes within one second would
    // otherwise see a release a moment "in the future").
    let early = journal.last_at().map_or(early, |t| early.max(t.min(now)));
    tracing::debug!(bucket = store.bucket(), "pass: journal loaded");
    // A hold gone from the host's list went some time before this pass. When the two clocks
    // agree to within the store's `Date` resolution (whole seconds), the clock the pass
    // decides by dates it, and a release without a floor takes effect in this pass. Beyond
    // that, the later clock dates it (at most one of the two is wrong): a local clock hours
    // behind must not start the hold's floor hours before the hold went.
    let late = store_now.map_or(now, |s| s.max(now)).max(early);
    let gone = if late - early < chrono::TimeDelta::seconds(1) {
        early
    } else {
        late
    };
    let facts = hold_facts(journal.state(), &holds, early, gone);
    // Holds applied (or changed) now: protected first, through the index, before the listing.
    let applied_now: std::collections::BTreeSet<String> = facts
        .iter()
        .filter_map(|f| match f {
            Fact::HoldApplied(r) => Some(r.hold.clone()),
            _ => None,
        })
        .collect();
    let mut journal_facts = 0u64;
    if writes && !facts.is_empty() {
        if !config.fence.allows() {
            return Err(PassError::Fenced);
        }
        journal_facts += facts.len() as u64;
        journal.append(state, early, facts).await?;
    }
    // Requests too: each new or changed one is durable before the pass acts on it.
    let request_facts = requests::received_facts(journal.state(), &config.requests);
    if writes && !request_facts.is_empty() {
        if !config.fence.allows() {
            return Err(PassError::Fenced);
        }
        journal_facts += request_facts.len() as u64;
        journal.append(state, early, request_facts).await?;
    }
    let subject_requests = requests::in_effect(journal.state(), &config.requests);
    let host_holds = holds.clone();
    let holds = engine_holds(journal.state(), holds, policy, rules.grace, early, writes);

    // Lifecycle first: removing stale owned rules can only make expiry later, never earlier.
    let (lifecycle_outcome, lifecycle_rules, dangerous_rules) = sync_lifecycle(
        store,
        policy,
        rules,
        info.versioned,
        writes,
        &config.fence,
        own_prefix,
    )
    .await?;
    tracing::debug!(bucket = store.bucket(), "pass: lifecycle read");

    let mut report = PassReport {
        now,
        decided_at: early,
        versioned: info.versioned,
        object_lock: info.object_lock,
        summary: Summary::default(),
        lifecycle: lifecycle_outcome,
        lifecycle_rules,
        tags_written: 0,
        legal_holds_set: 0,
        legal_holds_cleared: 0,
        deleted: 0,
        deleted_bytes: 0,
        delete_failures: 0,
        object_errors: 0,
        sample_errors: Vec::new(),
        deleted_by_kind: BTreeMap::new(),
        deleted_by_controller: BTreeMap::new(),
        journal_public_key: config.signer.as_ref().map(|s| s.public_hex()),
        deleted_sample: Vec::new(),
        journal_facts: 0,
        journal_settled: false,
        dangerous_rules,
        unknown_objects: 0,
        unknown_bytes: 0,
        deletes_blocked: None,
        deletes_deferred: 0,
        deletes_skipped_changed: 0,
        clock_skew_seconds: clock_skew,
        last_modified_moved: 0,
        withdrawals_journaled: 0,
        index: IndexReport::default(),
        protected_ahead: 0,
        gone_by_lifecycle: 0,
        gone_by_others: 0,
        requests: BTreeMap::new(),
        request_tallies: BTreeMap::new(),
    };
    let snapshot_key = cache::snapshot_key(&config.state.prefix);
    match restored {
        Some(Ok(n)) => report.index.restored = n,
        Some(Err(e)) => report.index.error(&e),
        None => {}
    }
    if let Some(ix) = config
        .index
        .as_ref()
        .filter(|_| writes && !applied_now.is_empty())
    {
        report.protected_ahead = protect::protect_new_holds(
            store,
            state,
            &mut journal,
            policy,
            rules,
            &holds,
            &applied_now,
            &ix.index,
            early,
            info.object_lock,
            &config,
            &mut report,
        )
        .await?;
        progress(Progress {
            listed: 0,
            pages: 0,
            protected: report.protected_ahead,
        });
    }

    // Link holds to recording ids (a hold on the audio reaches the transcript).
    let prefix = rules.prefix.as_deref();
    // A hold that selects by tags (or by subject, a tag) must see tags as they are now:
    // with one, every object is read, as without an index.
    let index = config.index.as_ref().filter(|_| {
        !holds
            .iter()
            .any(|h| !h.select.tags.is_empty() || !h.select.subjects.is_empty())
    });
    let mut linker =
        HoldLinker::new(rules, policy.time_zone, holds).with_requests(subject_requests.clone());
    // Each request's tally; an erasure knows when it completed, so that a recording deleted
    // under it later counts as reappeared only if it came back after that.
    for r in &subject_requests {
        let known = journal.state().requests.get(&r.name);
        let completed = known.is_some_and(|s| s.completed_at.is_some());
        let kept = known
            .and_then(|s| s.outcome.as_ref())
            .map(|o| o.kept_ids.clone())
            .unwrap_or_default();
        report.request_tallies.insert(
            r.name.clone(),
            crate::retention::RequestTally::for_request(r, completed, kept),
        );
    }
    // Requests link through the index where it is warm (a complete listing swept into it):
    // their subjects' recording ids come from its subject table, so the withdrawals and
    // erasures that stay in effect for years cost no listing of their own. A request not yet
    // answered links over a listing all the same (objects uploaded since the last one are in
    // no index yet, and its answer must be complete).
    let index_warm = config
        .index
        .as_ref()
        .filter(|ix| matches!(ix.index.listed_at(), Ok(Some(_))));
    let needs_link =
        |r: &crate::retention::SubjectRequest| !r.subjects.is_empty() || !r.keys.is_empty();
    if let Some(ix) = index_warm {
        let q = crate::state::index::Selection {
            subjects: subject_requests
                .iter()
                .flat_map(|r| r.subjects.iter().cloned())
                .collect(),
            keys: subject_requests
                .iter()
                .flat_map(|r| r.keys.iter().cloned())
                .collect(),
            ..Default::default()
        };
        if !q.subjects.is_empty() || !q.keys.is_empty() {
            match ix.index.select(&q) {
                Ok(entries) => {
                    protect::observe_dated(&mut linker, &mut journal, state, &entries).await?
                }
                Err(e) => report.index.error(&e),
            }
        }
    }
    let unanswered = |r: &crate::retention::SubjectRequest| {
        journal
            .state()
            .requests
            .get(&r.name)
            .is_none_or(|s| s.completed_at.is_none())
    };
    let requests_need_listing = rules.recording_id.is_some()
        && subject_requests
            .iter()
            .filter(|r| needs_link(r))
            .any(|r| index_warm.is_none() || unanswered(r));
    let linking = link_ranges(
        linker.link_scope(),
        requests_need_listing,
        prefix,
        config
            .index
            .as_ref()
            .and_then(|ix| ix.index.len().ok())
            .map(|n| n / u64::try_from(config.page_size.max(1)).unwrap_or(1) + 1),
    );
    let mut link_incomplete = false;
    if !linking.is_empty() {
        // A request about a subject links through the subject tag, and takes only the calls
        // recorded before it (the recorded-at tag): both need tags.
        let with_tags = needs_tags(rules, linker.holds())
            || subject_requests.iter().any(|r| !r.subjects.is_empty());
        let by_time = !subject_requests.is_empty()
            || linker.holds().iter().any(|h| h.select.scoped_by_time());
        let misses = LinkListing {
            ranges: &linking,
            versioned: info.versioned,
            page_size: config.page_size,
            by_time,
            with_tags,
            rules,
            own_prefix,
            index: index.map(|ix| (ix, early)),
        }
        .observe(store, state, &mut journal, &mut linker, &mut report.index)
        .await?;
        let unreadable = misses.unreadable;
        report.object_errors += unreadable;
        for e in misses.sample {
            if report.sample_errors.len() < MAX_SAMPLE_ERRORS {
                report.sample_errors.push(e);
            }
        }
        link_incomplete = unreadable > 0;
        if unreadable > 0 && deletes_blocked.is_none() {
            deletes_blocked = Some(Blocked::new(
                "HoldsUnlinked",
                format!(
                    "{unreadable} object(s) could not be read to link holds to recordings: this pass deletes nothing and lowers no protection"
                ),
            ));
        }
    }
    let linked = linker.finish();
    let planner = Planner::new(policy, rules, &linked, early);
    // Objects decided from the index are kept as they are: nobody reads their reasons.
    let quiet = Planner::new(policy, rules, &linked, early).without_reasons();

    let deleter = Deletions {
        store,
        state,
        fence: &config.fence,
        holds_now: config.holds_now.as_ref(),
        host_holds: &host_holds,
        now: early,
        versioned: info.versioned,
        index: config.index.as_ref().map(|ix| ix.index.as_ref()),
        removes_markers: info.versioned && enforcement == crate::retention::Enforcement::Operator,
    };
    let mut listed = 0u64;
    let mut pages = 0u64;
    // What each page completes of the listing: versions the journal or the index remember
    // and the listing did not show are gone (acted on once the listing is complete).
    let mut coverage = cache::Coverage::default();
    let mut journal_gone: std::collections::BTreeSet<VersionRef> = Default::default();
    // With the creation time gallring first saw, looked up while its shard is in memory.
    let mut index_gone: Vec<(DateTime<Utc>, crate::state::index::Entry)> = Vec::new();
    // Every `range_entries`-th key listed: where the next pass cuts its listing.
    let cut_every = range_entries(config.page_size) as u64;
    let mut cuts: Vec<String> = Vec::new();
    let mut listed_governed = 0u64;
    // The previous page's deletions, made once the next page is listed: Ceph RGW ends a
    // version listing early when the version its marker names was deleted.
    let mut pending: Vec<Candidate> = Vec::new();
    loop {
        let crate::store::Page {
            objects: page_objects,
            next: next_token,
        } = next_page(&mut listing, store).await?;
        let last_page = next_token.is_none();
        if !pending.is_empty() {
            deleter
                .run(
                    std::mem::take(&mut pending),
                    &mut report,
                    &mut journal,
                    &mut deletes_blocked,
                )
                .await?;
        }
        pages += 1;
        listed += page_objects.len() as u64;
        // Owned items keep the futures free of higher-ranked borrows, so the pass stays `Send`.
        let objects: Vec<crate::store::ListedObject> = page_objects
            .into_iter()
            .filter(|o| !o.delete_marker && !is_state_key(&o.key, own_prefix))
            .collect();
        if config.index.is_some() && !info.versioned {
            for (i, o) in objects.iter().enumerate() {
                if (listed_governed + i as u64 + 1).is_multiple_of(cut_every) {
                    cuts.push(o.key.clone());
                }
            }
            listed_governed += objects.len() as u64;
        }
        let window = coverage.next(&objects, last_page);
        // The first-seen shards of the keys this page lists or completes; the others leave
        // memory (the listing is in key order, so each shard is read once a pass).
        {
            let lo = window.from.as_deref().or(prefix).unwrap_or("");
            let upto = match (window.until.as_deref(), prefix) {
                (Some(u), _) => Upto::Key(u),
                (None, Some(p)) => Upto::Prefix(p),
                (None, None) => Upto::End,
            };
            journal.prepare_seen(state, lo, upto).await?;
        }
        journal_gone.extend(
            forgotten_in(journal.state(), &window)
                .into_iter()
                .filter(|v| prefix.is_none_or(|p| v.key.starts_with(p)))
                .filter(|v| !is_state_key(&v.key, own_prefix)),
        );
        // Creation times as first seen, durable before any tag write can move them (one
        // lookup per object: journaled already, and moved since?).
        let mut unseen: Vec<FirstSeen> = Vec::new();
        for o in &objects {
            match journal
                .state()
                .first_seen(&listed_ref(o), o.etag.as_deref())
            {
                Some(s) => {
                    report.last_modified_moved += u64::from(s.last_modified < o.last_modified)
                }
                None => unseen.push(FirstSeen {
                    key: o.key.clone(),
                    version_id: o.version_id.clone(),
                    etag: o.etag.clone(),
                    last_modified: o.last_modified,
                }),
            }
        }
        if writes && !unseen.is_empty() {
            if !config.fence.allows() {
                return Err(PassError::Fenced);
            }
            journal
                .append(
                    state,
                    early,
                    vec![Fact::ObjectsFirstSeen { objects: unseen }],
                )
                .await?;
            journal_facts += 1;
        }
        // Decided from the index where it can be (see `cache`); the rest is read. The entries
        // of objects about to be read (and perhaps written) are dropped first, so that a crash
        // mid-page never leaves an entry that disagrees with tags written after it.
        // With a hold by tag no object is decided from the index, but the index is kept in
        // step all the same.
        let mut outcomes: Vec<ObjectOutcome> = Vec::new();
        let mut to_read: Vec<(crate::store::ListedObject, Option<cache::Lookup>)> = Vec::new();
        match config.index.as_ref() {
            Some(ix) => {
                let entries = match cache::join_page(&ix.index, &objects, &window) {
                    Ok((entries, gone)) => {
                        let js = journal.state();
                        index_gone.extend(gone.into_iter().map(|e| {
                            let id = VersionRef {
                                key: e.key.clone(),
                                version_id: e.version_id.clone(),
                            };
                            (js.created(&id, e.etag.as_deref(), e.last_modified), e)
                        }));
                        entries
                    }
                    Err(e) => {
                        report.index.error(&e);
                        vec![None; objects.len()]
                    }
                };
                let mut stale = Vec::new();
                let mut moved = Vec::new();
                for (i, (o, e)) in objects.into_iter().zip(entries).enumerate() {
                    if i % YIELD_EVERY == 0 {
                        // Decisions from the index are CPU only: let the lister send its
                        // next request in between where it shares this task (a store that
                        // cannot be moved to a task of its own), and other tasks run.
                        tokio::task::yield_now().await;
                    }
                    let lookup = cache::lookup(e.as_ref(), &o, rules, early, ix.verify_interval);
                    let hit = e
                        .as_ref()
                        .filter(|_| index.is_some() && lookup == cache::Lookup::Fresh)
                        .and_then(|e| {
                            cached_outcome(&quiet, journal.state(), info.object_lock, e, &o)
                        });
                    if let Some(hit) = hit {
                        moved.extend(e.as_ref().and_then(|e| cache::moved(e, &o)));
                        outcomes.push(hit);
                        continue;
                    }
                    if e.is_some() {
                        stale.push((o.key.clone(), o.version_id.clone()));
                    }
                    to_read.push((o, Some(lookup)));
                }
                if let Err(e) = ix.index.remove_many(&stale) {
                    report.index.error(&e);
                }
                if let Err(e) = ix.index.put_many(&moved) {
                    report.index.error(&e);
                }
            }
            None => to_read = objects.into_iter().map(|o| (o, None)).collect(),
        }
        let cx = &ObjectContext {
            store,
            planner: &planner,
            rules,
            object_lock: info.object_lock,
            writes,
            fence: &config.fence,
            journal: journal.state(),
            protect_only: link_incomplete,
        };
        // Unordered, so that one slow object does not hold back the others' slots; put back in
        // listing order after.
        let mut read: Vec<(usize, ObjectOutcome)> =
            futures::stream::iter(to_read.into_iter().enumerate())
                .map(move |(i, (o, lookup))| async move {
                    let mut out = handle_object(cx, &o).await?;
                    out.lookup = lookup;
                    Some((i, out))
                })
                .buffer_unordered(config.concurrency.max(1))
                .filter_map(futures::future::ready)
                .collect()
                .await;
        read.sort_by_key(|(i, _)| *i);
        outcomes.extend(read.into_iter().map(|(_, o)| o));
        if outcomes.iter().any(|o| o.fenced) {
            return Err(PassError::Fenced);
        }
        // Legal holds gallring is about to set: their intent is durable first, then they are
        // set and the objects tagged `held`.
        journal_facts += set_deferred_legal_holds(
            store,
            state,
            &mut journal,
            &mut outcomes,
            early,
            info.object_lock,
            &config,
        )
        .await?;
        // Lifts are journaled per page, even if the pass stops after it.
        let lifted: Vec<VersionRef> = outcomes
            .iter()
            .filter(|o| o.legal_hold_cleared)
            .map(|o| version_ref(&o.plan))
            .collect();
        if !lifted.is_empty() {
            journal_facts += 1;
            journal
                .append(
                    state,
                    early,
                    vec![Fact::LegalHoldsLifted { objects: lifted }],
                )
                .await?;
        }
        // Withdrawals read from tags become facts; they count from the next pass on.
        let withdrawals: Vec<WithdrawalSeen> = outcomes
            .iter_mut()
            .filter_map(|o| o.new_withdrawal.take())
            .collect();
        if writes && !withdrawals.is_empty() {
            if !config.fence.allows() {
                return Err(PassError::Fenced);
            }
            report.withdrawals_journaled += withdrawals.len() as u64;
            journal_facts += 1;
            journal
                .append(
                    state,
                    early,
                    vec![Fact::WithdrawalsObserved {
                        objects: withdrawals,
                    }],
                )
                .await?;
        }
        if let Some(ix) = config.index.as_ref() {
            // The store's clock after this page's writes (its `Date` has whole seconds): a
            // `LastModified` they moved is no later.
            let written_before = store
                .server_time()
                .map(|t| t + chrono::Duration::seconds(1));
            // An object whose write failed gets no entry (the write may have been applied):
            // the next pass reads it.
            let fresh: Vec<crate::state::index::Entry> = outcomes
                .iter()
                .filter(|o| !o.unknown && o.error.is_none())
                .filter_map(|o| {
                    let seen = o.seen.as_ref()?;
                    Some(cache::entry_of(
                        seen,
                        o.etag.clone(),
                        o.listed_modified,
                        rules,
                        &o.plan,
                        early,
                        (o.tags_written || o.legal_hold_set || o.legal_hold_cleared)
                            .then_some(written_before)
                            .flatten(),
                    ))
                })
                .collect();
            for o in &outcomes {
                let r = &mut report.index;
                match o.lookup {
                    _ if o.hit => r.hits += 1,
                    Some(cache::Lookup::Due) => r.verified += 1,
                    Some(cache::Lookup::Changed) => r.changed += 1,
                    Some(cache::Lookup::Fresh) => r.read_for_writes += 1,
                    None => {}
                }
            }
            if let Err(e) = ix.index.put_many(&fresh) {
                report.index.error(&e);
            }
        }
        let mut batch: Vec<Candidate> = Vec::new();
        for o in outcomes {
            if let Some(e) = o.error {
                report.object_errors += 1;
                if report.sample_errors.len() < MAX_SAMPLE_ERRORS {
                    report.sample_errors.push(e.to_string());
                }
            }
            if !o.unknown {
                for name in &o.plan.requests {
                    if let Some(r) = subject_requests.iter().find(|r| &r.name == name) {
                        report
                            .request_tallies
                            .entry(name.clone())
                            .or_insert_with(|| {
                                crate::retention::RequestTally::for_request(
                                    r,
                                    false,
                                    Default::default(),
                                )
                            })
                            .observe(r, &o.plan, &|p| basis_of(policy, p));
                    }
                }
                for name in &o.plan.requests_after {
                    if let Some(t) = report.request_tallies.get_mut(name) {
                        t.recorded_after += 1;
                    }
                }
            }
            report.tags_written += u64::from(o.tags_written);
            report.legal_holds_set += u64::from(o.legal_hold_set);
            report.legal_holds_cleared += u64::from(o.legal_hold_cleared);
            if o.unknown {
                report.unknown_objects += 1;
                report.unknown_bytes += o.plan.size;
            } else if o.delete && deletes_blocked.is_none() {
                batch.push(Candidate {
                    etag: o.etag,
                    listed_modified: o.listed_modified,
                    tagged: o.tags_written,
                    plan: o.plan,
                });
            } else {
                report.deletes_deferred += u64::from(o.delete);
                report.summary.add(&o.plan);
            }
        }
        // Deletions never wait past the next page's listing: the check right before them
        // stays fresh.
        pending = batch;
        progress(Progress {
            listed,
            pages,
            protected: report.protected_ahead,
        });
        if last_page {
            break;
        }
    }
    if !pending.is_empty() {
        deleter
            .run(pending, &mut report, &mut journal, &mut deletes_blocked)
            .await?;
    }
    // The listing was complete: versions the journal remembers that are gone (lifecycle,
    // others) are forgotten, so its state does not grow with every object ever stored.
    let gone: Vec<VersionRef> = journal_gone
        .into_iter()
        .filter(|v| {
            let state = journal.state();
            state.seen.may_contain(v) || state.withdrawals.contains_key(v)
        })
        .collect();
    if writes && !gone.is_empty() {
        if !config.fence.allows() {
            return Err(PassError::Fenced);
        }
        journal_facts += 1;
        journal
            .append(state, early, vec![Fact::ObjectsGone { objects: gone }])
            .await?;
    }
    // The listing was complete: the index forgets what it did not show (journaled as removed
    // by lifecycle or by others, when it was governed), and a new leader can start from a
    // recent copy of it.
    if let Some(ix) = &config.index {
        let since = ix.index.listed_at().unwrap_or(None);
        let ids: Vec<(String, Option<String>)> = index_gone
            .iter()
            .map(|(_, e)| (e.key.clone(), e.version_id.clone()))
            .collect();
        match ix.index.remove_many(&ids) {
            Ok(()) => {
                report.index.swept = index_gone.len() as u64;
                let observed: Vec<crate::state::journal::GoneObject> = index_gone
                    .iter()
                    .filter(|(_, e)| prefix.is_none_or(|p| e.key.starts_with(p)))
                    .map(|(created, e)| {
                        cache::gone_object(
                            e,
                            *created,
                            &report.lifecycle_rules,
                            (rules, policy),
                            config.lifecycle_day,
                            early,
                        )
                    })
                    .collect();
                for g in &observed {
                    match g.cause {
                        crate::state::journal::GoneCause::Lifecycle => {
                            report.gone_by_lifecycle += 1
                        }
                        crate::state::journal::GoneCause::Others => report.gone_by_others += 1,
                    }
                }
                if writes && !observed.is_empty() {
                    if !config.fence.allows() {
                        return Err(PassError::Fenced);
                    }
                    journal_facts += 1;
                    journal
                        .append(
                            state,
                            early,
                            vec![Fact::ObjectsGoneObserved {
                                since,
                                objects: observed,
                            }],
                        )
                        .await?;
                }
                if let Err(e) = ix.index.set_listed_at(early) {
                    report.index.error(&e);
                }
                if let Err(e) = ix.index.set_cuts(&cuts) {
                    report.index.error(&e);
                }
            }
            Err(e) => report.index.error(&e),
        }
        if writes && config.fence.allows() {
            match cache::snapshot_if_stale(
                &ix.index,
                state,
                &snapshot_key,
                early,
                ix.snapshot_interval,
            )
            .await
            {
                Ok(n) => report.index.snapshot_entries = n,
                Err(e) => report.index.error(&e),
            }
        }
    }
    // What each data-subject request came to: journaled when its answer changed.
    let (request_facts, request_reports) = requests::conclude(
        requests::Concluding {
            state_store: state,
            state_prefix: &config.state.prefix,
            bucket: store.bucket(),
            policy,
            now: early,
            writes,
            complete: deletes_blocked.is_none() && report.object_errors == 0,
        },
        journal.state(),
        &config.requests,
        &subject_requests,
        std::mem::take(&mut report.request_tallies),
    )
    .await;
    if !request_facts.is_empty() {
        if !config.fence.allows() {
            return Err(PassError::Fenced);
        }
        journal_facts += request_facts.len() as u64;
        journal.append(state, early, request_facts).await?;
    }
    // A quiet pass writes the checkpoint that the segments since the last one wait for, so
    // that the next pass (a new process, or the operator's next) loads none of them.
    if writes && journal.next_seq() == records_at_load && config.fence.allows() {
        match journal.settle(state).await {
            Ok(settled) => report.journal_settled = settled,
            Err(e) => {
                tracing::warn!(error = %e, "journal not settled: the next pass reads its segments")
            }
        }
    }
    report.requests = request_reports;
    report.journal_facts += journal_facts;
    report.deletes_blocked = deletes_blocked;
    Ok(report)
}

/// A purpose's lawful basis in words, for access manifests and exceptions.
fn basis_of(policy: &Policy, purpose: &str) -> String {
    policy.purposes.get(purpose).map_or_else(
        || "not in the policy".to_string(),
        |p| p.legal_basis.clone(),
    )
}

/// Versions the journal remembers (first seen, withdrawn) whose keys `window` completed
/// without listing them.
fn forgotten_in(state: &JournalState, window: &cache::Window) -> Vec<VersionRef> {
    let from = VersionRef {
        key: window.from.clone().unwrap_or_default(),
        version_id: None,
    };
    let before_until = |v: &&VersionRef| window.until.as_deref().is_none_or(|u| v.key.as_str() < u);
    state
        .seen
        .in_range(&from.key, window.until.as_deref(), |v| window.gone(v))
        .into_iter()
        .chain(
            state
                .withdrawals
                .range(from..)
                .map(|(v, _)| v)
                .take_while(before_until)
                .cloned(),
        )
        .filter(|v| window.gone(v))
        .collect()
}

/// Sets the legal holds that objects' handling deferred: the intent is made durable in the
/// journal first (so a crash right after a set never leaves a legal hold gallring does not
/// know it owns), then each is set and its object tagged. Returns the journal facts written.
async fn set_deferred_legal_holds<S: ObjectStore, J: ObjectStore>(
    store: &S,
    state: &J,
    journal: &mut Journal,
    outcomes: &mut [ObjectOutcome],
    early: DateTime<Utc>,
    object_lock: bool,
    config: &PassConfig,
) -> Result<u64, PassError> {
    let intents: Vec<VersionRef> = outcomes
        .iter()
        .filter(|o| o.deferred.is_some())
        .map(|o| version_ref(&o.plan))
        .collect();
    if intents.is_empty() {
        return Ok(0);
    }
    if !config.fence.allows() {
        return Err(PassError::Fenced);
    }
    journal
        .append(state, early, vec![Fact::LegalHoldsSet { objects: intents }])
        .await?;
    let journal_state = journal.state();
    let fence = &config.fence;
    futures::stream::iter(outcomes.iter_mut().filter(|o| o.deferred.is_some()))
        .for_each_concurrent(config.concurrency.max(1), |o| async move {
            let Some(obj) = o.deferred.take() else { return };
            if !fence.allows() {
                o.fenced = true;
                return;
            }
            let id = ObjectId {
                key: obj.key.clone(),
                version_id: obj.version_id.clone(),
            };
            if let Err(e) = store.set_legal_hold(&id, true).await {
                o.error = Some(e);
                return;
            }
            o.legal_hold_set = true;
            finish_object(store, &obj, &id, o, object_lock, journal_state).await;
        })
        .await;
    if outcomes.iter().any(|o| o.fenced) {
        return Err(PassError::Fenced);
    }
    Ok(1)
}

async fn sync_lifecycle<S: ObjectStore>(
    store: &S,
    policy: &Policy,
    rules: &BucketRules,
    versioned: bool,
    writes: bool,
    fence: &Fence,
    journal_prefix: Option<&str>,
) -> Result<(LifecycleOutcome, Vec<LifecycleRule>, Vec<String>), PassError> {
    let existing = match store.get_lifecycle().await {
        Ok(e) => e.unwrap_or_default(),
        Err(e) if e.category == ErrorCategory::Malformed => {
            return Ok((
                LifecycleOutcome::Untouched {
                    reason: e.to_string(),
                },
                Vec::new(),
                Vec::new(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    // Foreign rules that can expire governed objects (or the journal) by S3's own clock.
    let dangerous: Vec<String> = existing
        .iter()
        .filter_map(|r| match r {
            StoredRule::Foreign(f) => Some(lifecycle_map::foreign_view(f)),
            StoredRule::Owned(_) => None,
        })
        .filter(|v| lifecycle::endangers(v, rules.prefix.as_deref(), journal_prefix))
        .map(|v| v.id.unwrap_or_else(|| "(no id)".into()))
        .collect();
    let foreign = existing
        .iter()
        .filter(|r| matches!(r, StoredRule::Foreign(_)))
        .count();
    let desired = match lifecycle::compile(policy, rules, versioned, foreign) {
        Ok(d) => d,
        Err(e) => {
            return Ok((
                LifecycleOutcome::Untouched {
                    reason: e.to_string(),
                },
                Vec::new(),
                dangerous,
            ));
        }
    };
    let (merged, changed) = lifecycle_map::merge(&existing, &desired);
    let outcome = if !writes {
        LifecycleOutcome::NotWritten { drift: changed }
    } else if changed {
        if !fence.allows() {
            return Err(PassError::Fenced);
        }
        match store.put_lifecycle(&merged).await {
            Ok(()) => LifecycleOutcome::Updated {
                rules: desired.len(),
            },
            // The store would lose part of a rule gallring does not own (issue 13): the
            // bucket is left as it is and the reason (naming the rule) reaches the
            // LifecycleSynced condition, gallring_lifecycle_in_sync and its alert.
            Err(e) if e.category == ErrorCategory::Refused => LifecycleOutcome::Refused {
                rules: e.key.clone().unwrap_or_default(),
                reason: e.stable(),
            },
            Err(e) => return Err(e.into()),
        }
    } else {
        LifecycleOutcome::InSync {
            rules: desired.len(),
        }
    };
    Ok((outcome, desired, dangerous))
}

/// The writes after any legal hold is on: the retention tag, then, for an object no hold
/// keeps any more, the lift of a legal hold gallring set (the journal says whose it is; the
/// floor is in the journal, so the lift does not wait for a tag the object may have no room
/// for, or whose write answer was lost).
async fn finish_object<S: ObjectStore>(
    store: &S,
    obj: &ObjectInfo,
    id: &ObjectId,
    out: &mut ObjectOutcome,
    object_lock: bool,
    journal: &JournalState,
) {
    if let Some(tags) = merge_tags(&obj.tags, &out.plan) {
        if let Err(e) = store.put_tags(id, &tags).await {
            out.error = Some(e);
            return;
        }
        out.tags_written = true;
        if let Some(seen) = out.seen.as_mut() {
            seen.tags = tags;
        }
    }
    let held = out.plan.decision == Decision::Held;
    if !held && object_lock && journal.set_by_gallring(id) {
        if let Err(e) = store.set_legal_hold(id, false).await {
            out.error = Some(e);
            return;
        }
        out.legal_hold_cleared = true;
    }
}

/// What every object of a page is decided and applied with.
struct ObjectContext<'a, 'p, S> {
    store: &'a S,
    planner: &'a Planner<'p>,
    rules: &'a BucketRules,
    object_lock: bool,
    writes: bool,
    fence: &'a Fence,
    journal: &'a JournalState,
    /// Holds may be under-linked in this pass: write only what raises protection.
    protect_only: bool,
}

/// Reads, decides and applies one object. `None` when the object vanished mid-pass.
async fn handle_object<S: ObjectStore>(
    cx: &ObjectContext<'_, '_, S>,
    listed: &crate::store::ListedObject,
) -> Option<ObjectOutcome> {
    let ObjectContext {
        store,
        planner,
        rules,
        object_lock,
        writes,
        fence,
        journal,
        protect_only,
    } = *cx;
    // As it was listed, nothing read: the plan of an object whose state is unknown.
    let unread = || {
        planner.plan(&ObjectInfo {
            key: listed.key.clone(),
            version_id: listed.version_id.clone(),
            last_modified: listed.last_modified,
            size: listed.size,
            tags: BTreeMap::new(),
            metadata: BTreeMap::new(),
        })
    };
    // A replica that may no longer write (leadership lost, shutting down) reads no further:
    // the page ends as fenced without a request per remaining object.
    if writes && !fence.allows() {
        let mut out = ObjectOutcome::new(unread(), listed);
        out.unknown = true;
        out.fenced = true;
        return Some(out);
    }
    let obj = match fetch_object(store, rules, listed, true).await {
        Ok(o) => o,
        Err(e) if e.category == ErrorCategory::NotFound => return None,
        Err(e) => {
            // Unreadable tags: decide nothing, write nothing, count it as unknown (never as
            // unclassified, never deleted on a guess).
            let mut plan = unread();
            plan.decision = Decision::Unclassified;
            plan.deadline = None;
            plan.overdue = false;
            plan.reason = format!("state unknown: {e}");
            let mut out = ObjectOutcome::new(plan, listed);
            out.unknown = true;
            out.error = Some(e);
            return Some(out);
        }
    };
    let (view, new_withdrawal) = trusted_view(&obj, listed, journal);
    let mut out = ObjectOutcome::new(planner.plan(&view), listed);
    out.new_withdrawal = new_withdrawal;
    out.seen = Some(obj.clone());
    if !writes {
        return Some(out);
    }
    // Checked once per object, just before its writes: a lost lease stops the pass here.
    if !fence.allows() {
        out.fenced = true;
        return Some(out);
    }
    let id = ObjectId {
        key: obj.key.clone(),
        version_id: obj.version_id.clone(),
    };
    let held = out.plan.decision == Decision::Held;

    // Protect before marking: legal hold on, then the `held` tag. A legal hold that is already
    // on and not in the journal is someone else's: gallring neither records nor ever lifts it.
    // One that gallring will set is journaled first (for the whole page at once), so a crash
    // right after the set cannot leave a legal hold gallring does not know it owns. Checked on
    // every pass while held (holds are few): a set that failed after its intent was journaled,
    // or a legal hold someone removed, is put back.
    if held && object_lock {
        match store.get_legal_hold(&id).await {
            Ok(true) => {}
            Ok(false) if journal.set_by_gallring(&id) => {
                if let Err(e) = store.set_legal_hold(&id, true).await {
                    out.error = Some(e);
                    return Some(out);
                }
                out.legal_hold_set = true;
            }
            Ok(false) => {
                out.deferred = Some(obj);
                return Some(out);
            }
            Err(e) => {
                out.error = Some(e);
                return Some(out);
            }
        }
    }
    // When holds could not all be linked to their recordings, this pass may under-select: it
    // only protects (legal holds, `held` tags) and writes nothing else (no expiry tag, no
    // legal hold lifted) until a pass that can link them.
    if protect_only && !held {
        return Some(out);
    }
    finish_object(
        store,
        &obj,
        &id,
        &mut out,
        object_lock && !protect_only,
        journal,
    )
    .await;
    if out.error.is_some() {
        return Some(out);
    }
    let due = out.plan.decision == Decision::Delete;
    out.delete = due
        && rules.enforcement.operator_deletes()
        && (out.plan.deleter == Deleter::Operator || out.plan.overdue);
    Some(out)
}

/// The outcome of an object decided from its index entry, when that decision needs nothing
/// written, now or at the end of the pass (any write is merged into tags read just before it,
/// and holds and deletions are always decided on what the store says now). `planner` writes
/// no reasons: a settled object's reason is never read.
fn cached_outcome(
    planner: &Planner<'_>,
    journal: &JournalState,
    object_lock: bool,
    entry: &crate::state::index::Entry,
    listed: &crate::store::ListedObject,
) -> Option<ObjectOutcome> {
    let (plan, tags, new_withdrawal) =
        match plain_view(cache::object_of(entry, listed), listed, journal) {
            Ok(view) => (planner.plan(&view), view.tags, None),
            Err(obj) => {
                let (view, new_withdrawal) = trusted_view(&obj, listed, journal);
                (planner.plan(&view), obj.tags, new_withdrawal)
            }
        };
    let settled = new_withdrawal.is_none()
        && matches!(plan.decision, Decision::Keep | Decision::Unclassified)
        && merge_tags(&tags, &plan).is_none()
        && !(object_lock && journal.set_by_gallring(&listed_id(listed)));
    settled.then(|| {
        let mut out = ObjectOutcome::new(plan, listed);
        out.lookup = Some(cache::Lookup::Fresh);
        out.hit = true;
        out
    })
}

/// A deletion the pass planned, with what the listing said about the object.
struct Candidate {
    plan: ObjectPlan,
    etag: Option<String>,
    listed_modified: DateTime<Utc>,
    /// This pass wrote its tags (which may move `LastModified` on some stores).
    tagged: bool,
}

/// Everything a page's deletions are checked and made with.
struct Deletions<'a, S, J> {
    store: &'a S,
    /// Where the journal is.
    state: &'a J,
    fence: &'a Fence,
    holds_now: Option<&'a HoldsSource>,
    /// The holds the pass was planned with.
    host_holds: &'a [Hold],
    now: DateTime<Utc>,
    versioned: bool,
    /// Entries of versions gallring deleted are dropped at once: a later listing that misses
    /// them is not "removed by others".
    index: Option<&'a crate::state::index::Index>,
    /// Removes the delete markers left alone over a key whose last versions it deleted:
    /// versioned buckets in `Operator` mode, where no lifecycle rule does (issue 13).
    removes_markers: bool,
}

impl<S: ObjectStore, J: ObjectStore> Deletions<'_, S, J> {
    /// Checks, journals and deletes one page's deletions. Anything not confirmed gone stays
    /// in the summary as it was planned (still due, perhaps overdue).
    async fn run(
        &self,
        batch: Vec<Candidate>,
        report: &mut PassReport,
        journal: &mut Journal,
        blocked: &mut Option<Blocked>,
    ) -> Result<(), PassError> {
        if !self.fence.allows() {
            return Err(PassError::Fenced);
        }
        // A hold created (or widened) since the pass began may cover these objects.
        if blocked.is_none() {
            *blocked = self.holds_changed().await;
        }
        if blocked.is_some() {
            report.deletes_deferred += batch.len() as u64;
            for c in batch {
                report.summary.add(&c.plan);
            }
            return Ok(());
        }
        // Unversioned: deletes go by key, so the object must still be the one planned.
        let batch = if self.versioned {
            batch
        } else {
            self.unchanged(batch, report).await
        };
        if batch.is_empty() {
            return Ok(());
        }
        if !self.fence.allows() {
            return Err(PassError::Fenced);
        }
        // Write-ahead: the deletions and their reasons are durable before the request.
        let intended = batch
            .iter()
            .map(|c| IntendedDeletion {
                recording_id: c.plan.recording_id.clone(),
                requests: c.plan.requests.clone(),
                key: c.plan.key.clone(),
                version_id: c.plan.version_id.clone(),
                deadline: c.plan.deadline,
                reason: c.plan.reason.clone(),
                kind: c.plan.kind.clone(),
                purposes: c.plan.purposes.clone(),
                controllers: c.plan.controllers.clone(),
            })
            .collect();
        journal
            .append(
                self.state,
                self.now,
                vec![Fact::DeletionsIntended { objects: intended }],
            )
            .await?;
        report.journal_facts += 1;
        let ids: Vec<ObjectId> = batch.iter().map(|c| object_id(&c.plan)).collect();
        let failures: BTreeMap<ObjectId, String> = match self.store.delete_objects(&ids).await {
            Ok(f) => self.unconfirmed(&ids, f).await,
            // The answer is missing or the request as a whole was refused (one odd key can
            // make the store reject all of them): settle each object on its own.
            // Only what settling leaves unresolved is reported, each under its own key.
            Err(e) => {
                tracing::info!(bucket = self.store.bucket(), error = %e, objects = ids.len(), "DeleteObjects gave no usable answer; settling each object");
                self.settle(&ids).await
            }
        };
        let confirmed: Vec<VersionRef> = ids
            .iter()
            .filter(|id| !failures.contains_key(id))
            .map(VersionRef::from)
            .collect();
        if !confirmed.is_empty() {
            if let Some(ix) = self.index {
                let ids: Vec<(String, Option<String>)> = confirmed
                    .iter()
                    .map(|v| (v.key.clone(), v.version_id.clone()))
                    .collect();
                if let Err(e) = ix.remove_many(&ids) {
                    report.index.error(&e);
                }
            }
            let keys: std::collections::BTreeSet<String> =
                confirmed.iter().map(|v| v.key.clone()).collect();
            journal
                .append(
                    self.state,
                    self.now,
                    vec![Fact::DeletionsConfirmed { objects: confirmed }],
                )
                .await?;
            report.journal_facts += 1;
            if self.removes_markers {
                self.remove_orphaned_markers(keys, report).await?;
            }
        }
        for (c, id) in batch.iter().zip(&ids) {
            if let Some(why) = failures.get(id) {
                report.delete_failures += 1;
                report.summary.add(&c.plan);
                if report.sample_errors.len() < MAX_SAMPLE_ERRORS {
                    report.sample_errors.push(why.clone());
                }
            } else {
                report.deleted += 1;
                report.deleted_bytes += c.plan.size;
                if report.deleted_sample.len() < MAX_SAMPLE_DELETED {
                    report
                        .deleted_sample
                        .push(format!("{}: {}", c.plan.key, c.plan.reason));
                }
                if let Some(k) = &c.plan.kind {
                    *report.deleted_by_kind.entry(k.clone()).or_default() += 1;
                }
                for name in &c.plan.requests {
                    if let Some(t) = report.request_tallies.get_mut(name) {
                        t.deleted_one(&c.plan);
                    }
                }
                for controller in &c.plan.controllers {
                    *report
                        .deleted_by_controller
                        .entry(controller.clone())
                        .or_default() += 1;
                }
            }
        }
        Ok(())
    }

    /// Why the holds now differ from those the pass was planned with, if they protect more.
    async fn holds_changed(&self) -> Option<Blocked> {
        let source = self.holds_now?;
        match (source.0)().await {
            Err(e) => Some(Blocked::new(
                "HoldsUnreadable",
                format!("holds could not be re-read before deleting: {e}"),
            )),
            Ok(current) => {
                let added: Vec<&str> = current
                    .iter()
                    .filter(|h| h.released_at.is_none() && h.is_active(self.now))
                    .filter(|h| {
                        !self.host_holds.iter().any(|p| {
                            p.name == h.name
                                && p.released_at.is_none()
                                && HoldRecord::of(p) == HoldRecord::of(h)
                        })
                    })
                    .map(|h| h.name.as_str())
                    .collect();
                (!added.is_empty()).then(|| {
                    Blocked::new(
                        "HoldsChanged",
                        format!(
                            "hold(s) {} created or changed during the pass; deletions wait for the next pass",
                            added.join(", ")
                        ),
                    )
                })
            }
        }
    }

    /// The candidates whose object is still the one listed: same ETag, and the same
    /// `LastModified` unless this pass wrote its tags. Others are kept and counted.
    async fn unchanged(&self, batch: Vec<Candidate>, report: &mut PassReport) -> Vec<Candidate> {
        let store = self.store;
        let heads: Vec<(Candidate, Result<Option<ObjectHead>, StoreError>)> =
            futures::stream::iter(batch)
                .map(|c| async move {
                    let head = store.head_object(&object_id(&c.plan)).await;
                    (c, head)
                })
                .buffered(16)
                .collect()
                .await;
        let mut keep = Vec::new();
        for (c, head) in heads {
            match head {
                // Gone already: nothing to delete, nothing to count.
                Ok(None) => {}
                // HEAD gives whole seconds, listings may give milliseconds.
                Ok(Some(h))
                    if h.etag == c.etag
                        && (h.last_modified.trunc_subsecs(0)
                            == c.listed_modified.trunc_subsecs(0)
                            || (c.tagged
                                && h.last_modified >= c.listed_modified.trunc_subsecs(0))) =>
                {
                    keep.push(c);
                }
                // A new object under the key: the plan was for the old one, so it is counted
                // by the next pass, not as the old one's overdue.
                Ok(Some(_)) => report.deletes_skipped_changed += 1,
                Err(e) => {
                    report.delete_failures += 1;
                    report.summary.add(&c.plan);
                    if report.sample_errors.len() < MAX_SAMPLE_ERRORS {
                        report.sample_errors.push(e.to_string());
                    }
                }
            }
        }
        keep
    }

    /// Deletes the delete markers of `keys` that no version is left under (a marker over a
    /// version would bring it back if removed). A failure is an object error: the marker
    /// hides nothing, the next pass over the key tries again only if it deletes a version.
    async fn remove_orphaned_markers(
        &self,
        keys: std::collections::BTreeSet<String>,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        let fail = |report: &mut PassReport, e: String| {
            report.object_errors += 1;
            if report.sample_errors.len() < MAX_SAMPLE_ERRORS {
                report.sample_errors.push(e);
            }
        };
        for key in keys {
            let markers = match self.orphaned_markers(&key).await {
                Ok(m) if m.is_empty() => continue,
                Ok(m) => m,
                Err(e) => {
                    fail(report, e.to_string());
                    continue;
                }
            };
            if !self.fence.allows() {
                return Err(PassError::Fenced);
            }
            match self.store.delete_objects(&markers).await {
                Ok(failures) => {
                    for f in &failures {
                        fail(
                            report,
                            format!(
                                "bucket {}: delete marker {} of {}: {} {}",
                                self.store.bucket(),
                                f.id.version_id.as_deref().unwrap_or("null"),
                                f.id.key,
                                f.code,
                                f.message
                            ),
                        );
                    }
                    tracing::info!(bucket = self.store.bucket(), key = %key, markers = markers.len() - failures.len(), "removed the delete markers left over deleted versions");
                }
                Err(e) => fail(report, e.to_string()),
            }
        }
        Ok(())
    }

    /// The delete markers of `key`, if nothing but delete markers is left under it.
    async fn orphaned_markers(&self, key: &str) -> Result<Vec<ObjectId>, StoreError> {
        let mut markers = Vec::new();
        let mut next = None;
        loop {
            let page = self
                .store
                .list_page(Some(key), true, next.take(), 1000)
                .await?;
            for o in page.objects.iter().filter(|o| o.key == key) {
                if !o.delete_marker {
                    return Ok(Vec::new());
                }
                markers.push(listed_id(o));
            }
            // Listings are in key order: once past the key, nothing more of it follows.
            if page.objects.iter().any(|o| o.key.as_str() > key) {
                return Ok(markers);
            }
            match page.next {
                Some(token) => next = Some(token),
                None => return Ok(markers),
            }
        }
    }

    /// The requested versions a DeleteObjects answer did not confirm, with why. A failure
    /// applies to every requested version of its key that it does not rule out by version:
    /// one without a version id (moto and AWS leave `<VersionId>` out of an error entry,
    /// issue 13) fails the version that was requested. A failed version that a HEAD right
    /// after shows gone counts as deleted after all: the store, not its answer, decides.
    async fn unconfirmed(
        &self,
        ids: &[ObjectId],
        failures: Vec<crate::store::DeleteFailure>,
    ) -> BTreeMap<ObjectId, String> {
        let mut failed: BTreeMap<ObjectId, String> = BTreeMap::new();
        for f in failures {
            let why = format!(
                "bucket {}: {} {}: {} {}",
                self.store.bucket(),
                Operation::DeleteObjects,
                f.id.key,
                f.code,
                f.message
            );
            let versions_match = |id: &&ObjectId| {
                id.version_id.is_none()
                    || f.id.version_id.is_none()
                    || id.version_id == f.id.version_id
            };
            for id in ids
                .iter()
                .filter(|id| id.key == f.id.key)
                .filter(versions_match)
            {
                failed.entry(id.clone()).or_insert_with(|| why.clone());
            }
        }
        let store = self.store;
        futures::stream::iter(failed)
            .map(|(id, why)| async move {
                match store.head_object(&id).await {
                    Ok(None) => None,
                    _ => Some((id, why)),
                }
            })
            .buffered(16)
            .filter_map(|kept| async move { kept })
            .collect()
            .await
    }

    /// After a DeleteObjects call without a usable answer: an object that is gone counts as
    /// deleted; one still there is deleted alone, so a key that breaks a batch is named.
    async fn settle(&self, ids: &[ObjectId]) -> BTreeMap<ObjectId, String> {
        let store = self.store;
        let results: Vec<(ObjectId, Option<String>)> = futures::stream::iter(ids.iter().cloned())
            .map(|id| async move {
                let outcome = match store.head_object(&id).await {
                    Ok(None) => None,
                    Ok(Some(_)) => match store.delete_object(&id, None).await {
                        Ok(()) => None,
                        Err(e) => Some(e.to_string()),
                    },
                    Err(e) => Some(e.to_string()),
                };
                (id, outcome)
            })
            .buffered(16)
            .collect()
            .await;
        results
            .into_iter()
            .filter_map(|(id, why)| why.map(|w| (id, w)))
            .collect()
    }
}

fn object_id(p: &ObjectPlan) -> ObjectId {
    ObjectId {
        key: p.key.clone(),
        version_id: p.version_id.clone(),
    }
}

fn listed_id(o: &crate::store::ListedObject) -> ObjectId {
    ObjectId {
        key: o.key.clone(),
        version_id: o.version_id.clone(),
    }
}

/// Objects a linking listing could not read: a hold may reach others through them, so a pass
/// deletes nothing and `explain` says it may miss a hold. With a sample of the errors.
#[derive(Debug, Default)]
pub(crate) struct LinkMisses {
    pub unreadable: u64,
    pub sample: Vec<String>,
}

/// A listing for linking holds (and requests) to recording ids: over `ranges` (see
/// `link_ranges`), every object shown to the linker as the planner dates it.
pub(crate) struct LinkListing<'a> {
    pub ranges: &'a [Option<String>],
    pub versioned: bool,
    pub page_size: i32,
    /// A recording time scopes what links: each page's first-seen shards are loaded (`dated`).
    pub by_time: bool,
    /// Tags (and metadata) are read, or taken from the index where it holds them fresh.
    pub with_tags: bool,
    pub rules: &'a BucketRules,
    /// The journal's prefix in this bucket, never linked.
    pub own_prefix: Option<&'a str>,
    /// The index, and the time the pass decides by (for freshness).
    pub index: Option<(&'a IndexConfig, DateTime<Utc>)>,
}

impl LinkListing<'_> {
    pub(crate) async fn observe<S: ObjectStore, J: ObjectStore>(
        self,
        store: &S,
        state: &J,
        journal: &mut Journal,
        linker: &mut HoldLinker<'_>,
        index_report: &mut IndexReport,
    ) -> Result<LinkMisses, PassError> {
        let mut misses = LinkMisses::default();
        for under in self.ranges {
            let mut token = None;
            loop {
                let page = store
                    .list_page(under.as_deref(), self.versioned, token, self.page_size)
                    .await?;
                if self.by_time {
                    journal
                        .prepare_seen_for(state, page.objects.iter().map(|o| o.key.as_str()))
                        .await?;
                }
                for o in page
                    .objects
                    .iter()
                    .filter(|o| !o.delete_marker && !is_state_key(&o.key, self.own_prefix))
                {
                    if let Some((ix, early)) = self.index.filter(|_| self.with_tags) {
                        match ix.index.get(&o.key, o.version_id.as_deref()) {
                            Ok(Some(e))
                                if cache::lookup(
                                    Some(&e),
                                    o,
                                    self.rules,
                                    early,
                                    ix.verify_interval,
                                ) == cache::Lookup::Fresh =>
                            {
                                linker.observe(&dated(journal.state(), cache::object_of(&e, o), o));
                                continue;
                            }
                            Ok(_) => {}
                            Err(e) => index_report.error(&e),
                        }
                    }
                    match fetch_object(store, self.rules, o, self.with_tags).await {
                        Ok(obj) => linker.observe(&dated(journal.state(), obj, o)),
                        Err(e) if e.category == ErrorCategory::NotFound => {}
                        // One unreadable object does not stop the listing; what it would have
                        // linked may be missed, which the caller says.
                        Err(e) => {
                            misses.unreadable += 1;
                            if misses.sample.len() < MAX_SAMPLE_ERRORS {
                                misses.sample.push(e.to_string());
                            }
                        }
                    }
                }
                token = page.next;
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(misses)
    }
}

/// `obj` as linking must see it: dated by the creation time the journal remembers, as the
/// planner dates it (`trusted_view`). Ceph RGW 16 moves `LastModified` when tags are written,
/// and a hold or request scoped by recording time would otherwise link less than it selects.
/// The key's first-seen shard must be loaded (else the listed time counts: later).
pub(crate) fn dated(
    journal: &JournalState,
    mut obj: ObjectInfo,
    listed: &crate::store::ListedObject,
) -> ObjectInfo {
    obj.last_modified = journal.created(
        &listed_ref(listed),
        listed.etag.as_deref(),
        listed.last_modified,
    );
    obj
}

fn listed_ref(o: &crate::store::ListedObject) -> VersionRef {
    VersionRef {
        key: o.key.clone(),
        version_id: o.version_id.clone(),
    }
}

fn version_ref(p: &ObjectPlan) -> VersionRef {
    VersionRef::from(&object_id(p))
}

/// [`trusted_view`] without a copy where it changes only the date: no withdrawal in the tags
/// or the journal. `Err` gives the object back otherwise.
fn plain_view(
    mut obj: ObjectInfo,
    listed: &crate::store::ListedObject,
    journal: &JournalState,
) -> Result<ObjectInfo, ObjectInfo> {
    let id = listed_ref(listed);
    let etag = listed.etag.as_deref();
    if obj.tags.contains_key(WITHDRAWN_TAG)
        || obj.tags.contains_key(WITHDRAWN_AT_TAG)
        || journal.withdrawal(&id, etag).is_some()
    {
        return Err(obj);
    }
    obj.last_modified = journal.created(&id, etag, listed.last_modified);
    Ok(obj)
}

/// What the engine plans with: the object as listed, but with the creation time gallring first
/// saw and only the withdrawals the journal holds (tags others can write never shorten
/// retention on their own). Also the withdrawal the tag asks for that is not journaled yet.
pub(crate) fn trusted_view(
    obj: &ObjectInfo,
    listed: &crate::store::ListedObject,
    journal: &JournalState,
) -> (ObjectInfo, Option<WithdrawalSeen>) {
    let id = listed_ref(listed);
    let etag = listed.etag.as_deref();
    let mut view = obj.clone();
    view.last_modified = journal.created(&id, etag, listed.last_modified);
    view.tags.remove(WITHDRAWN_TAG);
    view.tags.remove(WITHDRAWN_AT_TAG);
    let journaled = journal.withdrawal(&id, etag);
    if let Some(w) = journaled {
        let purposes: Vec<&str> = w.purposes.iter().map(String::as_str).collect();
        view.tags
            .insert(WITHDRAWN_TAG.to_string(), purposes.join(" "));
        view.tags.insert(
            WITHDRAWN_AT_TAG.to_string(),
            w.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    }
    let asked: std::collections::BTreeSet<String> = crate::retention::classify::withdrawn(obj)
        .into_iter()
        .filter(|p| journaled.is_none_or(|w| !w.purposes.contains(p)))
        .collect();
    let new = (!asked.is_empty()).then(|| WithdrawalSeen {
        key: listed.key.clone(),
        version_id: listed.version_id.clone(),
        etag: listed.etag.clone(),
        purposes: asked,
    });
    (view, new)
}

/// Keys of gallring's own state (the journal) in the bucket: never classified or counted.
pub(crate) fn is_state_key(key: &str, prefix: Option<&str>) -> bool {
    prefix.is_some_and(|p| key.starts_with(p))
}

/// The facts the host's holds add to the journal: holds that took effect, holds the host
/// released (a deleted LegalHold), and holds the journal knows but the host no longer has
/// (gone from the manifests, or from the cluster): a hold that disappears is a release.
/// `now` is the clock the pass decides by. A hold that disappeared is dated `gone`: `now`
/// when the two clocks agree, else the later of them (a release dated early would start its
/// floor early).
fn hold_facts(
    state: &JournalState,
    holds: &[Hold],
    now: DateTime<Utc>,
    gone: DateTime<Utc>,
) -> Vec<Fact> {
    let mut facts = Vec::new();
    for h in holds {
        let record = HoldRecord::of(h);
        match h.released_at {
            None => {
                if h.is_active(now) && state.applied.get(&h.name) != Some(&record) {
                    facts.push(Fact::HoldApplied(record));
                }
            }
            Some(at) => {
                let known = state
                    .released
                    .iter()
                    .any(|(r, t)| r.hold == h.name && *t == at);
                if !known {
                    // Release what was applied: its selector may have been edited since.
                    let hold = state.applied.get(&h.name).cloned().unwrap_or(record);
                    facts.push(Fact::HoldReleased {
                        hold,
                        released_at: at,
                    });
                }
            }
        }
    }
    for (name, record) in &state.applied {
        if !holds.iter().any(|h| &h.name == name) {
            facts.push(Fact::HoldReleased {
                hold: record.clone(),
                released_at: gone,
            });
        }
    }
    facts
}

/// The holds the engine plans with: the host's holds in effect, plus every released hold from
/// the journal whose floor has not yet passed. A hold the host marks released counts as
/// released only once the journal says so (or when nothing is written, in Observe mode).
pub(crate) fn engine_holds(
    state: &JournalState,
    host: Vec<Hold>,
    policy: &Policy,
    grace: crate::retention::IsoDuration,
    now: DateTime<Utc>,
    journaled: bool,
) -> Vec<Hold> {
    let mut out: Vec<Hold> = Vec::new();
    for h in host {
        let released_in_journal = state
            .released
            .iter()
            .any(|(r, t)| r.hold == h.name && Some(*t) == h.released_at);
        match h.released_at {
            None => out.push(h),
            Some(_) if !journaled || released_in_journal => out.push(h),
            // Not durable yet: keep protecting as if still in effect.
            Some(_) => out.push(Hold {
                released_at: None,
                ..h
            }),
        }
    }
    for h in state.released_holds() {
        let Some(at) = h.released_at else { continue };
        let floor = policy.hold_floor(&h, now).map_or(at, |f| f.until.max(at));
        // Kept through the grace after the floor: until then the floor is the object's
        // deadline, so its overdue clock starts at the release, not at its old deadline.
        let until = grace.add_to(floor).unwrap_or(floor);
        let already = out
            .iter()
            .any(|o| o.name == h.name && o.released_at == h.released_at);
        if until > now && !already {
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
