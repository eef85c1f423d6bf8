//! Step 1 of a bucket reconcile: fetch what the RecordingBucket refers to (its policy, the
//! LegalHolds that name it, its credentials Secret). Needs the client; decides nothing.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use crate::api::v1alpha1::{LegalHold, RecordingBucket, RetentionPolicy, SubjectRequest};
use crate::store::s3::StaticCredentials;

/// Secret keys for `spec.s3.credentials.secretRef`.
pub const SECRET_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const SECRET_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// Where the operator may read credential Secrets (set by the chart, enforced by RBAC too).
#[derive(Debug, Clone, Default)]
pub struct SecretAccess {
    /// Namespaces whose Secrets may be read.
    pub namespaces: Vec<String>,
    /// Any namespace (explicit opt-in).
    pub cluster_wide: bool,
    /// Buckets without a Secret may use the operator's own cloud identity (default chain).
    pub allow_ambient: bool,
}

impl SecretAccess {
    pub fn may_read_in(&self, namespace: &str) -> bool {
        self.cluster_wide || self.namespaces.iter().any(|n| n == namespace)
    }
}

/// Everything a bucket refers to.
pub struct Dereferenced {
    pub policy: RetentionPolicy,
    /// The LegalHolds in the bucket's namespace that name it (including ones being deleted).
    pub holds: Vec<LegalHold>,
    /// The SubjectRequests in the bucket's namespace that name it.
    pub requests: Vec<SubjectRequest>,
    pub credentials: Option<StaticCredentials>,
}

/// A reference that cannot be followed. The user fixes these; each names the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("spec.policyRef.name: RetentionPolicy `{name}` not found in namespace `{namespace}`")]
    PolicyNotFound { namespace: String, name: String },
    #[error(
        "spec.s3.credentials.secretRef.name: Secret `{name}` not found in namespace `{namespace}`"
    )]
    SecretNotFound { namespace: String, name: String },
    #[error(
        "spec.s3.credentials.secretRef.name: Secret `{name}` needs non-empty keys {SECRET_ACCESS_KEY_ID} and {SECRET_SECRET_ACCESS_KEY}"
    )]
    SecretIncomplete { name: String },
    #[error(
        "spec.s3.credentials.secretRef: the operator may not read Secrets in namespace `{namespace}` (chart values secrets.namespaces / secrets.clusterWide)"
    )]
    SecretNotAllowed { namespace: String },
    #[error(
        "spec.s3.credentials.secretRef: required; the operator does not lend its own cloud identity to RecordingBuckets (chart value allowAmbientCredentials)"
    )]
    CredentialsRequired,
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// Condition reason and Event reason (CamelCase, closed set).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::PolicyNotFound { .. } => "PolicyNotFound",
            Error::SecretNotFound { .. } => "SecretNotFound",
            Error::SecretIncomplete { .. } => "SecretIncomplete",
            Error::SecretNotAllowed { .. } => "SecretNotAllowed",
            Error::CredentialsRequired => "CredentialsRequired",
            Error::Kube(_) => "KubernetesError",
        }
    }

    /// Whether the user must change something (as opposed to a transient API failure).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Error::Kube(_))
    }
}

pub async fn dereference(
    client: &Client,
    bucket: &RecordingBucket,
    access: &SecretAccess,
) -> Result<Dereferenced, Error> {
    let ns = bucket.namespace().unwrap_or_default();
    let policy_name = &bucket.spec.policy_ref.name;
    let policy = Api::<RetentionPolicy>::namespaced(client.clone(), &ns)
        .get_opt(policy_name)
        .await?
        .ok_or_else(|| Error::PolicyNotFound {
            namespace: ns.clone(),
            name: policy_name.clone(),
        })?;
    let name = bucket.name_any();
    let holds = Api::<LegalHold>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|h| h.spec.bucket_ref.name == name)
        .collect();
    let requests = Api::<SubjectRequest>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|r| r.spec.bucket_ref.name == name)
        .collect();
    let credentials = credentials(client, bucket, access).await?;
    Ok(Dereferenced {
        policy,
        holds,
        requests,
        credentials,
    })
}

/// Resolves `spec.s3.credentials.secretRef`, within the namespaces the operator may read.
pub async fn credentials(
    client: &Client,
    bucket: &RecordingBucket,
    access: &SecretAccess,
) -> Result<Option<StaticCredentials>, Error> {
    let ns = bucket.namespace().unwrap_or_default();
    let Some(c) = &bucket.spec.s3.credentials else {
        return if access.allow_ambient {
            Ok(None)
        } else {
            Err(Error::CredentialsRequired)
        };
    };
    if !access.may_read_in(&ns) {
        return Err(Error::SecretNotAllowed { namespace: ns });
    }
    let name = &c.secret_ref.name;
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get_opt(name)
        .await?
        .ok_or_else(|| Error::SecretNotFound {
            namespace: ns.clone(),
            name: name.clone(),
        })?;
    let data = secret.data.unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    match (get(SECRET_ACCESS_KEY_ID), get(SECRET_SECRET_ACCESS_KEY)) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(StaticCredentials {
            access_key_id,
            secret_access_key,
            session_token: get(SECRET_SESSION_TOKEN),
        })),
        _ => Err(Error::SecretIncomplete { name: name.clone() }),
    }
}
