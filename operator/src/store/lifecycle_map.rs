//! Conversion between the SDK's lifecycle rules and the engine's [`LifecycleRule`], and the
//! read-merge-write of a bucket's lifecycle configuration.
//!
//! `PutBucketLifecycleConfiguration` replaces the whole configuration, so the operator reads
//! it, keeps every rule it does not own exactly as it found it, replaces its own
//! (`gallring-…`) rules, and writes only when its own rules differ in *meaning*.
//!
//! Stores do not echo a rule in the shape it was written, so every owned rule is normalised
//! before it is compared. Ceph RGW 16.2 (verified on 16.2.15) answers:
//!
//! | written                                  | echoed by RGW                                        |
//! | ---------------------------------------- | ---------------------------------------------------- |
//! | `Filter/And{Prefix p, Tag t}`             | `Filter{Prefix p, Tag t}` (both directly in Filter)  |
//! | `Filter/And{Prefix p, Tag t1, Tag t2}`    | `Filter{Prefix p, And{Tag t1, Tag t2}}`              |
//! | `Filter/And{Tag t}`                       | `Filter{Tag t}`                                      |
//! | `Filter{Prefix ""}`                       | legacy rule-level `<Prefix></Prefix>`, no `Filter`   |
//!
//! and returns the rules sorted by ID. Without normalisation every pass would see a change and
//! rewrite the bucket's configuration (and RGW would reschedule its lifecycle processing).

use aws_sdk_s3::error::BuildError;
use aws_sdk_s3::types as sdk;

use super::{ForeignRule, StoredRule};
use crate::retention::lifecycle::LifecycleRule;

/// An operator-owned rule (id `gallring-…`) whose content the engine's rule cannot express.
///
/// It is reported instead of being dropped or silently rewritten: it may be a human's
/// deliberate change (for example a rule disabled to stop expiry during an incident), and the
/// operator must not undo that without someone looking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "lifecycle rule {id}: {reason}; fix or remove the rule (rules named gallring-* are written by the operator)"
)]
pub struct UnreadableRule {
    pub id: String,
    pub reason: String,
}

/// Reads one SDK rule: `Owned` (normalised) when its id starts with `gallring-`, otherwise
/// `Foreign` with the SDK value kept verbatim.
pub fn from_sdk(rule: &sdk::LifecycleRule) -> Result<StoredRule, UnreadableRule> {
    match rule.id() {
        Some(id) if LifecycleRule::is_operator_owned(id) => {
            owned_from_sdk(id, rule).map(StoredRule::Owned)
        }
        id => Ok(StoredRule::Foreign(ForeignRule {
            id: id.map(str::to_string),
            raw: rule.clone(),
        })),
    }
}

/// What the engine needs to know about a foreign rule (see `lifecycle::endangers`).
pub fn foreign_view(rule: &ForeignRule) -> crate::retention::lifecycle::ForeignRuleView {
    let raw = &rule.raw;
    let filter = raw.filter();
    // The prefix a rule needs: the filter's own, its `And`'s, or the legacy rule-level one.
    #[allow(deprecated)]
    let prefix = filter
        .and_then(|f| f.prefix().or_else(|| f.and().and_then(|a| a.prefix())))
        .or(raw.prefix())
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let expires_current = raw
        .expiration()
        .is_some_and(|e| e.days().is_some() || e.date().is_some());
    crate::retention::lifecycle::ForeignRuleView {
        id: rule.id.clone(),
        enabled: *raw.status() == sdk::ExpirationStatus::Enabled,
        prefix,
        expires_current,
        expires_noncurrent: raw.noncurrent_version_expiration().is_some(),
    }
}

/// Reads a whole configuration, keeping the store's order.
pub fn from_sdk_rules(rules: &[sdk::LifecycleRule]) -> Result<Vec<StoredRule>, UnreadableRule> {
    rules.iter().map(from_sdk).collect()
}

fn owned_from_sdk(id: &str, rule: &sdk::LifecycleRule) -> Result<LifecycleRule, UnreadableRule> {
    let fail = |reason: &str| UnreadableRule {
        id: id.to_string(),
        reason: reason.to_string(),
    };
    if *rule.status() != sdk::ExpirationStatus::Enabled {
        return Err(fail(&format!(
            "status is {}, and the operator does not re-enable a rule someone disabled",
            rule.status().as_str()
        )));
    }
    if !rule.transitions().is_empty() || !rule.noncurrent_version_transitions().is_empty() {
        return Err(fail("has transitions, which operator rules never have"));
    }
    if rule.abort_incomplete_multipart_upload().is_some() {
        return Err(fail(
            "has AbortIncompleteMultipartUpload, which operator rules never have",
        ));
    }

    // Prefix and tags may sit in the legacy rule-level Prefix, directly in the Filter, or in
    // Filter/And, depending on the store (see the module docs). Collect them from everywhere.
    let mut prefixes: Vec<&str> = Vec::new();
    let mut tags: Vec<&sdk::Tag> = Vec::new();
    // The deprecated rule-level prefix is what RGW answers for a `Filter{Prefix ""}`.
    #[allow(deprecated)]
    let legacy_prefix = rule.prefix();
    if let Some(p) = legacy_prefix {
        prefixes.push(p);
    }
    if let Some(filter) = rule.filter() {
        if filter.object_size_greater_than().is_some() || filter.object_size_less_than().is_some() {
            return Err(fail(
                "has an object size filter, which operator rules never have",
            ));
        }
        if let Some(p) = filter.prefix() {
            prefixes.push(p);
        }
        if let Some(t) = filter.tag() {
            tags.push(t);
        }
        if let Some(and) = filter.and() {
            if and.object_size_greater_than().is_some() || and.object_size_less_than().is_some() {
                return Err(fail(
                    "has an object size filter, which operator rules never have",
                ));
            }
            if let Some(p) = and.prefix() {
                prefixes.push(p);
            }
            tags.extend(and.tags());
        }
    }
    let mut non_empty = prefixes.into_iter().filter(|p| !p.is_empty());
    let prefix = non_empty.next().map(str::to_string);
    if let Some(other) = non_empty.find(|p| Some(*p) != prefix.as_deref()) {
        return Err(fail(&format!(
            "has two different prefixes ({:?} and {other:?})",
            prefix.as_deref().unwrap_or_default()
        )));
    }
    let tag = match tags.as_slice() {
        [] => None,
        [t] => Some((t.key().to_string(), t.value().to_string())),
        _ => {
            return Err(fail(
                "filters on more than one tag, operator rules filter on one",
            ));
        }
    };

    let (expiration_days, expired_object_delete_marker) = match rule.expiration() {
        None => (None, false),
        Some(e) => {
            if e.date().is_some() {
                return Err(fail("expires at a date, operator rules expire after days"));
            }
            (
                e.days()
                    .map(|d| non_negative(d).ok_or_else(|| fail("has negative expiration days")))
                    .transpose()?,
                e.expired_object_delete_marker().unwrap_or(false),
            )
        }
    };
    let noncurrent_days = match rule.noncurrent_version_expiration() {
        None => None,
        Some(n) => {
            if n.newer_noncurrent_versions().is_some() {
                return Err(fail(
                    "keeps NewerNoncurrentVersions, which operator rules never do",
                ));
            }
            n.noncurrent_days()
                .map(|d| non_negative(d).ok_or_else(|| fail("has negative noncurrent days")))
                .transpose()?
        }
    };
    if expiration_days.is_none() && noncurrent_days.is_none() && !expired_object_delete_marker {
        return Err(fail("has no action the operator writes"));
    }
    Ok(LifecycleRule {
        id: id.to_string(),
        prefix,
        tag,
        expiration_days,
        noncurrent_days,
        expired_object_delete_marker,
    })
}

fn non_negative(days: i32) -> Option<u32> {
    u32::try_from(days).ok()
}

/// The canonical form of an engine rule for comparison: an empty prefix filters nothing, so it
/// is the same as no prefix (RGW turns one into the other).
pub fn normalise(rule: &LifecycleRule) -> LifecycleRule {
    let mut out = rule.clone();
    if out.prefix.as_deref() == Some("") {
        out.prefix = None;
    }
    out
}

/// Converts a stored rule into the SDK shape to write.
///
/// Owned rules are written in the AWS shape: prefix + tag as `Filter/And`, tag alone as
/// `Filter/Tag`, otherwise `Filter/Prefix` (empty for the whole bucket). Foreign rules keep
/// everything but the filter's *shape*: a filter RGW echoed with several conditions directly
/// in `Filter` (which AWS rejects) is folded into `Filter/And`, and a legacy rule-level prefix
/// becomes `Filter/Prefix` so that one configuration never mixes the two rule forms. Both
/// keep the rule's meaning exactly.
pub fn to_sdk(rule: &StoredRule) -> Result<sdk::LifecycleRule, BuildError> {
    match rule {
        StoredRule::Owned(rule) => owned_to_sdk(&normalise(rule)),
        StoredRule::Foreign(foreign) => Ok(canonical_foreign(&foreign.raw)),
    }
}

fn owned_to_sdk(rule: &LifecycleRule) -> Result<sdk::LifecycleRule, BuildError> {
    let filter = match (&rule.prefix, &rule.tag) {
        (Some(prefix), Some((key, value))) => sdk::LifecycleRuleFilter::builder()
            .and(
                sdk::LifecycleRuleAndOperator::builder()
                    .prefix(prefix)
                    .tags(sdk::Tag::builder().key(key).value(value).build()?)
                    .build(),
            )
            .build(),
        (None, Some((key, value))) => sdk::LifecycleRuleFilter::builder()
            .tag(sdk::Tag::builder().key(key).value(value).build()?)
            .build(),
        (prefix, None) => sdk::LifecycleRuleFilter::builder()
            .prefix(prefix.clone().unwrap_or_default())
            .build(),
    };
    let mut builder = sdk::LifecycleRule::builder()
        .id(&rule.id)
        .status(sdk::ExpirationStatus::Enabled)
        .filter(filter);
    if rule.expiration_days.is_some() || rule.expired_object_delete_marker {
        let mut expiration = sdk::LifecycleExpiration::builder();
        if let Some(days) = rule.expiration_days {
            expiration = expiration.days(days_i32(days));
        }
        if rule.expired_object_delete_marker {
            expiration = expiration.expired_object_delete_marker(true);
        }
        builder = builder.expiration(expiration.build());
    }
    if let Some(days) = rule.noncurrent_days {
        builder = builder.noncurrent_version_expiration(
            sdk::NoncurrentVersionExpiration::builder()
                .noncurrent_days(days_i32(days))
                .build(),
        );
    }
    builder.build()
}

/// Day counts come from `day_classes`, far below `i32::MAX`; saturate rather than wrap so a
/// bug can only make a rule later, never earlier.
fn days_i32(days: u32) -> i32 {
    i32::try_from(days).unwrap_or(i32::MAX)
}

/// Moving the legacy rule-level prefix into the filter is the point, hence `deprecated`.
#[allow(deprecated)]
fn canonical_foreign(raw: &sdk::LifecycleRule) -> sdk::LifecycleRule {
    let mut rule = raw.clone();
    match rule.filter.take() {
        None => {
            if let Some(prefix) = rule.prefix.take() {
                rule.filter = Some(sdk::LifecycleRuleFilter::builder().prefix(prefix).build());
            }
        }
        Some(filter) => {
            let conditions = usize::from(filter.prefix.is_some())
                + usize::from(filter.tag.is_some())
                + usize::from(filter.object_size_greater_than.is_some())
                + usize::from(filter.object_size_less_than.is_some())
                + usize::from(filter.and.is_some());
            if conditions <= 1 {
                rule.filter = Some(filter);
            } else {
                let and = filter
                    .and
                    .unwrap_or_else(|| sdk::LifecycleRuleAndOperator::builder().build());
                let mut tags: Vec<sdk::Tag> = filter.tag.into_iter().collect();
                tags.extend(and.tags.unwrap_or_default());
                let and = sdk::LifecycleRuleAndOperator::builder()
                    .set_prefix(filter.prefix.or(and.prefix))
                    .set_tags((!tags.is_empty()).then_some(tags))
                    .set_object_size_greater_than(
                        filter
                            .object_size_greater_than
                            .or(and.object_size_greater_than),
                    )
                    .set_object_size_less_than(
                        filter.object_size_less_than.or(and.object_size_less_than),
                    )
                    .build();
                rule.filter = Some(sdk::LifecycleRuleFilter::builder().and(and).build());
            }
        }
    }
    rule
}

/// Keeps every foreign rule (in its original order) and replaces the owned rules with
/// `desired`. `changed` is false when the owned rules already mean the same as `desired`
/// (compared as sets after [`normalise`]), so an unchanged bucket is never rewritten.
pub fn merge(existing: &[StoredRule], desired: &[LifecycleRule]) -> (Vec<StoredRule>, bool) {
    let mut merged: Vec<StoredRule> = existing
        .iter()
        .filter(|r| matches!(r, StoredRule::Foreign(_)))
        .cloned()
        .collect();
    let current: Vec<&LifecycleRule> = existing
        .iter()
        .filter_map(|r| match r {
            StoredRule::Owned(rule) => Some(rule),
            StoredRule::Foreign(_) => None,
        })
        .collect();
    let changed = canonical_set(current.iter().copied()) != canonical_set(desired.iter());
    merged.extend(desired.iter().cloned().map(StoredRule::Owned));
    (merged, changed)
}

/// Owned rules as a sorted list of normalised rules: order does not matter to S3 (RGW even
/// re-sorts by id), duplicates do.
fn canonical_set<'a>(
    rules: impl Iterator<Item = &'a LifecycleRule>,
) -> Vec<(String, LifecycleRule)> {
    let mut out: Vec<(String, LifecycleRule)> = rules
        .map(|r| {
            let n = normalise(r);
            (format!("{n:?}"), n)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every element of a lifecycle `<Rule>` that the S3 SDK models: anything else in a rule the
/// store returns is dropped when the SDK reads it, and would be dropped from the bucket by a
/// write of what the SDK read.
const MODELLED_RULE_ELEMENTS: &[&str] = &[
    "Rule",
    "ID",
    "Prefix",
    "Filter",
    "And",
    "Tag",
    "Key",
    "Value",
    "ObjectSizeGreaterThan",
    "ObjectSizeLessThan",
    "Status",
    "Transition",
    "Date",
    "Days",
    "StorageClass",
    "Expiration",
    "ExpiredObjectDeleteMarker",
    "NoncurrentVersionTransition",
    "NoncurrentDays",
    "NewerNoncurrentVersions",
    "NoncurrentVersionExpiration",
    "AbortIncompleteMultipartUpload",
    "DaysAfterInitiation",
];

/// The rules of a raw `GetBucketLifecycleConfiguration` answer that carry elements the SDK
/// does not model, by rule id (`None`: a rule without one), with those elements' names: a
/// write of the SDK's reading would lose them (issue 13). Reads element names only, which is
/// all that S3's XML (no attributes in rules, no mixed content) needs.
pub fn unmodelled_elements(raw_xml: &str) -> Vec<(Option<String>, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = raw_xml;
    // (id, unknown names) of the rule being read.
    let mut rule: Option<(Option<String>, Vec<String>)> = None;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        rest = &rest[end.min(rest.len())..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let closing = tag.starts_with('/');
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        // A namespace prefix (`s3:Rule`) does not change the element.
        let name = name.rsplit(':').next().unwrap_or(name);
        match (name, closing) {
            ("Rule", false) => rule = Some((None, Vec::new())),
            ("Rule", true) => {
                if let Some((id, unknown)) = rule.take()
                    && !unknown.is_empty()
                {
                    out.push((id, unknown));
                }
            }
            (_, true) => {}
            (name, false) => {
                let Some((id, unknown)) = rule.as_mut() else {
                    continue;
                };
                if name == "ID" && id.is_none() {
                    let text = rest.trim_start_matches('>');
                    let value = &text[..text.find('<').unwrap_or(text.len())];
                    *id = Some(xml_unescape(value));
                } else if !MODELLED_RULE_ELEMENTS.contains(&name)
                    && !unknown.iter().any(|u| u == name)
                {
                    unknown.push(name.to_string());
                }
            }
        }
    }
    out
}

/// The five predefined XML entities and numeric references, as S3 escapes a rule id.
fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(j) = rest.find(';') else { break };
        let entity = &rest[1..j];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[j + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

// The tests build RGW's legacy rule-level prefix on purpose.
#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use super::*;

    const TAG: &str = "gallring.io/retention";

    fn tag(k: &str, v: &str) -> sdk::Tag {
        sdk::Tag::builder().key(k).value(v).build().expect("tag")
    }

    fn engine_rule(days: u32, prefix: Option<&str>, versioned: bool) -> LifecycleRule {
        LifecycleRule {
            id: format!("gallring-expire-{days}d"),
            prefix: prefix.map(str::to_string),
            tag: Some((TAG.to_string(), format!("expire-{days}d"))),
            expiration_days: Some(days),
            noncurrent_days: versioned.then_some(days),
            expired_object_delete_marker: false,
        }
    }

    fn marker_rule(prefix: Option<&str>) -> LifecycleRule {
        LifecycleRule {
            id: "gallring-expired-delete-markers".to_string(),
            prefix: prefix.map(str::to_string),
            tag: None,
            expiration_days: None,
            noncurrent_days: None,
            expired_object_delete_marker: true,
        }
    }

    fn expiration(days: i32) -> sdk::LifecycleExpiration {
        sdk::LifecycleExpiration::builder().days(days).build()
    }

    fn foreign(id: &str) -> sdk::LifecycleRule {
        sdk::LifecycleRule::builder()
            .id(id)
            .status(sdk::ExpirationStatus::Enabled)
            .filter(sdk::LifecycleRuleFilter::builder().prefix("logs/").build())
            .expiration(expiration(7))
            .build()
            .expect("rule")
    }

    fn owned(rule: &StoredRule) -> &LifecycleRule {
        match rule {
            StoredRule::Owned(r) => r,
            StoredRule::Foreign(f) => panic!("expected owned, got {f:?}"),
        }
    }

    /// Writes `rule` and reads it back without a store: the AWS-shaped round trip.
    fn round_trip(rule: &LifecycleRule) -> LifecycleRule {
        let sdk_rule = to_sdk(&StoredRule::Owned(rule.clone())).expect("to_sdk");
        owned(&from_sdk(&sdk_rule).expect("from_sdk")).clone()
    }

    /// Issue 13: elements the SDK does not model are found, by rule id.
    #[test]
    fn unmodelled_rule_elements_are_found_by_rule() {
        let raw = r#"<?xml version="1.0" encoding="UTF-8"?>
<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Rule><ID>owner-glacier &amp; more</ID><Filter><ObjectSizeGreaterThan>1048576</ObjectSizeGreaterThan><ObjectSizeAtLeastNew>5</ObjectSizeAtLeastNew></Filter>
    <Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass><FutureThing/></Transition></Rule>
  <Rule><ID>plain</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>
  <Rule><Filter/><Status>Enabled</Status><Expiration><Days>1</Days><Extra>1</Extra></Expiration></Rule>
</LifecycleConfiguration>"#;
        assert_eq!(
            unmodelled_elements(raw),
            vec![
                (
                    Some("owner-glacier & more".to_string()),
                    vec![
                        "ObjectSizeAtLeastNew".to_string(),
                        "FutureThing".to_string()
                    ]
                ),
                (None, vec!["Extra".to_string()]),
            ]
        );
        assert!(unmodelled_elements("").is_empty());
        assert!(unmodelled_elements("<Rule><ID>x</ID><Status>Enabled</Status></Rule>").is_empty());
    }

    #[test]
    fn owned_rules_round_trip_in_aws_shape() {
        for rule in [
            engine_rule(30, Some("rec/"), true),
            engine_rule(365, None, false),
            marker_rule(Some("rec/")),
            marker_rule(None),
        ] {
            assert_eq!(round_trip(&rule), rule);
        }
    }

    #[test]
    fn prefix_and_tag_are_written_as_and_filter() {
        let sdk_rule =
            to_sdk(&StoredRule::Owned(engine_rule(30, Some("rec/"), true))).expect("to_sdk");
        let filter = sdk_rule.filter().expect("filter");
        assert_eq!(filter.prefix(), None);
        assert_eq!(filter.tag(), None);
        let and = filter.and().expect("and");
        assert_eq!(and.prefix(), Some("rec/"));
        assert_eq!(and.tags(), &[tag(TAG, "expire-30d")]);
        assert_eq!(sdk_rule.expiration().and_then(|e| e.days()), Some(30));
        assert_eq!(
            sdk_rule
                .noncurrent_version_expiration()
                .and_then(|n| n.noncurrent_days()),
            Some(30)
        );
        assert_eq!(
            sdk_rule.prefix(),
            None,
            "never the deprecated rule-level prefix"
        );
    }

    #[test]
    fn tag_only_is_written_as_tag_filter_and_marker_rule_as_prefix_filter() {
        let sdk_rule = to_sdk(&StoredRule::Owned(engine_rule(5, None, false))).expect("to_sdk");
        let filter = sdk_rule.filter().expect("filter");
        assert_eq!(filter.tag(), Some(&tag(TAG, "expire-5d")));
        assert!(filter.and().is_none() && filter.prefix().is_none());
        assert!(sdk_rule.noncurrent_version_expiration().is_none());

        let sdk_rule = to_sdk(&StoredRule::Owned(marker_rule(None))).expect("to_sdk");
        assert_eq!(sdk_rule.filter().and_then(|f| f.prefix()), Some(""));
        let e = sdk_rule.expiration().expect("expiration");
        assert_eq!(e.expired_object_delete_marker(), Some(true));
        assert_eq!(e.days(), None);
    }

    /// RGW 16: `And{Prefix, one Tag}` comes back as `Filter{Prefix, Tag}`.
    #[test]
    fn reads_rgw_flat_prefix_and_tag() {
        let raw = sdk::LifecycleRule::builder()
            .id("gallring-expire-30d")
            .status(sdk::ExpirationStatus::Enabled)
            .filter(
                sdk::LifecycleRuleFilter::builder()
                    .prefix("rec/")
                    .tag(tag(TAG, "expire-30d"))
                    .build(),
            )
            .expiration(expiration(30))
            .noncurrent_version_expiration(
                sdk::NoncurrentVersionExpiration::builder()
                    .noncurrent_days(30)
                    .build(),
            )
            .build()
            .expect("rule");
        assert_eq!(
            owned(&from_sdk(&raw).expect("read")),
            &engine_rule(30, Some("rec/"), true)
        );
    }

    /// RGW 16: the prefix outside `And`, the tags inside.
    #[test]
    fn reads_rgw_prefix_outside_and() {
        let raw = sdk::LifecycleRule::builder()
            .id("gallring-expire-30d")
            .status(sdk::ExpirationStatus::Enabled)
            .filter(
                sdk::LifecycleRuleFilter::builder()
                    .prefix("rec/")
                    .and(
                        sdk::LifecycleRuleAndOperator::builder()
                            .tags(tag(TAG, "expire-30d"))
                            .build(),
                    )
                    .build(),
            )
            .expiration(expiration(30))
            .build()
            .expect("rule");
        assert_eq!(
            owned(&from_sdk(&raw).expect("read")),
            &engine_rule(30, Some("rec/"), false)
        );
    }

    /// RGW 16: `Filter{Prefix ""}` comes back as the legacy rule-level `<Prefix></Prefix>`.
    #[test]
    fn reads_rgw_legacy_empty_prefix() {
        let raw = sdk::LifecycleRule::builder()
            .id("gallring-expired-delete-markers")
            .status(sdk::ExpirationStatus::Enabled)
            .prefix("")
            .expiration(
                sdk::LifecycleExpiration::builder()
                    .expired_object_delete_marker(true)
                    .build(),
            )
            .build()
            .expect("rule");
        assert_eq!(owned(&from_sdk(&raw).expect("read")), &marker_rule(None));
        // The compiled rule may carry Some("") from an empty bucket prefix: the same meaning.
        let (_, changed) = merge(&[from_sdk(&raw).expect("read")], &[marker_rule(Some(""))]);
        assert!(!changed);
    }

    #[test]
    fn foreign_rules_are_kept_verbatim() {
        let raw = foreign("keep-logs");
        match from_sdk(&raw).expect("read") {
            StoredRule::Foreign(f) => {
                assert_eq!(f.id.as_deref(), Some("keep-logs"));
                assert_eq!(f.raw, raw);
            }
            StoredRule::Owned(r) => panic!("foreign read as owned: {r:?}"),
        }
        // Without an id it is foreign too.
        let raw = sdk::LifecycleRule::builder()
            .status(sdk::ExpirationStatus::Enabled)
            .filter(sdk::LifecycleRuleFilter::builder().prefix("").build())
            .expiration(expiration(1))
            .build()
            .expect("rule");
        assert!(matches!(
            from_sdk(&raw),
            Ok(StoredRule::Foreign(ForeignRule { id: None, .. }))
        ));
        // A foreign rule already in AWS shape is written back unchanged.
        let raw = foreign("keep-logs");
        assert_eq!(
            to_sdk(&StoredRule::Foreign(ForeignRule {
                id: None,
                raw: raw.clone()
            }))
            .expect("to_sdk"),
            raw
        );
    }

    #[test]
    fn foreign_rgw_shapes_are_written_in_aws_shape_with_the_same_meaning() {
        let rgw = sdk::LifecycleRule::builder()
            .id("theirs")
            .status(sdk::ExpirationStatus::Disabled)
            .filter(
                sdk::LifecycleRuleFilter::builder()
                    .prefix("x/")
                    .and(
                        sdk::LifecycleRuleAndOperator::builder()
                            .tags(tag("a", "1"))
                            .tags(tag("b", "2"))
                            .build(),
                    )
                    .build(),
            )
            .expiration(expiration(3))
            .build()
            .expect("rule");
        let out = to_sdk(&StoredRule::Foreign(ForeignRule {
            id: Some("theirs".into()),
            raw: rgw,
        }))
        .expect("to_sdk");
        let filter = out.filter().expect("filter");
        assert!(filter.prefix().is_none() && filter.tag().is_none());
        let and = filter.and().expect("and");
        assert_eq!(and.prefix(), Some("x/"));
        assert_eq!(and.tags(), &[tag("a", "1"), tag("b", "2")]);
        assert_eq!(out.status(), &sdk::ExpirationStatus::Disabled);
        assert_eq!(out.expiration(), Some(&expiration(3)));

        let legacy = sdk::LifecycleRule::builder()
            .id("old")
            .status(sdk::ExpirationStatus::Enabled)
            .prefix("")
            .expiration(expiration(9))
            .build()
            .expect("rule");
        let out = to_sdk(&StoredRule::Foreign(ForeignRule {
            id: Some("old".into()),
            raw: legacy,
        }))
        .expect("to_sdk");
        assert_eq!(out.prefix(), None);
        assert_eq!(out.filter().and_then(|f| f.prefix()), Some(""));
    }

    #[test]
    fn unreadable_owned_rules_are_reported() {
        let base = || {
            sdk::LifecycleRule::builder()
                .id("gallring-expire-30d")
                .status(sdk::ExpirationStatus::Enabled)
                .filter(
                    sdk::LifecycleRuleFilter::builder()
                        .tag(tag(TAG, "expire-30d"))
                        .build(),
                )
                .expiration(expiration(30))
        };
        let cases = [
            (base().status(sdk::ExpirationStatus::Disabled), "Disabled"),
            (
                base().transitions(
                    sdk::Transition::builder()
                        .days(1)
                        .storage_class(sdk::TransitionStorageClass::Glacier)
                        .build(),
                ),
                "transitions",
            ),
            (
                base().filter(
                    sdk::LifecycleRuleFilter::builder()
                        .and(
                            sdk::LifecycleRuleAndOperator::builder()
                                .tags(tag(TAG, "expire-30d"))
                                .tags(tag("x", "y"))
                                .build(),
                        )
                        .build(),
                ),
                "more than one tag",
            ),
            (
                base().filter(
                    sdk::LifecycleRuleFilter::builder()
                        .prefix("a/")
                        .and(
                            sdk::LifecycleRuleAndOperator::builder()
                                .prefix("b/")
                                .build(),
                        )
                        .build(),
                ),
                "two different prefixes",
            ),
            (base().expiration(expiration(-1)), "negative"),
            (
                base().expiration(
                    sdk::LifecycleExpiration::builder()
                        .date(aws_sdk_s3::primitives::DateTime::from_secs(0))
                        .build(),
                ),
                "date",
            ),
            (base().set_expiration(None), "no action"),
            (
                base().filter(
                    sdk::LifecycleRuleFilter::builder()
                        .object_size_greater_than(5)
                        .build(),
                ),
                "size",
            ),
        ];
        for (builder, expected) in cases {
            let raw = builder.build().expect("rule");
            let err = from_sdk(&raw).expect_err(expected);
            assert_eq!(err.id, "gallring-expire-30d");
            assert!(
                err.reason.contains(expected),
                "{err} should mention {expected}"
            );
            assert!(
                from_sdk_rules(&[foreign("a"), raw]).is_err(),
                "a whole read fails too"
            );
        }
    }

    #[test]
    fn merge_keeps_foreign_rules_in_order_and_replaces_owned() {
        let existing = vec![
            StoredRule::Foreign(ForeignRule {
                id: Some("z".into()),
                raw: foreign("z"),
            }),
            StoredRule::Owned(engine_rule(10, None, false)),
            StoredRule::Foreign(ForeignRule {
                id: Some("a".into()),
                raw: foreign("a"),
            }),
        ];
        let desired = vec![engine_rule(30, None, false)];
        let (merged, changed) = merge(&existing, &desired);
        assert!(changed);
        let ids: Vec<_> = merged
            .iter()
            .map(|r| match r {
                StoredRule::Owned(o) => o.id.clone(),
                StoredRule::Foreign(f) => f.id.clone().unwrap_or_default(),
            })
            .collect();
        assert_eq!(ids, ["z", "a", "gallring-expire-30d"]);
        assert_eq!(merged[0], existing[0]);
        assert_eq!(merged[1], existing[2]);
    }

    #[test]
    fn merge_is_order_insensitive_and_reports_no_change_when_equal() {
        let a = engine_rule(30, Some("rec/"), true);
        let b = engine_rule(365, Some("rec/"), true);
        let m = marker_rule(Some("rec/"));
        let existing = vec![
            StoredRule::Owned(m.clone()),
            StoredRule::Foreign(ForeignRule {
                id: Some("f".into()),
                raw: foreign("f"),
            }),
            StoredRule::Owned(b.clone()),
            StoredRule::Owned(a.clone()),
        ];
        let (merged, changed) = merge(&existing, &[a.clone(), b.clone(), m.clone()]);
        assert!(!changed);
        assert_eq!(merged.len(), 4);

        // One field differs, one rule missing, one extra: all are changes.
        let mut a2 = a.clone();
        a2.noncurrent_days = None;
        assert!(merge(&existing, &[a2, b.clone(), m.clone()]).1);
        assert!(merge(&existing, &[a.clone(), b.clone()]).1);
        assert!(
            merge(
                &existing,
                &[
                    a.clone(),
                    b.clone(),
                    m.clone(),
                    engine_rule(7, Some("rec/"), true)
                ]
            )
            .1
        );
        // Removing every owned rule is a change; no owned rules and none desired is not.
        assert!(merge(&existing, &[]).1);
        let only_foreign = vec![StoredRule::Foreign(ForeignRule {
            id: Some("f".into()),
            raw: foreign("f"),
        })];
        let (merged, changed) = merge(&only_foreign, &[]);
        assert!(!changed);
        assert_eq!(merged, only_foreign);
        assert!(!merge(&[], &[]).1);
        assert!(merge(&[], &[a]).1);
    }

    /// What RGW returns for the compiled set of a versioned bucket with a prefix — sorted by
    /// id, in its own shapes — compares equal to the compiled set.
    #[test]
    fn rgw_read_back_of_compiled_rules_is_no_change() {
        let compiled = vec![
            engine_rule(30, Some("rec/"), true),
            engine_rule(1095, None, true),
            marker_rule(None),
            marker_rule(Some("rec/")),
        ];
        let rgw = [
            sdk::LifecycleRule::builder()
                .id("gallring-expire-1095d")
                .status(sdk::ExpirationStatus::Enabled)
                .filter(
                    sdk::LifecycleRuleFilter::builder()
                        .tag(tag(TAG, "expire-1095d"))
                        .build(),
                )
                .expiration(expiration(1095))
                .noncurrent_version_expiration(
                    sdk::NoncurrentVersionExpiration::builder()
                        .noncurrent_days(1095)
                        .build(),
                ),
            sdk::LifecycleRule::builder()
                .id("gallring-expire-30d")
                .status(sdk::ExpirationStatus::Enabled)
                .filter(
                    sdk::LifecycleRuleFilter::builder()
                        .prefix("rec/")
                        .tag(tag(TAG, "expire-30d"))
                        .build(),
                )
                .expiration(expiration(30))
                .noncurrent_version_expiration(
                    sdk::NoncurrentVersionExpiration::builder()
                        .noncurrent_days(30)
                        .build(),
                ),
            sdk::LifecycleRule::builder()
                .id("gallring-expired-delete-markers")
                .status(sdk::ExpirationStatus::Enabled)
                .prefix("")
                .expiration(
                    sdk::LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                ),
            sdk::LifecycleRule::builder()
                .id("gallring-expired-delete-markers")
                .status(sdk::ExpirationStatus::Enabled)
                .filter(sdk::LifecycleRuleFilter::builder().prefix("rec/").build())
                .expiration(
                    sdk::LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                ),
        ]
        .map(|b| b.build().expect("rule"));
        let existing = from_sdk_rules(&rgw).expect("read");
        let (_, changed) = merge(&existing, &compiled);
        assert!(!changed);
    }
}
