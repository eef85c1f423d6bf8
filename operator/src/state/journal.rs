//! The journal: per RecordingBucket, append-only and hash-chained, in the object store.
//!
//! Layout under the state prefix (default `.gallring/` in the bucket itself):
//! - `journal/<first seq, 16 digits>.jsonl`: a segment, one record per line, written once;
//! - `checkpoint.json`: the state folded from every segment up to a point, and the chain head;
//! - `seen/<seq>-<head>-<n>.jsonl`: the checkpoint's first-seen creation times in key-range
//!   shards (one entry per object version: kept out of the checkpoint and out of memory).
//!
//! A record is `{"seq":N,"at":"<RFC 3339>","prev":"<sha256 of the previous record's line>",
//! "fact":"<kind>",...}`; the first record's `prev` is 64 zeros. Readable with jq or DuckDB
//! (`read_json_auto('.../journal/*.jsonl')`); nothing in it is personal data beyond the keys
//! and pseudonymous ids already in the bucket.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::retention::{
    Hold, HoldReason, HoldSelector, RequestException, RequestPhase, RequestType, SubjectRequest,
};
use crate::store::{ObjectId, ObjectStore, StoreError};

use super::seen::{self as shards, SeenMap, ShardRef, Upto};
// The version and first-seen types live with the shards that hold them.
pub use super::seen::{FirstSeen, Seen, VersionRef};

/// The default state prefix in the recordings bucket.
pub const DEFAULT_PREFIX: &str = crate::retention::DEFAULT_STATE_PREFIX;
/// Fold a checkpoint after this many segments, so a load reads few segments.
const CHECKPOINT_EVERY: u64 = 32;
/// ... or once this many shards' worth of first-seen changes wait (memory stays bounded
/// while a first pass journals every object).
const CHECKPOINT_PENDING_SHARDS: usize = 8;
/// A quiet pass settles the journal (`Journal::settle`) from this many segments since the
/// checkpoint: each costs every later load a request.
const SETTLE_AFTER: u64 = 4;
/// ... when the checkpoint rewrites at most this many first-seen shards per such segment.
const SETTLE_SHARDS_PER_SEGMENT: u64 = 4;
/// Segments fetched at once when the journal is loaded.
const LOAD_IN_FLIGHT: usize = 8;
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A hold selector as recorded (the engine's `HoldSelector`, serialisable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SelectRecord {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub keys: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub recording_ids: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub subjects: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Option<String>>,
    /// The hold's scope: kinds and recording-time window.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub kinds: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_after: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_before: Option<DateTime<Utc>>,
}

impl From<&HoldSelector> for SelectRecord {
    fn from(s: &HoldSelector) -> Self {
        SelectRecord {
            keys: s.keys.clone(),
            prefix: s.prefix.clone(),
            recording_ids: s.recording_ids.clone(),
            subjects: s.subjects.clone(),
            tags: s.tags.clone(),
            kinds: s.kinds.clone(),
            recorded_after: s.recorded_after,
            recorded_before: s.recorded_before,
        }
    }
}

impl From<&SelectRecord> for HoldSelector {
    fn from(s: &SelectRecord) -> Self {
        HoldSelector {
            keys: s.keys.clone(),
            prefix: s.prefix.clone(),
            recording_ids: s.recording_ids.clone(),
            subjects: s.subjects.clone(),
            tags: s.tags.clone(),
            kinds: s.kinds.clone(),
            recorded_after: s.recorded_after,
            recorded_before: s.recorded_before,
        }
    }
}

/// A hold as recorded: enough to apply its floor after its resource is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldRecord {
    /// `namespace/name` of the LegalHold (or the manifest's hold).
    pub hold: String,
    pub reason: String,
    pub case: String,
    pub select: SelectRecord,
    /// When the case's limitation period began: the floor counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitation_start: Option<DateTime<Utc>>,
}

impl HoldRecord {
    pub fn of(h: &Hold) -> Self {
        HoldRecord {
            hold: h.name.clone(),
            reason: h.reason.as_str().to_string(),
            case: h.case.clone(),
            select: SelectRecord::from(&h.select),
            limitation_start: h.limitation_start,
        }
    }

    fn reason(&self) -> Option<HoldReason> {
        HoldReason::ALL
            .into_iter()
            .find(|r| r.as_str() == self.reason)
    }
}

/// A data-subject request as recorded: what it selects (ids, never content), so that a
/// withdrawal stays in effect and an erased recording that reappears is erased again after the
/// request's resource is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// `namespace/name` of the SubjectRequest (or the manifest's request).
    pub request: String,
    #[serde(rename = "type")]
    pub kind: RequestType,
    pub reference: String,
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub recording_ids: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub subjects: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub purposes: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_at: Option<DateTime<Utc>>,
}

impl RequestRecord {
    pub fn of(r: &SubjectRequest) -> Self {
        RequestRecord {
            request: r.name.clone(),
            kind: r.kind,
            reference: r.reference.clone(),
            received_at: r.received_at,
            recording_ids: r.recording_ids.clone(),
            subjects: r.subjects.clone(),
            purposes: r.purposes.clone(),
            lifted_at: r.lifted_at,
        }
    }
}

/// What a pass made of a data-subject request: the answer, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOutcome {
    pub request: String,
    #[serde(rename = "type")]
    pub kind: RequestType,
    pub phase: RequestPhase,
    /// Selected objects present, by kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matched: BTreeMap<String, u64>,
    /// Deleted under the request so far, by kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deleted: BTreeMap<String, u64>,
    /// Erasure: objects kept, and what keeps them (at most 100 listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<RequestException>,
    #[serde(default)]
    pub exceptions_total: u64,
    /// Erasure: objects deleted again after the erasure had completed.
    #[serde(default)]
    pub reappeared: u64,
    /// Erasure: recording ids (keys, without one) erased: the tombstone.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub erased_recording_ids: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub erased_keys: BTreeSet<String>,
    /// Access: the manifest's key in the state location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Erasure: keys of the objects kept as exceptions, all of them: deleting one later (its
    /// hold ended) is no reappearance.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub kept_ids: BTreeSet<String>,
}

impl RequestOutcome {
    /// The same answer (what a status shows), whatever tombstone ids it adds.
    pub fn same_answer(&self, other: &RequestOutcome) -> bool {
        self.phase == other.phase
            && self.matched == other.matched
            && self.deleted == other.deleted
            && self.exceptions_total == other.exceptions_total
            && self.reappeared == other.reappeared
            && self.manifest == other.manifest
            && self.kept_ids == other.kept_ids
    }
}

/// A request the journal knows, with its tombstone and its last outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestState {
    pub record: RequestRecord,
    /// When it was first journaled.
    pub since: DateTime<Utc>,
    /// Erasure: recording ids and keys erased (kept across edits of the request).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tombstone_ids: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tombstone_keys: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RequestOutcome>,
    /// When it first reached Completed or PartiallyCompleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

impl RequestState {
    /// The request as the engine plans with it: its selection plus its tombstone.
    pub fn engine_request(&self) -> SubjectRequest {
        let r = &self.record;
        SubjectRequest {
            name: r.request.clone(),
            kind: r.kind,
            recording_ids: r
                .recording_ids
                .union(&self.tombstone_ids)
                .cloned()
                .collect(),
            subjects: r.subjects.clone(),
            keys: self.tombstone_keys.clone(),
            purposes: r.purposes.clone(),
            received_at: r.received_at,
            reference: r.reference.clone(),
            lifted_at: r.lifted_at,
        }
    }
}

/// A deletion gallring is about to make, with its justification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntendedDeletion {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    pub reason: String,
    /// What it was, for evidence: its artifact kind, purposes and their controllers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<String>,
    /// Its recording id, and the data-subject requests that select it: an erasure's tombstone
    /// gains the recording id here, before the deletion (a pass that dies after deleting the
    /// audio still leaves the link to the transcript).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<String>,
}

/// A withdrawal (or opt-out, objection) read from an object's `gallring.io/withdrawn` tag.
/// Only a journaled withdrawal shortens retention, from the time it was journaled: a tag
/// stripped or back-dated later changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalSeen {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The content the withdrawal was read from: a new object under the same key does not
    /// inherit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub purposes: BTreeSet<String>,
}

/// What the journal records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "camelCase")]
pub enum Fact {
    /// A hold took effect on the bucket.
    #[serde(rename_all = "camelCase")]
    HoldApplied(HoldRecord),
    /// A hold was released at `released_at` (its resource deleted, or gone from the manifests):
    /// its objects keep the later of their deadline and `released_at` + the policy's
    /// `holdRelease` for its reason. One record, whatever the number of objects.
    #[serde(rename_all = "camelCase")]
    HoldReleased {
        #[serde(flatten)]
        hold: HoldRecord,
        released_at: DateTime<Utc>,
    },
    /// gallring turned these Object Lock legal holds on (others' legal holds are never lifted).
    #[serde(rename_all = "camelCase")]
    LegalHoldsSet { objects: Vec<VersionRef> },
    /// gallring turned off legal holds it had set.
    #[serde(rename_all = "camelCase")]
    LegalHoldsLifted { objects: Vec<VersionRef> },
    /// Written before a DeleteObjects request: what is deleted and why.
    #[serde(rename_all = "camelCase")]
    DeletionsIntended { objects: Vec<IntendedDeletion> },
    /// The store confirmed these deletions.
    #[serde(rename_all = "camelCase")]
    DeletionsConfirmed { objects: Vec<VersionRef> },
    /// Creation times seen for the first time (written before any tag write to the object).
    #[serde(rename_all = "camelCase")]
    ObjectsFirstSeen { objects: Vec<FirstSeen> },
    /// Versions a complete pass no longer listed (deleted by lifecycle or by others): their
    /// first-seen times and withdrawals are forgotten.
    #[serde(rename_all = "camelCase")]
    ObjectsGone { objects: Vec<VersionRef> },
    /// Withdrawals read from tags; they take effect from this record's time.
    #[serde(rename_all = "camelCase")]
    WithdrawalsObserved { objects: Vec<WithdrawalSeen> },
    /// Versions a complete listing no longer shows that gallring did not delete, and what
    /// removed them as far as gallring can tell, observed between the previous complete
    /// listing (`since`) and this record: the evidence neither S3 nor CloudTrail gives.
    #[serde(rename_all = "camelCase")]
    ObjectsGoneObserved {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<DateTime<Utc>>,
        objects: Vec<GoneObject>,
    },
    /// A data-subject request was received (or changed): from here it counts.
    #[serde(rename_all = "camelCase")]
    SubjectRequestReceived(RequestRecord),
    /// What a pass made of a data-subject request (written when the answer changes).
    #[serde(rename_all = "camelCase")]
    SubjectRequestOutcome(RequestOutcome),
}

/// A version that disappeared between two listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoneObject {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub cause: GoneCause,
    /// Its `gallring.io/retention` tag when last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The gallring lifecycle rule that matches that tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What it was as gallring last knew it: artifact kind, purposes and their controllers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<String>,
}

/// Who removed a version gallring did not delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GoneCause {
    /// It carried an `expire-<N>d` tag and at least N days had passed since its creation: a
    /// lifecycle rule expired it.
    Lifecycle,
    /// Anything else: no expiry tag, or gone before its tag allowed (someone deleted it).
    Others,
}

/// One line of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub prev: String,
    #[serde(flatten)]
    pub fact: Fact,
}

/// Read by hand: a derived `flatten` of an internally tagged enum copies every line into an
/// intermediate tree twice before it reaches the fact, and the journal's bulk (first-seen
/// lines of a thousand objects) is read at every pass start. Lines as gallring writes them
/// (`seq`, `at`, `prev`, then `fact`) go straight to their fact; a first-seen fact is read
/// from the line directly, any other fact (or another field order) through a JSON value.
impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

/// The fields of a first-seen fact, read once its tag is known.
#[derive(Deserialize)]
struct FirstSeenBody {
    objects: Vec<FirstSeen>,
}

impl<'de> serde::de::Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a journal record (seq, at, prev and a fact)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        use serde::de::Error;
        let (mut seq, mut at, mut prev) = (None, None, None);
        let mut rest = serde_json::Map::new();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match name.as_ref() {
                "seq" if seq.is_none() => seq = Some(map.next_value::<u64>()?),
                "at" if at.is_none() => at = Some(map.next_value::<DateTime<Utc>>()?),
                "prev" if prev.is_none() => prev = Some(map.next_value::<String>()?),
                "seq" | "at" | "prev" => return Err(A::Error::duplicate_field("seq, at or prev")),
                "fact" if rest.is_empty() => {
                    let tag = map.next_value::<String>()?;
                    if tag == "objectsFirstSeen"
                        && seq.is_some()
                        && at.is_some()
                        && let (Some(seq), Some(at), Some(prev)) = (seq, at, prev.take())
                    {
                        let body = FirstSeenBody::deserialize(
                            serde::de::value::MapAccessDeserializer::new(map),
                        )?;
                        return Ok(Record {
                            seq,
                            at,
                            prev,
                            fact: Fact::ObjectsFirstSeen {
                                objects: body.objects,
                            },
                        });
                    }
                    rest.insert("fact".into(), serde_json::Value::String(tag));
                }
                other => {
                    let value = map.next_value::<serde_json::Value>()?;
                    if rest.insert(other.to_string(), value).is_some() {
                        return Err(A::Error::custom(format!("duplicate field `{other}`")));
                    }
                }
            }
        }
        let fact = Fact::deserialize(serde_json::Value::Object(rest)).map_err(A::Error::custom)?;
        Ok(Record {
            seq: seq.ok_or_else(|| A::Error::missing_field("seq"))?,
            at: at.ok_or_else(|| A::Error::missing_field("at"))?,
            prev: prev.ok_or_else(|| A::Error::missing_field("prev"))?,
            fact,
        })
    }
}

/// What the facts add up to: the protection state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalState {
    /// Holds in effect, by name.
    pub applied: BTreeMap<String, HoldRecord>,
    /// Released holds with their release time (floors; kept as evidence too).
    pub released: Vec<(HoldRecord, DateTime<Utc>)>,
    /// Legal holds gallring set and has not lifted.
    pub legal_holds: BTreeSet<VersionRef>,
    /// First-seen creation times, by version (dropped once the version is deleted): in
    /// key-range shards the checkpoint names, loaded as a pass reaches them ([`SeenMap`]).
    #[serde(skip)]
    pub seen: SeenMap,
    /// The first-seen map as checkpoints held it whole before the shards: read, then moved
    /// into `seen` (the next checkpoint writes it as shards).
    #[serde(
        default,
        rename = "firstSeen",
        skip_serializing,
        deserialize_with = "pairs::deserialize"
    )]
    legacy_first_seen: BTreeMap<VersionRef, Seen>,
    /// Journaled withdrawals, by version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "pairs")]
    pub withdrawals: BTreeMap<VersionRef, Withdrawal>,
    /// Data-subject requests, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, RequestState>,
}

/// The withdrawn purposes of one version and when the last of them was journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub purposes: BTreeSet<String>,
    pub at: DateTime<Utc>,
}

/// Maps keyed by a struct, written as a list of `[key, value]` pairs (JSON keys are strings).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, K: Serialize, V: Serialize>(
        m: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// The same content: equal ETags (an unknown ETag only matches an unknown one).
fn same_content(a: Option<&str>, b: Option<&str>) -> bool {
    a == b
}

impl JournalState {
    fn apply(&mut self, fact: &Fact, at: DateTime<Utc>) {
        match fact {
            Fact::HoldApplied(h) => {
                self.applied.insert(h.hold.clone(), h.clone());
            }
            Fact::HoldReleased { hold, released_at } => {
                self.applied.remove(&hold.hold);
                self.released.push((hold.clone(), *released_at));
            }
            Fact::LegalHoldsSet { objects } => self.legal_holds.extend(objects.iter().cloned()),
            Fact::LegalHoldsLifted { objects } => {
                for o in objects {
                    self.legal_holds.remove(o);
                }
            }
            Fact::DeletionsIntended { objects } => {
                // Write-ahead tombstones: what an erasure deletes is named before it goes.
                for o in objects {
                    for name in &o.requests {
                        if let Some(r) = self
                            .requests
                            .get_mut(name)
                            .filter(|r| r.record.kind == RequestType::Erasure)
                        {
                            match &o.recording_id {
                                Some(id) => r.tombstone_ids.insert(id.clone()),
                                None => r.tombstone_keys.insert(o.key.clone()),
                            };
                        }
                    }
                }
            }
            Fact::DeletionsConfirmed { objects } | Fact::ObjectsGone { objects } => {
                for o in objects {
                    self.seen.remove(o);
                    self.withdrawals.remove(o);
                }
            }
            Fact::ObjectsFirstSeen { objects } => {
                for o in objects {
                    self.seen.insert(
                        VersionRef {
                            key: o.key.clone(),
                            version_id: o.version_id.clone(),
                        },
                        Seen {
                            etag: o.etag.clone(),
                            last_modified: o.last_modified,
                        },
                    );
                }
            }
            Fact::ObjectsGoneObserved { .. } => {}
            Fact::SubjectRequestReceived(r) => {
                let entry =
                    self.requests
                        .entry(r.request.clone())
                        .or_insert_with(|| RequestState {
                            record: r.clone(),
                            since: at,
                            tombstone_ids: BTreeSet::new(),
                            tombstone_keys: BTreeSet::new(),
                            outcome: None,
                            completed_at: None,
                        });
                // A changed request is answered anew; what it erased stays erased.
                entry.record = r.clone();
                entry.outcome = None;
                entry.completed_at = None;
            }
            Fact::SubjectRequestOutcome(o) => {
                if let Some(entry) = self.requests.get_mut(&o.request) {
                    entry
                        .tombstone_ids
                        .extend(o.erased_recording_ids.iter().cloned());
                    entry.tombstone_keys.extend(o.erased_keys.iter().cloned());
                    if entry.completed_at.is_none()
                        && matches!(
                            o.phase,
                            RequestPhase::Completed | RequestPhase::PartiallyCompleted
                        )
                    {
                        entry.completed_at = Some(at);
                    }
                    entry.outcome = Some(o.clone());
                }
            }
            Fact::WithdrawalsObserved { objects } => {
                for o in objects {
                    let id = VersionRef {
                        key: o.key.clone(),
                        version_id: o.version_id.clone(),
                    };
                    let entry = self.withdrawals.entry(id).or_insert_with(|| Withdrawal {
                        etag: o.etag.clone(),
                        purposes: BTreeSet::new(),
                        at,
                    });
                    if !same_content(entry.etag.as_deref(), o.etag.as_deref()) {
                        // New content under the same key: the old withdrawal was not about it.
                        entry.purposes.clear();
                        entry.etag = o.etag.clone();
                    }
                    entry.purposes.extend(o.purposes.iter().cloned());
                    entry.at = at;
                }
            }
        }
    }

    /// The creation time deadlines count from: the first one gallring saw for this content,
    /// or the listed one.
    pub fn created(
        &self,
        id: &VersionRef,
        etag: Option<&str>,
        listed: DateTime<Utc>,
    ) -> DateTime<Utc> {
        match self.first_seen(id, etag) {
            Some(s) => s.last_modified.min(listed),
            None => listed,
        }
    }

    /// This content's journaled first-seen time. A shard not loaded answers none: the time
    /// is journaled again, and the earlier one is kept.
    pub fn first_seen(&self, id: &VersionRef, etag: Option<&str>) -> Option<&Seen> {
        self.seen
            .get(id)
            .known()
            .filter(|s| same_content(s.etag.as_deref(), etag))
    }

    /// The journaled withdrawal of this content, if any.
    pub fn withdrawal(&self, id: &VersionRef, etag: Option<&str>) -> Option<&Withdrawal> {
        self.withdrawals
            .get(id)
            .filter(|w| same_content(w.etag.as_deref(), etag))
    }

    /// Released holds as engine holds, for their floors.
    pub fn released_holds(&self) -> Vec<Hold> {
        self.released
            .iter()
            .filter_map(|(h, at)| {
                Some(Hold {
                    name: h.hold.clone(),
                    reason: h.reason()?,
                    case: h.case.clone(),
                    select: HoldSelector::from(&h.select),
                    expires: None,
                    review_by: None,
                    released_at: Some(*at),
                    limitation_start: h.limitation_start,
                    created_at: None,
                })
            })
            .collect()
    }

    /// Whether gallring set this legal hold (and so may lift it).
    pub fn set_by_gallring(&self, id: &ObjectId) -> bool {
        self.legal_holds.contains(&VersionRef::from(id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    /// The first seq not folded into `state`.
    next_seq: u64,
    /// Hash of the last folded record.
    head: String,
    /// The last folded segment's key.
    last_segment: Option<String>,
    /// The time of the last folded record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_at: Option<DateTime<Utc>>,
    state: JournalState,
    /// The first-seen shards, in key order.
    #[serde(default)]
    seen: Vec<ShardRef>,
    /// Shards this checkpoint replaced: removed by the next one (a load of the previous
    /// checkpoint may still be reading them).
    #[serde(default)]
    retired: Vec<String>,
}

/// A checkpoint as written: the state borrowed, not copied (it holds an entry per object).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckpointRef<'a> {
    next_seq: u64,
    head: &'a str,
    last_segment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_at: Option<DateTime<Utc>>,
    state: &'a JournalState,
    seen: &'a [ShardRef],
    retired: &'a [String],
}

/// Why the journal cannot be read or written. Either way nothing that lowers protection
/// happens: the pass stops.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("journal: {0}")]
    Store(#[from] StoreError),
    #[error("journal {key} line {line}: {message}")]
    Corrupt {
        key: String,
        line: usize,
        message: String,
    },
}

fn hash(line: &[u8]) -> String {
    Sha256::digest(line)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The journal of one bucket, loaded: its state and where the next record goes.
pub struct Journal {
    prefix: String,
    /// Object Lock retention for every object written (evidence nobody can quietly remove).
    retention: Option<crate::retention::IsoDuration>,
    /// The time of the last record written (retention counts from it).
    last_at: Option<DateTime<Utc>>,
    next_seq: u64,
    head: String,
    segments_since_checkpoint: u64,
    last_segment: Option<String>,
    state: JournalState,
    /// Shards the loaded checkpoint replaced (removed by the next checkpoint).
    retired: Vec<String>,
    /// Seals each segment it writes (issue 11), when the host has a key.
    signer: Option<std::sync::Arc<super::seal::Signer>>,
}

/// The keys under `prefix` + `sub` ending in `suffix`, sorted (segments and seals are named by
/// their first seq, zero-padded, so sorted is chain order).
async fn list_keys<S: ObjectStore>(
    store: &S,
    prefix: &str,
    sub: &str,
    suffix: &str,
) -> Result<Vec<String>, JournalError> {
    list_keys_after(store, prefix, sub, suffix, None).await
}

/// The keys under `prefix` + `sub` ending in `suffix`, sorted, from the first after `after`.
async fn list_keys_after<S: ObjectStore>(
    store: &S,
    prefix: &str,
    sub: &str,
    suffix: &str,
    after: Option<&str>,
) -> Result<Vec<String>, JournalError> {
    let under = format!("{prefix}{sub}");
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = match (&token, after) {
            (None, Some(after)) => store.list_page_after(Some(&under), after, 1000).await?,
            _ => store.list_page(Some(&under), false, token, 1000).await?,
        };
        keys.extend(
            page.objects
                .into_iter()
                .filter(|o| !o.delete_marker && o.key.ends_with(suffix))
                .map(|o| o.key),
        );
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    keys.sort();
    Ok(keys)
}

impl Journal {
    /// An empty journal at `prefix`: the state before the first record.
    fn empty(prefix: &str) -> Journal {
        Journal {
            prefix: prefix.to_string(),
            retention: None,
            last_at: None,
            next_seq: 0,
            head: GENESIS.to_string(),
            segments_since_checkpoint: 0,
            last_segment: None,
            state: JournalState::default(),
            retired: Vec::new(),
            signer: None,
        }
    }

    /// An empty journal that folds the chain without keeping first-seen times: for reads of
    /// the whole history, whose memory must not grow with the bucket.
    fn chain_only(prefix: &str) -> Journal {
        let mut j = Journal::empty(prefix);
        j.state.seen = SeenMap::discarding();
        j
    }

    /// Writes first-seen shards of `n` entries (tuning; the default suits any bucket).
    pub fn with_shard_entries(mut self, n: usize) -> Self {
        self.state.seen.set_shard_entries(n);
        self
    }

    /// Seals every segment written from now on with `signer`.
    pub fn signed_by(mut self, signer: Option<std::sync::Arc<super::seal::Signer>>) -> Self {
        self.signer = signer;
        self
    }

    fn seal_key(prefix: &str, first_seq: u64) -> String {
        format!("{prefix}seals/{first_seq:016}.json")
    }

    pub fn state(&self) -> &JournalState {
        &self.state
    }

    /// The latest record time: the pass's clock never reads earlier than what it already wrote.
    pub fn last_at(&self) -> Option<DateTime<Utc>> {
        self.last_at
    }

    /// Gives every object written from now on an Object Lock retention of `keep`.
    pub fn retain_for(mut self, keep: Option<crate::retention::IsoDuration>) -> Self {
        self.retention = keep;
        self
    }

    fn retain_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.retention.and_then(|k| k.add_to(at))
    }

    fn segment_key(&self, first_seq: u64) -> String {
        format!("{}journal/{first_seq:016}.jsonl", self.prefix)
    }

    fn checkpoint_key(prefix: &str) -> String {
        format!("{prefix}checkpoint.json")
    }

    /// Reads the checkpoint and every later segment, checking the hash chain.
    pub async fn load<S: ObjectStore>(store: &S, prefix: &str) -> Result<Journal, JournalError> {
        let checkpoint_key = Self::checkpoint_key(prefix);
        let checkpoint: Option<Checkpoint> = match store.get_object(&checkpoint_key).await? {
            None => None,
            Some(bytes) => {
                // An entry per object: parsed off the task, so the pass's lister goes on.
                let parsed = tokio::task::spawn_blocking(move || {
                    serde_json::from_slice::<Checkpoint>(&bytes)
                        .map_err(|e| (e.line(), e.to_string()))
                })
                .await
                .map_err(|e| (0, e.to_string()))
                .and_then(|r| r);
                Some(parsed.map_err(|(line, message)| JournalError::Corrupt {
                    key: checkpoint_key.clone(),
                    line,
                    message,
                })?)
            }
        };
        let mut journal = match checkpoint {
            Some(mut c) => {
                c.state.seen = SeenMap::from_shards(c.seen);
                let legacy = std::mem::take(&mut c.state.legacy_first_seen);
                c.state.seen.absorb(legacy);
                Journal {
                    prefix: prefix.to_string(),
                    retention: None,
                    last_at: c.last_at,
                    next_seq: c.next_seq,
                    head: c.head,
                    segments_since_checkpoint: 0,
                    last_segment: c.last_segment,
                    state: c.state,
                    retired: c.retired,
                    signer: None,
                }
            }
            None => Journal::empty(prefix),
        };
        // Segment keys sort in sequence order: the listing starts after the checkpoint's last
        // one, so a long journal costs no more to load than its recent segments do.
        let mut keys = list_keys_after(
            store,
            prefix,
            "journal/",
            ".jsonl",
            journal.last_segment.as_deref(),
        )
        .await?;
        keys.retain(|key| journal.last_segment.as_ref().is_none_or(|l| key > l));
        // Fetched several at a time (a pass starts with this), folded strictly in order.
        let mut fetched = futures::stream::iter(keys)
            .map(|key| async move {
                let bytes = store.get_object(&key).await;
                (key, bytes)
            })
            .buffered(LOAD_IN_FLIGHT);
        while let Some((key, bytes)) = fetched.next().await {
            let Some(bytes) = bytes? else {
                continue;
            };
            journal.fold_segment(&key, &bytes)?;
            journal.segments_since_checkpoint += 1;
            // Folding is CPU only: let whatever shares the task (the pass's lister) go on.
            tokio::task::yield_now().await;
        }
        Ok(journal)
    }

    fn fold_segment(&mut self, key: &str, bytes: &[u8]) -> Result<(), JournalError> {
        let corrupt = |line: usize, message: String| JournalError::Corrupt {
            key: key.to_string(),
            line,
            message,
        };
        for (i, line) in bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
        {
            let record: Record =
                serde_json::from_slice(line).map_err(|e| corrupt(i + 1, e.to_string()))?;
            if record.seq != self.next_seq {
                return Err(corrupt(
                    i + 1,
                    format!(
                        "seq {} where {} was expected (a gap)",
                        record.seq, self.next_seq
                    ),
                ));
            }
            if record.prev != self.head {
                return Err(corrupt(
                    i + 1,
                    "prev does not match the previous record's hash (altered or reordered)".into(),
                ));
            }
            self.state.apply(&record.fact, record.at);
            self.last_at = Some(self.last_at.map_or(record.at, |t| t.max(record.at)));
            self.head = hash(line);
            self.next_seq += 1;
        }
        self.last_segment = Some(key.to_string());
        Ok(())
    }

    /// Makes `facts` durable as one segment, then folds them into the state. Nothing is folded
    /// when the write fails, so the caller can rely on "in the state" meaning "durable".
    pub async fn append<S: ObjectStore>(
        &mut self,
        store: &S,
        at: DateTime<Utc>,
        facts: Vec<Fact>,
    ) -> Result<(), JournalError> {
        if facts.is_empty() {
            return Ok(());
        }
        let first = self.next_seq;
        let mut body = Vec::new();
        let mut head = self.head.clone();
        for (i, fact) in facts.iter().enumerate() {
            let record = Record {
                seq: first + i as u64,
                at,
                prev: head.clone(),
                fact: fact.clone(),
            };
            let line = serde_json::to_vec(&record).map_err(|e| JournalError::Corrupt {
                key: self.segment_key(first),
                line: i + 1,
                message: e.to_string(),
            })?;
            head = hash(&line);
            body.extend_from_slice(&line);
            body.push(b'\n');
        }
        let key = self.segment_key(first);
        store
            .put_object(&key, body, "application/x-ndjson", self.retain_until(at))
            .await?;
        self.last_at = Some(self.last_at.map_or(at, |t| t.max(at)));
        for fact in &facts {
            self.state.apply(fact, at);
        }
        self.next_seq = first + facts.len() as u64;
        self.head = head;
        if let Some(signer) = &self.signer {
            // The segment is durable already; a seal that fails is covered by the next one
            // (a seal vouches for every record before it through the chain).
            let seal = signer.seal(&self.prefix, &key, first, self.next_seq - 1, &self.head);
            let seal_key = Self::seal_key(&self.prefix, first);
            match serde_json::to_vec(&seal) {
                Ok(body) => {
                    if let Err(e) = store
                        .put_object(&seal_key, body, "application/json", self.retain_until(at))
                        .await
                    {
                        tracing::warn!(key = %seal_key, error = %e, "journal seal not written; the next one covers it");
                    }
                }
                Err(e) => {
                    tracing::warn!(key = %seal_key, error = %e, "journal seal not serialised")
                }
            }
        }
        self.last_segment = Some(key);
        self.segments_since_checkpoint += 1;
        if self.segments_since_checkpoint >= CHECKPOINT_EVERY
            || self.state.seen.pending()
                >= CHECKPOINT_PENDING_SHARDS * self.state.seen.shard_entries()
        {
            self.checkpoint(store).await?;
        }
        Ok(())
    }

    /// Writes a checkpoint when at least `SETTLE_AFTER` segments follow the last one and it
    /// rewrites few first-seen shards (at most `SETTLE_SHARDS_PER_SEGMENT` per segment): every
    /// later load then reads none of those segments. For a pass that appended nothing, so
    /// that a quiet bucket settles once, not a checkpoint per pass (under Object Lock each
    /// one is a version kept). Returns whether it wrote one.
    pub async fn settle<S: ObjectStore>(&mut self, store: &S) -> Result<bool, JournalError> {
        let segments = self.segments_since_checkpoint;
        if segments < SETTLE_AFTER
            || self.state.seen.touched().len() as u64 > SETTLE_SHARDS_PER_SEGMENT * segments
        {
            return Ok(false);
        }
        self.checkpoint(store).await?;
        Ok(true)
    }

    /// The sequence number of the next record: how many records the chain holds.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Writes the folded state, so the next load reads only later segments: first the
    /// first-seen shards that changed (new objects; the old ones stay until the checkpoint
    /// after next), then the checkpoint that names them.
    pub async fn checkpoint<S: ObjectStore>(&mut self, store: &S) -> Result<(), JournalError> {
        let until = self.last_at.and_then(|at| self.retain_until(at));
        let (seen, loaded, replaced) = self.rewrite_shards(store, until).await?;
        let c = CheckpointRef {
            next_seq: self.next_seq,
            head: &self.head,
            last_segment: self.last_segment.as_deref(),
            last_at: self.last_at,
            state: &self.state,
            seen: &seen,
            retired: &replaced,
        };
        let key = Self::checkpoint_key(&self.prefix);
        let body = serde_json::to_vec(&c).map_err(|e| JournalError::Corrupt {
            key: key.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        store
            .put_object(&key, body, "application/json", until)
            .await?;
        // Nothing names the shards the previous checkpoint replaced any more. Under Object
        // Lock they are evidence like the rest and stay.
        if self.retention.is_none() {
            for object in std::mem::take(&mut self.retired) {
                let id = ObjectId {
                    key: object,
                    version_id: None,
                };
                if let Err(e) = store.delete_object(&id, None).await {
                    tracing::debug!(key = %id.key, error = %e, "replaced first-seen shard not removed");
                }
            }
        }
        self.retired = replaced;
        self.state.seen.checkpointed(seen, loaded);
        self.segments_since_checkpoint = 0;
        Ok(())
    }

    fn shard_key(&self, n: usize) -> String {
        format!(
            "{}seen/{:016}-{}-{n:05}.jsonl",
            self.prefix,
            self.next_seq,
            &self.head[..self.head.len().min(8)]
        )
    }

    /// A shard's entries, read and parsed (off the task, so a pass's lister goes on).
    async fn fetch_shard<S: ObjectStore>(
        store: &S,
        object: &str,
    ) -> Result<BTreeMap<VersionRef, Seen>, JournalError> {
        let body = store
            .get_object(object)
            .await?
            .ok_or_else(|| missing_shard(object))?;
        tokio::task::spawn_blocking(move || shards::decode(&body))
            .await
            .map_err(|e| (0, e.to_string()))
            .and_then(|r| r)
            .map_err(|(line, message)| JournalError::Corrupt {
                key: object.to_string(),
                line,
                message,
            })
    }

    /// Shard `i`'s entries as the checkpoint wrote them: from memory when loaded, else read.
    async fn shard_base<S: ObjectStore>(
        &self,
        store: &S,
        i: usize,
        r: &ShardRef,
    ) -> Result<BTreeMap<VersionRef, Seen>, JournalError> {
        match self.state.seen.loaded(i) {
            Some(m) => Ok(m.clone()),
            None => Self::fetch_shard(store, &r.object).await,
        }
    }

    /// The shards with the changes since the checkpoint written (each rewritten shard as new
    /// objects), the shards to keep in memory, and the objects the rewrite replaced.
    async fn rewrite_shards<S: ObjectStore>(
        &self,
        store: &S,
        until: Option<DateTime<Utc>>,
    ) -> Result<RewrittenShards, JournalError> {
        let seen = &self.state.seen;
        let touched = seen.touched();
        let mut out: Vec<(ShardRef, Option<BTreeMap<VersionRef, Seen>>)> = Vec::new();
        let mut replaced = Vec::new();
        let mut written = 0usize;
        let mut write = async |from: String,
                               entries: BTreeMap<VersionRef, Seen>,
                               keep: bool|
               -> Result<
            (ShardRef, Option<BTreeMap<VersionRef, Seen>>),
            JournalError,
        > {
            let object = self.shard_key(written);
            written += 1;
            let body = shards::encode(&entries).map_err(|e| JournalError::Corrupt {
                key: object.clone(),
                line: 0,
                message: e.to_string(),
            })?;
            store
                .put_object(&object, body, "application/x-ndjson", until)
                .await?;
            let r = ShardRef {
                from,
                object,
                entries: entries.len() as u64,
            };
            Ok((r, keep.then_some(entries)))
        };
        if touched.contains(&None) {
            // No shards yet (or keys below the first): the changes are the new shards.
            for (from, entries) in seen.rewrite(None, BTreeMap::new()) {
                out.push(write(from, entries, true).await?);
            }
        }
        for (i, r) in seen.shards().iter().enumerate() {
            let loaded = seen.loaded(i);
            if !touched.contains(&Some(i)) {
                out.push((r.clone(), loaded.cloned()));
                continue;
            }
            let base = self.shard_base(store, i, r).await?;
            replaced.push(r.object.clone());
            for (from, entries) in seen.rewrite(Some(i), base) {
                out.push(write(from, entries, loaded.is_some()).await?);
            }
        }
        if let Some(first) = out.first_mut() {
            // The first shard covers every key below the second.
            first.0.from = String::new();
        }
        let mut refs = Vec::with_capacity(out.len());
        let mut keep = BTreeMap::new();
        for (i, (r, entries)) in out.into_iter().enumerate() {
            refs.push(r);
            if let Some(m) = entries {
                keep.insert(i, m);
            }
        }
        Ok((refs, keep, replaced))
    }

    /// Loads the first-seen shards a page over keys `[lo, upto]` needs and drops the others.
    pub async fn prepare_seen<S: ObjectStore>(
        &mut self,
        store: &S,
        lo: &str,
        upto: Upto<'_>,
    ) -> Result<(), JournalError> {
        let needed = self.state.seen.needed(lo, upto);
        self.load_shards(store, &needed).await
    }

    /// Loads the first-seen shards of these keys and drops the others.
    pub async fn prepare_seen_for<'k, S: ObjectStore>(
        &mut self,
        store: &S,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<(), JournalError> {
        let needed = self.state.seen.needed_for(keys);
        self.load_shards(store, &needed).await
    }

    async fn load_shards<S: ObjectStore>(
        &mut self,
        store: &S,
        needed: &BTreeSet<usize>,
    ) -> Result<(), JournalError> {
        let missing = self.state.seen.keep_only(needed);
        let mut fetched = futures::stream::iter(missing)
            .map(|(i, object)| async move { (i, Self::fetch_shard(store, &object).await) })
            .buffer_unordered(LOAD_IN_FLIGHT);
        while let Some((i, entries)) = fetched.next().await {
            self.state.seen.put_loaded(i, entries?);
        }
        Ok(())
    }

    /// Every first-seen entry, shard by shard with the changes applied (for tests and
    /// reports over a small bucket: this holds them all).
    pub async fn first_seen_all<S: ObjectStore>(
        &self,
        store: &S,
    ) -> Result<BTreeMap<VersionRef, Seen>, JournalError> {
        let seen = &self.state.seen;
        let mut all = BTreeMap::new();
        for (_, entries) in seen.rewrite(None, BTreeMap::new()) {
            all.extend(entries);
        }
        for (i, r) in seen.shards().iter().enumerate() {
            let base = self.shard_base(store, i, r).await?;
            for (_, entries) in seen.rewrite(Some(i), base) {
                all.extend(entries);
            }
        }
        Ok(all)
    }
}

fn missing_shard(object: &str) -> JournalError {
    JournalError::Corrupt {
        key: object.to_string(),
        line: 0,
        message: "the checkpoint names this first-seen shard but it is missing (remove \
                  checkpoint.json to rebuild the state from the segments)"
            .into(),
    }
}

/// New shard list, the shards to keep in memory by their new index, the replaced objects.
type RewrittenShards = (
    Vec<ShardRef>,
    BTreeMap<usize, BTreeMap<VersionRef, Seen>>,
    Vec<String>,
);

/// Every record from the first, the chain checked (as a load does, without the checkpoint):
/// for reports over the whole history.
pub async fn records<S: ObjectStore>(store: &S, prefix: &str) -> Result<Vec<Record>, JournalError> {
    let keys = list_keys(store, prefix, "journal/", ".jsonl").await?;
    let mut j = Journal::chain_only(prefix);
    let mut out = Vec::new();
    for key in keys {
        let Some(bytes) = store.get_object(&key).await? else {
            continue;
        };
        j.fold_segment(&key, &bytes)?;
        for (i, line) in bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
        {
            out.push(serde_json::from_slice::<Record>(line).map_err(|e| {
                JournalError::Corrupt {
                    key: key.clone(),
                    line: i + 1,
                    message: e.to_string(),
                }
            })?);
        }
    }
    Ok(out)
}

/// What `gallring journal verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub segments: u64,
    pub records: u64,
    /// The chain's hash after the last record.
    pub head: String,
    /// Seals whose signature verified under the expected key (or their own, without one).
    pub seals_valid: u64,
    /// Public keys the seals were made with.
    pub signers: BTreeSet<String>,
    /// The last record a valid seal vouches for.
    pub sealed_through: Option<u64>,
    /// Records after it: not (yet) vouched for by a signature.
    pub unsealed_records: u64,
    /// Whether the signatures were checked against a key given by the caller.
    pub key_checked: bool,
    /// The first problem, naming the object and line; `None` when the journal verifies.
    pub problem: Option<String>,
}

/// Reads every segment from the first and checks the chain (no gap, no altered or reordered
/// record), every seal (its place in the chain and its signature, under `key` when given) and
/// the checkpoint (it must agree with the chain). Stops at the first problem, which it names.
pub async fn verify<S: ObjectStore>(
    store: &S,
    prefix: &str,
    key: Option<&super::seal::PublicKey>,
) -> Result<VerifyReport, JournalError> {
    use super::seal::Seal;
    let segments = list_keys(store, prefix, "journal/", ".jsonl").await?;
    let seals: BTreeSet<String> = list_keys(store, prefix, "seals/", ".json")
        .await?
        .into_iter()
        .collect();
    let mut j = Journal::chain_only(prefix);
    let mut report = VerifyReport {
        key_checked: key.is_some(),
        ..VerifyReport::default()
    };
    // The chain's hash at each seq where a segment ends, for the checkpoint.
    let mut ends: BTreeMap<u64, String> = BTreeMap::new();
    for seg in &segments {
        let Some(bytes) = store.get_object(seg).await? else {
            continue;
        };
        let first = j.next_seq;
        if let Err(e) = j.fold_segment(seg, &bytes) {
            report.problem = Some(e.to_string());
            break;
        }
        report.segments += 1;
        let Some(last) = j.next_seq.checked_sub(1) else {
            continue;
        };
        ends.insert(last, j.head.clone());
        let file_first = seg
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok());
        if file_first != Some(first) {
            report.problem = Some(format!(
                "journal {seg}: named for seq {file_first:?} but holds records from seq {first}"
            ));
            break;
        }
        let seal_key = Journal::seal_key(prefix, first);
        if !seals.contains(&seal_key) {
            continue;
        }
        let Some(seal_bytes) = store.get_object(&seal_key).await? else {
            continue;
        };
        let seal: Seal = match serde_json::from_slice(&seal_bytes) {
            Ok(s) => s,
            Err(e) => {
                report.problem = Some(format!("seal {seal_key}: not a seal: {e}"));
                break;
            }
        };
        if seal.last_seq != last || seal.head != j.head {
            report.problem = Some(format!(
                "seal {seal_key}: signs seq {} with hash {}, but the chain has seq {last} with hash {}: the segment {seg} was changed after it was sealed",
                seal.last_seq, seal.head, j.head
            ));
            break;
        }
        let own = super::seal::PublicKey::parse(&seal.public_key);
        let valid = match (key, &own) {
            (Some(k), _) => k.verifies(prefix, &seal),
            (None, Ok(k)) => k.verifies(prefix, &seal),
            (None, Err(_)) => false,
        };
        if !valid {
            report.problem = Some(match key {
                Some(k) => format!(
                    "seal {seal_key}: the signature does not verify under {} (signed by {})",
                    k.hex(),
                    seal.public_key
                ),
                None => format!("seal {seal_key}: the signature does not verify"),
            });
            break;
        }
        report.seals_valid += 1;
        report.signers.insert(seal.public_key.clone());
        report.sealed_through = Some(last);
    }
    report.records = j.next_seq;
    report.head = j.head.clone();
    report.unsealed_records = match report.sealed_through {
        Some(s) => j.next_seq.saturating_sub(s + 1),
        None => j.next_seq,
    };
    if report.problem.is_none() {
        let key = Journal::checkpoint_key(prefix);
        if let Some(bytes) = store.get_object(&key).await? {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Head {
                next_seq: u64,
                head: String,
                #[serde(default)]
                seen: Vec<ShardRef>,
            }
            match serde_json::from_slice::<Head>(&bytes) {
                Err(e) => report.problem = Some(format!("{key}: not a checkpoint: {e}")),
                Ok(c) => {
                    let chain = c
                        .next_seq
                        .checked_sub(1)
                        .map_or(Some(GENESIS.to_string()), |s| ends.get(&s).cloned());
                    if chain.as_deref() != Some(c.head.as_str()) {
                        report.problem = Some(format!(
                            "{key}: says the chain's hash before seq {} is {}, the segments say {}",
                            c.next_seq,
                            c.head,
                            chain
                                .as_deref()
                                .unwrap_or("nothing (no segment ends there)")
                        ));
                    }
                    // Every first-seen shard it names is there and reads (one at a time).
                    for shard in &c.seen {
                        if report.problem.is_some() {
                            break;
                        }
                        match Journal::fetch_shard(store, &shard.object).await {
                            Ok(entries) if entries.len() as u64 == shard.entries => {}
                            Ok(entries) => {
                                report.problem = Some(format!(
                                    "{key}: shard {} holds {} entries, the checkpoint says {}",
                                    shard.object,
                                    entries.len(),
                                    shard.entries
                                ))
                            }
                            Err(JournalError::Corrupt { key, line, message }) => {
                                report.problem = Some(format!("{key} line {line}: {message}"))
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Operation;
    use crate::store::memory::MemoryStore;
    use chrono::TimeZone;

    fn t(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn first_seen(keys: impl IntoIterator<Item = String>, d: u32) -> Fact {
        Fact::ObjectsFirstSeen {
            objects: keys
                .into_iter()
                .map(|key| FirstSeen {
                    key,
                    version_id: None,
                    etag: Some("e".into()),
                    last_modified: t(d),
                })
                .collect(),
        }
    }

    fn vref(key: String) -> VersionRef {
        VersionRef {
            key,
            version_id: None,
        }
    }

    /// Records read the way a derived `flatten` reads them: the reference for the hand-written
    /// reader.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Derived {
        seq: u64,
        at: DateTime<Utc>,
        prev: String,
        #[serde(flatten)]
        fact: Fact,
    }

    /// Every kind of line, as written and with its fields in other orders, reads as the
    /// derived reader reads it; lines it refuses are refused too.
    #[test]
    fn records_read_by_hand_read_as_derived() {
        let hold = HoldRecord {
            hold: "ns/h".into(),
            reason: "complaint".into(),
            case: "C-1".into(),
            select: SelectRecord::default(),
            limitation_start: Some(t(3)),
        };
        let facts = vec![
            first_seen((0..3).map(|i| format!("k/{i}")), 2),
            first_seen(std::iter::empty(), 2),
            Fact::HoldApplied(hold.clone()),
            Fact::HoldReleased {
                hold,
                released_at: t(4),
            },
            Fact::ObjectsGone {
                objects: vec![vref("k/1".into())],
            },
            Fact::LegalHoldsSet {
                objects: vec![VersionRef {
                    key: "k/2".into(),
                    version_id: Some("v".into()),
                }],
            },
        ];
        let mut lines = Vec::new();
        for (seq, fact) in facts.into_iter().enumerate() {
            let record = Record {
                seq: seq as u64,
                at: t(5),
                prev: format!("{seq:064}"),
                fact,
            };
            let line = serde_json::to_string(&record).expect("serializes");
            let read: Record = serde_json::from_str(&line).expect("reads");
            assert_eq!(read, record, "{line}");
            lines.push(line.clone());
            // The same fields in reverse order, and with the fact's tag first.
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&line).expect("an object");
            let reversed: serde_json::Map<_, _> = map.clone().into_iter().rev().collect();
            lines.push(serde_json::to_string(&reversed).expect("serializes"));
            let mut fact_first = serde_json::Map::new();
            fact_first.insert("fact".into(), map["fact"].clone());
            fact_first.extend(map.clone());
            lines.push(serde_json::to_string(&fact_first).expect("serializes"));
            // Broken: a field missing, a field of the wrong type, an unknown fact, an extra field.
            for (name, value) in [
                ("seq", None),
                ("at", Some(serde_json::json!(7))),
                ("fact", Some(serde_json::json!("noSuchFact"))),
                ("extra", Some(serde_json::json!(1))),
            ] {
                let mut broken = map.clone();
                match value {
                    Some(v) => broken.insert(name.into(), v),
                    None => broken.remove(name),
                };
                lines.push(serde_json::to_string(&broken).expect("serializes"));
            }
        }
        lines.push(r#"{"seq":1,"seq":2,"at":"2026-11-01T00:00:00Z","prev":"","fact":"objectsGone","objects":[]}"#.into());
        lines.push("[1,2]".into());
        lines.push("{}".into());
        for line in &lines {
            let derived = serde_json::from_str::<Derived>(line).map(|d| Record {
                seq: d.seq,
                at: d.at,
                prev: d.prev,
                fact: d.fact,
            });
            let by_hand = serde_json::from_str::<Record>(line);
            match (derived, by_hand) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{line}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{line}: derived {a:?}, by hand {b:?}"),
            }
        }
    }

    /// The first-seen map in shards: what a load gives back is what was journaled (with
    /// removals and content seen again), memory holds the shards a step asked for, and the
    /// shards a checkpoint replaced go at the checkpoint after.
    #[tokio::test]
    async fn first_seen_times_survive_checkpoints_in_shards_and_load_as_needed() {
        let store = MemoryStore::new("b");
        let key = |i: u32| format!("audio/{i:06}.wav");
        let mut model: BTreeMap<VersionRef, Seen> = BTreeMap::new();
        let mut j = Journal::load(&store, DEFAULT_PREFIX).await.expect("empty");
        // 30 pages of 1,000, as a first pass journals them: several shards.
        for page in 0..30u32 {
            let keys: Vec<String> = (page * 1000..(page + 1) * 1000).map(key).collect();
            for k in &keys {
                model.insert(
                    vref(k.clone()),
                    Seen {
                        etag: Some("e".into()),
                        last_modified: t(1),
                    },
                );
            }
            j.append(&store, t(1), vec![first_seen(keys, 1)])
                .await
                .expect("durable");
        }
        // Gone, and seen again later (the same key uploaded anew): counts from day 5.
        let gone: Vec<VersionRef> = (0..30_000).step_by(7).map(|i| vref(key(i))).collect();
        j.append(
            &store,
            t(2),
            vec![Fact::ObjectsGone {
                objects: gone.clone(),
            }],
        )
        .await
        .expect("durable");
        for v in &gone {
            model.remove(v);
        }
        let again: Vec<String> = (0..30_000).step_by(21).map(key).collect();
        j.append(&store, t(5), vec![first_seen(again.clone(), 5)])
            .await
            .expect("durable");
        // Journaled once more with a later time (a shard not loaded): the earlier time stays.
        j.append(
            &store,
            t(9),
            vec![first_seen((1..30_000).step_by(13).map(key), 9)],
        )
        .await
        .expect("durable");
        for k in again {
            model.insert(
                vref(k),
                Seen {
                    etag: Some("e".into()),
                    last_modified: t(5),
                },
            );
        }
        for i in (1..30_000).step_by(13) {
            model.entry(vref(key(i))).or_insert(Seen {
                etag: Some("e".into()),
                last_modified: t(9),
            });
        }
        j.checkpoint(&store).await.expect("checkpoint");
        let shards = j.state().seen.shards().len();
        assert!(
            shards >= 30_000 / shards::SHARD_ENTRIES - 1,
            "30,000 entries in shards of {}: {shards}",
            shards::SHARD_ENTRIES
        );
        assert_eq!(j.state().seen.pending(), 0);

        let mut fresh = Journal::load(&store, DEFAULT_PREFIX).await.expect("load");
        assert_eq!(
            fresh.state().seen.in_memory(),
            0,
            "nothing loaded before it is asked for"
        );
        assert_eq!(
            fresh.first_seen_all(&store).await.expect("shards"),
            model,
            "what was journaled"
        );
        // A page over 1,000 keys needs one or two shards, not all of them.
        fresh
            .prepare_seen(&store, &key(12_000), Upto::Key(&key(12_999)))
            .await
            .expect("shards");
        assert!(fresh.state().seen.in_memory() <= 1000 + 2 * shards::SHARD_ENTRIES);
        for i in [12_000, 12_001, 12_007, 12_012, 12_999] {
            let v = vref(key(i));
            assert_eq!(
                fresh.state().seen.get(&v).known(),
                model.get(&v),
                "{}",
                v.key
            );
        }
        assert_eq!(
            fresh.state().seen.get(&vref(key(29_000))),
            shards::Lookup::Unloaded
        );

        // Replaced shards are removed by the checkpoint after the one that replaced them.
        let before: BTreeSet<String> = list_keys(&store, DEFAULT_PREFIX, "seen/", ".jsonl")
            .await
            .expect("list")
            .into_iter()
            .collect();
        let first = j.state().seen.shards()[0].object.clone();
        j.append(&store, t(10), vec![first_seen([key(0)], 10)])
            .await
            .expect("durable");
        j.checkpoint(&store).await.expect("checkpoint");
        let listed = list_keys(&store, DEFAULT_PREFIX, "seen/", ".jsonl")
            .await
            .expect("list");
        assert!(listed.contains(&first), "kept for one more checkpoint");
        j.append(&store, t(11), vec![first_seen([key(1)], 11)])
            .await
            .expect("durable");
        j.checkpoint(&store).await.expect("checkpoint");
        let listed = list_keys(&store, DEFAULT_PREFIX, "seen/", ".jsonl")
            .await
            .expect("list");
        assert!(!listed.contains(&first), "removed");
        let named: BTreeSet<&String> = j.state().seen.shards().iter().map(|s| &s.object).collect();
        assert!(
            listed
                .iter()
                .all(|k| named.contains(k) || !before.contains(k) || j.retired.contains(k))
        );
        for r in j.state().seen.shards() {
            assert!(
                listed.contains(&r.object),
                "named shard {} exists",
                r.object
            );
        }
    }

    /// `journal verify` reads every shard the checkpoint names and names a missing one.
    #[tokio::test]
    async fn verify_names_a_missing_first_seen_shard() {
        let store = MemoryStore::new("b");
        let mut j = Journal::load(&store, DEFAULT_PREFIX).await.expect("empty");
        j.append(&store, t(1), vec![first_seen(["a".to_string()], 1)])
            .await
            .expect("durable");
        j.checkpoint(&store).await.expect("checkpoint");
        let report = verify(&store, DEFAULT_PREFIX, None).await.expect("read");
        assert_eq!(report.problem, None);
        let shard = j.state().seen.shards()[0].object.clone();
        store
            .delete_object(
                &ObjectId {
                    key: shard.clone(),
                    version_id: None,
                },
                None,
            )
            .await
            .expect("deleted");
        let report = verify(&store, DEFAULT_PREFIX, None).await.expect("read");
        let problem = report.problem.expect("a problem");
        assert!(
            problem.contains(&shard) && problem.contains("missing"),
            "{problem}"
        );
    }

    /// A checkpoint written before the shards (the map inline) is read, and the next
    /// checkpoint writes it as shards.
    #[tokio::test]
    async fn a_checkpoint_with_the_map_inline_is_read_and_sharded_by_the_next() {
        let store = MemoryStore::new("b");
        let mut j = Journal::load(&store, DEFAULT_PREFIX).await.expect("empty");
        j.append(&store, t(1), vec![first_seen(["a".to_string()], 1)])
            .await
            .expect("durable");
        let legacy = serde_json::json!({
            "nextSeq": j.next_seq,
            "head": j.head,
            "lastSegment": j.last_segment,
            "state": {
                "applied": {}, "released": [], "legalHolds": [],
                "firstSeen": [[{"key": "a"}, {"etag": "e", "lastModified": t(1)}]]
            }
        });
        store
            .put_object(
                &Journal::checkpoint_key(DEFAULT_PREFIX),
                serde_json::to_vec(&legacy).expect("json"),
                "application/json",
                None,
            )
            .await
            .expect("written");
        let mut loaded = Journal::load(&store, DEFAULT_PREFIX).await.expect("legacy");
        let a = vref("a".into());
        assert_eq!(
            loaded.state().seen.get(&a).known().map(|s| s.last_modified),
            Some(t(1))
        );
        loaded.checkpoint(&store).await.expect("checkpoint");
        let again = Journal::load(&store, DEFAULT_PREFIX)
            .await
            .expect("sharded");
        assert_eq!(again.state().seen.shards().len(), 1);
        assert_eq!(
            again
                .first_seen_all(&store)
                .await
                .expect("shards")
                .get(&a)
                .map(|s| s.last_modified),
            Some(t(1))
        );
    }

    fn complaint() -> HoldRecord {
        HoldRecord {
            limitation_start: None,
            hold: "recordings/complaint-1".into(),
            reason: "Complaint".into(),
            case: "KL-1".into(),
            select: SelectRecord {
                recording_ids: ["r1".to_string()].into(),
                ..Default::default()
            },
        }
    }

    /// A complaint hold applied on day 1 and released on day 2.
    async fn applied_then_released(store: &MemoryStore) {
        let mut j = Journal::load(store, DEFAULT_PREFIX).await.expect("empty");
        j.append(store, t(1), vec![Fact::HoldApplied(complaint())])
            .await
            .expect("durable");
        let released = Fact::HoldReleased {
            hold: complaint(),
            released_at: t(2),
        };
        j.append(store, t(2), vec![released])
            .await
            .expect("durable");
    }

    #[tokio::test]
    async fn a_release_survives_a_reload_and_becomes_a_floor() {
        let store = MemoryStore::new("calls");
        applied_then_released(&store).await;
        let again = Journal::load(&store, DEFAULT_PREFIX).await.expect("reload");
        assert!(again.state().applied.is_empty());
        let floors = again.state().released_holds();
        assert_eq!(floors.len(), 1);
        assert_eq!(floors[0].released_at, Some(t(2)));
        assert_eq!(floors[0].reason, HoldReason::Complaint);
        assert!(floors[0].select.recording_ids.contains("r1"));
    }

    #[tokio::test]
    async fn a_checkpoint_and_later_segments_give_the_same_state() {
        let store = MemoryStore::new("calls");
        let mut j = Journal::load(&store, DEFAULT_PREFIX).await.expect("empty");
        for d in 1..=3 {
            j.append(
                &store,
                t(d),
                vec![Fact::LegalHoldsSet {
                    objects: vec![VersionRef {
                        key: format!("audio/{d}.wav"),
                        version_id: None,
                    }],
                }],
            )
            .await
            .expect("durable");
            if d == 2 {
                j.checkpoint(&store).await.expect("checkpoint");
            }
        }
        let again = Journal::load(&store, DEFAULT_PREFIX).await.expect("reload");
        assert_eq!(again.state(), j.state());
        assert_eq!(again.state().legal_holds.len(), 3);
    }

    fn held(key: String) -> Fact {
        Fact::LegalHoldsSet {
            objects: vec![vref(key)],
        }
    }

    fn gets(store: &MemoryStore) -> usize {
        let ops = store.requests();
        ops.iter().filter(|o| **o == Operation::GetObject).count()
    }

    /// A quiet pass settles the journal: from `SETTLE_AFTER` segments since the checkpoint it
    /// writes one, and later loads read the checkpoint alone, listing only the segments after
    /// its last one. Below that it writes nothing, and a segment written after it is read.
    #[tokio::test]
    async fn settling_writes_a_checkpoint_that_later_loads_start_from() {
        let store = MemoryStore::new("calls");
        let mut writer = Journal::load(&store, DEFAULT_PREFIX).await.expect("empty");
        for d in 1..SETTLE_AFTER as u32 {
            writer
                .append(&store, t(d), vec![held(format!("audio/{d}.wav"))])
                .await
                .expect("durable");
        }
        let mut quiet = Journal::load(&store, DEFAULT_PREFIX).await.expect("load");
        store.clear_requests();
        assert!(
            !quiet.settle(&store).await.expect("settle"),
            "too few segments"
        );
        assert_eq!(store.requests(), vec![]);

        writer
            .append(&store, t(9), vec![held("audio/9.wav".into())])
            .await
            .expect("durable");
        let mut quiet = Journal::load(&store, DEFAULT_PREFIX).await.expect("load");
        assert_eq!(quiet.segments_since_checkpoint, SETTLE_AFTER);
        assert!(quiet.settle(&store).await.expect("settle"));
        store.clear_requests();
        let settled = Journal::load(&store, DEFAULT_PREFIX).await.expect("load");
        assert_eq!(settled.segments_since_checkpoint, 0);
        assert_eq!(
            gets(&store),
            1,
            "the checkpoint alone: {:?}",
            store.requests()
        );
        let last = writer.last_segment.clone().expect("a segment");
        assert_eq!(store.listed_after(), vec![last]);
        assert_eq!(settled.state().legal_holds, writer.state().legal_holds);
        assert_eq!(settled.state().legal_holds.len(), SETTLE_AFTER as usize);
        assert_eq!(
            (settled.next_seq(), &settled.head),
            (writer.next_seq(), &writer.head)
        );

        // The writer goes on from its own state: its next segment is read after the checkpoint.
        writer
            .append(&store, t(10), vec![held("audio/10.wav".into())])
            .await
            .expect("durable");
        store.clear_requests();
        let later = Journal::load(&store, DEFAULT_PREFIX).await.expect("load");
        assert_eq!(later.segments_since_checkpoint, 1);
        assert_eq!(gets(&store), 2, "{:?}", store.requests());
        assert_eq!(later.state().legal_holds, writer.state().legal_holds);
    }

    /// Settling does not rewrite more first-seen shards than the segments it saves are worth.
    #[tokio::test]
    async fn settling_skips_a_checkpoint_that_would_rewrite_many_shards() {
        let store = MemoryStore::new("calls");
        let key = |i: u32| format!("audio/{i:03}.wav");
        let mut j = Journal::load(&store, DEFAULT_PREFIX)
            .await
            .expect("empty")
            .with_shard_entries(3);
        j.append(&store, t(1), vec![first_seen((0..100).map(key), 1)])
            .await
            .expect("durable");
        j.checkpoint(&store).await.expect("checkpoint");
        // One key gone in each of 20 shards (of 3 keys) over 4 segments: 20 shards for 4
        // segments (fewer changes than force a checkpoint on the writer).
        for s in 0..SETTLE_AFTER as u32 {
            let objects = (0..5).map(|i| vref(key(s * 25 + i * 5))).collect();
            j.append(&store, t(2), vec![Fact::ObjectsGone { objects }])
                .await
                .expect("durable");
        }
        let mut quiet = Journal::load(&store, DEFAULT_PREFIX)
            .await
            .expect("load")
            .with_shard_entries(3);
        assert_eq!(quiet.state().seen.touched().len(), 20);
        store.clear_requests();
        assert!(!quiet.settle(&store).await.expect("settle"));
        assert_eq!(store.requests(), vec![]);
    }

    #[tokio::test]
    async fn an_altered_record_breaks_the_chain_and_the_load_names_it() {
        let store = MemoryStore::new("calls");
        applied_then_released(&store).await;
        // Someone rewrites the first segment (the case number changed).
        let key = format!("{DEFAULT_PREFIX}journal/{:016}.jsonl", 0);
        let body = store.get_object(&key).await.expect("read").expect("exists");
        let text = String::from_utf8(body)
            .expect("utf-8")
            .replace("KL-1", "KL-2");
        store
            .put_object(&key, text.into_bytes(), "application/x-ndjson", None)
            .await
            .expect("write");
        let err = Journal::load(&store, DEFAULT_PREFIX)
            .await
            .err()
            .expect("tampering is caught");
        let message = err.to_string();
        assert!(
            message.contains("0000000000000001.jsonl line 1"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_failed_write_folds_nothing() {
        let store = MemoryStore::new("calls");
        let mut j = Journal::load(&store, DEFAULT_PREFIX).await.expect("empty");
        store.inject(crate::store::memory::Fault {
            operation: crate::store::Operation::PutObject,
            key: None,
            category: crate::store::ErrorCategory::ServerError,
            times: 1,
        });
        let r = j
            .append(&store, t(1), vec![Fact::HoldApplied(complaint())])
            .await;
        assert!(r.is_err());
        assert!(
            j.state().applied.is_empty(),
            "not durable, so not in the state"
        );
    }

    // -----------------------------------------------------------------------------------------
    // Seals and `gallring journal verify` (issue 11)

    fn signer() -> std::sync::Arc<crate::state::seal::Signer> {
        std::sync::Arc::new(crate::state::seal::Signer::from_seed([3; 32]))
    }

    fn public() -> crate::state::seal::PublicKey {
        crate::state::seal::PublicKey::parse(&signer().public_hex()).expect("valid")
    }

    /// Three sealed segments: applied (day 1), released (day 2), applied again (day 3).
    async fn sealed(store: &MemoryStore) {
        let mut j = Journal::load(store, DEFAULT_PREFIX)
            .await
            .expect("empty")
            .signed_by(Some(signer()));
        for (d, fact) in [
            (1, Fact::HoldApplied(complaint())),
            (
                2,
                Fact::HoldReleased {
                    hold: complaint(),
                    released_at: t(2),
                },
            ),
            (3, Fact::HoldApplied(complaint())),
        ] {
            j.append(store, t(d), vec![fact]).await.expect("durable");
        }
    }

    fn segment(seq: u64) -> String {
        format!("{DEFAULT_PREFIX}journal/{seq:016}.jsonl")
    }

    /// What an intruder with write access but no key can do: change a record and recompute
    /// every later `prev`, so the chain itself is consistent again.
    async fn forge_and_rechain(store: &MemoryStore, from: &str, to: &str) {
        let mut head = GENESIS.to_string();
        for seq in 0..3 {
            let key = segment(seq);
            let body = store.get_object(&key).await.expect("read").expect("exists");
            let mut out = Vec::new();
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let text = String::from_utf8(line.to_vec())
                    .expect("utf-8")
                    .replace(from, to);
                let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
                v["prev"] = serde_json::Value::String(head.clone());
                let new = serde_json::to_vec(&v).expect("json");
                head = hash(&new);
                out.extend_from_slice(&new);
                out.push(b'\n');
            }
            store
                .put_object(&key, out, "application/x-ndjson", None)
                .await
                .expect("write");
        }
    }

    #[tokio::test]
    async fn a_sealed_journal_verifies_under_its_key() {
        let store = MemoryStore::new("calls");
        sealed(&store).await;
        let r = verify(&store, DEFAULT_PREFIX, Some(&public()))
            .await
            .expect("readable");
        assert_eq!(r.problem, None);
        assert_eq!((r.segments, r.records, r.seals_valid), (3, 3, 3));
        assert_eq!((r.sealed_through, r.unsealed_records), (Some(2), 0));
        assert!(r.key_checked);
        assert_eq!(r.signers, [signer().public_hex()].into());
    }

    #[tokio::test]
    async fn a_rechained_forgery_passes_the_chain_but_not_the_seals() {
        let store = MemoryStore::new("calls");
        sealed(&store).await;
        forge_and_rechain(&store, "KL-1", "KL-9").await;
        // The chain alone no longer shows it: the load accepts the forged journal.
        Journal::load(&store, DEFAULT_PREFIX)
            .await
            .expect("a consistent chain loads");
        let r = verify(&store, DEFAULT_PREFIX, Some(&public()))
            .await
            .expect("readable");
        let problem = r.problem.expect("the forgery is caught");
        assert!(
            problem.contains(&format!("seals/{:016}.json", 0))
                && problem.contains("changed after it was sealed"),
            "{problem}"
        );
    }

    #[tokio::test]
    async fn an_altered_line_a_missing_segment_and_a_foreign_key_are_named() {
        let store = MemoryStore::new("calls");
        sealed(&store).await;
        let other = crate::state::seal::PublicKey::parse(
            &crate::state::seal::Signer::from_seed([4; 32]).public_hex(),
        )
        .expect("valid");
        let r = verify(&store, DEFAULT_PREFIX, Some(&other))
            .await
            .expect("readable");
        let problem = r.problem.expect("the wrong key is named");
        assert!(problem.contains("does not verify under"), "{problem}");

        let body = store
            .get_object(&segment(1))
            .await
            .expect("read")
            .expect("exists");
        let text = String::from_utf8(body)
            .expect("utf-8")
            .replace("KL-1", "KL-2");
        store
            .put_object(&segment(1), text.into_bytes(), "application/x-ndjson", None)
            .await
            .expect("write");
        let r = verify(&store, DEFAULT_PREFIX, None)
            .await
            .expect("readable");
        // Its seal names it; without seals the next segment's chain would.
        let problem = r.problem.expect("the altered segment is named");
        assert!(
            problem.contains("journal/0000000000000001.jsonl was changed after it was sealed"),
            "{problem}"
        );

        let store = MemoryStore::new("calls");
        sealed(&store).await;
        store
            .delete_objects(&[crate::store::ObjectId {
                key: segment(1),
                version_id: None,
            }])
            .await
            .expect("delete");
        let r = verify(&store, DEFAULT_PREFIX, None)
            .await
            .expect("readable");
        let problem = r.problem.expect("the gap is named");
        assert!(problem.contains("a gap"), "{problem}");
    }

    #[tokio::test]
    async fn an_unsealed_journal_verifies_its_chain_and_says_nothing_is_signed() {
        let store = MemoryStore::new("calls");
        applied_then_released(&store).await;
        let r = verify(&store, DEFAULT_PREFIX, None)
            .await
            .expect("readable");
        assert_eq!(r.problem, None);
        assert_eq!((r.records, r.seals_valid, r.unsealed_records), (2, 0, 2));
        assert!(!r.key_checked);
    }
}
