#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy with -D warnings, and all tests, including the
# integration tests against two real S3 servers (Ceph RGW, and moto with AWS S3's semantics;
# both on 127.0.0.1, started here if needed) and the end-to-end suite (tests/e2e.rs) against a
# real Kubernetes control plane (the kit in ../shared/k8s beside this repository: etcd +
# kube-apiserver + kube-controller-manager on 127.0.0.1, started here if needed) with the chart
# installed by helm.
#
#   scripts/test.sh
#
# Needs: a Rust toolchain with rustfmt and clippy, curl, python3 with venv, PyPI (moto is
# pip-installed into a virtualenv on first use by scripts/moto-up.sh), and root for
# `apt-get install` of the Ceph packages and of etcd/kubectl on first use (scripts/s3-up.sh and
# ../shared/k8s/up.sh install them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "starting the S3 server (Ceph RGW on loopback)"
# Assign first: a failing start then stops the script (`eval "$(...)"` alone would not).
s3_env=$(scripts/s3-up.sh)
eval "$s3_env"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION GALLRING_S3_ENDPOINT

step "starting the AWS-semantics S3 server (moto on loopback)"
# The store contract suite and the reconcile tests run on it too (issue 13).
moto_env=$(scripts/moto-up.sh)
eval "$moto_env"
export GALLRING_MOTO_ENDPOINT

step "starting the Kubernetes control plane (../shared/k8s/up.sh)"
kit="../shared/k8s/up.sh"
[[ -f "$kit" ]] || {
  echo "test.sh: $kit not found: clone this repository beside shared/ (the e2e suite needs a cluster)" >&2
  exit 1
}
k8s_env=$(bash "$kit")
eval "$k8s_env"
export KUBECONFIG HELM GALLRING_K8S_CA

# The e2e scenarios run the `gallring operator` binary (cargo builds it for the integration
# tests); its logs are kept in target/e2e/<test>/.
step "cargo test (unit, property, notice timelines, CLI, chart, S3 integration, e2e on Kubernetes)"
cargo test --workspace --locked
