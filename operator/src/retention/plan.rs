//! The plan: for each object, the decision (keep until D / held / delete / unclassified) with a
//! reason, the retention tag it should carry and who deletes it; for the bucket, a summary.
//!
//! Planning streams: [`HoldLinker`] sees every object once to link holds to recording ids (so a
//! hold on one artifact reaches all artifacts of the call), then [`Planner::plan`] decides each
//! object on its own. Nothing here needs the whole listing in memory.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde::Serialize;

use super::classify::{self, Classification, RecordedAt, RecordedAtIssue};
use super::duration::IsoDuration;
use super::lifecycle::{self, DayClasses};
use super::model::{
    BucketRules, FloorAnchor, Hold, HoldReason, KEEP_UNTIL_TAG, ObjectInfo, Policy, Purpose,
    RETENTION_TAG, RetainMeans, WITHDRAWN_AT_TAG,
};
use super::request::{RequestType, SubjectRequest};

/// What happens to an object now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Kept until its deadline.
    Keep,
    /// At least one active hold selects it: no deadline.
    Held,
    /// Its deadline has passed: it may be deleted now.
    Delete,
    /// No classify rule (or no purpose) covers it: reported, never deleted.
    Unclassified,
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Keep => "keep",
            Decision::Held => "held",
            Decision::Delete => "delete",
            Decision::Unclassified => "unclassified",
        }
    }
}

/// Who removes the object at its deadline under the bucket's enforcement mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Deleter {
    /// An operator-owned lifecycle rule expires it.
    Lifecycle,
    /// The operator deletes it (lifecycle cannot express its deadline).
    Operator,
    /// Nobody will: enforcement is `Observe`, or `Lifecycle` and lifecycle cannot express it.
    Nobody,
}

/// The decision about one object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectPlan {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    /// The classify rule that matched.
    pub rule: Option<String>,
    pub kind: Option<String>,
    /// Purposes still active (withdrawn ones removed).
    pub purposes: Vec<String>,
    /// Legal names of the data controllers of the object's purposes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub recorded_at: Option<DateTime<Utc>>,
    /// Why the configured recorded-at tag or metadata was not used as it is (the reason says
    /// what was found and what was used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_at_issue: Option<RecordedAtIssue>,
    /// What the deadline counts from: `recorded-at`, an event (`tag assessed-at`), `hold
    /// release`, `limitation start`, `keep-until tag`, `withdrawal`, or `event pending` while
    /// a purpose waits for its event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// The time it counts from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor_at: Option<DateTime<Utc>>,
    /// When the object may be deleted; `None` while held, unclassified or waiting for an event.
    pub deadline: Option<DateTime<Utc>>,
    /// When the object must be gone, where the purpose that keeps it states a maximum
    /// (`retainMeans: DeleteBy`): overdue counts from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<DateTime<Utc>>,
    pub decision: Decision,
    pub reason: String,
    /// Active holds selecting it (`namespace/name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<String>,
    /// Reasons of the active holds, for per-reason counts.
    #[serde(skip)]
    pub hold_reasons: Vec<HoldReason>,
    /// The value `gallring.io/retention` should have; `None` when the object has no room for
    /// another tag (10 foreign tags), which leaves deletion to the operator.
    pub tag: Option<String>,
    pub deleter: Deleter,
    /// Not held, past deadline + grace, and still present.
    pub overdue: bool,
    /// The floor set by holds released in the input (`release + holdRelease`). Hosts persist it
    /// in the `gallring.io/keep-until` tag, so it outlives the deleted LegalHold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_until: Option<DateTime<Utc>>,
    /// When each purpose with a use limit shorter than storage (`useFor`) may no longer use
    /// the object: reported, not enforced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uses: Vec<UseLimit>,
    /// Data-subject requests in effect that select it (`namespace/name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<String>,
    /// Requests about its subject received before it was recorded: it is new processing they
    /// do not reach (an answer that matched nothing says so).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests_after: Vec<String>,
}

/// The end of one purpose's use of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UseLimit {
    pub purpose: String,
    pub until: DateTime<Utc>,
}

/// Holds with the recording ids they reach through linked artifacts, and data-subject
/// requests with the recording ids their subjects reach.
#[derive(Debug, Clone, Default)]
pub struct LinkedHolds {
    holds: Vec<Hold>,
    /// Per hold (same index): recording ids of objects it selects directly.
    linked_ids: Vec<BTreeSet<String>>,
    requests: Vec<SubjectRequest>,
    /// Recording id → the requests reaching it (by id, or through an artifact of the subject).
    request_ids: BTreeMap<String, BTreeSet<usize>>,
    /// Subject → the requests about it; key → the requests whose tombstone names it. Lookups,
    /// not a scan of every request per object: lasting requests accumulate for years.
    request_subjects: BTreeMap<String, Vec<usize>>,
    request_keys: BTreeMap<String, Vec<usize>>,
}

impl LinkedHolds {
    pub fn holds(&self) -> &[Hold] {
        &self.holds
    }

    pub fn requests(&self) -> &[SubjectRequest] {
        &self.requests
    }

    /// The requests that select an object (indexes into [`Self::requests`]).
    fn requests_selecting(
        &self,
        key: &str,
        ids: &Ids,
        recorded_at: Option<DateTime<Utc>>,
    ) -> BTreeSet<usize> {
        let mut out: BTreeSet<usize> = ids
            .recording
            .as_ref()
            .and_then(|id| self.request_ids.get(id))
            .cloned()
            .unwrap_or_default();
        let candidates = self.request_candidates(key, ids.subject.as_deref());
        out.extend(candidates.filter(|i| {
            self.requests[*i].selects(
                key,
                ids.recording.as_deref(),
                ids.subject.as_deref(),
                recorded_at,
            )
        }));
        out
    }

    /// The requests about this object's subject that it escapes only because it was
    /// recorded after they were received (new processing they do not reach).
    fn requests_recorded_after(
        &self,
        ids: &Ids,
        recorded_at: Option<DateTime<Utc>>,
        selected: &BTreeSet<usize>,
    ) -> Vec<usize> {
        ids.subject
            .as_ref()
            .and_then(|s| self.request_subjects.get(s))
            .into_iter()
            .flatten()
            .copied()
            .filter(|i| !selected.contains(i) && !self.requests[*i].covers_time(recorded_at))
            .collect()
    }

    /// The requests that may select an object of this key or subject directly.
    fn request_candidates<'s>(
        &'s self,
        key: &str,
        subject: Option<&str>,
    ) -> impl Iterator<Item = usize> + use<'s> {
        self.request_keys
            .get(key)
            .into_iter()
            .chain(subject.and_then(|s| self.request_subjects.get(s)))
            .flatten()
            .copied()
    }
}

/// Which objects linking the holds must see (`HoldLinker::link_scope`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkScope {
    /// None: no hold links beyond what it selects by recording id.
    Nothing,
    /// The objects under these prefixes, none of which starts with another.
    Ranges(Vec<String>),
    /// Every object in the bucket's prefix.
    Everything,
}

/// First pass over a listing: which recording ids each hold reaches.
pub struct HoldLinker<'a> {
    bucket: &'a BucketRules,
    time_zone: chrono_tz::Tz,
    linked: LinkedHolds,
}

impl<'a> HoldLinker<'a> {
    pub fn new(bucket: &'a BucketRules, time_zone: chrono_tz::Tz, holds: Vec<Hold>) -> Self {
        let n = holds.len();
        HoldLinker {
            bucket,
            time_zone,
            linked: LinkedHolds {
                holds,
                linked_ids: vec![BTreeSet::new(); n],
                ..LinkedHolds::default()
            },
        }
    }

    /// Data-subject requests to link too: a request about a subject reaches every artifact of
    /// the subject's recordings (the transcript carries no subject tag of its own).
    pub fn with_requests(mut self, requests: Vec<SubjectRequest>) -> Self {
        let mut ids: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        let mut subjects: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut keys: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in requests.iter().enumerate() {
            for id in &r.recording_ids {
                ids.entry(id.clone()).or_default().insert(i);
            }
            for s in &r.subjects {
                subjects.entry(s.clone()).or_default().push(i);
            }
            for k in &r.keys {
                keys.entry(k.clone()).or_default().push(i);
            }
        }
        self.linked.requests = requests;
        self.linked.request_ids = ids;
        self.linked.request_subjects = subjects;
        self.linked.request_keys = keys;
        self
    }

    /// Which objects linking the holds must see: those a hold selects by something other than
    /// a recording id. A hold by key or prefix links only what is under its keys and prefixes,
    /// so those are listed alone; a hold by tag or subject may select any object.
    pub fn link_scope(&self) -> LinkScope {
        if self.bucket.recording_id.is_none() {
            return LinkScope::Nothing;
        }
        let holds = &self.linked.holds;
        if holds
            .iter()
            .any(|h| !h.select.tags.is_empty() || !h.select.subjects.is_empty())
        {
            return LinkScope::Everything;
        }
        let bucket = self.bucket.prefix.as_deref().unwrap_or("");
        // Each key is listed as a prefix (a listing cannot ask for one key): what else it
        // lists is observed as well, which links nothing a hold does not select.
        let mut ranges: Vec<String> = holds
            .iter()
            .flat_map(|h| h.select.keys.iter().chain(&h.select.prefix))
            // Only what the bucket's prefix takes in is ever decided, so only that links.
            .filter_map(|p| {
                if p.starts_with(bucket) {
                    Some(p.clone())
                } else if bucket.starts_with(p.as_str()) {
                    Some(bucket.to_string())
                } else {
                    None
                }
            })
            .collect();
        ranges.sort();
        // Sorted, a range that another one covers follows it (or one it covers): kept once.
        let mut cover: Vec<String> = Vec::with_capacity(ranges.len());
        for r in ranges {
            if !cover.last().is_some_and(|c| r.starts_with(c.as_str())) {
                cover.push(r);
            }
        }
        if cover.is_empty() {
            LinkScope::Nothing
        } else {
            LinkScope::Ranges(cover)
        }
    }

    pub fn observe(&mut self, obj: &ObjectInfo) {
        let Some(id) = classify::recording_id(self.bucket, obj) else {
            return;
        };
        let subject = classify::subject(self.bucket, obj);
        let (bucket, tz) = (self.bucket, self.time_zone);
        let mut scope = None;
        for (hold, ids) in self
            .linked
            .holds
            .iter()
            .zip(self.linked.linked_ids.iter_mut())
        {
            if selects_directly(hold, obj, Some(&id), subject.as_deref()) {
                // A scoped hold links only the calls inside its scope.
                let (kind, at) = scope.get_or_insert_with(|| scope_of(bucket, tz, obj));
                if hold.select.in_scope(kind.as_deref(), *at) {
                    ids.insert(id.clone());
                }
            }
        }
        if !self.linked.requests.is_empty() {
            let mut reached = Vec::new();
            let candidates: Vec<usize> = self
                .linked
                .request_candidates(&obj.key, subject.as_deref())
                .collect();
            for i in candidates {
                let r = &self.linked.requests[i];
                let (_, at) = scope.get_or_insert_with(|| scope_of(bucket, tz, obj));
                if r.keys.contains(&obj.key) || r.covers_time(*at) {
                    reached.push(i);
                }
            }
            if !reached.is_empty() {
                self.linked
                    .request_ids
                    .entry(id)
                    .or_default()
                    .extend(reached);
            }
        }
    }

    pub fn holds(&self) -> &[Hold] {
        &self.linked.holds
    }

    pub fn finish(self) -> LinkedHolds {
        self.linked
    }

    /// Links holds over a listing already in memory.
    pub fn link(
        bucket: &BucketRules,
        time_zone: chrono_tz::Tz,
        holds: Vec<Hold>,
        objects: &[ObjectInfo],
    ) -> LinkedHolds {
        let mut linker = HoldLinker::new(bucket, time_zone, holds);
        for o in objects {
            linker.observe(o);
        }
        linker.finish()
    }
}

/// The kind and recording time a hold's scope is checked against (unknown when unclassified).
fn scope_of(
    bucket: &BucketRules,
    tz: chrono_tz::Tz,
    obj: &ObjectInfo,
) -> (Option<String>, Option<DateTime<Utc>>) {
    match classify::classify(bucket, obj) {
        Some(c) => (
            Some(c.kind),
            Some(classify::recorded_at(bucket, obj, tz).at),
        ),
        None => (None, None),
    }
}

fn selects_directly(
    hold: &Hold,
    obj: &ObjectInfo,
    recording_id: Option<&str>,
    subject: Option<&str>,
) -> bool {
    let s = &hold.select;
    s.keys.contains(&obj.key)
        || s.prefix.as_deref().is_some_and(|p| obj.key.starts_with(p))
        || recording_id.is_some_and(|id| s.recording_ids.contains(id))
        || subject.is_some_and(|sub| s.subjects.contains(sub))
        || (!s.tags.is_empty() && classify::tags_match(&s.tags, &obj.tags))
}

/// The ids an object is selected by.
struct Ids {
    recording: Option<String>,
    subject: Option<String>,
}

/// Decides objects one at a time. Construct once per pass; `now` is fixed for the pass.
pub struct Planner<'a> {
    policy: &'a Policy,
    bucket: &'a BucketRules,
    holds: &'a LinkedHolds,
    now: DateTime<Utc>,
    classes: DayClasses,
    /// Writes each plan's `reason`. A steady pass plans every object it decides from the
    /// index and reads none of those reasons (they are only kept for deletions and `explain`),
    /// so it plans them without: the same decisions, a fraction of the formatting.
    explain: bool,
}

impl<'a> Planner<'a> {
    pub fn new(
        policy: &'a Policy,
        bucket: &'a BucketRules,
        holds: &'a LinkedHolds,
        now: DateTime<Utc>,
    ) -> Self {
        Planner {
            policy,
            bucket,
            holds,
            now,
            classes: lifecycle::day_classes(policy, bucket.grace),
            explain: true,
        }
    }

    /// The same planner, leaving every plan's `reason` empty.
    pub fn without_reasons(self) -> Self {
        Planner {
            explain: false,
            ..self
        }
    }

    /// `text()` where plans are explained, else nothing (and no formatting).
    fn say(&self, text: impl FnOnce() -> String) -> String {
        if self.explain { text() } else { String::new() }
    }

    fn holds_selecting(
        &self,
        obj: &ObjectInfo,
        ids: &Ids,
        scope: (Option<&str>, Option<DateTime<Utc>>),
    ) -> Vec<&Hold> {
        self.holds
            .holds
            .iter()
            .zip(&self.holds.linked_ids)
            .filter(|(h, linked)| {
                (selects_directly(h, obj, ids.recording.as_deref(), ids.subject.as_deref())
                    || ids.recording.as_ref().is_some_and(|id| linked.contains(id)))
                    && h.select.in_scope(scope.0, scope.1)
            })
            .map(|(h, _)| h)
            .collect()
    }

    pub fn plan(&self, obj: &ObjectInfo) -> ObjectPlan {
        let ids = Ids {
            recording: classify::recording_id(self.bucket, obj),
            subject: classify::subject(self.bucket, obj),
        };
        let class = classify::classify(self.bucket, obj);
        let recorded = class
            .as_ref()
            .map(|_| classify::recorded_at(self.bucket, obj, self.policy.time_zone));
        let selecting = self.holds_selecting(
            obj,
            &ids,
            (
                class.as_ref().map(|c| c.kind.as_str()),
                recorded.as_ref().map(|r| r.at),
            ),
        );
        let active: Vec<&Hold> = selecting
            .iter()
            .copied()
            .filter(|h| h.is_active(self.now))
            .collect();
        let recorded_when = recorded.as_ref().map(|r| r.at);
        let selected = self.holds.requests_selecting(&obj.key, &ids, recorded_when);
        let requests_after: Vec<String> = self
            .holds
            .requests_recorded_after(&ids, recorded_when, &selected)
            .into_iter()
            .map(|i| &self.holds.requests[i])
            .filter(|r| r.in_effect(self.now))
            .map(|r| r.name.clone())
            .collect();
        let requests: Vec<&SubjectRequest> = selected
            .into_iter()
            .map(|i| &self.holds.requests[i])
            .filter(|r| r.in_effect(self.now))
            .collect();
        let erasure = requests
            .iter()
            .find(|r| r.kind == RequestType::Erasure)
            .copied();

        let mut plan = ObjectPlan {
            key: obj.key.clone(),
            version_id: obj.version_id.clone(),
            size: obj.size,
            last_modified: obj.last_modified,
            rule: None,
            kind: None,
            purposes: Vec::new(),
            controllers: Vec::new(),
            recording_id: ids.recording,
            subject: ids.subject,
            recorded_at: None,
            recorded_at_issue: None,
            anchor: None,
            anchor_at: None,
            deadline: None,
            maximum: None,
            decision: Decision::Unclassified,
            reason: String::new(),
            holds: active.iter().map(|h| h.name.clone()).collect(),
            hold_reasons: active.iter().map(|h| h.reason).collect(),
            tag: None,
            deleter: Deleter::Nobody,
            overdue: false,
            keep_until: None,
            uses: Vec::new(),
            requests: requests.iter().map(|r| r.name.clone()).collect(),
            requests_after,
        };
        let room_for_tag = obj.room_for_retention_tag();

        // Holds come first: a held object is protected even if it is unclassified.
        if !active.is_empty() {
            plan.decision = Decision::Held;
            plan.reason = self.say(|| {
                let names: Vec<String> = active
                    .iter()
                    .map(|h| format!("{} ({} {})", h.name, h.reason, h.case))
                    .collect();
                format!("held by {}", names.join(", "))
            });
        }

        let (Some(class), Some(recorded)) = (class, recorded) else {
            if plan.decision != Decision::Held {
                plan.reason =
                    self.say(|| "no classify rule matches: reported, never deleted".into());
            }
            plan.tag = room_for_tag.then(|| non_expiring_tag(plan.decision));
            return plan;
        };
        let Classification {
            rule,
            kind,
            purposes,
        } = class;
        let recorded_at = recorded.at;
        plan.rule = Some(rule.clone());
        plan.kind = Some(kind.clone());
        plan.recorded_at = Some(recorded_at);
        plan.recorded_at_issue = recorded.issue;

        let mut withdrawn: BTreeSet<String> = classify::withdrawn(obj).into_iter().collect();
        // Requests end purposes from when they were received: a withdrawal or objection the
        // purposes it names (else every withdrawable one), an erasure every purpose that no
        // legal obligation keeps (Art. 17(3)(b)).
        let mut requested_at: Option<DateTime<Utc>> = None;
        let mut ended_by_erasure = Vec::new();
        for r in &requests {
            match r.kind {
                RequestType::Withdrawal | RequestType::Objection => {
                    requested_at = requested_at.max(Some(r.received_at));
                    if r.purposes.is_empty() {
                        withdrawn.extend(
                            purposes
                                .iter()
                                .filter(|p| {
                                    self.policy.purposes.get(*p).is_some_and(|d| d.withdrawable)
                                })
                                .cloned(),
                        );
                    } else {
                        withdrawn.extend(r.purposes.iter().cloned());
                    }
                }
                RequestType::Erasure => requested_at = requested_at.max(Some(r.received_at)),
                RequestType::Restriction | RequestType::Access => {}
            }
        }
        let mut notes: Vec<String> = recorded.note.iter().cloned().collect();
        let mut active_purposes = Vec::new();
        let mut ended_by_withdrawal = Vec::new();
        for p in &purposes {
            let withdrawable = self.policy.purposes.get(p).is_some_and(|d| d.withdrawable);
            if erasure.is_some()
                && !self
                    .policy
                    .purposes
                    .get(p)
                    .is_some_and(|d| d.kept_on_erasure)
            {
                ended_by_erasure.push(p.clone());
                continue;
            }
            if withdrawn.contains(p) {
                if withdrawable {
                    ended_by_withdrawal.push(p.clone());
                    continue;
                }
                notes.push(format!(
                    "withdrawal of `{p}` ignored: that purpose is not withdrawable"
                ));
            }
            active_purposes.push(p.clone());
        }
        plan.purposes = active_purposes.clone();

        // Each active purpose's time for this kind; the longest keeps the object.
        let mut waiting: Vec<String> = Vec::new();
        let mut candidates: Vec<PurposeTime> = Vec::new();
        for p in &active_purposes {
            let Some(def) = self.policy.purposes.get(p) else {
                continue;
            };
            let Some(d) = def.retain.get(&kind).copied() else {
                continue;
            };
            let Some(start) = self.purpose_start(def, obj, &recorded, &mut notes) else {
                waiting.push(match &def.from {
                    Some(a) => format!("{p} waits for {}", a.source),
                    None => p.clone(),
                });
                continue;
            };
            if let Some(u) = def.use_for.get(&kind)
                && let Some(until) = u.add_in(start.at, self.policy.time_zone)
            {
                plan.uses.push(UseLimit {
                    purpose: p.clone(),
                    until,
                });
            }
            if let Some(t) = self.purpose_time(&kind, p, def, d, start) {
                candidates.push(t);
            }
        }
        plan.controllers = purposes
            .iter()
            .map(|p| self.policy.controller_of(p).to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();

        if !waiting.is_empty() && plan.decision != Decision::Held {
            // The event a purpose counts from has not happened: kept, with no deadline.
            plan.decision = Decision::Keep;
            plan.reason = self.say(|| {
                let reason = format!("{kind} for {}: no deadline until then", waiting.join(", "));
                with_notes(reason, &notes)
            });
            plan.anchor = Some("event pending".into());
            plan.tag = room_for_tag.then(|| lifecycle::OPERATOR_TAG_VALUE.to_string());
            plan.deleter = self.deleter(false);
            return plan;
        }
        let longest = candidates.into_iter().max_by_key(|t| t.deletable);

        // The date the reason counts from: the purpose's start (recording, earliest trustworthy
        // time or event); a floor's reason names its own start.
        let mut counted_from = recorded_at;
        let (mut deadline, mut why, mut maximum, mut due_from) = match longest {
            Some(t) => {
                plan.anchor = Some(t.anchor.clone());
                plan.anchor_at = Some(t.start);
                counted_from = t.start;
                (t.deletable, t.why, t.maximum, t.due_from)
            }
            None => {
                let any_withdrawn_retained = ended_by_withdrawal
                    .iter()
                    .chain(&ended_by_erasure)
                    .any(|p| {
                        self.policy
                            .purposes
                            .get(p)
                            .is_some_and(|d| d.retain.contains_key(&kind))
                    });
                if let Some(e) = erasure.filter(|_| any_withdrawn_retained) {
                    plan.anchor = Some("erasure".into());
                    plan.anchor_at = Some(e.received_at);
                    (
                        recorded_at,
                        format!(
                            "{kind}: erasure requested by {} ({}) on {}",
                            e.name,
                            e.reference,
                            self.local_day(e.received_at)
                        ),
                        None,
                        None,
                    )
                } else if any_withdrawn_retained {
                    plan.anchor = Some("withdrawal".into());
                    (
                        recorded_at,
                        format!(
                            "{kind}: every purpose withdrawn ({})",
                            ended_by_withdrawal.join(", ")
                        ),
                        None,
                        None,
                    )
                } else {
                    // A classify rule that names no purpose keeping this kind is a policy
                    // gap, not a reason to delete.
                    if plan.decision != Decision::Held {
                        plan.decision = Decision::Unclassified;
                        plan.reason = self.say(|| {
                            format!(
                                "rule {rule}: no purpose among [{}] retains kind `{kind}`: reported, never deleted",
                                purposes.join(", ")
                            )
                        });
                    }
                    plan.tag = room_for_tag.then(|| non_expiring_tag(plan.decision));
                    return plan;
                }
            }
        };
        if !ended_by_withdrawal.is_empty() && longest_exists(&plan) {
            notes.push(format!("withdrawn: {}", ended_by_withdrawal.join(", ")));
        }
        if let Some(e) = erasure.filter(|_| longest_exists(&plan)) {
            notes.push(format!(
                "erasure {} ({}) does not reach {}: a legal obligation keeps it (Art. 17(3)(b))",
                e.name,
                e.reference,
                plan.purposes.join(", ")
            ));
        }

        // Floors: released holds keep the object until their limitation start (else release)
        // plus holdRelease. A floor overrides a maximum: the case needs the object. Whatever
        // the floor, an object is never overdue before the grace after its last hold ended.
        let held_until = selecting
            .iter()
            .filter(|h| !h.is_active(self.now))
            .filter_map(|h| h.ends_at())
            .max();
        for h in &selecting {
            if let Some(f) = self.policy.hold_floor(h, self.now)
                && f.until > deadline
            {
                plan.keep_until = plan.keep_until.max(Some(f.until));
                deadline = f.until;
                maximum = None;
                due_from = None;
                let from = match f.anchor {
                    FloorAnchor::LimitationStart => "limitation start",
                    FloorAnchor::Release => "released",
                };
                plan.anchor = Some(match f.anchor {
                    FloorAnchor::LimitationStart => "limitation start".into(),
                    FloorAnchor::Release => "hold release".into(),
                });
                plan.anchor_at = Some(f.from);
                counted_from = recorded_at;
                why = format!(
                    "{} {} {from} {} + {}",
                    h.reason,
                    h.case,
                    self.local_day(f.from),
                    f.keep
                );
            }
        }
        // A hold that ended after every floor and deadline: deletable from its end.
        if let Some(end) = held_until
            && end > deadline
        {
            let h = selecting
                .iter()
                .find(|h| h.ends_at() == Some(end) && !h.is_active(self.now));
            deadline = end;
            maximum = None;
            due_from = None;
            plan.anchor = Some("hold release".into());
            plan.anchor_at = Some(end);
            counted_from = recorded_at;
            why = match h {
                Some(h) => format!("{} {} ended {}", h.reason, h.case, self.local_day(end)),
                None => format!("a hold ended {}", self.local_day(end)),
            };
        }
        if let Some(floor) = obj
            .tags
            .get(KEEP_UNTIL_TAG)
            .and_then(|v| classify::parse_instant_in(v, self.policy.time_zone))
            && floor > deadline
        {
            deadline = floor;
            maximum = None;
            due_from = None;
            plan.anchor = Some("keep-until tag".into());
            plan.anchor_at = Some(floor);
            counted_from = recorded_at;
            why = format!("{KEEP_UNTIL_TAG} from a released hold");
        }

        if plan.decision == Decision::Held {
            // Held objects have no deadline; the tag says `held` so no lifecycle rule matches.
            plan.tag = room_for_tag.then(|| non_expiring_tag(Decision::Held));
            return plan;
        }

        plan.deadline = Some(deadline);
        plan.maximum = maximum;
        let dates = || {
            let by = maximum
                .map(|m| format!(", gone by {}", self.local_day(m)))
                .unwrap_or_default();
            (self.local_day(counted_from), self.local_day(deadline), by)
        };
        if self.now >= deadline {
            plan.decision = Decision::Delete;
            plan.reason = self.say(|| {
                let (from, until, by) = dates();
                format!("{why} from {from}: deadline {until} has passed{by}")
            });
            // A withdrawal can move the deadline into the past at once; the clock for
            // "overdue" then starts at the withdrawal, not at the (earlier) deadline.
            let withdrawn_at = (!ended_by_withdrawal.is_empty() || !ended_by_erasure.is_empty())
                .then(|| {
                    obj.tags
                        .get(WITHDRAWN_AT_TAG)
                        .and_then(|v| classify::parse_instant_in(v, self.policy.time_zone))
                        .max(requested_at)
                })
                .flatten();
            let due_since = withdrawn_at.map_or(deadline, |w| w.max(deadline));
            let grace_end = self.bucket.grace.add_to(due_since).unwrap_or(due_since);
            // A maximum is its own overdue clock; an event that made the object deletable
            // (an assessment) starts it no earlier than the event.
            let after_hold = held_until.and_then(|end| self.bucket.grace.add_to(end));
            let overdue_from = match (maximum, due_from) {
                (Some(m), _) => m,
                (None, Some(event)) => self
                    .bucket
                    .grace
                    .add_to(event.max(due_since))
                    .unwrap_or(event),
                (None, None) => grace_end,
            };
            plan.overdue = self.now > overdue_from.max(after_hold.unwrap_or(overdue_from));
        } else {
            plan.decision = Decision::Keep;
            plan.reason = self.say(|| {
                let (from, until, by) = dates();
                format!("{why} from {from}: keep until {until}{by}")
            });
        }
        if !room_for_tag {
            notes.push(format!(
                "no room for {RETENTION_TAG} beside {} tags: lifecycle cannot expire it",
                obj.tags.len()
            ));
        }

        let mut expire_days = lifecycle::expire_days(deadline, obj.last_modified, &self.classes);
        // An erasure is carried out by gallring at once where it deletes (Art. 17: without
        // undue delay), not at lifecycle's next run.
        if erasure.is_some()
            && plan.decision == Decision::Delete
            && self.bucket.enforcement.operator_deletes()
        {
            expire_days = None;
        }
        // Under a maximum, lifecycle deletes only where its lag (the grace) still ends by it.
        if let Some(m) = maximum
            && self
                .bucket
                .grace
                .add_to(deadline)
                .is_none_or(|late| late > m)
        {
            if self.bucket.enforcement.uses_lifecycle() {
                notes.push("too short for lifecycle's lag: gallring deletes it itself".into());
            }
            expire_days = None;
        }
        if self.explain {
            for u in &plan.uses {
                let verb = if self.now >= u.until { "ended" } else { "ends" };
                notes.push(format!(
                    "use for {} {verb} {}",
                    u.purpose,
                    self.local_day(u.until)
                ));
            }
            plan.reason = with_notes(std::mem::take(&mut plan.reason), &notes);
        }
        plan.tag = room_for_tag.then(|| match expire_days {
            Some(days) => lifecycle::expire_tag_value(days),
            None => lifecycle::OPERATOR_TAG_VALUE.to_string(),
        });
        plan.deleter = self.deleter(expire_days.is_some() && room_for_tag);
        plan
    }

    /// Who deletes at the deadline, given whether a lifecycle rule can.
    fn deleter(&self, lifecycle_can: bool) -> Deleter {
        let enforcement = self.bucket.enforcement;
        if enforcement.uses_lifecycle() && lifecycle_can {
            Deleter::Lifecycle
        } else if enforcement.operator_deletes() {
            Deleter::Operator
        } else {
            Deleter::Nobody
        }
    }

    /// A date as the policy's readers write it: the local date in its time zone.
    fn local_day(&self, t: DateTime<Utc>) -> String {
        local_day(t, self.policy.time_zone)
    }

    /// When a purpose's clock starts for this object, or `None` while the event it counts
    /// from has not happened.
    fn purpose_start(
        &self,
        def: &Purpose,
        obj: &ObjectInfo,
        recorded: &RecordedAt,
        notes: &mut Vec<String>,
    ) -> Option<Start> {
        let recording = || Start {
            at: match def.retain_means {
                // A maximum counts from the earliest trustworthy time.
                RetainMeans::DeleteBy => recorded.earliest,
                RetainMeans::KeepAtLeast => recorded.at,
            },
            anchor: if def.retain_means == RetainMeans::DeleteBy && recorded.earliest != recorded.at
            {
                "earliest recorded-at".to_string()
            } else {
                "recorded-at".to_string()
            },
            event: None,
        };
        let Some(anchor) = &def.from else {
            return Some(recording());
        };
        let value = anchor.source.read(obj);
        match value.and_then(|v| classify::parse_instant_in(v, self.policy.time_zone)) {
            // Never before the recording: an event date earlier than the call is a typo.
            Some(t) => Some(Start {
                at: t.max(recorded.at),
                anchor: anchor.source.to_string(),
                event: Some(t.max(recorded.at)),
            }),
            None => {
                let found = value.map_or("missing".to_string(), |v| format!("`{v}`, not a date"));
                if anchor.missing_counts_from_recording {
                    notes.push(format!(
                        "{} is {found}: counted from the recording",
                        anchor.source
                    ));
                    Some(recording())
                } else {
                    None
                }
            }
        }
    }

    /// One purpose's deadline for this object from its start.
    fn purpose_time(
        &self,
        kind: &str,
        name: &str,
        def: &Purpose,
        d: IsoDuration,
        start: Start,
    ) -> Option<PurposeTime> {
        let tz = self.policy.time_zone;
        let end = d.add_in(start.at, tz)?;
        let kind_why = |what: &str| {
            self.say(|| {
                format!(
                    "{kind} for {name} ({what}{d}{})",
                    self.controller_note(name)
                )
            })
        };
        Some(match def.retain_means {
            RetainMeans::KeepAtLeast => PurposeTime {
                deletable: end,
                maximum: None,
                due_from: start.event,
                why: kind_why(""),
                anchor: start.anchor,
                start: start.at,
            },
            RetainMeans::DeleteBy => {
                // Deletable early enough that the grace (the deleter's lag) ends by the
                // maximum. A period not much longer than the grace would leave almost nothing:
                // there gallring deletes it itself, one scan interval before the maximum (the
                // lag grows from a scan to the grace as the period grows, so a longer period
                // never deletes earlier).
                let (grace, scan) = (self.bucket.grace, self.bucket.scan_interval);
                let by_lifecycle = grace.sub_from(end);
                let by_operator = scan
                    .sub_from(end)
                    .min(grace.add_to(start.at).and_then(|t| scan.sub_from(t)));
                let deletable = [Some(start.at), by_lifecycle, by_operator]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(start.at);
                PurposeTime {
                    deletable,
                    maximum: Some(end),
                    due_from: start.event,
                    why: kind_why("at most "),
                    anchor: start.anchor,
                    start: start.at,
                }
            }
        })
    }

    /// ", controller X" when a purpose's controller is not the policy's.
    fn controller_note(&self, purpose: &str) -> String {
        let c = self.policy.controller_of(purpose);
        if c == self.policy.controller {
            String::new()
        } else {
            format!(", {c}")
        }
    }
}

/// A reason with the notes that qualify it, in parentheses.
fn with_notes(reason: String, notes: &[String]) -> String {
    if notes.is_empty() {
        reason
    } else {
        format!("{reason} ({})", notes.join("; "))
    }
}

/// `t`'s date in `tz` as `%Y-%m-%d`, written by hand: a steady pass plans every object, and
/// chrono parses the format string again on each call. Years outside 0..=9999 (which `%Y`
/// writes with a sign) go through chrono.
fn local_day(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let local = t.with_timezone(&tz);
    let (m, d) = (local.month(), local.day());
    match u32::try_from(local.year()) {
        Ok(y @ 0..=9999) => {
            let mut out = String::with_capacity(10);
            for (n, width) in [(y, 4), (m, 2), (d, 2)] {
                if !out.is_empty() {
                    out.push('-');
                }
                for place in (0..width).rev() {
                    out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
                }
            }
            out
        }
        _ => local.format("%Y-%m-%d").to_string(),
    }
}

/// Where a purpose's clock starts.
struct Start {
    at: DateTime<Utc>,
    /// What it counts from, for the plan (`recorded-at`, `tag assessed-at`).
    anchor: String,
    /// The event time, when the clock starts at one: nothing is overdue before it.
    event: Option<DateTime<Utc>>,
}

/// One purpose's deadline for an object.
struct PurposeTime {
    /// When the object may be deleted.
    deletable: DateTime<Utc>,
    /// When it must be gone, for a maximum.
    maximum: Option<DateTime<Utc>>,
    due_from: Option<DateTime<Utc>>,
    why: String,
    anchor: String,
    start: DateTime<Utc>,
}

fn longest_exists(plan: &ObjectPlan) -> bool {
    !matches!(plan.anchor.as_deref(), Some("withdrawal" | "erasure"))
}

/// The tag for objects no rule may expire.
fn non_expiring_tag(decision: Decision) -> String {
    match decision {
        Decision::Held => lifecycle::HELD_TAG_VALUE.to_string(),
        _ => lifecycle::UNCLASSIFIED_TAG_VALUE.to_string(),
    }
}

/// Counts over a pass, as reported in status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub objects: u64,
    pub bytes: u64,
    pub keep: u64,
    pub held: u64,
    pub delete: u64,
    pub unclassified: u64,
    pub overdue: u64,
    pub overdue_bytes: u64,
    /// The earliest deadline among overdue objects (their age is `now - this`).
    pub oldest_overdue_deadline: Option<DateTime<Utc>>,
    /// The earliest future deadline among kept objects.
    pub next_deadline: Option<DateTime<Utc>>,
    /// Objects lifecycle cannot handle, which the operator deletes (or nobody, in `Lifecycle`).
    pub operator_deletes: u64,
    pub nobody_deletes: u64,
    /// Objects with no room for the retention tag.
    pub untaggable: u64,
    pub held_by_reason: BTreeMap<String, u64>,
    /// Objects each active hold (`namespace/name`) selects.
    pub held_by_hold: BTreeMap<String, u64>,
    pub by_kind: BTreeMap<String, u64>,
    /// Objects per data controller of their purposes (an object with purposes of two
    /// controllers counts for both).
    pub by_controller: BTreeMap<String, u64>,
    /// Overdue objects per data controller.
    pub overdue_by_controller: BTreeMap<String, u64>,
    /// Objects whose recorded-at tag or metadata was not used as it is, by issue
    /// (`future`, `too_old`, `unparsable`, `missing`).
    pub recorded_at_issues: BTreeMap<String, u64>,
}

impl Summary {
    pub fn add(&mut self, p: &ObjectPlan) {
        self.objects += 1;
        self.bytes += p.size;
        match p.decision {
            Decision::Keep => self.keep += 1,
            Decision::Held => self.held += 1,
            Decision::Delete => self.delete += 1,
            Decision::Unclassified => self.unclassified += 1,
        }
        if p.overdue {
            self.overdue += 1;
            self.overdue_bytes += p.size;
            self.oldest_overdue_deadline = min_opt(self.oldest_overdue_deadline, p.deadline);
        }
        if p.decision == Decision::Keep {
            self.next_deadline = min_opt(self.next_deadline, p.deadline);
        }
        if matches!(p.decision, Decision::Keep | Decision::Delete) {
            match p.deleter {
                Deleter::Operator => self.operator_deletes += 1,
                Deleter::Nobody => self.nobody_deletes += 1,
                Deleter::Lifecycle => {}
            }
        }
        if p.tag.is_none() {
            self.untaggable += 1;
        }
        let reasons: BTreeSet<HoldReason> = p.hold_reasons.iter().copied().collect();
        for r in reasons {
            *self.held_by_reason.entry(r.to_string()).or_default() += 1;
        }
        for h in &p.holds {
            *self.held_by_hold.entry(h.clone()).or_default() += 1;
        }
        if let Some(k) = &p.kind {
            *self.by_kind.entry(k.clone()).or_default() += 1;
        }
        for c in &p.controllers {
            *self.by_controller.entry(c.clone()).or_default() += 1;
            if p.overdue {
                *self.overdue_by_controller.entry(c.clone()).or_default() += 1;
            }
        }
        if let Some(issue) = p.recorded_at_issue {
            *self
                .recorded_at_issues
                .entry(issue.as_str().to_string())
                .or_default() += 1;
        }
    }

    /// Seconds since the oldest overdue deadline passed.
    pub fn oldest_overdue_age(&self, now: DateTime<Utc>) -> Option<TimeDelta> {
        self.oldest_overdue_deadline.map(|d| now - d)
    }
}

fn min_opt(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// A whole-bucket plan over a listing in memory (used by `gallring plan` and tests).
#[derive(Debug, Clone)]
pub struct BucketPlan {
    pub objects: Vec<ObjectPlan>,
    pub summary: Summary,
}

pub fn plan_bucket(
    policy: &Policy,
    bucket: &BucketRules,
    holds: Vec<Hold>,
    objects: &[ObjectInfo],
    now: DateTime<Utc>,
) -> BucketPlan {
    plan_bucket_with(policy, bucket, holds, Vec::new(), objects, now)
}

/// [`plan_bucket`] with data-subject requests in effect.
pub fn plan_bucket_with(
    policy: &Policy,
    bucket: &BucketRules,
    holds: Vec<Hold>,
    requests: Vec<SubjectRequest>,
    objects: &[ObjectInfo],
    now: DateTime<Utc>,
) -> BucketPlan {
    let holds = policy.cap_holds(holds);
    let mut linker = HoldLinker::new(bucket, policy.time_zone, holds).with_requests(requests);
    for o in objects {
        linker.observe(o);
    }
    let linked = linker.finish();
    let planner = Planner::new(policy, bucket, &linked, now);
    let mut summary = Summary::default();
    let plans: Vec<ObjectPlan> = objects
        .iter()
        .map(|o| {
            let p = planner.plan(o);
            summary.add(&p);
            p
        })
        .collect();
    BucketPlan {
        objects: plans,
        summary,
    }
}

#[cfg(test)]
mod local_day_tests {
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn local_day_writes_what_chrono_writes(
            secs in -70_000_000_000i64..300_000_000_000i64,
            tz in prop::sample::select(vec![
                chrono_tz::UTC,
                chrono_tz::Europe::Oslo,
                chrono_tz::Pacific::Kiritimati,
                chrono_tz::America::St_Johns,
            ]),
        ) {
            let t = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
            prop_assert_eq!(
                super::local_day(t, tz),
                t.with_timezone(&tz).format("%Y-%m-%d").to_string()
            );
        }
    }
}
