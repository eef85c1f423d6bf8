//! Requests from data subjects (GDPR Art. 15, 7(3)/21, 17, 18) as the engine sees them: pure
//! data, no I/O, `now` a parameter. What a pass makes of each is in [`super::answer`].
//!
//! A withdrawal or objection ends purposes of the recordings it selects; an erasure ends every
//! purpose except those Art. 17(3) lets the controller keep (a legal obligation), while holds
//! and their floors still keep what they keep; a restriction is a hold (reason `Restriction`);
//! an access request only reads.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::duration::IsoDuration;
use super::model::{Hold, HoldReason, HoldSelector};

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
