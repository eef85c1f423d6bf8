#!/usr/bin/env bash
# Print the environment a client needs to talk to the local Ceph RADOS Gateway
# started by scripts/s3-up.sh. Starts nothing.
#
#   eval "$(scripts/s3-env.sh)"
#
# The keys are fixed test credentials of the throw-away cluster (they only
# ever exist on 127.0.0.1), so they can be printed and committed safely.
set -euo pipefail

port="${GALLRING_S3_PORT:-7480}"

# RGW validates SigV4 against whatever region the client signs with, and the
# default zonegroup accepts "us-east-1" (no LocationConstraint is sent on
# CreateBucket for it), so that is the least surprising choice for SDKs.
cat <<EOF
export AWS_ACCESS_KEY_ID=gallring-test-access
export AWS_SECRET_ACCESS_KEY=gallring-test-secret
export AWS_REGION=us-east-1
export GALLRING_S3_ENDPOINT=http://127.0.0.1:${port}
EOF
