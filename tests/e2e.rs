//! End to end: the real `gallring operator` binary, the real Helm chart and its RBAC, a real
//! kube-apiserver, a real Ceph S3 store.
//!
//! Each scenario gets its own namespace with the chart installed in namespace mode
//! (`watchNamespace`), its own Lease and S3 bucket, and runs the operator out of cluster with a
//! token of the chart's ServiceAccount (so a permission the chart lacks shows up as `Forbidden`,
//! which fails the test) and without any AWS variables (buckets use credential Secrets; one
//! scenario hands it ambient credentials on purpose, to show it does not use them). The
//! operator reaches the API server through a proxy that can be cut, and the store through a
//! proxy that records (and can delay) every request: those are the observations the
//! assertions rest on, next to what is read back from S3 and from the API with the admin
//! client. Figures for README/BENCHMARKS are printed as lines starting with `E2E-FIGURE:`.
//!
//! ```sh
//! eval "$(../shared/k8s/up.sh)"   # KUBECONFIG, HELM, GALLRING_K8S_CA (or any cluster's KUBECONFIG)
//! eval "$(scripts/s3-up.sh)"      # GALLRING_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//! cargo test -p gallring --test e2e -- --nocapture --test-threads=16
//! ```
//!
//! A missing variable fails the suite with a hint; it never skips. Operator logs and the
//! rendered chart are kept under `target/e2e/<test>/`; a failing test prints them.

#[path = "e2e/harness.rs"]
#[macro_use]
mod harness;
#[path = "e2e/fixtures.rs"]
mod fixtures;
#[path = "e2e/proxy.rs"]
mod proxy;

#[path = "e2e/chart.rs"]
mod chart;
#[path = "e2e/holds.rs"]
mod holds;
#[path = "e2e/leader.rs"]
mod leader;
#[path = "e2e/load.rs"]
mod load;
#[path = "e2e/reconcile.rs"]
mod reconcile;
#[path = "e2e/requests.rs"]
mod requests;
