#!/usr/bin/env bash
# Hold latency on the operator host: the time from creating a LegalHold until every object it
# selects carries `gallring.io/retention=held` in the store, with `gallring operator` run out of
# cluster (as tests/e2e does) against a real kube-apiserver and a real Ceph RGW S3 store.
#
#   scripts/hold-latency.sh [N]      # N objects in the bucket, default 20000 (at least 1000)
#
# What it does:
#   1. starts (or reuses) Ceph RGW on 127.0.0.1:7480 (scripts/s3-up.sh) and the control plane
#      (../shared/k8s/up.sh: etcd + kube-apiserver on loopback);
#   2. builds the release binaries and seeds N objects `bench/{i%256:03}/{i:08}.wav` into the
#      bucket hold-latency-N (recreated);
#   3. installs the chart into a fresh namespace (CRDs, RBAC, ServiceAccount; its Deployment
#      never runs a pod: there are no nodes), creates the credentials Secret, a RetentionPolicy
#      and a RecordingBucket equivalent to `bench_policy()` in operator/examples/bench.rs, and
#      runs `gallring operator` here with the chart's arguments, the chart's RBAC and an index
#      directory of its own;
#   4. waits for the operator's first pass over the bucket (status.lastScan set);
#   5. for h in 1, 100, 1000 (disjoint selections, chosen as `held_keys` in bench.rs does):
#      records t0, creates a LegalHold selecting those h keys, and reads the store directly
#      (GetObjectTagging, 16 in flight, boto3) until every one of them is tagged `held`.
#
# It leaves the S3 store and the cluster running (stop them with scripts/s3-down.sh and
# ../shared/k8s/down.sh), and its namespace in the cluster; the next run removes namespaces of
# earlier runs. The operator it started is stopped on exit. Everything binds to 127.0.0.1.
#
# Environment: GALLRING_MOTO_VENV (the virtualenv scripts/moto-up.sh makes, whose boto3 is
# used; default ~/.cache/gallring/moto-5.1.22), HOLD_LATENCY_TIMEOUT (seconds to wait for one
# hold's objects, default 600), HOLD_LATENCY_RUST_LOG (the operator's RUST_LOG instead of the
# chart's).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "hold-latency: $*" >&2; }
die() {
  echo "hold-latency: ERROR: $*" >&2
  exit 1
}

n="${1:-20000}"
[[ "${n}" =~ ^[0-9]+$ ]] && ((n >= 1000 && n <= 4000000)) ||
  die "N must be a whole number from 1000 (the largest hold selects 1000 distinct keys) to 4000000, not '${n}'"
(($# <= 1)) || die "usage: scripts/hold-latency.sh [N]"

bucket="hold-latency-${n}"
kit=../shared/k8s/up.sh
hold_timeout="${HOLD_LATENCY_TIMEOUT:-600}"
# The tag and value gallring writes on a held object (RETENTION_TAG in
# operator/src/retention/model.rs, HELD_TAG_VALUE in operator/src/retention/lifecycle.rs).
retention_tag="gallring.io/retention"
held_value="held"
# Pid of an operator an earlier run of this script left behind (killed before its trap ran).
pid_file=/tmp/gallring-hold-latency.operator.pid

for c in python3 curl; do
  command -v "${c}" >/dev/null || die "${c} is missing"
done

# A different offset for each hold, so that the selections are disjoint (every key of a hold
# then needs its writes), and one more for the same number of keys protected by hand right
# before it (`bench raw-hold`, the floor): for each, the first offset above the previous one
# whose keys (held_keys in bench.rs: step N/h, i = (j*step + offset) % N) no earlier selection
# has. For N a multiple of 1000 (from 6000 up) the holds get 1, 3, 5 and the floors 2, 4, 6.
mapfile -t offsets < <(python3 - "${n}" <<'PY'
import sys
n = int(sys.argv[1])
used, off = set(), 0
for h in (1, 100, 1000):
    step = max(n // h, 1)
    picked = []
    for _ in ("hold", "by hand"):
        while True:
            off += 1
            sel = {(j * step + off) % n for j in range(h)}
            if len(sel) == h and not sel & used:
                break
            if off > min(n, 10000):
                sys.exit(f"no offset gives {h} keys disjoint from the earlier selections in {n} objects")
        used |= sel
        picked.append(off)
    print(h, *picked)
PY
)
((${#offsets[@]} == 3)) || die "N=${n}: cannot choose three disjoint selections (see above); try a multiple of 1000 from 6000 up"

# ------------------------------------------------------------------------------ the run's files
run="$(mktemp -d /tmp/hold-latency.XXXXXX)"
oplog="${run}/operator.log"
op_pid=""
poll_pid=""

stop_operator() {
  [[ -n "${op_pid}" ]] || return 0
  if kill -0 "${op_pid}" 2>/dev/null; then
    log "stopping the operator (pid ${op_pid})"
    # As the chart's pod: SIGTERM (it finishes a running pass, releases the Lease), then
    # SIGKILL after terminationGracePeriodSeconds (30).
    kill -TERM "${op_pid}" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "${op_pid}" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "${op_pid}" 2>/dev/null; then
      log "the operator did not stop within 30 s of SIGTERM: SIGKILL"
      kill -KILL "${op_pid}" 2>/dev/null || true
    fi
    wait "${op_pid}" 2>/dev/null || true
  fi
  op_pid=""
  rm -f "${pid_file}"
}

cleanup() {
  local rc=$?
  if [[ -n "${poll_pid}" ]] && kill -0 "${poll_pid}" 2>/dev/null; then
    kill -TERM "${poll_pid}" 2>/dev/null || true
  fi
  stop_operator
  # The index is a cache (tens of MiB for large N); the logs stay.
  rm -rf "${run}/index"
  if ((rc != 0)) && [[ -s "${oplog}" ]]; then
    echo "---- last 20 lines of the operator log ${oplog} ----" >&2
    tail -n 20 "${oplog}" >&2 || true
  fi
  log "files of this run (operator log, manifests, helm output): ${run}"
  log "left running: the S3 store (scripts/s3-down.sh stops it) and the cluster" \
    "(../shared/k8s/down.sh stops it)${ns:+; namespace ${ns} stays}"
  exit "${rc}"
}
ns=""
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls `cmd...` every second until it succeeds; dies after TIMEOUT seconds, saying WHAT.
wait_until() { # TIMEOUT WHAT cmd...
  local timeout=$1 what=$2 start=${SECONDS}
  shift 2
  until "$@"; do
    ((SECONDS - start < timeout)) || die "timed out after ${timeout} s waiting for ${what}"
    sleep 1
  done
}

operator_alive() {
  [[ -n "${op_pid}" ]] && kill -0 "${op_pid}" 2>/dev/null
}

# ------------------------------------------------------------------------------ 1. store, cluster
log "starting (or reusing) the S3 store: Ceph RGW on 127.0.0.1"
# Assigned first: a failing start then stops the script (`eval "$(...)"` alone would not).
s3_env="$(scripts/s3-up.sh)" || die "scripts/s3-up.sh failed (see above)"
eval "${s3_env}"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION GALLRING_S3_ENDPOINT

[[ -f "${kit}" ]] || die "${kit} not found: clone this repository beside shared/ (it provides the Kubernetes control plane)"
log "starting (or reusing) the Kubernetes control plane (${kit})"
k8s_env="$(bash "${kit}")" || die "${kit} failed (see above)"
eval "${k8s_env}"
export KUBECONFIG HELM GALLRING_K8S_CA GALLRING_K8S_DIR
command -v kubectl >/dev/null || die "kubectl is missing (${kit} installs it)"
api_server="$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
[[ -n "${api_server}" ]] || die "no API server in ${KUBECONFIG}"

# ------------------------------------------------------------------------------ 2. python + boto3
# boto3 from the virtualenv scripts/moto-up.sh makes (moto[server] pulls in boto3); without it,
# a virtualenv of our own with the same boto3 (PyPI).
moto_venv="${GALLRING_MOTO_VENV:-${HOME:-/root}/.cache/gallring/moto-5.1.22}"
if "${moto_venv}/bin/python" -c 'import boto3' 2>/dev/null; then
  py="${moto_venv}/bin/python"
else
  own_venv="${HOME:-/root}/.cache/gallring/boto3-1.44.8"
  if ! "${own_venv}/bin/python" -c 'import boto3' 2>/dev/null; then
    log "no boto3 in ${moto_venv}: installing boto3==1.44.8 into ${own_venv}"
    rm -rf -- "${own_venv}"
    mkdir -p "$(dirname "${own_venv}")"
    python3 -m venv "${own_venv}" >&2 ||
      die "python3 -m venv failed (apt-get install python3-venv)"
    "${own_venv}/bin/pip" install -q --disable-pip-version-check boto3==1.44.8 >&2 ||
      die "pip install boto3==1.44.8 failed"
  fi
  py="${own_venv}/bin/python"
fi

# ------------------------------------------------------------------------------ 3. build, seed
log "building the release binaries (gallring, examples seed and bench)"
cargo build --release --locked --bin gallring --example seed --example bench ||
  die "cargo build failed"
gallring="target/release/gallring"
seed="target/release/examples/seed"

# An operator an earlier run left behind would reconcile the same S3 bucket: stop it first.
if [[ -f "${pid_file}" ]]; then
  old="$(tr -dc '0-9' <"${pid_file}")"
  if [[ -n "${old}" ]] && tr '\0' ' ' <"/proc/${old}/cmdline" 2>/dev/null | grep -q -- "--identity=hold-latency-"; then
    log "stopping the operator an earlier run left behind (pid ${old})"
    kill -TERM "${old}" 2>/dev/null || true
    sleep 2
    kill -KILL "${old}" 2>/dev/null || true
  fi
  rm -f "${pid_file}"
fi

log "seeding ${n} objects into bucket ${bucket} (recreated)"
"${seed}" --bucket "${bucket}" --layout flat --count "${n}" --recreate --concurrency 32 >&2 ||
  die "seeding ${bucket} failed"

# ------------------------------------------------------------------------------ 4. the cluster side
# Namespaces of earlier runs: their finalizers need an operator, which no longer runs; strip
# them so the namespaces can go (not waited for).
for old_ns in $(kubectl get ns -l gallring.io/hold-latency=true -o jsonpath='{.items[*].metadata.name}'); do
  log "removing namespace ${old_ns} of an earlier run"
  for kind in legalholds.gallring.io recordingbuckets.gallring.io; do
    for obj in $(kubectl -n "${old_ns}" get "${kind}" -o name 2>/dev/null); do
      kubectl -n "${old_ns}" patch "${obj}" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    done
  done
  kubectl delete ns "${old_ns}" --wait=false >/dev/null 2>&1 || true
done

# The CRDs, server-side (as the e2e harness does; a `helm install` never upgrades them).
kubectl apply --server-side --force-conflicts -f crds/gallring.yaml >/dev/null ||
  die "applying crds/gallring.yaml failed"
kubectl wait --for=condition=Established --timeout=60s -f crds/gallring.yaml >/dev/null ||
  die "the gallring CRDs did not become Established"

ns="hold-latency-$(date +%s)"
release=gallring
log "namespace ${ns}: chart ${release} (namespace mode), Secret, RetentionPolicy, RecordingBucket"
kubectl create namespace "${ns}" >/dev/null
kubectl label namespace "${ns}" gallring.io/hold-latency=true >/dev/null
"${HELM}" install "${release}" charts/gallring -n "${ns}" --skip-crds \
  --set "watchNamespace=${ns}" >"${run}/helm.log" 2>&1 ||
  die "helm install failed: $(cat "${run}/helm.log")"

# What the chart runs, read back from its Deployment: arguments, RUST_LOG, ServiceAccount.
kubectl -n "${ns}" get deployment -l "app.kubernetes.io/instance=${release}" -o json >"${run}/deployment.json"
mapfile -t chart < <("${py}" - "${run}/deployment.json" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
if not items:
    sys.exit("the chart created no Deployment")
spec = items[0]["spec"]["template"]["spec"]
c = spec["containers"][0]
env = {e["name"]: e.get("value") for e in c.get("env", [])}
print(spec["serviceAccountName"])
print(env.get("RUST_LOG") or "info")
for a in c["args"]:
    print(a)
PY
)
((${#chart[@]} >= 3)) || die "the chart's Deployment has no arguments: ${run}/deployment.json"
sa="${chart[0]}"
# HOLD_LATENCY_RUST_LOG replaces it, e.g. to see the pass's steps at debug level.
rust_log="${HOLD_LATENCY_RUST_LOG:-${chart[1]}}"
[[ "${chart[2]}" == operator ]] || die "the chart's Deployment does not run 'gallring operator': ${chart[*]:2}"
metrics_port="$("${py}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
op_args=()
skip=""
for a in "${chart[@]:2}"; do
  if [[ -n "${skip}" ]]; then
    skip=""
    continue
  fi
  case "${a}" in
    --metrics-addr | --index-dir) skip=1 ;;
    --metrics-addr=* | --index-dir=*) ;;
    *) op_args+=("${a}") ;;
  esac
done
op_args+=("--metrics-addr=127.0.0.1:${metrics_port}" "--index-dir=${run}/index" "--identity=hold-latency-$$")
mkdir -p "${run}/index" "${run}/home"

# The operator authenticates as the chart's ServiceAccount (a token from the TokenRequest API,
# as tests/e2e/harness.rs does), so it has exactly the chart's RBAC; the admin kubeconfig is
# only used by this script itself.
token="$(kubectl -n "${ns}" create token "${sa}" --duration=2h)" ||
  die "cannot get a token for ServiceAccount ${ns}/${sa}"
sa_kubeconfig="${run}/sa.kubeconfig"
# Written as a file (as the harness does), so the token never appears on a command line.
(
  umask 077
  cat >"${sa_kubeconfig}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hold-latency
  cluster:
    server: ${api_server}
    certificate-authority: ${GALLRING_K8S_CA}
users:
- name: ${sa}
  user:
    token: ${token}
contexts:
- name: hold-latency
  context:
    cluster: hold-latency
    user: ${sa}
    namespace: ${ns}
current-context: hold-latency
EOF
)
KUBECONFIG="${sa_kubeconfig}" kubectl auth can-i patch recordingbuckets.gallring.io --subresource=status -n "${ns}" >/dev/null ||
  die "the ServiceAccount token does not work (or lacks the chart's RBAC): ${sa_kubeconfig}"

# The store's credentials, as a RecordingBucket takes them: a Secret it references.
kubectl -n "${ns}" create secret generic gallring-s3 \
  --from-literal=AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID}" \
  --from-literal=AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY}" >/dev/null

# bench_policy() in operator/examples/bench.rs as manifests: purpose documentation, audio kept
# 12 months, bench/ classified as audio, enforcement Lifecycle, recordedAt from LastModified
# (the default: no spec.recordedAt), grace P2D, scan P1D, verify P7D. The CRD requires a legal
# basis, which the bench's in-memory policy leaves empty.
cat >"${run}/policy.yaml" <<EOF
apiVersion: gallring.io/v1alpha1
kind: RetentionPolicy
metadata:
  name: bench
  namespace: ${ns}
spec:
  controller:
    legalName: Controller A/S
  purposes:
    - name: documentation
      legalBasis:
        article6: legitimateInterests
      retain:
        audio: P12M
---
apiVersion: gallring.io/v1alpha1
kind: RecordingBucket
metadata:
  name: bench
  namespace: ${ns}
spec:
  s3:
    bucket: ${bucket}
    endpoint: ${GALLRING_S3_ENDPOINT}
    region: ${AWS_REGION}
    forcePathStyle: true
    credentials:
      secretRef:
        name: gallring-s3
  policyRef:
    name: bench
  classify:
    - name: audio
      match:
        prefix: bench/
      kind: audio
      purposes: [documentation]
  enforcement: Lifecycle
  gracePeriod: P2D
  scanInterval: P1D
  verifyInterval: P7D
EOF
kubectl apply --server-side -f "${run}/policy.yaml" >/dev/null || die "applying ${run}/policy.yaml failed"

# ------------------------------------------------------------------------------ 5. the operator
export MALLOC_ARENA_MAX=2 # as the chart's Deployment runs it
log "starting: gallring ${op_args[*]} (log ${oplog})"
# Nothing ambient, as in the e2e harness: no AWS_* variables, no admin kubeconfig.
env -i PATH="${PATH}" HOME="${run}/home" KUBECONFIG="${sa_kubeconfig}" RUST_LOG="${rust_log}" \
  MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX}" "${gallring}" "${op_args[@]}" </dev/null >"${oplog}" 2>&1 &
op_pid=$!
echo "${op_pid}" >"${pid_file}"

# status.lastScan (the start of the last completed scan) is written by the pass report of a
# completed pass only; the log line "pass complete" says the same.
bucket_state() { # prints lastScan, objects and the conditions, separated by \x1f
  kubectl -n "${ns}" get recordingbucket bench -o json >"${run}/bucket.json" 2>/dev/null || return 1
  "${py}" - "${run}/bucket.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])).get("status") or {}
conds = "; ".join("{}={} ({}: {})".format(c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
                  for c in s.get("conditions", []))
print(s.get("lastScan") or "", s.get("objects", ""), f"held {s.get('held', '-')}; " + (conds or "no conditions"), sep="\x1f")
PY
}
first_pass_done() {
  operator_alive || die "the operator exited (log ${oplog})"
  local state
  state="$(bucket_state)" || return 1
  if [[ "${state}" != "${last_state:-}" ]]; then
    log "RecordingBucket ${ns}/bench: ${state//$'\x1f'/ | }"
    last_state="${state}"
  fi
  [[ -n "${state%%$'\x1f'*}" ]]
}
first_timeout=$((120 + n / 100))
log "waiting for the operator's first pass over ${n} objects (it tags every one; up to ${first_timeout} s)"
pass_start=${SECONDS}
wait_until "${first_timeout}" "the first pass (RecordingBucket ${ns}/bench status.lastScan)" first_pass_done
IFS=$'\x1f' read -r last_scan objects conds <<<"$(bucket_state)"
log "first pass complete after ~$((SECONDS - pass_start)) s: status.lastScan=${last_scan} (the pass's start; written at its end), status.objects=${objects}; ${conds}"
grep -m1 '"pass complete"' "${oplog}" >&2 || true
[[ "${objects}" == "${n}" ]] || log "WARNING: the first pass counted ${objects} objects, not ${n}"

# ------------------------------------------------------------------------------ 6. the holds
# The poller: computes the keys of one hold (held_keys in bench.rs), checks them in the store
# and writes the LegalHold manifest; says it is ready; waits for t0 (a file, so a poller that
# died cannot block the script); then becomes `bench wait-held`, which reads the tags of the
# keys not yet seen held in key order, 16 at a time, until every key is held: a window with a
# key still missing is read again after 10 ms, one found all held is followed by the next at
# once, so the reads follow the operator (which protects in key order) and confirm its last key
# soon after it is written. A key seen held stays held (the hold is active), so it is not read
# again. Prints one JSON line: seconds from t0 to the end of the read that showed the last key
# held (the figure reported), seconds to the start of the last read that showed a key not yet
# held (the true time lies between the two), rounds (windows read), requests.
cat >"${run}/poll.py" <<'PY'
import argparse, json, os, sys, time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

p = argparse.ArgumentParser()
for a in ("bucket", "ns", "name", "manifest", "ready", "go", "tag", "held", "waiter"):
    p.add_argument("--" + a, required=True)
for a in ("count", "keys", "offset"):
    p.add_argument("--" + a, type=int, required=True)
p.add_argument("--timeout", type=float, required=True)
a = p.parse_args()

def fail(msg):
    print(f"poller: {msg}", file=sys.stderr)
    sys.exit(1)

# held_keys() in operator/examples/bench.rs.
step = max(a.count // a.keys if a.keys else 1, 1)
keys = [f"bench/{i % 256:03}/{i:08}.wav" for i in ((j * step + a.offset) % max(a.count, 1) for j in range(a.keys))]
if len(set(keys)) != len(keys):
    fail(f"the selection of {a.keys} keys (offset {a.offset}) repeats keys")

s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["GALLRING_S3_ENDPOINT"],
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
    config=Config(s3={"addressing_style": "path"}, max_pool_connections=16,
                  retries={"max_attempts": 3, "mode": "standard"}),
)
pool = ThreadPoolExecutor(16)

def retention(key):
    """(key, the tag's value or None when the key is missing, request start, response end)"""
    start = time.time()
    try:
        r = s3.get_object_tagging(Bucket=a.bucket, Key=key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return key, None, start, time.time()
        fail(f"GetObjectTagging {a.bucket}/{key}: {e}")
    except Exception as e:  # the store failed: say which key and why
        fail(f"GetObjectTagging {a.bucket}/{key}: {e}")
    tags = {t["Key"]: t["Value"] for t in r.get("TagSet", [])}
    return key, tags.get(a.tag, ""), start, time.time()

# Before: every key exists and none is held yet (a held one means overlapping selections or a
# stale bucket, and would make the measurement meaningless).
before = {}
for key, value, _, _ in pool.map(retention, keys):
    if value is None:
        fail(f"{key} is not in bucket {a.bucket}")
    if value == a.held:
        fail(f"{key} is already tagged {a.tag}={a.held} before its hold exists")
    before[value or "(no tag)"] = before.get(value or "(no tag)", 0) + 1
summary = ", ".join(f"{v} x{c}" for v, c in sorted(before.items()))

with open(a.manifest, "w") as f:
    json.dump({
        "apiVersion": "gallring.io/v1alpha1",
        "kind": "LegalHold",
        "metadata": {"name": a.name, "namespace": a.ns},
        "spec": {
            "bucketRef": {"name": "bench"},
            "reason": "Complaint",
            "case": f"HOLD-LATENCY-{a.keys}",
            "owner": "hold-latency",
            "select": {"keys": keys},
        },
    }, f)
with open(a.ready + ".tmp", "w") as f:
    f.write(f"{len(keys)} keys, {a.tag} before the hold: {summary}\n")
os.rename(a.ready + ".tmp", a.ready)

# The waiting and reading after t0 is done by `bench wait-held` (Rust, the AWS SDK): boto3
# spends a few ms of CPU per request, and the poller shares two cores with the store and the
# operator. It waits for the t0 file itself (see operator/examples/bench.rs).
sys.stdout.flush()
os.execv(a.waiter, [a.waiter, "wait-held", "--bucket", a.bucket, "--count", str(a.count),
                    "--hold-keys", str(a.keys), "--hold-offset", str(a.offset), "--go", a.go,
                    "--timeout", str(a.timeout), "--concurrency", "16"])
PY

# The operator's log lines since t0 (JSON lines from --json-logs): those about protecting
# objects ahead of the listing; failing that, the hold's pass and anything at WARN or above.
log_lines_since() { # T0
  "${py}" - "${oplog}" "$1" <<'PY'
import json, re, sys
from datetime import datetime, timezone
path, t0 = sys.argv[1], float(sys.argv[2])

def when(ts):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", ts or "")
    if not m:
        return None
    frac = (m.group(2) or ".0")[:7]
    return datetime.fromisoformat(m.group(1) + frac + "+00:00").timestamp()

lines = []
for raw in open(path, errors="replace"):
    try:
        e = json.loads(raw)
    except ValueError:
        continue
    t = when(e.get("timestamp"))
    if t is None or t < t0:
        continue
    fields = dict(e.get("fields") or {})
    msg = str(fields.pop("message", ""))
    lines.append((t, e.get("level", ""), msg, fields, raw.strip()))

def show(t, level, msg, fields, raw):
    extra = " ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}" for k, v in fields.items())
    ts = datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    print(f"    operator {ts}Z (t0+{t - t0:.3f} s) {level} {msg} {extra}".rstrip())

ahead = [l for l in lines if re.search(r"protect|ahead of", l[2] + " " + json.dumps(l[3]), re.I)]
if ahead:
    for l in ahead:
        show(*l)
else:
    print("    operator: no log line about protecting objects ahead of the listing; the hold's pass:")
    for l in lines:
        if l[2] == "pass complete" or l[1] in ("WARN", "ERROR"):
            show(*l)
PY
}

hold_done() { # NAME H: the hold's pass has completed (status.matched written)
  operator_alive || die "the operator exited (log ${oplog})"
  local matched
  matched="$(kubectl -n "${ns}" get legalhold "$1" -o jsonpath='{.status.matched}' 2>/dev/null)" || return 1
  [[ "${matched}" == "$2" ]]
}


# Idle: the operator's S3 request count (its /metrics) unchanged for 3 s in a row, so that no
# pass (the first one's requeue, a late watch event) is running when a hold is created.
s3_requests() {
  curl -s --max-time 2 "http://127.0.0.1:${metrics_port}/metrics" |
    awk '$1 ~ /^gallring_s3_request_duration_seconds_count/ { s += $2 } END { printf "%d\n", s }'
}
operator_idle() {
  operator_alive || die "the operator exited (log ${oplog})"
  local now
  now="$(s3_requests)" || return 1
  if [[ "${now}" == "${idle_last:-}" ]]; then
    idle_same=$((idle_same + 1))
  else
    idle_same=0
  fi
  idle_last="${now}"
  ((idle_same >= 3))
}

poller_ready() { # READY-FILE
  [[ -f "$1" ]] && return 0
  kill -0 "${poll_pid}" 2>/dev/null || {
    wait "${poll_pid}" || true
    poll_pid=""
    die "the poller failed before the hold was created (see above)"
  }
  return 1
}

results=()
for ho in "${offsets[@]}"; do
  read -r h offset by_hand_offset <<<"${ho}"
  name="hold-${h}"
  manifest="${run}/${name}.json"
  ready="${run}/${name}.ready"
  go="${run}/${name}.t0"
  result="${run}/${name}.result"
  "${py}" "${run}/poll.py" --bucket "${bucket}" --ns "${ns}" --name "${name}" --manifest "${manifest}" \
    --ready "${ready}" --go "${go}" --tag "${retention_tag}" --held "${held_value}" \
    --count "${n}" --keys "${h}" --offset "${offset}" --timeout "${hold_timeout}" \
    --waiter "target/release/examples/bench" >"${result}" &
  poll_pid=$!
  wait_until 120 "the poller of ${name} to check its keys in the store" poller_ready "${ready}"
  log "${name} (offset ${offset}): $(cat "${ready}")"
  idle_last=""
  idle_same=0
  wait_until 300 "the operator to be idle (no S3 request for 3 s)" operator_idle
  # The floor, right before: as many other keys protected by hand (bench raw-hold: tags read
  # and written with `baseline-held=1` added, on Object Lock the legal hold read and set too;
  # in key order, 16 in flight; no Kubernetes, no journal), timed by the same checker as the
  # hold (so that its reads weigh on both alike), from right before the process starts.
  bench=target/release/examples/bench
  "${bench}" wait-held --bucket "${bucket}" --count "${n}" --hold-keys "${h}" \
    --hold-offset "${by_hand_offset}" --held-tag baseline-held=1 --go "${go}.by-hand" \
    --timeout "${hold_timeout}" --concurrency 16 >"${result}.by-hand" &
  hand_pid=$!
  date +%s.%N >"${go}.by-hand.tmp" && mv "${go}.by-hand.tmp" "${go}.by-hand"
  "${bench}" raw-hold --bucket "${bucket}" --count "${n}" --hold-keys "${h}" \
    --hold-offset "${by_hand_offset}" --concurrency 16 >/dev/null 2>"${run}/${name}.by-hand.log" ||
    die "${name}: bench raw-hold failed: $(cat "${run}/${name}.by-hand.log")"
  wait "${hand_pid}" || die "${name}: the checker of the keys protected by hand failed"
  by_hand="$("${py}" -c 'import json, sys; print("%.3f" % json.load(open(sys.argv[1]))["seconds"])' "${result}.by-hand")"

  t0="$(date +%s.%N)"
  echo "${t0}" >"${go}.tmp" && mv "${go}.tmp" "${go}"
  kubectl create -f "${manifest}" >/dev/null || die "creating LegalHold ${ns}/${name} failed"
  created="$(date +%s.%N)"
  if ! wait "${poll_pid}"; then
    poll_pid=""
    die "${name}: the store did not show every selected key ${retention_tag}=${held_value} (see above)"
  fi
  poll_pid=""
  read -r seconds rounds requests after < <("${py}" - "${result}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("%.3f" % r["seconds"], r["rounds"], r["requests"], "%.3f" % r["after"])
PY
) || true
  [[ -n "${requests:-}" ]] || die "${name}: the poller's result is unreadable: ${result}"
  line="$(printf '%4d keys: protected after %s s (%d windows of keys read); by hand right before, other keys: %s s' \
    "${h}" "${seconds}" "${rounds}" "${by_hand}")"
  echo "${line}"
  printf '    (all held between %s and %s s after t0, by the reads; kubectl create took %.3f s; %d GetObjectTagging requests)\n' \
    "${after}" "${seconds}" "$(python3 -c "print(${created} - ${t0})")" "${requests}"
  # The hold's pass goes on with the listing after the hold-first step: let it finish (the
  # hold's status.matched is written at its end) so the next hold does not wait for it.
  wait_until 300 "LegalHold ${ns}/${name} status.matched=${h} (the end of its pass)" hold_done "${name}" "${h}"
  ops="$(log_lines_since "${t0}")"
  echo "${ops}"
  results+=("${line}" "$(printf '    (all held between %s and %s s after t0, by the reads)' "${after}" "${seconds}")" "${ops}")
done

printf '\nN=%s objects in bucket %s, Ceph RGW on loopback, gallring operator (release build) out of cluster\n' "${n}" "${bucket}"
printf 'against kube-apiserver %s, namespace %s; t0 is right before `kubectl create` of the LegalHold\n\n' "${api_server}" "${ns}"
printf '%s\n' "${results[@]}"
