//! End to end against a real cluster: applies `crds/`, runs the `gallring operator` binary out
//! of cluster against the current kubeconfig and the local Ceph store, creates a policy, a
//! bucket (with a credentials Secret) and a hold, and checks status, Events, the bucket's tags
//! and lifecycle, and the hold's release.
//!
//! ```sh
//! eval "$(scripts/s3-up.sh)"
//! KUBECONFIG=~/.kube/config cargo test -p gallring --test e2e -- --ignored --nocapture
//! ```

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use gallring::api::v1alpha1::{LegalHold, RecordingBucket, RetentionPolicy};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::json;

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env(name: &str, hint: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {hint}"))
}

async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn s3() -> aws_sdk_s3::Client {
    gallring::store::s3::S3Store::sdk_client(Some(env(
        "GALLRING_S3_ENDPOINT",
        "run `eval \"$(scripts/s3-up.sh)\"`",
    )))
    .await
}

async fn retention_tag(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    let tags = s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    tags.tag_set()
        .iter()
        .find(|t| t.key() == "gallring.io/retention")
        .map(|t| t.value().to_string())
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG (and run scripts/s3-up.sh)"]
async fn operator_applies_and_releases_a_hold_on_a_real_cluster() {
    env("KUBECONFIG", "point it at a test cluster");
    let endpoint = env("GALLRING_S3_ENDPOINT", "run `eval \"$(scripts/s3-up.sh)\"`");
    let client = Client::try_default().await.expect("kubeconfig works");
    let suffix = chrono::Utc::now().format("%H%M%S").to_string();
    let ns = format!("gallring-e2e-{suffix}");
    let bucket_name = format!("e2e-{suffix}");

    // CRDs from crds/ (server-side apply, then wait until established).
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/gallring.yaml"
    ))
    .expect("crds/");
    for doc in serde_norway::Deserializer::from_str(&text) {
        let crd = CustomResourceDefinition::deserialize(doc).expect("a CRD");
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("gallring-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("CRD applied");
        let name = crd.name_any();
        wait_for("CRD established", Duration::from_secs(60), || {
            let crds = crds.clone();
            let name = name.clone();
            async move {
                let c = crds.get(&name).await.ok()?;
                c.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }

    // The store: three fresh recordings, one of them under the hold.
    let s3 = s3().await;
    s3.create_bucket()
        .bucket(&bucket_name)
        .send()
        .await
        .expect("bucket created");
    for key in ["audio/old.wav", "audio/new.wav", "audio/held.wav"] {
        s3.put_object()
            .bucket(&bucket_name)
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put");
    }

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
        )
        .await
        .expect("namespace");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "gallring-s3"},
                "stringData": {
                    "AWS_ACCESS_KEY_ID": env("AWS_ACCESS_KEY_ID", "from scripts/s3-up.sh"),
                    "AWS_SECRET_ACCESS_KEY": env("AWS_SECRET_ACCESS_KEY", "from scripts/s3-up.sh"),
                }
            }))
            .expect("secret"),
        )
        .await
        .expect("secret created");
    let policies: Api<RetentionPolicy> = Api::namespaced(client.clone(), &ns);
    policies
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "apiVersion": "gallring.io/v1alpha1", "kind": "RetentionPolicy",
            "metadata": {"name": "calls"},
            "spec": {
                "controller": {"legalName": "E2E Forsikring A/S"},
                "purposes": [{"name": "documentation", "legalBasis": {"article6": "legitimateInterests"}, "retain": {"audio": "P1Y"}}]
            }
        })).expect("policy"))
        .await
        .expect("policy created");
    let buckets: Api<RecordingBucket> = Api::namespaced(client.clone(), &ns);
    buckets
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "apiVersion": "gallring.io/v1alpha1", "kind": "RecordingBucket",
            "metadata": {"name": "calls"},
            "spec": {
                "s3": {"bucket": bucket_name, "endpoint": endpoint, "forcePathStyle": true, "credentials": {"secretRef": {"name": "gallring-s3"}}},
                "policyRef": {"name": "calls"},
                "classify": [{"match": {"prefix": "audio/"}, "kind": "audio", "purposes": ["documentation"]}],
                "scanInterval": "PT30S"
            }
        })).expect("bucket"))
        .await
        .expect("bucket created");
    let holds: Api<LegalHold> = Api::namespaced(client.clone(), &ns);
    holds
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "apiVersion": "gallring.io/v1alpha1", "kind": "LegalHold",
            "metadata": {"name": "complaint-1"},
            "spec": {"bucketRef": {"name": "calls"}, "reason": "Complaint", "case": "E2E-1", "owner": "e2e", "select": {"keys": ["audio/held.wav"]}}
        })).expect("hold"))
        .await
        .expect("hold created");

    let _operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_gallring"))
            .args([
                "operator",
                "--namespace",
                &ns,
                "--lease-namespace",
                &ns,
                "--metrics-addr",
                "127.0.0.1:19090",
                "--identity",
                "e2e",
            ])
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("operator starts"),
    );

    let status = wait_for(
        "bucket Ready with the hold applied",
        Duration::from_secs(120),
        || {
            let buckets = buckets.clone();
            async move {
                let s = buckets.get("calls").await.ok()?.status?;
                let ready = s
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                (ready && s.held == Some(1)).then_some(s)
            }
        },
    )
    .await;
    assert_eq!(status.objects, Some(3));
    assert_eq!(status.overdue, Some(0));
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "LifecycleSynced" && c.status == "True")
    );
    assert_eq!(
        retention_tag(&s3, &bucket_name, "audio/held.wav")
            .await
            .as_deref(),
        Some("held")
    );
    // P1Y from today is 365 or 366 days, depending on the leap day.
    let new_tag = retention_tag(&s3, &bucket_name, "audio/new.wav")
        .await
        .unwrap_or_default();
    assert!(
        new_tag == "expire-365d" || new_tag == "expire-366d",
        "{new_tag}"
    );
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket_name)
        .send()
        .await
        .expect("lifecycle written");
    assert!(
        lifecycle
            .rules()
            .iter()
            .all(|r| r.id().is_some_and(|id| id.starts_with("gallring-")))
    );

    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .iter()
        .filter_map(|e| e.reason.clone())
        .collect();
    assert!(
        reasons.iter().any(|r| r == "LifecycleUpdated"),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r == "HoldApplied"), "{reasons:?}");
    let hold = holds.get("complaint-1").await.expect("hold");
    assert_eq!(hold.status.and_then(|s| s.matched), Some(1));
    assert!(
        hold.metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == "gallring.io/release")
    );

    // Release: the finalizer re-tags the object before the hold disappears.
    holds
        .delete("complaint-1", &DeleteParams::default())
        .await
        .expect("hold deleted");
    wait_for(
        "the hold to be released and gone",
        Duration::from_secs(120),
        || {
            let holds = holds.clone();
            async move {
                holds
                    .get_opt("complaint-1")
                    .await
                    .ok()?
                    .is_none()
                    .then_some(())
            }
        },
    )
    .await;
    assert_eq!(
        retention_tag(&s3, &bucket_name, "audio/held.wav")
            .await
            .unwrap_or_default(),
        new_tag
    );

    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}
