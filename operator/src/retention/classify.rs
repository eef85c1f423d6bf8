//! Classification: which rule an object matches, its artifact kind, purposes, recording time,
//! recording id and data subject.

use chrono::{DateTime, NaiveDate, Utc};

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
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// The recording time and, when the configured source was missing or unreadable, a note
/// saying so. Falling back to the creation time never shortens retention, because an object
/// is uploaded after it is recorded.
pub fn recorded_at(bucket: &BucketRules, obj: &ObjectInfo) -> (DateTime<Utc>, Option<String>) {
    let (source, value) = match &bucket.recorded_at {
        RecordedAtSource::LastModified => return (obj.last_modified, None),
        RecordedAtSource::Tag(k) => (format!("tag `{k}`"), obj.tags.get(k)),
        RecordedAtSource::Metadata(k) => (format!("metadata `{k}`"), obj.metadata.get(k)),
    };
    match value {
        Some(v) => match parse_instant(v) {
            Some(t) => (t, None),
            None => (
                obj.last_modified,
                Some(format!(
                    "{source} is `{v}`, not a date; using the creation time"
                )),
            ),
        },
        None => (
            obj.last_modified,
            Some(format!("{source} is missing; using the creation time")),
        ),
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
