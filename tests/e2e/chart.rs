//! `helm install` of the real chart against a real API server, with and without the
//! prometheus-operator CRDs.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

use crate::harness::{E2e, Setup, apply_crds, repo, run, wait_for};

const MONITORING_CRDS: [&str; 2] = [
    "prometheusrules.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
];

/// Deletes the monitoring CRDs this test installed, even when it fails, so that tests running
/// beside it see the cluster as it was.
struct RemoveCrds(bool);

impl Drop for RemoveCrds {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::process::Command::new("kubectl")
                .args(["delete", "crd", "--ignore-not-found", "--wait=false"])
                .args(MONITORING_CRDS)
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
}

async fn install(e: &E2e, release: &str, sets: &[&str]) -> (bool, String) {
    let mut args: Vec<String> = vec![
        "install".into(),
        release.into(),
        repo().join("charts/gallring").display().to_string(),
        "-n".into(),
        e.ns.clone(),
        "--skip-crds".into(),
        "--set".into(),
        format!("watchNamespace={}", e.ns),
        "--set".into(),
        format!("leaderElection.leaseName={release}"),
    ];
    for s in sets {
        args.push("--set".into());
        args.push((*s).into());
    }
    let (ok, out, err) = run(&e.env.helm, &args).await;
    (ok, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_fails_clearly_without_the_monitoring_crds_and_succeeds_with_them() {
    let e = E2e::new(
        test_name!(),
        "monitoring",
        Setup {
            no_bucket: true,
            no_secret: true,
            ..Setup::default()
        },
    )
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(e.kube.clone());
    let mut present = Vec::new();
    for name in MONITORING_CRDS {
        if crds.get_opt(name).await.expect("read CRDs").is_some() {
            present.push(name);
        }
    }

    if present.is_empty() {
        // Without the CRDs: the chart fails at render time and says which CRD is missing.
        for (kind, value) in [
            ("PrometheusRule", "prometheusRule.enabled=true"),
            ("ServiceMonitor", "serviceMonitor.enabled=true"),
        ] {
            let (ok, out) = install(&e, "g-mon-without", &[value]).await;
            println!("helm install --set {value} without the CRDs:\n{out}");
            assert!(
                !ok,
                "helm install --set {value} succeeded without the {kind} CRD"
            );
            assert!(
                out.contains(kind)
                    && out.contains("monitoring.coreos.com")
                    && !out.contains("no matches for kind"),
                "the failure should name the missing CRD ({kind}, monitoring.coreos.com) from the chart itself:\n{out}"
            );
        }
    } else {
        println!(
            "the cluster already serves {present:?}: only the install with the CRDs is tested"
        );
    }

    // With the CRDs (minimal stand-ins), the same install succeeds and creates both objects.
    let _cleanup = RemoveCrds(present.is_empty());
    if present.is_empty() {
        apply_crds(&e.kube, &repo().join("tests/e2e/monitoring-crds.yaml")).await;
    }
    let (ok, out) = install(
        &e,
        "g-mon-with",
        &["prometheusRule.enabled=true", "serviceMonitor.enabled=true"],
    )
    .await;
    assert!(ok, "helm install with the monitoring CRDs failed:\n{out}");
    for kind in ["PrometheusRule", "ServiceMonitor"] {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("monitoring.coreos.com", "v1", kind));
        let api: Api<DynamicObject> = Api::namespaced_with(e.kube.clone(), &e.ns, &ar);
        let items = wait_for(
            &format!("a {kind} in {}", e.ns),
            Duration::from_secs(30),
            || async {
                let l = api.list(&Default::default()).await.ok()?;
                (!l.items.is_empty()).then_some(l.items)
            },
        )
        .await;
        println!(
            "{kind}: {:?}",
            items
                .iter()
                .map(|i| i.metadata.name.clone())
                .collect::<Vec<_>>()
        );
    }
    let (ok, _, err) = run(
        &e.env.helm,
        &[
            "uninstall".into(),
            "g-mon-with".into(),
            "-n".into(),
            e.ns.clone(),
        ],
    )
    .await;
    assert!(ok, "helm uninstall: {err}");
    e.finish().await;
}
