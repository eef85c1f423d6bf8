#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy with -D warnings, and all tests, including the
# integration tests against a real S3 server (Ceph RGW on 127.0.0.1, started here if needed).
#
#   scripts/test.sh
#
# Needs: a Rust toolchain with rustfmt and clippy, curl, and root for `apt-get install` of the
# Ceph packages on first use (scripts/s3-up.sh installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "starting the S3 server (Ceph RGW on loopback)"
eval "$(scripts/s3-up.sh)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION GALLRING_S3_ENDPOINT

step "cargo test (unit, property, notice timelines, CLI, S3 integration)"
cargo test --workspace --locked
