//! Requests from data subjects (GDPR Art. 15, 7(3)/21, 17, 18) as the engine sees them, and
//! what a pass makes of each: pure data, no I/O, `now` a parameter.
//!
//! A withdrawal or objection ends purposes of the recordings it selects; an erasure ends every
//! purpose except those Art. 17(3) lets the controller keep (a legal obligation), while holds
//! and their floors still keep what they keep; a restriction is a hold (reason `Restriction`);
//! an access request only reads. Each request's tally says what it matched, what was deleted
//! and what was kept and why, so that no exception is silent.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::duration::IsoDuration;
use super::model::{Hold, HoldReason, HoldSelector};
use super::plan::{Decision, ObjectPlan};

/// Which right the data subject exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RequestType {
    /// Art. 7(3): consent withdrawn; the withdrawable purposes end.
    Withdrawal,
    /// Art. 21: objection to processing; the withdrawable purposes end.
    Objection,
    /// Art. 17: every artifact and version deleted, except what Art. 17(3) keeps.
    Erasure,
    /// Art. 18: kept but not used while the restriction lasts (a hold).
    Restriction,
    /// Art. 15: a manifest of the subject's recordings; nothing changes.
    Access,
}

impl RequestType {
    pub const ALL: [RequestType; 5] = [
        RequestType::Withdrawal,
        RequestType::Objection,
        RequestType::Erasure,
        RequestType::Restriction,
        RequestType::Access,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RequestType::Withdrawal => "Withdrawal",
            RequestType::Objection => "Objection",
            RequestType::Erasure => "Erasure",
            RequestType::Restriction => "Restriction",
            RequestType::Access => "Access",
        }
    }

    /// Whether the request changes deadlines for good: it stays in effect from the journal
    /// after its resource is gone (a withdrawal is not undone by deleting its record, and an
    /// erased recording that reappears is erased again).
    pub fn is_lasting(&self) -> bool {
        matches!(
            self,
            RequestType::Withdrawal | RequestType::Objection | RequestType::Erasure
        )
    }

    /// Whether it ends purposes (withdrawal, objection, erasure).
    pub fn ends_purposes(&self) -> bool {
        self.is_lasting()
    }
}

impl std::fmt::Display for RequestType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A data subject's request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRequest {
    /// `namespace/name` of the SubjectRequest (or the manifest's name).
    pub name: String,
    pub kind: RequestType,
    /// Recordings selected by id: every artifact and version of them, whenever recorded.
    pub recording_ids: BTreeSet<String>,
    /// Data-subject ids: their recordings made up to `received_at` (access: up to now).
    pub subjects: BTreeSet<String>,
    /// Objects erased earlier under this request that had no recording id (the tombstone of a
    /// bucket without recording ids).
    pub keys: BTreeSet<String>,
    /// Withdrawal / objection: the purposes that end (empty: every withdrawable one).
    pub purposes: BTreeSet<String>,
    pub received_at: DateTime<Utc>,
    /// The case number in the privacy team's system.
    pub reference: String,
    /// Restriction: when it ends.
    pub lifted_at: Option<DateTime<Utc>>,
}

/// How long a controller has to answer (Art. 12(3): one month).
pub fn response_period() -> IsoDuration {
    IsoDuration {
        months: 1,
        ..IsoDuration::default()
    }
}

impl SubjectRequest {
    /// When the answer is due: `receivedAt` + one month on the policy's calendar.
    pub fn due_by(&self, tz: chrono_tz::Tz) -> DateTime<Utc> {
        response_period()
            .add_in(self.received_at, tz)
            .unwrap_or(self.received_at)
    }

    /// In effect at `now`: a request received in the future (a typo, a skewed clock) waits.
    pub fn in_effect(&self, now: DateTime<Utc>) -> bool {
        self.received_at <= now
    }

    /// Whether it reaches an object of this recording id, subject, key and recording time
    /// directly (recording ids linked through a subject are checked by the planner).
    pub fn selects(
        &self,
        key: &str,
        recording_id: Option<&str>,
        subject: Option<&str>,
        recorded_at: Option<DateTime<Utc>>,
    ) -> bool {
        recording_id.is_some_and(|id| self.recording_ids.contains(id))
            || self.keys.contains(key)
            || (subject.is_some_and(|s| self.subjects.contains(s)) && self.covers_time(recorded_at))
    }

    /// A request about a subject is about the recordings that existed when it was made; the
    /// subject's later calls are new processing (access reports everything up to now).
    pub fn covers_time(&self, recorded_at: Option<DateTime<Utc>>) -> bool {
        self.kind == RequestType::Access || recorded_at.is_none_or(|t| t <= self.received_at)
    }

    /// A restriction as the hold that carries it out: reason `Restriction`, active from
    /// `receivedAt` until lifted; release then follows the policy's `holdRelease`.
    pub fn as_hold(&self) -> Option<Hold> {
        (self.kind == RequestType::Restriction).then(|| Hold {
            name: self.name.clone(),
            reason: HoldReason::Restriction,
            case: self.reference.clone(),
            select: HoldSelector {
                recording_ids: self.recording_ids.clone(),
                subjects: self.subjects.clone(),
                ..HoldSelector::default()
            },
            expires: self.lifted_at,
            review_by: None,
            released_at: None,
            limitation_start: None,
            created_at: Some(self.received_at),
        })
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RequestPhase {
    /// Not yet taken up by a pass over its bucket.
    Pending,
    /// Taken up; something is still to be done (a deletion, a protection).
    InProgress,
    /// Done: every selected object is as the request asks.
    Completed,
    /// Done except for the exceptions named in the status (Art. 17(3)).
    PartiallyCompleted,
    /// Cannot be carried out as specified (named in the status).
    Failed,
}

impl RequestPhase {
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestPhase::Pending => "Pending",
            RequestPhase::InProgress => "InProgress",
            RequestPhase::Completed => "Completed",
            RequestPhase::PartiallyCompleted => "PartiallyCompleted",
            RequestPhase::Failed => "Failed",
        }
    }

    /// Still needs somebody (or a pass): counted as open for the due-date alert.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            RequestPhase::Pending | RequestPhase::InProgress | RequestPhase::Failed
        )
    }
}

/// An object a request selects that is kept, and what keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestException {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The hold, purpose or floor that keeps it, e.g. `LegalHold ns/x (Complaint C-1)` or
    /// `purpose bookkeeping (Art. 6(1)(c) legal obligation)`.
    pub kept_by: String,
    /// The object's plan reason, with its deadline.
    pub reason: String,
}

/// One recording in an access manifest: what is kept, why and until when; no content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<DateTime<Utc>>,
    /// Purpose → its lawful basis.
    pub purposes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<String>,
    /// When it may be deleted (none while held or waiting for an event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<String>,
    pub size: u64,
    pub reason: String,
}

/// At most this many exceptions (and access entries) are kept per request and pass; the counts
/// stay exact.
pub const EXCEPTIONS_MAX: usize = 100;
pub const ACCESS_ENTRIES_MAX: usize = 100_000;

/// What one pass found for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestTally {
    /// Selected objects present at the pass, by artifact kind (`unclassified` for none).
    pub matched: BTreeMap<String, u64>,
    /// Selected objects gallring deleted in this pass, by kind.
    pub deleted: BTreeMap<String, u64>,
    /// Erasure: selected objects due for deletion that are not gone yet (a failed or deferred
    /// deletion, or lifecycle still to run).
    pub pending: u64,
    /// Restriction: selected objects under the restriction's hold.
    pub protected: u64,
    /// Erasure: selected objects kept, by what keeps them.
    pub exceptions: Vec<RequestException>,
    pub exceptions_total: u64,
    /// Erasure: recording ids (or keys, without one) of the selected objects: the tombstone.
    pub recording_ids: BTreeSet<String>,
    pub keys: BTreeSet<String>,
    /// Erasure: keys of the objects kept as exceptions.
    pub kept_ids: BTreeSet<String>,
    /// Access: the manifest's entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<AccessEntry>,
    /// Erasure: objects deleted in this pass that were created after the erasure had
    /// completed (a restore, a replication): erased again.
    pub reappeared: u64,
    /// Which request this tallies, whether an erasure had completed before this pass, and
    /// what it kept then: a later deletion of anything else is a reappearance.
    #[serde(skip)]
    kind: Option<RequestType>,
    #[serde(skip)]
    completed: bool,
    #[serde(skip)]
    kept_before: BTreeSet<String>,
}

fn kind_of(plan: &ObjectPlan) -> String {
    plan.kind.clone().unwrap_or_else(|| "unclassified".into())
}

impl RequestTally {
    /// An empty tally for `request`. `completed` says the journal has it completed (or
    /// partially) before, with the keys it kept as exceptions then.
    pub fn for_request(
        request: &SubjectRequest,
        completed: bool,
        kept_before: BTreeSet<String>,
    ) -> Self {
        RequestTally {
            kind: Some(request.kind),
            completed,
            kept_before,
            ..RequestTally::default()
        }
    }

    /// Counts one selected object as planned. `legal_basis` names a purpose's lawful basis.
    pub fn observe(
        &mut self,
        request: &SubjectRequest,
        plan: &ObjectPlan,
        legal_basis: &dyn Fn(&str) -> String,
    ) {
        *self.matched.entry(kind_of(plan)).or_default() += 1;
        match request.kind {
            RequestType::Erasure => {
                match &plan.recording_id {
                    Some(id) => self.recording_ids.insert(id.clone()),
                    None => self.keys.insert(plan.key.clone()),
                };
                match plan.decision {
                    Decision::Delete => self.pending += 1,
                    _ => {
                        self.kept_ids.insert(plan.key.clone());
                        self.except(plan, legal_basis);
                    }
                }
            }
            RequestType::Restriction if plan.holds.iter().any(|h| h == &request.name) => {
                self.protected += 1;
            }
            RequestType::Access if self.entries.len() < ACCESS_ENTRIES_MAX => {
                self.entries.push(AccessEntry {
                    key: plan.key.clone(),
                    version_id: plan.version_id.clone(),
                    recording_id: plan.recording_id.clone(),
                    kind: plan.kind.clone(),
                    recorded_at: plan.recorded_at,
                    purposes: plan
                        .purposes
                        .iter()
                        .map(|p| (p.clone(), legal_basis(p)))
                        .collect(),
                    controllers: plan.controllers.clone(),
                    deadline: plan.deadline,
                    maximum: plan.maximum,
                    holds: plan.holds.clone(),
                    size: plan.size,
                    reason: plan.reason.clone(),
                });
            }
            _ => {}
        }
    }

    /// An erasure that keeps this object: say what keeps it.
    fn except(&mut self, plan: &ObjectPlan, legal_basis: &dyn Fn(&str) -> String) {
        self.exceptions_total += 1;
        if self.exceptions.len() >= EXCEPTIONS_MAX {
            return;
        }
        let kept_by = match plan.decision {
            Decision::Held => format!("hold {}", plan.holds.join(", ")),
            Decision::Unclassified => {
                "unclassified: no classify rule says what it is (erase it by hand or add a rule)"
                    .to_string()
            }
            _ if matches!(
                plan.anchor.as_deref(),
                Some("hold release" | "limitation start" | "keep-until tag")
            ) =>
            {
                format!(
                    "the floor of a released hold ({})",
                    plan.anchor.as_deref().unwrap_or_default()
                )
            }
            _ => {
                let kept: Vec<String> = plan
                    .purposes
                    .iter()
                    .map(|p| format!("purpose {p} ({})", legal_basis(p)))
                    .collect();
                if kept.is_empty() {
                    "an event the retention waits for".to_string()
                } else {
                    kept.join(", ")
                }
            }
        };
        self.exceptions.push(RequestException {
            key: plan.key.clone(),
            version_id: plan.version_id.clone(),
            kind: plan.kind.clone(),
            kept_by,
            reason: plan.reason.clone(),
        });
    }

    /// A deletion of a selected object the store confirmed. Counted for the requests that
    /// cause deletions (erasure, withdrawal, objection); a deletion after a restriction ended
    /// is the policy's, not the request's.
    pub fn deleted_one(&mut self, plan: &ObjectPlan) {
        // No longer present: `matched` counts what is still there after the pass.
        if let Some(n) = self.matched.get_mut(&kind_of(plan)) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.matched.remove(&kind_of(plan));
            }
        }
        if self.kind.is_some_and(|k| k.ends_purposes()) {
            *self.deleted.entry(kind_of(plan)).or_default() += 1;
        }
        // Deleted under an erasure that had completed, and not one of the objects it kept
        // then (an exception whose hold ended): it came back.
        if self.kind == Some(RequestType::Erasure)
            && self.completed
            && !self.kept_before.contains(&plan.key)
        {
            self.reappeared += 1;
        }
        self.pending = self.pending.saturating_sub(1);
    }

    /// Where the request stands after this pass. `deletes` is whether the bucket's enforcement
    /// lets anything delete (an erasure under `Observe` cannot be carried out);
    /// `manifest_written` whether the access manifest is in place.
    pub fn phase(&self, kind: RequestType, deletes: bool, manifest_written: bool) -> RequestPhase {
        self.phase_at(kind, deletes, manifest_written, false)
    }

    /// [`Self::phase`], where `ended` says a restriction has been lifted (it is then done,
    /// whatever it still matches).
    pub fn phase_at(
        &self,
        kind: RequestType,
        deletes: bool,
        manifest_written: bool,
        ended: bool,
    ) -> RequestPhase {
        match kind {
            RequestType::Restriction if ended => RequestPhase::Completed,
            RequestType::Erasure if !deletes && self.pending > 0 => RequestPhase::Failed,
            RequestType::Erasure if self.pending > 0 => RequestPhase::InProgress,
            RequestType::Erasure if self.exceptions_total > 0 => RequestPhase::PartiallyCompleted,
            RequestType::Restriction if self.protected < self.matched.values().sum::<u64>() => {
                RequestPhase::InProgress
            }
            RequestType::Access if !manifest_written => RequestPhase::InProgress,
            _ => RequestPhase::Completed,
        }
    }
}
