//! The RetentionPolicy reconcile: validate and report; the buckets that use a policy are
//! reconciled again when it changes (see `buckets_for_policy`).

use std::sync::Arc;

use kube::ResourceExt;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use crate::api::compile;
use crate::api::v1alpha1::{RecordingBucket, RetentionPolicy};

use super::context::{Context, Error, StoreFactory, patch_status, publish};
use super::key::ResourceKey;
use super::status;

/// The buckets that reference a policy: a policy change re-reconciles each of them.
pub fn buckets_for_policy(
    buckets: &[Arc<DeserializeGuard<RecordingBucket>>],
    policy: &RetentionPolicy,
) -> Vec<ObjectRef<DeserializeGuard<RecordingBucket>>> {
    let ns = policy.namespace();
    buckets
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|b| b.namespace() == ns && b.spec.policy_ref.name == policy.name_any())
        .map(|b| ObjectRef::new(&b.name_any()).within(&b.namespace().unwrap_or_default()))
        .collect()
}

/// Validates a policy and reports it in its status.
pub async fn reconcile_policy<F: StoreFactory>(
    policy: &RetentionPolicy,
    ctx: &Context<F>,
) -> Result<Action, Error> {
    let key = ResourceKey::of(policy);
    let api: Api<RetentionPolicy> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let error = compile::policy(&key.to_string(), &policy.spec)
        .err()
        .map(|e| e.first_line());
    let st = status::policy_status(
        policy.status.as_ref(),
        policy.metadata.generation,
        error.clone(),
        ctx.now(),
    );
    if policy.status.as_ref() != Some(&st) {
        patch_status(&api, &key.name, &st).await?;
        if let Some(e) = error {
            publish(
                &ctx.recorder,
                policy,
                EventType::Warning,
                "InvalidSpec",
                "Validate",
                e,
            )
            .await;
        }
    }
    Ok(Action::await_change())
}
