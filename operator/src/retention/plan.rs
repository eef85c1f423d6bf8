//! The plan: for each object, the decision (keep until D / held / delete / unclassified) with a
//! reason, the retention tag it should carry and who deletes it; for the bucket, a summary.
//!
//! Planning streams: [`HoldLinker`] sees every object once to link holds to recording ids (so a
//! hold on one artifact reaches all artifacts of the call), then [`Planner::plan`] decides each
//! object on its own. Nothing here needs the whole listing in memory.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::classify::{self, Classification, RecordedAt, RecordedAtIssue};
use super::duration::IsoDuration;
use super::lifecycle::{self, DayClasses};
use super::model::{
    BucketRules, Hold, HoldReason, KEEP_UNTIL_TAG, ObjectInfo, Policy, RETENTION_TAG,
    WITHDRAWN_AT_TAG,
};

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub recorded_at: Option<DateTime<Utc>>,
    /// Why the configured recorded-at tag or metadata was not used as it is (the reason says
    /// what was found and what was used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_at_issue: Option<RecordedAtIssue>,
    /// When the object may be deleted; `None` while held or unclassified.
    pub deadline: Option<DateTime<Utc>>,
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
}

/// Holds with the recording ids they reach through linked artifacts.
#[derive(Debug, Clone, Default)]
pub struct LinkedHolds {
    holds: Vec<Hold>,
    /// Per hold (same index): recording ids of objects it selects directly.
    linked_ids: Vec<BTreeSet<String>>,
}

impl LinkedHolds {
    pub fn holds(&self) -> &[Hold] {
        &self.holds
    }
}

/// First pass over a listing: which recording ids each hold reaches.
pub struct HoldLinker<'a> {
    bucket: &'a BucketRules,
    linked: LinkedHolds,
}

impl<'a> HoldLinker<'a> {
    pub fn new(bucket: &'a BucketRules, holds: Vec<Hold>) -> Self {
        let n = holds.len();
        HoldLinker {
            bucket,
            linked: LinkedHolds {
                holds,
                linked_ids: vec![BTreeSet::new(); n],
            },
        }
    }

    pub fn observe(&mut self, obj: &ObjectInfo) {
        let Some(id) = classify::recording_id(self.bucket, obj) else {
            return;
        };
        let subject = classify::subject(self.bucket, obj);
        for (hold, ids) in self
            .linked
            .holds
            .iter()
            .zip(self.linked.linked_ids.iter_mut())
        {
            if selects_directly(hold, obj, Some(&id), subject.as_deref()) {
                ids.insert(id.clone());
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
    pub fn link(bucket: &BucketRules, holds: Vec<Hold>, objects: &[ObjectInfo]) -> LinkedHolds {
        let mut linker = HoldLinker::new(bucket, holds);
        for o in objects {
            linker.observe(o);
        }
        linker.finish()
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

/// Decides objects one at a time. Construct once per pass; `now` is fixed for the pass.
pub struct Planner<'a> {
    policy: &'a Policy,
    bucket: &'a BucketRules,
    holds: &'a LinkedHolds,
    now: DateTime<Utc>,
    classes: DayClasses,
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
            classes: lifecycle::day_classes(policy),
        }
    }

    fn holds_selecting(
        &self,
        obj: &ObjectInfo,
        rec_id: Option<&str>,
        subject: Option<&str>,
    ) -> Vec<&Hold> {
        self.holds
            .holds
            .iter()
            .zip(&self.holds.linked_ids)
            .filter(|(h, linked)| {
                selects_directly(h, obj, rec_id, subject)
                    || rec_id.is_some_and(|id| linked.contains(id))
            })
            .map(|(h, _)| h)
            .collect()
    }

    pub fn plan(&self, obj: &ObjectInfo) -> ObjectPlan {
        let rec_id = classify::recording_id(self.bucket, obj);
        let subject = classify::subject(self.bucket, obj);
        let selecting = self.holds_selecting(obj, rec_id.as_deref(), subject.as_deref());
        let active: Vec<&Hold> = selecting
            .iter()
            .copied()
            .filter(|h| h.is_active(self.now))
            .collect();

        let mut plan = ObjectPlan {
            key: obj.key.clone(),
            version_id: obj.version_id.clone(),
            size: obj.size,
            last_modified: obj.last_modified,
            rule: None,
            kind: None,
            purposes: Vec::new(),
            recording_id: rec_id,
            subject,
            recorded_at: None,
            recorded_at_issue: None,
            deadline: None,
            decision: Decision::Unclassified,
            reason: String::new(),
            holds: active.iter().map(|h| h.name.clone()).collect(),
            hold_reasons: active.iter().map(|h| h.reason).collect(),
            tag: None,
            deleter: Deleter::Nobody,
            overdue: false,
            keep_until: None,
        };
        let room_for_tag = obj.room_for_retention_tag();

        // Holds come first: a held object is protected even if it is unclassified.
        if !active.is_empty() {
            plan.decision = Decision::Held;
            let names: Vec<String> = active
                .iter()
                .map(|h| format!("{} ({} {})", h.name, h.reason, h.case))
                .collect();
            plan.reason = format!("held by {}", names.join(", "));
        }

        let Some(class) = classify::classify(self.bucket, obj) else {
            if plan.decision != Decision::Held {
                plan.reason = "no classify rule matches: reported, never deleted".into();
            }
            plan.tag = room_for_tag.then(|| non_expiring_tag(plan.decision));
            return plan;
        };
        let Classification {
            rule,
            kind,
            purposes,
        } = class;
        let RecordedAt {
            at: recorded_at,
            issue,
            note: recorded_note,
        } = classify::recorded_at(self.bucket, obj);
        plan.rule = Some(rule.clone());
        plan.kind = Some(kind.clone());
        plan.recorded_at = Some(recorded_at);
        plan.recorded_at_issue = issue;

        let withdrawn = classify::withdrawn(obj);
        let mut notes: Vec<String> = recorded_note.into_iter().collect();
        let mut active_purposes = Vec::new();
        let mut ended_by_withdrawal = Vec::new();
        for p in &purposes {
            let withdrawable = self.policy.purposes.get(p).is_some_and(|d| d.withdrawable);
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

        // The longest retention among active purposes for this kind.
        let longest: Option<(&str, IsoDuration, DateTime<Utc>)> = active_purposes
            .iter()
            .filter_map(|p| {
                let d = *self.policy.purposes.get(p)?.retain.get(&kind)?;
                Some((p.as_str(), d, d.add_to(recorded_at)?))
            })
            .max_by_key(|(_, _, until)| *until);

        let (mut deadline, mut why) = match longest {
            Some((p, d, until)) => (until, format!("{kind} for {p} ({d})")),
            None => {
                let any_withdrawn_retained = ended_by_withdrawal.iter().any(|p| {
                    self.policy
                        .purposes
                        .get(p)
                        .is_some_and(|d| d.retain.contains_key(&kind))
                });
                if any_withdrawn_retained {
                    (
                        recorded_at,
                        format!(
                            "{kind}: every purpose withdrawn ({})",
                            ended_by_withdrawal.join(", ")
                        ),
                    )
                } else {
                    // A classify rule that names no purpose keeping this kind is a policy
                    // gap, not a reason to delete.
                    if plan.decision != Decision::Held {
                        plan.decision = Decision::Unclassified;
                        plan.reason = format!(
                            "rule {rule}: no purpose among [{}] retains kind `{kind}`: reported, never deleted",
                            purposes.join(", ")
                        );
                    }
                    plan.tag = room_for_tag.then(|| non_expiring_tag(plan.decision));
                    return plan;
                }
            }
        };
        if !ended_by_withdrawal.is_empty() && longest.is_some() {
            notes.push(format!("withdrawn: {}", ended_by_withdrawal.join(", ")));
        }

        // Floors: released holds keep the object until release + holdRelease.
        for h in &selecting {
            if let Some(end) = h.ends_at().filter(|_| !h.is_active(self.now)) {
                let keep = self
                    .policy
                    .hold_release
                    .get(&h.reason)
                    .copied()
                    .unwrap_or_default();
                if let Some(floor) = keep.add_to(end)
                    && floor > deadline
                {
                    plan.keep_until = plan.keep_until.max(Some(floor));
                    deadline = floor;
                    why = format!(
                        "{} {} released {} + {keep}",
                        h.reason,
                        h.case,
                        end.format("%Y-%m-%d")
                    );
                }
            }
        }
        if let Some(floor) = obj
            .tags
            .get(KEEP_UNTIL_TAG)
            .and_then(|v| classify::parse_instant(v))
            && floor > deadline
        {
            deadline = floor;
            why = format!("{KEEP_UNTIL_TAG} from a released hold");
        }

        if plan.decision == Decision::Held {
            // Held objects have no deadline; the tag says `held` so no lifecycle rule matches.
            plan.tag = room_for_tag.then(|| non_expiring_tag(Decision::Held));
            return plan;
        }

        plan.deadline = Some(deadline);
        let recorded = recorded_at.format("%Y-%m-%d");
        let until = deadline.format("%Y-%m-%d");
        if self.now >= deadline {
            plan.decision = Decision::Delete;
            plan.reason = format!("{why} from {recorded}: deadline {until} has passed");
            // A withdrawal can move the deadline into the past at once; the clock for
            // "overdue" then starts at the withdrawal, not at the (earlier) deadline.
            let withdrawn_at = (!ended_by_withdrawal.is_empty())
                .then(|| {
                    obj.tags
                        .get(WITHDRAWN_AT_TAG)
                        .and_then(|v| classify::parse_instant(v))
                })
                .flatten();
            let due_since = withdrawn_at.map_or(deadline, |w| w.max(deadline));
            let grace_end = self.bucket.grace.add_to(due_since).unwrap_or(due_since);
            plan.overdue = self.now > grace_end;
        } else {
            plan.decision = Decision::Keep;
            plan.reason = format!("{why} from {recorded}: keep until {until}");
        }
        if !room_for_tag {
            notes.push(format!(
                "no room for {RETENTION_TAG} beside {} tags: lifecycle cannot expire it",
                obj.tags.len()
            ));
        }
        if !notes.is_empty() {
            plan.reason = format!("{} ({})", plan.reason, notes.join("; "));
        }

        let expire_days = lifecycle::expire_days(deadline, obj.last_modified, &self.classes);
        plan.tag = room_for_tag.then(|| match expire_days {
            Some(days) => lifecycle::expire_tag_value(days),
            None => lifecycle::OPERATOR_TAG_VALUE.to_string(),
        });
        let lifecycle_can = expire_days.is_some() && room_for_tag;
        let enforcement = self.bucket.enforcement;
        plan.deleter = if enforcement.uses_lifecycle() && lifecycle_can {
            Deleter::Lifecycle
        } else if enforcement.operator_deletes() {
            Deleter::Operator
        } else {
            Deleter::Nobody
        };
        plan
    }
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
    let linked = HoldLinker::link(bucket, holds, objects);
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
