//! Classification: which rule an object matches, its artifact kind, purposes, recording time,
//! recording id and data subject.

use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::model::{
    BucketRules, ClassifyRule, ObjectInfo, RecordedAtSource, RecordingIdSource, TagMatch,
    WITHDRAWN_TAG,
};

/// The result of matching an object against the bucket's ordered classify rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Name of the first rule that matched.
    pub rule: String,
    pub kind: String,
    /// Purposes the object serves, sorted and de-duplicated, before withdrawals.
    pub purposes: Vec<String>,
}

pub(crate) fn tags_match(
    want: &TagMatch,
    tags: &std::collections::BTreeMap<String, String>,
) -> bool {
    want.iter().all(|(k, v)| match (tags.get(k), v) {
        (Some(_), None) => true,
        (Some(actual), Some(expected)) => actual == expected,
        (None, _) => false,
    })
}

fn rule_matches(rule: &ClassifyRule, obj: &ObjectInfo) -> bool {
    rule.prefix
        .as_deref()
        .is_none_or(|p| obj.key.starts_with(p))
        && rule.glob.as_ref().is_none_or(|g| g.is_match(&obj.key))
        && tags_match(&rule.tags, &obj.tags)
}

/// First match wins; `None` means unclassified (reported, never deleted).
pub fn classify(bucket: &BucketRules, obj: &ObjectInfo) -> Option<Classification> {
    let rule = bucket.classify.iter().find(|r| rule_matches(r, obj))?;
    let mut purposes = rule.purposes.clone();
    if let Some(from_tag) = &rule.purposes_from_tag
        && let Some(value) = obj.tags.get(&from_tag.key)
        && let Some(extra) = from_tag.values.get(value)
    {
        purposes.extend(extra.iter().cloned());
    }
    purposes.sort();
    purposes.dedup();
    Some(Classification {
        rule: rule.name.clone(),
        kind: rule.kind.clone(),
        purposes,
    })
}

/// Parses an RFC 3339 timestamp or a plain `YYYY-MM-DD` date (midnight UTC).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    parse_instant_in(s, Tz::UTC)
}

/// Parses an RFC 3339 timestamp or a plain `YYYY-MM-DD` date, which is midnight in `tz` (the
/// policy's time zone: a Danish notice's dates are Danish dates).
pub fn parse_instant_in(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let midnight = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)?;
    super::duration::local_to_utc(tz, midnight)
}

/// Why a recording time read from a tag or metadata was not used as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedAtIssue {
    /// Later than the object's creation (beyond [`FUTURE_SKEW`]): a recording cannot be
    /// uploaded before it is made. The creation time is used.
    Future,
    /// Earlier than the creation time minus `spec.recordedAt.maxAgeAtUpload`: the bound is
    /// used, so a wrong date years back cannot make a recording deletable at once.
    TooOld,
    /// Not an RFC 3339 timestamp or `YYYY-MM-DD` date. The creation time is used.
    Unparsable,
    /// The configured tag or metadata key is absent. The creation time is used.
    Missing,
}

impl RecordedAtIssue {
    pub const ALL: [RecordedAtIssue; 4] = [
        RecordedAtIssue::Future,
        RecordedAtIssue::TooOld,
        RecordedAtIssue::Unparsable,
        RecordedAtIssue::Missing,
    ];

    /// A stable lower-case label, for counts, metrics and JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordedAtIssue::Future => "future",
            RecordedAtIssue::TooOld => "too_old",
            RecordedAtIssue::Unparsable => "unparsable",
            RecordedAtIssue::Missing => "missing",
        }
    }
}

impl fmt::Display for RecordedAtIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recorded-at value up to this long after the creation time is the recorder's clock running
/// ahead of the store's: clamped to the creation time without an issue.
pub const FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);

/// The recording time deadlines count from, and what was wrong with the configured source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAt {
    /// The time used: never after the creation time, and never before the creation time minus
    /// the bucket's `recorded_at_max_age`.
    pub at: DateTime<Utc>,
    pub issue: Option<RecordedAtIssue>,
    /// What was found and what was used, in words, when the value was not used as it is.
    pub note: Option<String>,
    /// The earliest time the recording can have been made: `at` when the value was used as it
    /// is, the value itself when it is older than the bound, else the creation time minus
    /// `recorded_at_max_age` (the creation time without one).
    /// A maximum (`retainMeans: DeleteBy`) counts from here, so a missing or late value cannot
    /// push it.
    pub earliest: DateTime<Utc>,
}

/// The recording time of an object, clamped to the safe side of its creation time
/// (`last_modified`, which the pass sets to the first-seen creation time):
/// - after the creation time: the creation time (a recording is made before it is uploaded;
///   silently within [`FUTURE_SKEW`], else [`RecordedAtIssue::Future`]);
/// - before creation minus `recorded_at_max_age`: that bound ([`RecordedAtIssue::TooOld`]);
/// - missing or not a date: the creation time.
///
/// None of these can make a deadline earlier than trusting a plausible value would: each
/// replacement is later than the value read, or the creation time itself.
pub fn recorded_at(bucket: &BucketRules, obj: &ObjectInfo, tz: Tz) -> RecordedAt {
    let created = obj.last_modified;
    let (source, value) = match &bucket.recorded_at {
        RecordedAtSource::LastModified => {
            return RecordedAt {
                at: created,
                issue: None,
                note: None,
                earliest: created,
            };
        }
        RecordedAtSource::Tag(k) => (format!("tag `{k}`"), obj.tags.get(k)),
        RecordedAtSource::Metadata(k) => (format!("metadata `{k}`"), obj.metadata.get(k)),
    };
    let upload = created.to_rfc3339_opts(SecondsFormat::Secs, true);
    let bound = bucket
        .recorded_at_max_age
        .and_then(|b| Some((b, b.sub_from(created)?)));
    let untrusted_earliest = bound.map_or(created, |(_, e)| e);
    let fallback = |issue, note: String| RecordedAt {
        at: created,
        issue: Some(issue),
        note: Some(note),
        earliest: untrusted_earliest,
    };
    let Some(v) = value else {
        return fallback(
            RecordedAtIssue::Missing,
            format!("{source} is missing; using the upload time {upload}"),
        );
    };
    let Some(t) = parse_instant_in(v, tz) else {
        return fallback(
            RecordedAtIssue::Unparsable,
            format!("{source} is `{v}`, not a date; using the upload time {upload}"),
        );
    };
    let shown = t.to_rfc3339_opts(SecondsFormat::Secs, true);
    if t > created {
        if t - created <= FUTURE_SKEW {
            return RecordedAt {
                at: created,
                issue: None,
                note: None,
                earliest: created,
            };
        }
        return fallback(
            RecordedAtIssue::Future,
            format!("{source} is {shown}, after the upload at {upload}; using the upload time"),
        );
    }
    if let Some((bound, earliest)) = bound
        && t < earliest
    {
        let used = earliest.to_rfc3339_opts(SecondsFormat::Secs, true);
        return RecordedAt {
            at: earliest,
            issue: Some(RecordedAtIssue::TooOld),
            note: Some(format!(
                "{source} is {shown}, more than {bound} before the upload at {upload}; using {used}"
            )),
            // A maximum may count from the older value: deleting sooner is its safe side.
            earliest: t,
        };
    }
    RecordedAt {
        at: t,
        issue: None,
        note: None,
        earliest: t,
    }
}

pub fn recording_id(bucket: &BucketRules, obj: &ObjectInfo) -> Option<String> {
    match bucket.recording_id.as_ref()? {
        RecordingIdSource::Tag(k) => obj.tags.get(k).cloned(),
        RecordingIdSource::KeyPattern(re) => re
            .captures(&obj.key)
            .and_then(|c| c.name("id"))
            .map(|m| m.as_str().to_string()),
    }
}

pub fn subject(bucket: &BucketRules, obj: &ObjectInfo) -> Option<String> {
    bucket
        .subject_tag
        .as_ref()
        .and_then(|k| obj.tags.get(k))
        .cloned()
}

/// Purposes named in the object's `gallring.io/withdrawn` tag.
pub fn withdrawn(obj: &ObjectInfo) -> Vec<String> {
    obj.tags
        .get(WITHDRAWN_TAG)
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}
