//! Validation of the custom resources into the engine's model, with errors that name the field.
//!
//! The API server enforces what the CRD schema and CEL rules can express; this checks the same
//! rules again (the standalone host has no API server) plus what needs code: durations that
//! parse, references between resources, regular expressions and globs that compile.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::v1alpha1 as v1;
use crate::retention::{self as r, IsoDuration};

/// One invalid field: its path from the resource root and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// Every invalid field of one resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    /// `Kind/namespace/name` of the resource.
    pub resource: String,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is invalid:", self.resource)?;
        for e in &self.errors {
            write!(f, "\n  {}: {}", e.path, e.message)?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    /// The first error, for one-line conditions and Events.
    pub fn first_line(&self) -> String {
        match self.errors.first() {
            Some(e) => format!("{}: {}", e.path, e.message),
            None => "invalid".into(),
        }
    }
}

#[derive(Default)]
struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }
    fn duration(&mut self, path: String, text: &v1::DurationText) -> IsoDuration {
        match IsoDuration::parse(&text.0) {
            Ok(d) => d,
            Err(e) => {
                self.push(path, e.to_string());
                IsoDuration::ZERO
            }
        }
    }
    fn finish<T>(self, resource: String, value: T) -> Result<T, ValidationErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ValidationErrors {
                resource,
                errors: self.errors,
            })
        }
    }
}

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_kind(s: &str) -> bool {
    let mut chars = s.chars();
    if s.len() > v1::LABEL_MAX {
        return false;
    }
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

pub fn hold_reason(r: v1::HoldReason) -> r::HoldReason {
    match r {
        v1::HoldReason::Complaint => r::HoldReason::Complaint,
        v1::HoldReason::Dispute => r::HoldReason::Dispute,
        v1::HoldReason::Claim => r::HoldReason::Claim,
        v1::HoldReason::AccessRequest => r::HoldReason::AccessRequest,
        v1::HoldReason::PoliceReport => r::HoldReason::PoliceReport,
        v1::HoldReason::FraudInvestigation => r::HoldReason::FraudInvestigation,
        v1::HoldReason::AuthorityRequest => r::HoldReason::AuthorityRequest,
        v1::HoldReason::Restriction => r::HoldReason::Restriction,
    }
}

fn enforcement(m: v1::EnforcementMode) -> r::Enforcement {
    match m {
        v1::EnforcementMode::Observe => r::Enforcement::Observe,
        v1::EnforcementMode::Lifecycle => r::Enforcement::Lifecycle,
        v1::EnforcementMode::Operator => r::Enforcement::Operator,
        v1::EnforcementMode::Both => r::Enforcement::Both,
    }
}

/// A purpose's lawful basis in words, with its GDPR article.
pub fn legal_basis(b: &v1::LegalBasis) -> String {
    let six = match b.article6 {
        v1::Article6::Consent => "Art. 6(1)(a) consent",
        v1::Article6::Contract => "Art. 6(1)(b) contract",
        v1::Article6::LegalObligation => "Art. 6(1)(c) legal obligation",
        v1::Article6::VitalInterests => "Art. 6(1)(d) vital interests",
        v1::Article6::PublicTask => "Art. 6(1)(e) public task",
        v1::Article6::LegitimateInterests => "Art. 6(1)(f) legitimate interests",
    };
    let nine = b.article9.map(|a| match a {
        v1::Article9::ExplicitConsent => "Art. 9(2)(a) explicit consent",
        v1::Article9::Employment => "Art. 9(2)(b) employment and social security",
        v1::Article9::VitalInterests => "Art. 9(2)(c) vital interests",
        v1::Article9::NotForProfit => "Art. 9(2)(d) not-for-profit body",
        v1::Article9::MadePublic => "Art. 9(2)(e) made public by the data subject",
        v1::Article9::LegalClaims => "Art. 9(2)(f) legal claims",
        v1::Article9::SubstantialPublicInterest => "Art. 9(2)(g) substantial public interest",
        v1::Article9::HealthOrSocialCare => "Art. 9(2)(h) health or social care",
        v1::Article9::PublicHealth => "Art. 9(2)(i) public health",
        v1::Article9::ArchivingOrResearch => "Art. 9(2)(j) archiving, research or statistics",
    });
    match nine {
        Some(n) => format!("{six}; {n}"),
        None => six.to_string(),
    }
}

/// Validates a RetentionPolicy spec. `resource` names it in errors (`RetentionPolicy/ns/name`).
pub fn policy(
    resource: &str,
    spec: &v1::RetentionPolicySpec,
) -> Result<r::Policy, ValidationErrors> {
    let mut c = Collector::default();
    if spec.controller.legal_name.trim().is_empty() {
        c.push("spec.controller.legalName", "must not be empty");
    }
    if spec.purposes.is_empty() {
        c.push("spec.purposes", "at least one purpose is required");
    }
    let mut purposes = BTreeMap::new();
    for (i, p) in spec.purposes.iter().enumerate() {
        let at = format!("spec.purposes[{i}]");
        if !is_name(&p.name) {
            c.push(
                format!("{at}.name"),
                format!(
                    "`{}` must be lowercase letters, digits and '-' (at most 63)",
                    p.name
                ),
            );
        }
        if p.legal_basis.article6 == v1::Article6::Consent && !p.withdrawable {
            c.push(
                format!("{at}.withdrawable"),
                "a purpose based on consent must be withdrawable (GDPR Art. 7(3))",
            );
        }
        if p.retain.is_empty() {
            c.push(
                format!("{at}.retain"),
                "name at least one artifact kind and its retention",
            );
        }
        let mut retain = BTreeMap::new();
        for (kind, d) in &p.retain {
            if !is_kind(kind) {
                c.push(
                    format!("{at}.retain.{kind}"),
                    "artifact kinds are camelCase words such as audio or maskedTranscript \
                     (at most 63 characters)",
                );
            }
            retain.insert(kind.clone(), c.duration(format!("{at}.retain.{kind}"), d));
        }
        let mut use_for = BTreeMap::new();
        for (kind, u) in &p.use_for {
            let at_kind = format!("{at}.useFor.{kind}");
            let use_d = c.duration(at_kind.clone(), u);
            match p.retain.get(kind) {
                None => c.push(
                    at_kind,
                    format!("kind `{kind}` is not in this purpose's retain"),
                ),
                Some(_) => {
                    if let Some(keep) = retain.get(kind)
                        && use_d > *keep
                    {
                        c.push(
                            at_kind,
                            format!(
                                "a use limit longer than the retention ({keep}) limits nothing"
                            ),
                        );
                    }
                }
            }
            use_for.insert(kind.clone(), use_d);
        }
        let from = p.from.as_ref().and_then(|f| {
            let at_from = format!("{at}.from");
            let source = match (&f.tag, &f.metadata) {
                (Some(t), None) if !t.trim().is_empty() => r::TimeSource::Tag(t.clone()),
                (None, Some(m)) if !m.trim().is_empty() => r::TimeSource::Metadata(m.clone()),
                _ => {
                    c.push(at_from, "set exactly one of tag and metadata (not empty)");
                    return None;
                }
            };
            Some(r::Anchor {
                source,
                missing_counts_from_recording: f.if_missing == v1::IfEventMissing::RecordingTime,
            })
        });
        let purpose = r::Purpose {
            withdrawable: p.withdrawable,
            retain,
            retain_means: match p.retain_means {
                v1::RetainMeans::KeepAtLeast => r::RetainMeans::KeepAtLeast,
                v1::RetainMeans::DeleteBy => r::RetainMeans::DeleteBy,
            },
            from,
            use_for,
            controller: p.controller.as_ref().map(|c| c.legal_name.clone()),
            legal_basis: legal_basis(&p.legal_basis),
            kept_on_erasure: matches!(
                p.legal_basis.article6,
                v1::Article6::LegalObligation | v1::Article6::PublicTask
            ),
        };
        if purposes.insert(p.name.clone(), purpose).is_some() {
            c.push(
                format!("{at}.name"),
                format!("purpose `{}` is defined twice", p.name),
            );
        }
    }
    let time_zone = match spec.time_zone.as_deref() {
        None => chrono_tz::Tz::UTC,
        Some(name) => name.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
            c.push(
                "spec.timeZone",
                format!("`{name}` is not an IANA time zone such as Europe/Copenhagen or UTC"),
            );
            chrono_tz::Tz::UTC
        }),
    };
    let mut hold_release = BTreeMap::new();
    let mut hold_max = BTreeMap::new();
    for (i, h) in spec.hold_release.iter().enumerate() {
        let at = format!("spec.holdRelease[{i}]");
        let keep = c.duration(format!("{at}.keep"), &h.keep);
        if let Some(m) = &h.max_hold {
            hold_max.insert(
                hold_reason(h.reason),
                c.duration(format!("{at}.maxHold"), m),
            );
        }
        if hold_release.insert(hold_reason(h.reason), keep).is_some() {
            c.push(
                format!("{at}.reason"),
                format!("{:?} appears twice", h.reason),
            );
        }
    }
    c.finish(
        resource.to_string(),
        r::Policy {
            name: resource.to_string(),
            controller: spec.controller.legal_name.clone(),
            purposes,
            hold_release,
            hold_max,
            time_zone,
        },
    )
}

/// Tag keys are map keys, which the CRD schema cannot bound: checked here for both hosts.
fn tag_match(c: &mut Collector, at: &str, tags: &BTreeMap<String, String>) -> r::TagMatch {
    tags.iter()
        .map(|(k, v)| {
            if k.is_empty() {
                c.push(at.to_string(), "tag keys must not be empty");
            } else if k.len() > v1::TAG_KEY_MAX {
                c.push(
                    at.to_string(),
                    format!("tag keys must be at most {} characters", v1::TAG_KEY_MAX),
                );
            }
            if v.len() > v1::TAG_VALUE_MAX {
                c.push(
                    format!("{at}.{k}"),
                    format!(
                        "tag values must be at most {} characters",
                        v1::TAG_VALUE_MAX
                    ),
                );
            }
            (k.clone(), (v != "*").then(|| v.clone()))
        })
        .collect()
}

/// Validates a RecordingBucket spec against the policy it references.
pub fn bucket(
    resource: &str,
    spec: &v1::RecordingBucketSpec,
    policy: &r::Policy,
) -> Result<r::BucketRules, ValidationErrors> {
    let mut c = Collector::default();
    if spec.classify.is_empty() {
        c.push("spec.classify", "at least one classify rule is required");
    }
    let mut rules = Vec::new();
    for (i, rule) in spec.classify.iter().enumerate() {
        let at = format!("spec.classify[{i}]");
        if !is_kind(&rule.kind) {
            c.push(
                format!("{at}.kind"),
                format!("`{}` is not an artifact kind", rule.kind),
            );
        }
        let mut reachable: BTreeSet<&String> = BTreeSet::new();
        for (j, p) in rule.purposes.iter().enumerate() {
            if !policy.purposes.contains_key(p) {
                c.push(
                    format!("{at}.purposes[{j}]"),
                    format!("purpose `{p}` is not defined in {}", policy.name),
                );
            }
            reachable.insert(p);
        }
        let from_tag = rule.purposes_from_tag.as_ref().map(|ft| {
            if ft.key.is_empty() {
                c.push(format!("{at}.purposesFromTag.key"), "must not be empty");
            }
            for (value, ps) in &ft.values {
                if value.len() > v1::TAG_VALUE_MAX {
                    c.push(
                        format!("{at}.purposesFromTag.values"),
                        format!(
                            "tag values must be at most {} characters",
                            v1::TAG_VALUE_MAX
                        ),
                    );
                }
                for (j, p) in ps.iter().enumerate() {
                    if !policy.purposes.contains_key(p) {
                        c.push(
                            format!("{at}.purposesFromTag.values.{value}[{j}]"),
                            format!("purpose `{p}` is not defined in {}", policy.name),
                        );
                    }
                    reachable.insert(p);
                }
            }
            r::PurposesFromTag {
                key: ft.key.clone(),
                values: ft.values.clone(),
            }
        });
        if rule.purposes.is_empty() && rule.purposes_from_tag.is_none() {
            c.push(
                format!("{at}.purposes"),
                "a classify rule needs purposes or purposesFromTag",
            );
        } else if !reachable.iter().any(|p| {
            policy
                .purposes
                .get(*p)
                .is_some_and(|d| d.retain.contains_key(&rule.kind))
        }) {
            c.push(
                format!("{at}.kind"),
                format!(
                    "no purpose of this rule retains kind `{}`: add it to a purpose's retain",
                    rule.kind
                ),
            );
        }
        let glob = rule.matches.glob.as_ref().and_then(|g| {
            match globset::GlobBuilder::new(g).literal_separator(true).build() {
                Ok(glob) => Some(glob.compile_matcher()),
                Err(e) => {
                    c.push(format!("{at}.match.glob"), format!("invalid glob: {e}"));
                    None
                }
            }
        });
        rules.push(r::ClassifyRule {
            name: rule
                .name
                .clone()
                .unwrap_or_else(|| format!("classify[{i}]")),
            prefix: rule.matches.prefix.clone(),
            glob,
            tags: tag_match(&mut c, &format!("{at}.match.tags"), &rule.matches.tags),
            kind: rule.kind.clone(),
            purposes: rule.purposes.clone(),
            purposes_from_tag: from_tag,
        });
    }
    let recording_id =
        spec.recording_id
            .as_ref()
            .and_then(|rid| match (&rid.key_pattern, &rid.tag) {
                (Some(p), None) => match regex::Regex::new(p) {
                    Ok(re) if re.capture_names().any(|n| n == Some("id")) => {
                        Some(r::RecordingIdSource::KeyPattern(re))
                    }
                    Ok(_) => {
                        c.push(
                            "spec.recordingId.keyPattern",
                            "needs a named group `id`, e.g. ^calls/(?P<id>[^/]+)/",
                        );
                        None
                    }
                    Err(e) => {
                        c.push(
                            "spec.recordingId.keyPattern",
                            format!("invalid regular expression: {e}"),
                        );
                        None
                    }
                },
                (None, Some(t)) => Some(r::RecordingIdSource::Tag(t.clone())),
                _ => {
                    c.push("spec.recordingId", "set exactly one of keyPattern and tag");
                    None
                }
            });
    let recorded_at = match spec.recorded_at.as_ref().map(|ra| (&ra.tag, &ra.metadata)) {
        None | Some((None, None)) => r::RecordedAtSource::LastModified,
        Some((Some(t), None)) => r::RecordedAtSource::Tag(t.clone()),
        Some((None, Some(m))) => r::RecordedAtSource::Metadata(m.to_ascii_lowercase()),
        Some((Some(_), Some(_))) => {
            c.push("spec.recordedAt", "set at most one of tag and metadata");
            r::RecordedAtSource::LastModified
        }
    };
    let recorded_at_max_age = spec
        .recorded_at
        .as_ref()
        .and_then(|ra| ra.max_age_at_upload.as_ref())
        .map(|d| {
            let bound = c.duration("spec.recordedAt.maxAgeAtUpload".into(), d);
            if bound.is_zero() && IsoDuration::parse(&d.0).is_ok() {
                c.push(
                    "spec.recordedAt.maxAgeAtUpload",
                    "must be longer than zero (zero would ignore every recorded-at value); leave \
                     it out for no bound",
                );
            }
            bound
        });
    state_location(&mut c, spec);
    let grace = c.duration("spec.gracePeriod".into(), &spec.grace_period);
    let scan = c.duration("spec.scanInterval".into(), &spec.scan_interval);
    if scan.is_zero() {
        c.push("spec.scanInterval", "must be longer than zero");
    }
    let verify = c.duration("spec.verifyInterval".into(), &spec.verify_interval);
    if verify.is_zero() {
        c.push(
            "spec.verifyInterval",
            "must be longer than zero (P7D by default)",
        );
    }
    c.finish(
        resource.to_string(),
        r::BucketRules {
            name: resource.to_string(),
            prefix: spec.s3.prefix.clone().filter(|p| !p.is_empty()),
            classify: rules,
            recording_id,
            subject_tag: spec.subject.as_ref().map(|s| s.tag.clone()),
            recorded_at,
            recorded_at_max_age,
            grace,
            scan_interval: scan,
            verify_interval: verify,
            enforcement: enforcement(spec.enforcement),
        },
    )
}

/// The journal's location from `spec.state` (checked with the rest of the spec in [`bucket`]).
pub fn state(
    resource: &str,
    spec: &v1::RecordingBucketSpec,
) -> Result<r::StateLocation, ValidationErrors> {
    let mut c = Collector::default();
    let state = state_location(&mut c, spec);
    c.finish(resource.to_string(), state)
}

fn state_location(c: &mut Collector, spec: &v1::RecordingBucketSpec) -> r::StateLocation {
    let Some(st) = &spec.state else {
        return r::StateLocation::default();
    };
    let prefix = st
        .prefix
        .clone()
        .unwrap_or_else(|| r::DEFAULT_STATE_PREFIX.to_string());
    if !prefix.ends_with('/') || prefix.len() < 2 {
        c.push(
            "spec.state.prefix",
            "must be a non-empty prefix ending with `/`, e.g. .gallring/",
        );
    }
    let same_bucket = st.bucket.as_ref().is_none_or(|b| *b == spec.s3.bucket);
    if let Some(governed) = spec.s3.prefix.as_deref().filter(|p| !p.is_empty())
        && same_bucket
        && prefix.starts_with(governed)
    {
        c.push(
            "spec.state.prefix",
            format!("must not be under spec.s3.prefix `{governed}`: the journal would sit among the recordings"),
        );
    }
    let retention = st.retention.as_ref().map(|d| {
        let keep = c.duration("spec.state.retention".into(), d);
        if keep.is_zero() && IsoDuration::parse(&d.0).is_ok() {
            c.push(
                "spec.state.retention",
                "must be longer than zero; leave it out for none",
            );
        }
        keep
    });
    r::StateLocation {
        bucket: st.bucket.clone().filter(|_| !same_bucket),
        prefix,
        retention,
    }
}

/// Validates a LegalHold spec.
pub fn hold(resource: &str, spec: &v1::LegalHoldSpec) -> Result<r::Hold, ValidationErrors> {
    let mut c = Collector::default();
    if spec.case.trim().is_empty() {
        c.push("spec.case", "must name the case");
    }
    if spec.owner.trim().is_empty() {
        c.push("spec.owner", "must name who is responsible for the hold");
    }
    let s = &spec.select;
    if s.prefix.as_deref().is_some_and(str::is_empty) {
        c.push(
            "spec.select.prefix",
            "must not be empty (it would hold every object of the bucket); leave it out or name a \
             prefix",
        );
    }
    let scope = spec.scope.clone().unwrap_or_default();
    for (i, k) in scope.kinds.iter().enumerate() {
        if !is_kind(k) {
            c.push(
                format!("spec.scope.kinds[{i}]"),
                format!(
                    "`{k}` is not an artifact kind (camelCase, e.g. audio or maskedTranscript)"
                ),
            );
        }
    }
    if let (Some(a), Some(b)) = (scope.recorded_after, scope.recorded_before)
        && a >= b
    {
        c.push(
            "spec.scope.recordedBefore",
            "must be after recordedAfter (the window would hold nothing)",
        );
    }
    let select = r::HoldSelector {
        keys: s.keys.iter().cloned().collect(),
        prefix: s.prefix.clone(),
        recording_ids: s.recording_ids.iter().cloned().collect(),
        subjects: s.subjects.iter().cloned().collect(),
        tags: tag_match(&mut c, "spec.select.tags", &s.tags),
        kinds: scope.kinds.iter().cloned().collect(),
        recorded_after: scope.recorded_after,
        recorded_before: scope.recorded_before,
    };
    if select.is_empty() {
        c.push(
            "spec.select",
            "a hold must select something: set keys, prefix, recordingIds, subjects or tags",
        );
    }
    c.finish(
        resource.to_string(),
        r::Hold {
            name: resource.to_string(),
            reason: hold_reason(spec.reason),
            case: spec.case.clone(),
            select,
            expires: spec.expires,
            review_by: spec.review_by,
            released_at: None,
            limitation_start: spec.limitation_start,
            created_at: None,
        },
    )
}

/// A SubjectRequest into the engine's request. `policy`, when known, checks that the purposes
/// a withdrawal or objection names exist and are withdrawable.
pub fn subject_request(
    resource: &str,
    spec: &v1::SubjectRequestSpec,
    policy: Option<&r::Policy>,
) -> Result<r::SubjectRequest, ValidationErrors> {
    let mut c = Collector::default();
    let kind = request_type(spec.type_);
    if spec.reference.trim().is_empty() {
        c.push(
            "spec.reference",
            "must name the case (the privacy team's case number)",
        );
    }
    if spec.owner.trim().is_empty() {
        c.push("spec.owner", "must name who handles the request");
    }
    if spec.subject.as_deref().is_some_and(|s| s.trim().is_empty()) {
        c.push(
            "spec.subject",
            "must not be empty; leave it out or name the subject",
        );
    }
    for (i, id) in spec.recording_ids.iter().enumerate() {
        if id.trim().is_empty() {
            c.push(format!("spec.recordingIds[{i}]"), "must not be empty");
        }
    }
    if spec.subject.is_none() && spec.recording_ids.is_empty() {
        c.push(
            "spec",
            "a request must select recordings: set subject or recordingIds",
        );
    }
    if !spec.purposes.is_empty()
        && !matches!(kind, r::RequestType::Withdrawal | r::RequestType::Objection)
    {
        c.push(
            "spec.purposes",
            format!("applies to Withdrawal and Objection only, not {kind}"),
        );
    }
    if let Some(policy) = policy {
        for (i, p) in spec.purposes.iter().enumerate() {
            match policy.purposes.get(p) {
                None => c.push(
                    format!("spec.purposes[{i}]"),
                    format!(
                        "`{p}` is not a purpose of RetentionPolicy {} (it has: {})",
                        policy.name,
                        policy.purposes.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(d) if !d.withdrawable => c.push(
                    format!("spec.purposes[{i}]"),
                    format!(
                        "`{p}` is not withdrawable in RetentionPolicy {} ({}): a withdrawal or objection cannot end it",
                        policy.name, d.legal_basis
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    match spec.lifted_at {
        Some(_) if kind != r::RequestType::Restriction => c.push(
            "spec.liftedAt",
            format!("applies to Restriction only, not {kind}"),
        ),
        Some(l) if l <= spec.received_at => c.push(
            "spec.liftedAt",
            "must be after receivedAt (the restriction would never start)",
        ),
        _ => {}
    }
    c.finish(
        resource.to_string(),
        r::SubjectRequest {
            name: resource.to_string(),
            kind,
            recording_ids: spec.recording_ids.iter().cloned().collect(),
            subjects: spec.subject.iter().cloned().collect(),
            keys: Default::default(),
            purposes: spec.purposes.iter().cloned().collect(),
            received_at: spec.received_at,
            reference: spec.reference.clone(),
            lifted_at: spec.lifted_at,
        },
    )
}

pub fn request_type(t: v1::SubjectRequestType) -> r::RequestType {
    match t {
        v1::SubjectRequestType::Withdrawal => r::RequestType::Withdrawal,
        v1::SubjectRequestType::Objection => r::RequestType::Objection,
        v1::SubjectRequestType::Erasure => r::RequestType::Erasure,
        v1::SubjectRequestType::Restriction => r::RequestType::Restriction,
        v1::SubjectRequestType::Access => r::RequestType::Access,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold_spec() -> v1::LegalHoldSpec {
        v1::LegalHoldSpec {
            scope: None,
            limitation_start: None,
            bucket_ref: v1::LocalRef {
                name: "calls".into(),
            },
            reason: v1::HoldReason::Complaint,
            case: "KL-1".into(),
            owner: "complaints".into(),
            review_by: None,
            expires: None,
            select: v1::HoldSelectSpec {
                prefix: Some("calls/2026/".into()),
                ..Default::default()
            },
        }
    }

    fn hold_error(spec: &v1::LegalHoldSpec) -> ValidationErrors {
        hold("LegalHold/ns/h", spec).expect_err("the hold is invalid")
    }

    #[test]
    fn a_valid_hold_compiles() {
        let h = hold("LegalHold/ns/h", &hold_spec()).expect("valid");
        assert_eq!(h.select.prefix.as_deref(), Some("calls/2026/"));
    }

    #[test]
    fn an_empty_hold_prefix_is_rejected_by_name() {
        let mut spec = hold_spec();
        spec.select.prefix = Some(String::new());
        spec.select.keys = vec!["a.wav".into()];
        let e = hold_error(&spec);
        assert!(
            e.first_line()
                .starts_with("spec.select.prefix: must not be empty")
        );
    }

    #[test]
    fn a_blank_case_is_rejected_by_name() {
        for case in ["", "   ", "\t\n"] {
            let mut spec = hold_spec();
            spec.case = case.into();
            assert_eq!(
                hold_error(&spec).first_line(),
                "spec.case: must name the case"
            );
        }
    }

    #[test]
    fn an_empty_hold_tag_key_is_rejected_by_name() {
        let mut spec = hold_spec();
        spec.select.tags.insert(String::new(), "x".into());
        assert_eq!(
            hold_error(&spec).first_line(),
            "spec.select.tags: tag keys must not be empty"
        );
        let mut spec = hold_spec();
        spec.select.tags.insert("k".repeat(129), "x".into());
        assert_eq!(
            hold_error(&spec).first_line(),
            "spec.select.tags: tag keys must be at most 128 characters"
        );
    }

    #[test]
    fn every_error_is_reported() {
        let mut spec = hold_spec();
        spec.case = " ".into();
        spec.select.prefix = Some(String::new());
        spec.select.tags.insert(String::new(), "x".into());
        let paths: Vec<String> = hold_error(&spec)
            .errors
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            ["spec.case", "spec.select.prefix", "spec.select.tags"]
        );
    }

    fn calls_policy() -> r::Policy {
        let spec: v1::RetentionPolicySpec = serde_norway::from_str(
            "controller: {legalName: Tryg}\n\
             purposes: [{name: documentation, legalBasis: {article6: legitimateInterests}, \
             retain: {audio: P1Y}}]\n",
        )
        .expect("policy spec parses");
        policy("RetentionPolicy/ns/calls", &spec).expect("valid policy")
    }

    fn bucket_with_recorded_at(recorded_at: &str) -> Result<r::BucketRules, ValidationErrors> {
        let spec: v1::RecordingBucketSpec = serde_norway::from_str(&format!(
            "s3: {{bucket: calls}}\n\
             policyRef: {{name: calls}}\n\
             classify: [{{match: {{prefix: a/}}, kind: audio, purposes: [documentation]}}]\n\
             recordedAt: {recorded_at}\n"
        ))
        .expect("bucket spec parses");
        bucket("RecordingBucket/ns/calls", &spec, &calls_policy())
    }

    #[test]
    fn max_age_at_upload_is_carried_into_the_rules() {
        let b =
            bucket_with_recorded_at("{metadata: Call-Start, maxAgeAtUpload: P30D}").expect("valid");
        assert_eq!(b.recorded_at_max_age, Some(IsoDuration::days(30)));
        assert_eq!(
            b.recorded_at,
            r::RecordedAtSource::Metadata("call-start".into())
        );
        let unbounded = bucket_with_recorded_at("{tag: recorded-at}").expect("valid");
        assert_eq!(unbounded.recorded_at_max_age, None);
    }

    #[test]
    fn an_invalid_max_age_at_upload_is_rejected_by_name() {
        for (text, message) in [
            ("30D", "must start with `P`"),
            ("P-1D", "negative"),
            ("P0D", "must be longer than zero"),
        ] {
            let e =
                bucket_with_recorded_at(&format!("{{tag: recorded-at, maxAgeAtUpload: {text}}}"))
                    .expect_err("invalid");
            let line = e.first_line();
            assert!(
                line.starts_with("spec.recordedAt.maxAgeAtUpload: ") && line.contains(message),
                "{text}: {line}"
            );
        }
    }

    fn bucket_with_state(s3: &str, state: &str) -> v1::RecordingBucketSpec {
        serde_norway::from_str(&format!(
            "s3: {s3}\n\
             policyRef: {{name: calls}}\n\
             classify: [{{match: {{prefix: a/}}, kind: audio, purposes: [documentation]}}]\n\
             state: {state}\n"
        ))
        .expect("bucket spec parses")
    }

    #[test]
    fn the_state_location_defaults_to_the_recordings_bucket_and_is_validated_by_name() {
        let none: v1::RecordingBucketSpec = serde_norway::from_str(
            "s3: {bucket: calls}\npolicyRef: {name: calls}\n\
             classify: [{match: {prefix: a/}, kind: audio, purposes: [documentation]}]\n",
        )
        .expect("parses");
        assert_eq!(
            state("b", &none).expect("valid"),
            r::StateLocation::default()
        );
        let other = bucket_with_state("{bucket: calls}", "{bucket: evidence, retention: P10Y}");
        let loc = state("b", &other).expect("valid");
        assert_eq!(loc.bucket.as_deref(), Some("evidence"));
        assert_eq!(loc.prefix, r::DEFAULT_STATE_PREFIX);
        assert_eq!(
            loc.retention,
            Some(IsoDuration::parse("P10Y").expect("valid"))
        );
        // Naming the recordings bucket itself is the default.
        let same = bucket_with_state("{bucket: calls}", "{bucket: calls}");
        assert_eq!(state("b", &same).expect("valid").bucket, None);
        for (s3, st, path) in [
            ("{bucket: calls}", "{prefix: journal}", "spec.state.prefix"),
            (
                "{bucket: calls, prefix: calls/}",
                "{prefix: calls/.gallring/}",
                "spec.state.prefix",
            ),
            (
                "{bucket: calls}",
                "{retention: P0D}",
                "spec.state.retention",
            ),
        ] {
            let spec = bucket_with_state(s3, st);
            let e = state("b", &spec).expect_err("invalid");
            assert!(e.first_line().starts_with(path), "{st}: {}", e.first_line());
            let e = bucket("b", &spec, &calls_policy()).expect_err("the bucket too");
            assert!(e.first_line().starts_with(path), "{st}: {}", e.first_line());
        }
    }
}
