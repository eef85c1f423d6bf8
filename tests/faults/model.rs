//! The checker's own account of what must hold, kept apart from gallring's code: every seeded
//! object (key, version, kind, recording time, foreign tags and legal hold) and every hold with
//! the moments it was in, and taken out of, the manifests.
//!
//! The policy of every scenario (written into its manifests by `world.rs`):
//! audio 7 days and transcripts 14 days from `recordedAt` (metadata `call-start`), grace 2
//! days; a released Dispute keeps its objects 3 years from the release, a released Complaint
//! or Claim adds nothing (P0D). Recording times are chosen days away from every boundary, so
//! no run of the suite can straddle a deadline.
//!
//! Data-subject requests (issue 12, `requests.rs`) as the checker understands them, from the
//! seeded data alone: a request selects by recording id, or by subject (the `subject` tag) for
//! the calls recorded up to its `receivedAt`, and then every artifact of those calls (linked by
//! recording id). An erasure ends every purpose but a legal obligation's (`bookkeeping`) from
//! the moment it is in the manifests, for good (the journal keeps it after it is taken out); a
//! withdrawal ends `quality` from then; a restriction is a hold while it is in the manifests.

use std::collections::BTreeMap;

use chrono::{DateTime, Months, TimeDelta, Utc};

pub const AUDIO_DAYS: i64 = 7;
pub const TRANSCRIPT_DAYS: i64 = 14;
pub const GRACE_DAYS: i64 = 2;
/// Audio with `consent=given` in a consent scenario: the withdrawable purpose `quality`.
pub const QUALITY_DAYS: i64 = 30;
/// Audio with `ledger=yes` in a legal-obligation scenario: the purpose `bookkeeping` (Art.
/// 6(1)(c), kept on erasure).
pub const BOOKKEEPING_DAYS: i64 = 21;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Transcript,
    /// Matches no classify rule: never deleted.
    Unclassified,
}

/// One seeded object version.
#[derive(Debug, Clone)]
pub struct Obj {
    pub key: String,
    pub version_id: String,
    pub kind: Kind,
    pub recorded_at: DateTime<Utc>,
    pub foreign_tags: BTreeMap<String, String>,
    /// An Object Lock legal hold set before gallring ever ran: never gallring's to lift.
    pub foreign_legal_hold: bool,
}

impl Obj {
    /// The recording id, as the bucket's `recordingId.keyPattern` reads it.
    pub fn recording(&self) -> Option<&str> {
        let rest = self.key.strip_prefix("calls/")?;
        let (id, _) = rest.split_once('/')?;
        (!id.is_empty()).then_some(id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Dispute,
    Complaint,
    Claim,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Dispute => "Dispute",
            Reason::Complaint => "Complaint",
            Reason::Claim => "Claim",
        }
    }

    /// The policy's `holdRelease` for this reason, in months.
    pub fn keep_months(&self) -> u32 {
        match self {
            Reason::Dispute => 36,
            Reason::Complaint | Reason::Claim => 0,
        }
    }
}

/// One LegalHold of the manifests.
#[derive(Debug, Clone)]
pub struct HoldDef {
    /// `metadata.name`.
    pub name: String,
    pub reason: Reason,
    pub case: String,
    pub recording_ids: Vec<String>,
    pub keys: Vec<String>,
    /// When it was taken out of the manifests (a release); `None` while it is in them.
    pub released_at: Option<DateTime<Utc>>,
}

impl HoldDef {
    pub fn new(name: &str, reason: Reason, recording_ids: &[&str], keys: &[&str]) -> HoldDef {
        HoldDef {
            name: name.to_string(),
            reason,
            case: format!("FS-{}", name.to_ascii_uppercase()),
            recording_ids: recording_ids.iter().map(|s| s.to_string()).collect(),
            keys: keys.iter().map(|s| s.to_string()).collect(),
            released_at: None,
        }
    }

    /// The earliest moment its floor can end: gallring journals the release at the start of
    /// the first pass after it left the manifests, so never before this.
    pub fn floor(&self) -> Option<DateTime<Utc>> {
        let at = self.released_at?;
        at.checked_add_months(Months::new(self.reason.keep_months()))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub objs: Vec<Obj>,
    pub holds: Vec<HoldDef>,
    /// Consent scenarios: how long `quality` keeps audio tagged `consent=given`.
    pub quality_days: Option<i64>,
    /// Withdrawals of consent by key, from the moment gallring journaled them (a withdrawal
    /// written into a tag protects nothing less before that).
    pub withdrawals: BTreeMap<String, DateTime<Utc>>,
    /// Legal-obligation scenarios: how long `bookkeeping` keeps audio tagged `ledger=yes`.
    pub bookkeeping_days: Option<i64>,
    /// Data-subject requests (SubjectRequest manifests).
    pub requests: Vec<RequestDef>,
}

/// Which right a [`RequestDef`] exercises (the ones the suite's scenarios use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Erasure,
    Withdrawal,
    Restriction,
}

impl RequestKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestKind::Erasure => "Erasure",
            RequestKind::Withdrawal => "Withdrawal",
            RequestKind::Restriction => "Restriction",
        }
    }
}

/// One SubjectRequest of the manifests.
#[derive(Debug, Clone)]
pub struct RequestDef {
    /// `metadata.name`.
    pub name: String,
    pub kind: RequestKind,
    pub subject: Option<String>,
    pub recording_ids: Vec<String>,
    /// Withdrawal: the purposes that end.
    pub purposes: Vec<String>,
    pub received_at: DateTime<Utc>,
    pub reference: String,
    /// When it was first in the manifests (right after the write): nothing it allows can
    /// happen before. `None` until then.
    pub written_at: Option<DateTime<Utc>>,
    /// When it was taken out of the manifests.
    pub removed_at: Option<DateTime<Utc>>,
}

impl RequestDef {
    fn new(name: &str, kind: RequestKind, received_at: DateTime<Utc>) -> RequestDef {
        RequestDef {
            name: name.to_string(),
            kind,
            subject: None,
            recording_ids: Vec::new(),
            purposes: Vec::new(),
            // Whole seconds, as the manifest carries it.
            received_at: DateTime::from_timestamp(received_at.timestamp(), 0).expect("in range"),
            reference: format!("DSR-{}", name.to_ascii_uppercase()),
            written_at: None,
            removed_at: None,
        }
    }

    /// An erasure of the subject's calls recorded up to `received_at`.
    pub fn erasure(name: &str, subject: &str, received_at: DateTime<Utc>) -> RequestDef {
        RequestDef {
            subject: Some(subject.to_string()),
            ..RequestDef::new(name, RequestKind::Erasure, received_at)
        }
    }

    /// A withdrawal of `purposes` for the subject's calls recorded up to `received_at`.
    pub fn withdrawal(
        name: &str,
        subject: &str,
        purposes: &[&str],
        received_at: DateTime<Utc>,
    ) -> RequestDef {
        RequestDef {
            subject: Some(subject.to_string()),
            purposes: purposes.iter().map(|p| p.to_string()).collect(),
            ..RequestDef::new(name, RequestKind::Withdrawal, received_at)
        }
    }

    /// A restriction of these recordings (a hold while it is in the manifests).
    pub fn restriction(
        name: &str,
        recording_ids: &[&str],
        received_at: DateTime<Utc>,
    ) -> RequestDef {
        RequestDef {
            recording_ids: recording_ids.iter().map(|s| s.to_string()).collect(),
            ..RequestDef::new(name, RequestKind::Restriction, received_at)
        }
    }

    /// Whether the journal's name for a request (`SubjectRequest/<ns>/<name>` or `<ns>/<name>`)
    /// is this one.
    pub fn is_named(&self, journaled: &str) -> bool {
        journaled.rsplit('/').next().is_some_and(|n| n == self.name)
    }

    /// In the manifests now.
    pub fn in_manifests(&self) -> bool {
        self.written_at.is_some() && self.removed_at.is_none()
    }

    /// Whether it reaches `o` without linking: by recording id, or by subject for a call
    /// recorded up to `receivedAt`.
    fn selects_directly(&self, o: &Obj) -> bool {
        o.recording()
            .is_some_and(|id| self.recording_ids.iter().any(|r| r == id))
            || (self
                .subject
                .as_ref()
                .is_some_and(|s| o.foreign_tags.get("subject") == Some(s))
                && o.recorded_at <= self.received_at)
    }
}

impl Model {
    pub fn obj(&self, key: &str) -> Option<&Obj> {
        self.objs.iter().find(|o| o.key == key)
    }

    pub fn hold(&self, name: &str) -> &HoldDef {
        self.holds
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no hold {name} in the model"))
    }

    pub fn hold_mut(&mut self, name: &str) -> &mut HoldDef {
        self.holds
            .iter_mut()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no hold {name} in the model"))
    }

    /// Whether `h` selects `o`: by key, by recording id, or through the recording id of an
    /// object it selects by key (a hold reaches every artifact of a call).
    pub fn selects(&self, h: &HoldDef, o: &Obj) -> bool {
        if h.keys.contains(&o.key) {
            return true;
        }
        let Some(id) = o.recording() else {
            return false;
        };
        h.recording_ids.iter().any(|r| r == id)
            || h.keys
                .iter()
                .any(|k| self.obj(k).and_then(Obj::recording) == Some(id))
    }

    /// Whether request `r` selects `o`: directly, or through an artifact of the same recording
    /// that it selects directly (a transcript carries no subject tag of its own).
    pub fn request_selects(&self, r: &RequestDef, o: &Obj) -> bool {
        if r.selects_directly(o) {
            return true;
        }
        let Some(id) = o.recording() else {
            return false;
        };
        self.objs
            .iter()
            .any(|x| x.recording() == Some(id) && r.selects_directly(x))
    }

    /// The requests of one kind that select `o` and were ever in the manifests.
    pub fn requests_on<'a>(
        &'a self,
        o: &'a Obj,
        kind: RequestKind,
    ) -> impl Iterator<Item = &'a RequestDef> + 'a {
        self.requests
            .iter()
            .filter(move |r| r.kind == kind && r.written_at.is_some())
            .filter(move |r| self.request_selects(r, o))
    }

    /// Since when an erasure reaches `o` (the earliest one in the manifests): it stays in effect
    /// after it is taken out of them (the journal's tombstone).
    pub fn erased_at(&self, o: &Obj) -> Option<DateTime<Utc>> {
        self.requests_on(o, RequestKind::Erasure)
            .filter_map(|r| r.written_at)
            .min()
    }

    pub fn request(&self, name: &str) -> &RequestDef {
        self.requests
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no request {name} in the model"))
    }

    pub fn request_mut(&mut self, name: &str) -> &mut RequestDef {
        self.requests
            .iter_mut()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no request {name} in the model"))
    }

    pub fn holds_on<'a>(&'a self, o: &'a Obj) -> impl Iterator<Item = &'a HoldDef> + 'a {
        self.holds.iter().filter(move |h| self.selects(h, o))
    }

    pub fn active_holds<'a>(&'a self, o: &'a Obj) -> Vec<&'a HoldDef> {
        self.holds_on(o)
            .filter(|h| h.released_at.is_none())
            .collect()
    }

    /// Restrictions in the manifests that select `o` (each a hold while it is there).
    pub fn active_restrictions<'a>(&'a self, o: &'a Obj) -> Vec<&'a RequestDef> {
        self.requests_on(o, RequestKind::Restriction)
            .filter(|r| r.in_manifests())
            .collect()
    }

    pub fn is_held(&self, o: &Obj) -> bool {
        !self.active_holds(o).is_empty() || !self.active_restrictions(o).is_empty()
    }

    /// recordedAt + the retention of its kind; `None` for unclassified objects. Audio with
    /// consent (consent scenarios) is kept for `quality` too, until the journaled withdrawal
    /// (a tag) or a withdrawal request in the manifests: from then on only the other purposes
    /// count, and no earlier than the withdrawal. Audio tagged `ledger=yes` (legal-obligation
    /// scenarios) is kept for `bookkeeping` too. An erasure ends every purpose but
    /// `bookkeeping`, from the moment it is in the manifests.
    pub fn deadline(&self, o: &Obj) -> Option<DateTime<Utc>> {
        let days = match o.kind {
            Kind::Audio => AUDIO_DAYS,
            Kind::Transcript => TRANSCRIPT_DAYS,
            Kind::Unclassified => return None,
        };
        let documentation = o.recorded_at + TimeDelta::days(days);
        let tagged = |k: &str, v: &str| {
            o.kind == Kind::Audio && o.foreign_tags.get(k).map(String::as_str) == Some(v)
        };
        let bookkeeping = self
            .bookkeeping_days
            .filter(|_| tagged("ledger", "yes"))
            .map(|d| o.recorded_at + TimeDelta::days(d));
        if let Some(erased) = self.erased_at(o) {
            return Some(bookkeeping.map_or(erased, |b| b.max(erased)));
        }
        let mut deadline = bookkeeping.map_or(documentation, |b| b.max(documentation));
        if let Some(quality) = self.quality_days.filter(|_| tagged("consent", "given")) {
            let requested = self
                .requests_on(o, RequestKind::Withdrawal)
                .filter(|r| r.purposes.is_empty() || r.purposes.iter().any(|p| p == "quality"))
                .filter_map(|r| r.written_at)
                .min();
            let withdrawn = match (self.withdrawals.get(&o.key).copied(), requested) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            deadline = deadline.max(match withdrawn {
                Some(w) => w,
                None => o.recorded_at + TimeDelta::days(quality),
            });
        }
        Some(deadline)
    }

    /// Until when the object must exist: `None` = for as long as the test runs (unclassified,
    /// or an active hold selects it); otherwise the later of its deadline and the floors of
    /// the released holds that selected it.
    pub fn protected_until(&self, o: &Obj) -> Option<DateTime<Utc>> {
        let deadline = self.deadline(o)?;
        if self.is_held(o) {
            return None;
        }
        Some(
            self.holds_on(o)
                .filter_map(HoldDef::floor)
                .chain(
                    self.requests_on(o, RequestKind::Restriction)
                        .filter_map(|r| r.removed_at),
                )
                .fold(deadline, DateTime::max),
        )
    }

    /// Why the object must still exist, for messages.
    pub fn why(&self, o: &Obj) -> String {
        let mut parts = Vec::new();
        match self.deadline(o) {
            Some(d) => parts.push(format!(
                "{:?} recorded {}, deadline {}",
                o.kind,
                o.recorded_at.format("%Y-%m-%d %H:%M"),
                d.format("%Y-%m-%d %H:%M")
            )),
            None => parts.push("unclassified".into()),
        }
        for h in self.holds_on(o) {
            match h.released_at {
                None => parts.push(format!("held by {} ({})", h.name, h.reason.as_str())),
                Some(at) => parts.push(format!(
                    "released from {} ({}) at {}, floor {}",
                    h.name,
                    h.reason.as_str(),
                    at.format("%H:%M:%S"),
                    h.floor()
                        .map_or("?".into(), |f| f.format("%Y-%m-%d").to_string())
                )),
            }
        }
        for r in &self.requests {
            if r.written_at.is_some() && self.request_selects(r, o) {
                parts.push(format!(
                    "{} {} received {}{}",
                    r.kind.as_str(),
                    r.name,
                    r.received_at.format("%Y-%m-%d %H:%M"),
                    if r.removed_at.is_some() {
                        " (out of the manifests)"
                    } else {
                        ""
                    }
                ));
            }
        }
        if o.foreign_legal_hold {
            parts.push("foreign legal hold".into());
        }
        if !o.foreign_tags.is_empty() {
            parts.push(format!("{} foreign tags", o.foreign_tags.len()));
        }
        parts.join("; ")
    }

    /// Overdue as the design defines it: classified, not held, past its deadline (and floors)
    /// plus grace, still present.
    pub fn overdue(&self, o: &Obj, now: DateTime<Utc>) -> bool {
        self.protected_until(o)
            .is_some_and(|t| now > t + TimeDelta::days(GRACE_DAYS))
    }
}
