//! Lifecycle compilation: the operator-owned S3 lifecycle rules a bucket should have, and the
//! retention tag value that puts an object under one of them.
//!
//! S3 expires an object `Days` after its *creation* and rounds up to the next midnight UTC,
//! so a rule can only be late, never early, as long as `creation + Days >= deadline`. Each rule
//! is one "day class": objects tagged `gallring.io/retention=expire-<N>d` expire N days after
//! creation. The classes come from the policy alone (every whole-day length each `retain`
//! duration can have, whatever the start date), so the rule set is small, stable and known
//! before a listing starts. An object whose deadline is not creation + one of those classes
//! (recorded long before upload, a hold released with a floor, `P0D`) gets the tag `operator`,
//! which no rule matches: the operator deletes it itself.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use super::duration::IsoDuration;
use super::model::{BucketRules, Policy, RETENTION_TAG, RetainMeans};

/// Tag value for objects under an active hold: no rule matches it.
pub const HELD_TAG_VALUE: &str = "held";
/// Tag value for unclassified objects: no rule matches it.
pub const UNCLASSIFIED_TAG_VALUE: &str = "unclassified";
/// Tag value for objects whose deadline lifecycle cannot express: no rule matches it.
pub const OPERATOR_TAG_VALUE: &str = "operator";
/// Every operator-owned rule id starts with this.
pub const RULE_PREFIX: &str = "gallring-";
/// S3 allows at most 1,000 lifecycle rules per bucket.
pub const MAX_RULES: usize = 1000;

/// Whole-day lifetimes (counted from creation) that lifecycle rules exist for.
pub type DayClasses = BTreeSet<u32>;

pub fn expire_tag_value(days: u32) -> String {
    format!("expire-{days}d")
}

/// The day count of an `expire-<N>d` tag value.
pub fn parse_expire_tag(value: &str) -> Option<u32> {
    value
        .strip_prefix("expire-")?
        .strip_suffix('d')?
        .parse()
        .ok()
}

/// Every whole-day length (rounded up) that the policy's retentions can take. Calendar months
/// and years vary in length, so each is measured from every day of a nine-year window that
/// contains two leap days. A maximum (`DeleteBy`) is planned `grace` before its end, so its
/// classes are those lengths. On a local calendar a length can be an hour longer or shorter
/// (a daylight-saving change inside it), so each class's neighbours are classes too.
pub fn day_classes(policy: &Policy, grace: IsoDuration) -> DayClasses {
    let mut out = DayClasses::new();
    let durations: BTreeSet<(IsoDuration, bool)> = policy
        .purposes
        .values()
        .flat_map(|p| {
            let delete_by = p.retain_means == RetainMeans::DeleteBy;
            p.retain.values().map(move |d| (*d, delete_by))
        })
        .collect();
    let Some(first) = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single() else {
        return out;
    };
    for (d, delete_by) in durations {
        let starts = if d.months == 0 { 1 } else { 366 * 9 };
        for i in 0..starts {
            let start = first + chrono::TimeDelta::days(i);
            let end = d.add_to(start).and_then(|end| {
                if delete_by {
                    grace.sub_from(end)
                } else {
                    Some(end)
                }
            });
            if let Some(end) = end
                && let Some(days) = ceil_days(end - start)
                && days >= 1
            {
                out.insert(days);
            }
        }
    }
    if policy.time_zone != chrono_tz::Tz::UTC {
        let utc: Vec<u32> = out.iter().copied().collect();
        for days in utc {
            out.insert(days + 1);
            if days > 1 {
                out.insert(days - 1);
            }
        }
    }
    out
}

fn ceil_days(delta: chrono::TimeDelta) -> Option<u32> {
    let secs = delta.num_seconds();
    if secs <= 0 {
        return None;
    }
    u32::try_from((secs + 86_399) / 86_400).ok()
}

/// The day class that makes lifecycle expire the object no earlier than `deadline` and at most
/// one day (plus S3's midnight rounding) later, or `None` when no rule can.
pub fn expire_days(
    deadline: DateTime<Utc>,
    created: DateTime<Utc>,
    classes: &DayClasses,
) -> Option<u32> {
    let days = ceil_days(deadline - created)?;
    classes.contains(&days).then_some(days)
}

/// An operator-owned lifecycle rule, independent of any SDK type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRule {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Tag filter `(key, value)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<(String, String)>,
    /// Expire the current version this many days after creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    /// Expire a noncurrent version this many days after it became noncurrent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<u32>,
    /// Remove delete markers that have no versions left behind them.
    pub expired_object_delete_marker: bool,
}

impl LifecycleRule {
    pub fn is_operator_owned(id: &str) -> bool {
        id.starts_with(RULE_PREFIX)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error(
        "the policy needs {needed} lifecycle rules but only {available} fit beside the bucket's {foreign} other rules (S3 allows 1000)"
    )]
    TooManyRules {
        needed: usize,
        available: usize,
        foreign: usize,
    },
}

/// The operator-owned rules the bucket should have. Empty when the enforcement mode writes no
/// lifecycle rules (then any existing `gallring-` rules are to be removed).
///
/// On versioned buckets, expiring the current version only adds a delete marker; a rule's
/// noncurrent expiry uses the same day count, counted from when the version became
/// noncurrent, which is never before its creation and so never before its deadline. The
/// operator deletes noncurrent versions at their deadline itself (`Both`), so this is a
/// backstop, not the main path.
pub fn compile(
    policy: &Policy,
    bucket: &BucketRules,
    versioned: bool,
    foreign_rules: usize,
) -> Result<Vec<LifecycleRule>, LifecycleError> {
    if !bucket.enforcement.uses_lifecycle() {
        return Ok(Vec::new());
    }
    let mut rules: Vec<LifecycleRule> = day_classes(policy, bucket.grace)
        .into_iter()
        .map(|days| LifecycleRule {
            id: format!("{RULE_PREFIX}{}", expire_tag_value(days)),
            prefix: bucket.prefix.clone(),
            tag: Some((RETENTION_TAG.to_string(), expire_tag_value(days))),
            expiration_days: Some(days),
            noncurrent_days: versioned.then_some(days),
            expired_object_delete_marker: false,
        })
        .collect();
    if versioned {
        rules.push(LifecycleRule {
            id: format!("{RULE_PREFIX}expired-delete-markers"),
            prefix: bucket.prefix.clone(),
            tag: None,
            expiration_days: None,
            noncurrent_days: None,
            expired_object_delete_marker: true,
        });
    }
    let available = MAX_RULES.saturating_sub(foreign_rules);
    if rules.len() > available {
        return Err(LifecycleError::TooManyRules {
            needed: rules.len(),
            available,
            foreign: foreign_rules,
        });
    }
    Ok(rules)
}

/// One line for people: "tag gallring.io/retention=expire-30d: expire 30 days after creation".
pub fn describe_rule(rule: &LifecycleRule) -> String {
    let filter = match (&rule.prefix, &rule.tag) {
        (Some(p), Some((k, v))) => format!("prefix {p} and tag {k}={v}"),
        (None, Some((k, v))) => format!("tag {k}={v}"),
        (Some(p), None) => format!("prefix {p}"),
        (None, None) => "all objects".into(),
    };
    let mut actions = Vec::new();
    if let Some(d) = rule.expiration_days {
        actions.push(format!("expire {d} days after creation"));
    }
    if let Some(d) = rule.noncurrent_days {
        actions.push(format!(
            "remove noncurrent versions {d} days after they became noncurrent"
        ));
    }
    if rule.expired_object_delete_marker {
        actions.push("remove delete markers with no versions behind them".into());
    }
    format!("{filter}: {}", actions.join(", "))
}
/// What matters about a lifecycle rule gallring does not own, read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignRuleView {
    pub id: Option<String>,
    pub enabled: bool,
    /// The key prefix the rule's filter needs (`None`: every key).
    pub prefix: Option<String>,
    /// The rule deletes current objects (an `Expiration` with days or a date).
    pub expires_current: bool,
    /// The rule deletes noncurrent versions.
    pub expires_noncurrent: bool,
}

/// Whether a foreign rule can delete objects gallring governs (under `governed`, `None` for the
/// whole bucket) or gallring's own state under `state_prefix`: S3 would then expire them by
/// its own clock, whatever their deadline or hold. Tag and size filters are ignored: they may
/// match governed objects too, so the answer errs on the side of reporting.
pub fn endangers(
    rule: &ForeignRuleView,
    governed: Option<&str>,
    state_prefix: Option<&str>,
) -> bool {
    let overlaps = |area: &str| {
        rule.prefix
            .as_deref()
            .is_none_or(|p| p.starts_with(area) || area.starts_with(p))
    };
    rule.enabled
        && (rule.expires_current || rule.expires_noncurrent)
        && (overlaps(governed.unwrap_or("")) || state_prefix.is_some_and(overlaps))
}

#[cfg(test)]
mod foreign_rule_tests {
    use super::*;

    fn rule(prefix: Option<&str>, current: bool) -> ForeignRuleView {
        ForeignRuleView {
            id: Some("theirs".into()),
            enabled: true,
            prefix: prefix.map(str::to_string),
            expires_current: current,
            expires_noncurrent: false,
        }
    }

    #[test]
    fn a_foreign_rule_endangers_what_it_can_expire_and_nothing_else() {
        // Over the governed prefix, inside it, or over the whole bucket: dangerous.
        assert!(endangers(
            &rule(Some("calls/"), true),
            Some("calls/"),
            Some(".gallring/")
        ));
        assert!(endangers(
            &rule(Some("calls/2026/"), true),
            Some("calls/"),
            Some(".gallring/")
        ));
        assert!(endangers(
            &rule(None, true),
            Some("calls/"),
            Some(".gallring/")
        ));
        assert!(endangers(
            &rule(Some("c"), true),
            Some("calls/"),
            Some(".gallring/")
        ));
        // gallring's own journal is governed too.
        assert!(endangers(
            &rule(Some(".gallring/"), true),
            Some("calls/"),
            Some(".gallring/")
        ));
        // A journal kept in another bucket is not this bucket's concern.
        assert!(!endangers(
            &rule(Some(".gallring/"), true),
            Some("calls/"),
            None
        ));
        // Elsewhere, disabled, or not expiring: harmless.
        assert!(!endangers(
            &rule(Some("logs/"), true),
            Some("calls/"),
            Some(".gallring/")
        ));
        assert!(!endangers(
            &rule(Some("calls/"), false),
            Some("calls/"),
            Some(".gallring/")
        ));
        let mut off = rule(Some("calls/"), true);
        off.enabled = false;
        assert!(!endangers(&off, Some("calls/"), Some(".gallring/")));
        let mut noncurrent = rule(None, false);
        noncurrent.expires_noncurrent = true;
        assert!(endangers(&noncurrent, None, Some(".gallring/")));
    }
}
