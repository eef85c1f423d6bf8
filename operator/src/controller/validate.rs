//! Step 2 of a bucket reconcile: turn the dereferenced resources into engine inputs, and refuse
//! anything that could make the pass lower protection by mistake. Pure: no client, no clock.

use chrono::DateTime;
use kube::ResourceExt;

use crate::api::compile::{self, ValidationErrors};
use crate::api::v1alpha1::{LegalHold, RecordingBucket, S3Location, SubjectRequest};
use crate::retention::{BucketRules, Hold, Policy};

use super::dereference::Dereferenced;
use super::key::ResourceKey;

/// Engine inputs for one pass.
pub struct Validated {
    pub policy: Policy,
    pub rules: BucketRules,
    /// Where the bucket's journal is.
    pub state: crate::retention::StateLocation,
    pub holds: Vec<Hold>,
}

/// Why a bucket cannot be reconciled as specified. Each names the field or the other resource.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.first_line())]
    InvalidPolicy(ValidationErrors),
    #[error("{}", .0.first_line())]
    InvalidSpec(ValidationErrors),
    /// A hold the operator cannot read would be left out of the pass and its objects released:
    /// nothing is written until it is fixed.
    #[error("LegalHold {hold} is invalid ({}); nothing is written until it is fixed or deleted", .errors.first_line())]
    InvalidHold {
        hold: String,
        errors: ValidationErrors,
    },
    #[error("{}", conflict_message(.0))]
    Conflict(Vec<ResourceKey>),
}

fn conflict_message(with: &[ResourceKey]) -> String {
    let names: Vec<String> = with.iter().map(ToString::to_string).collect();
    format!(
        "spec.s3: governs the same objects as {}; neither writes until only one does",
        names.join(", ")
    )
}

impl Error {
    /// Condition reason and Event reason (CamelCase, closed set).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidPolicy(_) => "InvalidPolicy",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::InvalidHold { .. } => "InvalidHold",
            Error::Conflict(_) => "Conflict",
        }
    }
}

/// The engine's view of a LegalHold; a hold being deleted counts as released at its deletion
/// timestamp.
pub fn engine_hold(h: &LegalHold) -> Result<Hold, ValidationErrors> {
    let key = ResourceKey::of(h);
    let mut hold = compile::hold(&key.to_string(), &h.spec)?;
    hold.name = key.namespaced_name();
    hold.created_at = h
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0));
    if let Some(t) = &h.metadata.deletion_timestamp {
        hold.released_at = DateTime::from_timestamp(t.0.as_second(), 0);
    }
    Ok(hold)
}

/// The engine's view of a SubjectRequest, named `SubjectRequest/namespace/name` in both hosts.
/// `policy`, when known, checks the purposes a withdrawal names. A request being deleted is
/// left out: a restriction then ends (released by the pass), while withdrawals and erasures
/// stay in effect from the journal.
pub fn engine_request(
    r: &SubjectRequest,
    policy: Option<&Policy>,
) -> Result<crate::retention::SubjectRequest, ValidationErrors> {
    let key = ResourceKey::of(r);
    compile::subject_request(
        &format!("SubjectRequest/{}", key.namespaced_name()),
        &r.spec,
        policy,
    )
}

/// The bucket's valid requests not being deleted (an invalid one is reported in its own
/// status and takes no part), and the holds that carry out its restrictions.
pub fn engine_requests(
    requests: &[SubjectRequest],
    policy: Option<&Policy>,
) -> (Vec<crate::retention::SubjectRequest>, Vec<Hold>) {
    let valid: Vec<crate::retention::SubjectRequest> = requests
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .filter_map(|r| engine_request(r, policy).ok())
        .collect();
    let holds = valid
        .iter()
        .filter_map(crate::retention::SubjectRequest::as_hold)
        .collect();
    (valid, holds)
}

pub fn validate(
    bucket: &RecordingBucket,
    deref: &Dereferenced,
    peers: &[RecordingBucket],
) -> Result<Validated, Error> {
    let key = ResourceKey::of(bucket);
    let policy_key = ResourceKey::of(&deref.policy);
    let policy = compile::policy(&policy_key.to_string(), &deref.policy.spec)
        .map_err(Error::InvalidPolicy)?;
    let rules =
        compile::bucket(&key.to_string(), &bucket.spec, &policy).map_err(Error::InvalidSpec)?;
    let state = compile::state(&key.to_string(), &bucket.spec).map_err(Error::InvalidSpec)?;
    let conflicting = conflicts(bucket, peers);
    if !conflicting.is_empty() {
        return Err(Error::Conflict(conflicting));
    }
    let mut holds = Vec::with_capacity(deref.holds.len());
    for h in &deref.holds {
        match engine_hold(h) {
            Ok(hold) => holds.push(hold),
            // A hold on its way out that never validated selected nothing.
            Err(_) if h.metadata.deletion_timestamp.is_some() => {}
            Err(errors) => {
                return Err(Error::InvalidHold {
                    hold: h.name_any(),
                    errors,
                });
            }
        }
    }
    Ok(Validated {
        policy,
        rules,
        state,
        holds,
    })
}

/// Where a bucket's objects live: the same store bucket with overlapping prefixes means the
/// same objects.
fn location(s3: &S3Location) -> (String, &str) {
    let endpoint = s3.endpoint.as_deref().map_or_else(
        || format!("aws:{}", s3.region.as_deref().unwrap_or("us-east-1")),
        |e| e.trim_end_matches('/').to_ascii_lowercase(),
    );
    (endpoint, s3.bucket.as_str())
}

/// The other RecordingBuckets (not being deleted) that govern some of the same objects.
pub fn conflicts(bucket: &RecordingBucket, peers: &[RecordingBucket]) -> Vec<ResourceKey> {
    let me = ResourceKey::of(bucket);
    let (endpoint, name) = location(&bucket.spec.s3);
    let prefix = bucket.spec.s3.prefix.as_deref().unwrap_or("");
    let mut out: Vec<ResourceKey> = peers
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| ResourceKey::of(*p) != me)
        .filter(|p| {
            let (e, n) = location(&p.spec.s3);
            let q = p.spec.s3.prefix.as_deref().unwrap_or("");
            e == endpoint && n == name && (q.starts_with(prefix) || prefix.starts_with(q))
        })
        .map(ResourceKey::of)
        .collect();
    out.sort();
    out
}
