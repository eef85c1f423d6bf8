//! What a pass makes of a data-subject request: its phase, and per request the tally of what
//! it selected, deleted and kept (and why), with the access manifest's entries. Pure data.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::plan::{Decision, ObjectPlan};
use super::request::{RequestType, SubjectRequest};

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
    /// Objects of the subject recorded after the request was received: new processing it
    /// does not reach.
    #[serde(default)]
    pub recorded_after: u64,
    /// Which request this tallies, whether an erasure had completed before this pass, and
    /// what it kept then: a later deletion of anything else is a reappearance.
    #[serde(skip)]
    kind: Option<RequestType>,
    #[serde(skip)]
    completed: bool,
    #[serde(skip)]
    kept_before: BTreeSet<String>,
}

/// Counts by name as people read them: `2 audio, 1 transcript` (`none` when empty).
pub fn counts_text(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".to_string();
    }
    m.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
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
