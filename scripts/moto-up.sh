#!/usr/bin/env bash
# Start moto's S3 server (an AWS-semantics S3 implementation from PyPI) on 127.0.0.1 as the
# second test backend beside Ceph RGW, installing it into a virtualenv first if needed.
#
#   eval "$(scripts/moto-up.sh)"    # start (or reuse) and export GALLRING_MOTO_ENDPOINT
#   scripts/moto-down.sh            # stop it
#
# moto is pinned to 5.1.22: 5.2.x answers GetBucketVersioning with a
# `GetBucketVersioningResponse` root element that the Rust SDK rejects (issue 13). Its
# dependencies are pinned too (the constraints below), so a new Werkzeug or botocore release
# cannot change what the tests see.
#
# moto accepts any credentials and keeps everything in memory: nothing to create, nothing to
# wipe. Only loopback. Progress goes to stderr; stdout carries only the `export` line, in its
# own variable so that the Ceph tests (GALLRING_S3_ENDPOINT) are unaffected.
#
# Environment:
#   GALLRING_MOTO_PORT     port (default 5055)
#   GALLRING_MOTO_DIR      state dir: pid file and log (default /tmp/gallring-moto)
#   GALLRING_MOTO_VENV     the virtualenv (default ~/.cache/gallring/moto-5.1.22)
#   GALLRING_MOTO_TIMEOUT  seconds to wait for the server (default 60)
#   GALLRING_PYTHON        the Python 3 to make the virtualenv with (default python3)
set -euo pipefail

moto_version="5.1.22"
port="${GALLRING_MOTO_PORT:-5055}"
state_dir="${GALLRING_MOTO_DIR:-/tmp/gallring-moto}"
venv="${GALLRING_MOTO_VENV:-${HOME:-/root}/.cache/gallring/moto-${moto_version}}"
timeout_s="${GALLRING_MOTO_TIMEOUT:-60}"
python="${GALLRING_PYTHON:-python3}"
endpoint="http://127.0.0.1:${port}"
pid_file="${state_dir}/moto.pid"
log_file="${state_dir}/moto.log"

log() { echo "moto-up: $*" >&2; }
die() {
  echo "moto-up: ERROR: $*" >&2
  exit 1
}

print_env() {
  echo "export GALLRING_MOTO_ENDPOINT=${endpoint}"
  exit 0
}

# moto answers an anonymous GET / (ListBuckets) with its XML, without a declaration.
moto_answers() {
  local body
  body="$(curl -s --max-time 2 "${endpoint}/" 2>/dev/null)" || return 1
  [[ "${body}" == *"<ListAllMyBucketsResult"* ]]
}

our_pid() {
  local pid
  pid="$(tr -dc '0-9' <"${pid_file}" 2>/dev/null || true)"
  [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null && echo "${pid}"
}

command -v curl >/dev/null 2>&1 || die "curl is missing (apt-get install curl)"

# ---------------------------------------------------------------- reuse
# Serialise concurrent callers; the server is started with fd 9 closed so it does not hold
# the lock.
mkdir -p "${state_dir}"
exec 9>"${state_dir}.lock"
flock -w 300 9 || die "timed out waiting for ${state_dir}.lock"
if moto_answers; then
  if our_pid >/dev/null; then
    log "moto already answers on ${endpoint}"
    print_env
  fi
  die "something that is not our moto (no live pid in ${pid_file}) answers on ${endpoint}: stop it or set GALLRING_MOTO_PORT"
fi

# ---------------------------------------------------------------- install
if ! "${venv}/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '${moto_version}')" 2>/dev/null; then
  if ! "${python}" -c "import ensurepip, venv" 2>/dev/null; then
    ((EUID == 0)) || die "${python} cannot make a virtualenv and not root: apt-get install python3-venv"
    log "installing python3-venv (apt-get update first)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends python3-venv >&2
  fi
  log "installing moto[server]==${moto_version} into ${venv} (about a minute)..."
  rm -rf -- "${venv}"
  mkdir -p "$(dirname "${venv}")"
  "${python}" -m venv "${venv}" >&2
  constraints="${venv}/constraints.txt"
  # `pip freeze` of moto[server]==5.1.22 on Python 3.11 (Debian 12), November 2026.
  cat >"${constraints}" <<'EOF'
annotated-types==0.8.0
antlr4-python3-runtime==4.13.2
attrs==26.1.0
aws-sam-translator==1.103.0
aws-xray-sdk==2.15.0
blinker==1.9.0
boto3==1.44.8
botocore==1.44.8
certifi==2026.10.19.post1
cffi==2.1.1
cfn-lint==1.41.0
charset-normalizer==3.5.3
click==8.5.1
cryptography==50.0.2
docker==7.2.0
Flask==3.1.3
flask-cors==6.0.5
graphql-core==3.3.2
idna==3.20
itsdangerous==2.2.0
Jinja2==3.1.6
jmespath==1.1.0
joserfc==1.8.0
jsonpatch==1.48
jsonpath-ng==1.16.0
jsonpointer==3.12
jsonschema==4.26.0
jsonschema-path==0.5.0
jsonschema-specifications==2025.9.1
lazy-object-proxy==1.13.0
MarkupSafe==3.0.4
moto==5.1.22
mpmath==1.3.0
networkx==3.6.1
openapi-schema-validator==0.9.0
openapi-spec-validator==0.9.0
pathable==0.6.0
py-partiql-parser==0.6.3
pycparser==3.12
pydantic==2.12.4
pydantic-settings==2.16.3
pydantic_core==2.41.5
pyparsing==3.3.3
python-dateutil==2.9.0.post0
python-dotenv==1.2.4
PyYAML==6.0.4
referencing==0.37.0
regex==2026.11.19
requests==2.34.2
responses==0.26.3
rfc3339-validator==0.1.4
rpds-py==2026.9.1
s3transfer==0.19.3
six==1.17.0
sympy==1.14.0
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9
wrapt==2.5.2
xmltodict==1.0.4
EOF
  "${venv}/bin/pip" install -q --disable-pip-version-check -c "${constraints}" \
    "moto[server]==${moto_version}" >&2 || die "pip install moto[server]==${moto_version} failed"
fi

# ---------------------------------------------------------------- start
log "starting moto ${moto_version} on ${endpoint}..."
# setsid: its own session, so a Ctrl-C in the calling shell does not stop it; stdio detached
# so `eval "$(moto-up.sh)"` does not wait on it.
setsid "${venv}/bin/moto_server" -H 127.0.0.1 -p "${port}" \
  </dev/null >>"${log_file}" 2>&1 9>&- &
echo $! >"${pid_file}"

deadline=$((SECONDS + timeout_s))
until moto_answers; do
  if ! our_pid >/dev/null; then
    tail -n 40 "${log_file}" >&2 || true
    die "moto_server exited during startup (log: ${log_file})"
  fi
  if ((SECONDS >= deadline)); then
    tail -n 40 "${log_file}" >&2 || true
    die "moto did not answer on ${endpoint} within ${timeout_s}s"
  fi
  sleep 0.3
done
log "ready: ${endpoint} (pid $(cat "${pid_file}"), log ${log_file})"
print_env
