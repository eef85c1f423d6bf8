//! The checker's own account of what must hold, kept apart from gallring's code: every seeded
//! object (key, version, kind, recording time, foreign tags and legal hold) and every hold with
//! the moments it was in, and taken out of, the manifests.
//!
//! The policy of every scenario (written into its manifests by `world.rs`):
//! audio 7 days and transcripts 14 days from `recordedAt` (metadata `call-start`), grace 2
//! days; a released Dispute keeps its objects 3 years from the release, a released Complaint
//! or Claim adds nothing (P0D). Recording times are chosen days away from every boundary, so
//! no run of the suite can straddle a deadline.

use std::collections::BTreeMap;

use chrono::{DateTime, Months, TimeDelta, Utc};

pub const AUDIO_DAYS: i64 = 7;
pub const TRANSCRIPT_DAYS: i64 = 14;
pub const GRACE_DAYS: i64 = 2;
/// Audio with `consent=given` in a consent scenario: the withdrawable purpose `quality`.
pub const QUALITY_DAYS: i64 = 30;

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

    pub fn holds_on<'a>(&'a self, o: &'a Obj) -> impl Iterator<Item = &'a HoldDef> + 'a {
        self.holds.iter().filter(move |h| self.selects(h, o))
    }

    pub fn active_holds<'a>(&'a self, o: &'a Obj) -> Vec<&'a HoldDef> {
        self.holds_on(o)
            .filter(|h| h.released_at.is_none())
            .collect()
    }

    pub fn is_held(&self, o: &Obj) -> bool {
        !self.active_holds(o).is_empty()
    }

    /// recordedAt + the retention of its kind; `None` for unclassified objects. Audio with
    /// consent (consent scenarios) is kept for `quality` too, until the journaled withdrawal:
    /// from then on only `documentation` counts, and no earlier than the withdrawal.
    pub fn deadline(&self, o: &Obj) -> Option<DateTime<Utc>> {
        let days = match o.kind {
            Kind::Audio => AUDIO_DAYS,
            Kind::Transcript => TRANSCRIPT_DAYS,
            Kind::Unclassified => return None,
        };
        let documentation = o.recorded_at + TimeDelta::days(days);
        let consent = o.kind == Kind::Audio
            && o.foreign_tags.get("consent").map(String::as_str) == Some("given");
        match self.quality_days.filter(|_| consent) {
            None => Some(documentation),
            Some(quality) => match self.withdrawals.get(&o.key) {
                Some(withdrawn) => Some(documentation.max(*withdrawn)),
                None => Some(documentation.max(o.recorded_at + TimeDelta::days(quality))),
            },
        }
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
