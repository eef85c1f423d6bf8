//! The engine's own view of policies, buckets, holds and objects: validated, plain data.
//!
//! The CRD types in `api/` are converted into these by `api::compile`, which is where field
//! paths are checked. Nothing here knows about Kubernetes or S3 SDK types.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};

use super::duration::IsoDuration;

/// Tag keys the operator owns. Every key it writes starts with [`TAG_PREFIX`].
pub const TAG_PREFIX: &str = "gallring.io/";
/// The retention class of an object, read by the lifecycle rules' tag filters.
pub const RETENTION_TAG: &str = "gallring.io/retention";
/// A floor for the deadline, written when a hold is released (`release + holdRelease`).
pub const KEEP_UNTIL_TAG: &str = "gallring.io/keep-until";
/// Space-separated purpose names the data subject withdrew consent for / opted out of.
pub const WITHDRAWN_TAG: &str = "gallring.io/withdrawn";
/// When the withdrawal was made (RFC 3339 or date). A withdrawal can put the deadline in the
/// past; an object only counts as overdue once grace has passed since the withdrawal.
pub const WITHDRAWN_AT_TAG: &str = "gallring.io/withdrawn-at";
/// S3 allows at most 10 tags on one object.
pub const MAX_TAGS: usize = 10;

/// Why a legal hold exists. Each reason may have its own `holdRelease` period in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HoldReason {
    Complaint,
    Dispute,
    Claim,
    AccessRequest,
    PoliceReport,
    FraudInvestigation,
    AuthorityRequest,
    /// A restriction of processing (GDPR Art. 18): kept, not used, until the restriction ends.
    Restriction,
}

impl HoldReason {
    pub const ALL: [HoldReason; 8] = [
        HoldReason::Complaint,
        HoldReason::Dispute,
        HoldReason::Claim,
        HoldReason::AccessRequest,
        HoldReason::PoliceReport,
        HoldReason::FraudInvestigation,
        HoldReason::AuthorityRequest,
        HoldReason::Restriction,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            HoldReason::Complaint => "Complaint",
            HoldReason::Dispute => "Dispute",
            HoldReason::Claim => "Claim",
            HoldReason::AccessRequest => "AccessRequest",
            HoldReason::PoliceReport => "PoliceReport",
            HoldReason::FraudInvestigation => "FraudInvestigation",
            HoldReason::AuthorityRequest => "AuthorityRequest",
            HoldReason::Restriction => "Restriction",
        }
    }
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who deletes, and whether anything is written at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Enforcement {
    /// Compute and report only; write nothing.
    Observe,
    /// Tags and lifecycle rules; the operator deletes nothing itself.
    Lifecycle,
    /// The operator deletes at the deadline; no lifecycle rules.
    Operator,
    /// Lifecycle does the bulk; the operator deletes what lifecycle cannot express.
    #[default]
    Both,
}

impl Enforcement {
    pub fn as_str(&self) -> &'static str {
        match self {
            Enforcement::Observe => "Observe",
            Enforcement::Lifecycle => "Lifecycle",
            Enforcement::Operator => "Operator",
            Enforcement::Both => "Both",
        }
    }
    /// Whether lifecycle rules and retention tags are written.
    pub fn uses_lifecycle(&self) -> bool {
        matches!(self, Enforcement::Lifecycle | Enforcement::Both)
    }
    /// Whether the operator itself deletes objects.
    pub fn operator_deletes(&self) -> bool {
        matches!(self, Enforcement::Operator | Enforcement::Both)
    }
}

/// A validated retention policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    /// The legal name of the policy's data controller.
    pub controller: String,
    pub purposes: BTreeMap<String, Purpose>,
    /// How long an object is still kept after a hold of this reason ends.
    pub hold_release: BTreeMap<HoldReason, IsoDuration>,
    /// The longest a hold of this reason protects, counted from the hold's limitation start
    /// (else its creation): its `expires` is capped there.
    pub hold_max: BTreeMap<HoldReason, IsoDuration>,
    /// Date-only values (`2026-03-01`) mean midnight here, and calendar arithmetic (months,
    /// years, days) is done on this zone's local dates.
    pub time_zone: chrono_tz::Tz,
}

impl Policy {
    /// The floor a hold leaves once it has ended: its limitation start (else its end) plus the
    /// policy's `holdRelease` for its reason, with the start used. `None` while it protects.
    pub fn hold_floor(&self, h: &Hold, now: DateTime<Utc>) -> Option<HoldFloor> {
        let end = h.ends_at().filter(|_| !h.is_active(now))?;
        let keep = self
            .hold_release
            .get(&h.reason)
            .copied()
            .unwrap_or_default();
        let (from, anchor) = match h.limitation_start {
            Some(s) => (s, FloorAnchor::LimitationStart),
            None => (end, FloorAnchor::Release),
        };
        Some(HoldFloor {
            until: keep.add_in(from, self.time_zone)?,
            from,
            anchor,
            keep,
        })
    }

    /// Holds with their `expires` capped by `holdMax` for their reason, counted from their
    /// limitation start or creation. A hold with neither is not capped.
    pub fn cap_holds(&self, mut holds: Vec<Hold>) -> Vec<Hold> {
        for h in &mut holds {
            if let Some(max) = self.hold_max.get(&h.reason)
                && let Some(since) = h.limitation_start.or(h.created_at)
                && let Some(cap) = max.add_in(since, self.time_zone)
                && h.expires.is_none_or(|e| e > cap)
            {
                h.expires = Some(cap);
            }
        }
        holds
    }

    /// The controller of a purpose (the policy's when the purpose names none).
    pub fn controller_of(&self, purpose: &str) -> &str {
        self.purposes
            .get(purpose)
            .and_then(|p| p.controller.as_deref())
            .unwrap_or(&self.controller)
    }
}

/// What a released hold's floor counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorAnchor {
    /// The LegalHold's `limitationStart`: when the limitation period began to run.
    LimitationStart,
    /// The hold's release (or expiry): the fallback when no limitation start is given.
    Release,
}

/// The floor set by an ended hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldFloor {
    pub until: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub anchor: FloorAnchor,
    pub keep: IsoDuration,
}

/// What a purpose's `retain` promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetainMeans {
    /// Kept at least this long; deletable from then on, gone within the bucket's grace.
    #[default]
    KeepAtLeast,
    /// Gone by then: deletion is planned early enough that the deleter's lag still ends by it,
    /// and the object is overdue once it is passed.
    DeleteBy,
}

/// Where a time is read from an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSource {
    Tag(String),
    Metadata(String),
}

impl TimeSource {
    pub fn read<'a>(&self, obj: &'a ObjectInfo) -> Option<&'a String> {
        match self {
            TimeSource::Tag(k) => obj.tags.get(k),
            TimeSource::Metadata(k) => obj.metadata.get(k),
        }
    }
}

impl fmt::Display for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSource::Tag(k) => write!(f, "tag `{k}`"),
            TimeSource::Metadata(k) => write!(f, "metadata `{k}`"),
        }
    }
}

/// A purpose whose clock starts at an event (an assessment, a contract's end) read from the
/// object, not at the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub source: TimeSource,
    /// While the event time is absent (or not a date): `true` counts from the recording time,
    /// `false` keeps the object for this purpose with no deadline (the event has not happened).
    pub missing_counts_from_recording: bool,
}

/// One purpose of processing and how long it needs each artifact kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Purpose {
    pub withdrawable: bool,
    /// Artifact kind → retention, counted from the recording time (or the anchor).
    pub retain: BTreeMap<String, IsoDuration>,
    pub retain_means: RetainMeans,
    /// The event the retention counts from, when not the recording time.
    pub from: Option<Anchor>,
    /// Artifact kind → how long the purpose may use it (counted like `retain`), where that is
    /// shorter than it is stored: reported, not enforced.
    pub use_for: BTreeMap<String, IsoDuration>,
    /// This purpose's controller's legal name, when not the policy's.
    pub controller: Option<String>,
    /// Its lawful basis in words, e.g. `Art. 6(1)(f) legitimate interests`: for records and
    /// evidence, never for decisions.
    pub legal_basis: String,
    /// An erasure request does not end it: its basis is a legal obligation or a public task
    /// (GDPR Art. 17(3)(b)).
    pub kept_on_erasure: bool,
}

/// Where the recording time of an object comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RecordedAtSource {
    /// The object's creation time (`LastModified`).
    #[default]
    LastModified,
    /// An object tag holding an RFC 3339 timestamp or a `YYYY-MM-DD` date.
    Tag(String),
    /// A user metadata key (`x-amz-meta-…`) holding an RFC 3339 timestamp or date.
    Metadata(String),
}

/// Where the recording id (linking audio, transcripts and masked transcripts of one call)
/// comes from.
#[derive(Debug, Clone)]
pub enum RecordingIdSource {
    /// A regular expression on the key with a capture group named `id`.
    KeyPattern(regex::Regex),
    /// An object tag.
    Tag(String),
}

/// Adds the purposes named by one tag's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposesFromTag {
    pub key: String,
    /// Tag value → purposes it adds. Values not listed add nothing.
    pub values: BTreeMap<String, Vec<String>>,
}

/// Tag condition of a classify rule or hold: `None` means "present with any value".
pub type TagMatch = BTreeMap<String, Option<String>>;

/// One ordered classification rule.
#[derive(Debug, Clone)]
pub struct ClassifyRule {
    /// A name for reasons and reports (`classify[2]` when the spec gives none).
    pub name: String,
    pub prefix: Option<String>,
    pub glob: Option<globset::GlobMatcher>,
    pub tags: TagMatch,
    pub kind: String,
    pub purposes: Vec<String>,
    pub purposes_from_tag: Option<PurposesFromTag>,
}

/// Where a bucket's journal lives by default: this prefix in the recordings bucket.
pub const DEFAULT_STATE_PREFIX: &str = ".gallring/";

/// Where gallring keeps a bucket's journal (`spec.state`, validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLocation {
    /// Another bucket at the same endpoint; `None`: the recordings bucket.
    pub bucket: Option<String>,
    /// Key prefix, ending with `/`.
    pub prefix: String,
    /// Object Lock retention for journal objects.
    pub retention: Option<IsoDuration>,
}

impl Default for StateLocation {
    fn default() -> Self {
        StateLocation {
            bucket: None,
            prefix: DEFAULT_STATE_PREFIX.to_string(),
            retention: None,
        }
    }
}

/// A validated bucket: everything the engine needs to decide about its objects.
#[derive(Debug, Clone)]
pub struct BucketRules {
    /// `namespace/name` of the RecordingBucket.
    pub name: String,
    /// Objects outside this key prefix are not governed (not listed, never touched).
    pub prefix: Option<String>,
    pub classify: Vec<ClassifyRule>,
    pub recording_id: Option<RecordingIdSource>,
    /// Tag that carries a pseudonymous data-subject id.
    pub subject_tag: Option<String>,
    pub recorded_at: RecordedAtSource,
    /// How long after the call a recording may be uploaded: a recorded-at value earlier than
    /// the creation time minus this is clamped up to it (never early). `None`: no lower bound.
    pub recorded_at_max_age: Option<IsoDuration>,
    pub grace: IsoDuration,
    /// How often the host reconciles the bucket.
    pub scan_interval: IsoDuration,
    /// Every object's tags are read at least this often, even when the listing shows it
    /// unchanged (the index otherwise answers for it).
    pub verify_interval: IsoDuration,
    pub enforcement: Enforcement,
}

/// Objects a hold selects. An object is selected when ANY selector matches: a hold should
/// rather keep too much than too little.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldSelector {
    pub keys: BTreeSet<String>,
    pub prefix: Option<String>,
    pub recording_ids: BTreeSet<String>,
    pub subjects: BTreeSet<String>,
    /// All listed tags must match (`None`: present with any value).
    pub tags: TagMatch,
    /// Scope: only objects of these artifact kinds (empty: every kind). Unclassified objects
    /// stay in scope (a hold rather keeps too much).
    pub kinds: BTreeSet<String>,
    /// Scope: only objects recorded at or after this time.
    pub recorded_after: Option<DateTime<Utc>>,
    /// Scope: only objects recorded before this time.
    pub recorded_before: Option<DateTime<Utc>>,
}

impl HoldSelector {
    /// Whether an object of this kind and recording time is within the hold's scope. Unknown
    /// values are in scope: a hold rather keeps too much.
    pub fn in_scope(&self, kind: Option<&str>, recorded_at: Option<DateTime<Utc>>) -> bool {
        let kind_ok = self.kinds.is_empty() || kind.is_none_or(|k| self.kinds.contains(k));
        let time_ok = recorded_at.is_none_or(|t| {
            self.recorded_after.is_none_or(|a| t >= a) && self.recorded_before.is_none_or(|b| t < b)
        });
        kind_ok && time_ok
    }

    /// Whether a recording time limits it (`recorded_after`, `recorded_before`).
    pub fn scoped_by_time(&self) -> bool {
        self.recorded_after.is_some() || self.recorded_before.is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.prefix.is_none()
            && self.recording_ids.is_empty()
            && self.subjects.is_empty()
            && self.tags.is_empty()
    }
}

/// A legal hold as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// `namespace/name` of the LegalHold.
    pub name: String,
    pub reason: HoldReason,
    pub case: String,
    pub select: HoldSelector,
    /// The hold ends by itself at this time (e.g. an access request after one year).
    pub expires: Option<DateTime<Utc>>,
    /// After this time the hold is flagged for review; it stays active.
    pub review_by: Option<DateTime<Utc>>,
    /// When the hold was released (its LegalHold deleted / case closed).
    pub released_at: Option<DateTime<Utc>>,
    /// When the limitation period of the case began to run: the floor after release counts
    /// from here (release + `holdRelease` is the fallback), and `holdMax` caps the hold from
    /// here.
    pub limitation_start: Option<DateTime<Utc>>,
    /// When the hold was created (the LegalHold's creationTimestamp), for `holdMax`.
    pub created_at: Option<DateTime<Utc>>,
}

impl Hold {
    /// When the hold stops protecting objects, if it does.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        match (self.expires, self.released_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    /// In effect at `now`. A release is a recorded fact, never a schedule: once a hold carries
    /// one it no longer protects, even if `now` reads earlier (two clocks a second apart), and
    /// its floor counts from the release time.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.released_at.is_none() && self.expires.is_none_or(|end| now < end)
    }
    pub fn needs_review(&self, now: DateTime<Utc>) -> bool {
        self.is_active(now) && self.review_by.is_some_and(|r| now >= r)
    }
}

/// One object version as listed from the store, with its tags and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectInfo {
    pub key: String,
    pub version_id: Option<String>,
    pub last_modified: DateTime<Utc>,
    pub size: u64,
    pub tags: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
}

impl ObjectInfo {
    /// Whether `gallring.io/retention` fits beside every tag that stays: the owner's and the
    /// `gallring.io/` tags others write (a withdrawal, a recorded-at) or gallring keeps (a
    /// keep-until floor), none of which gallring may drop to make room.
    pub fn room_for_retention_tag(&self) -> bool {
        self.tags
            .keys()
            .filter(|k| k.as_str() != super::RETENTION_TAG)
            .count()
            < MAX_TAGS
    }
}
