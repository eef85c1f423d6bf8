#!/usr/bin/env bash
# Start a throw-away, single-node Ceph cluster with a RADOS Gateway (S3) on
# 127.0.0.1 for integration tests and demos, installing Debian's Ceph
# packages first if they are missing.
#
#   eval "$(scripts/s3-up.sh)"      # start (or reuse) and export the env
#   scripts/s3-env.sh               # print the env again
#   scripts/s3-down.sh              # stop and wipe
#
# Layout: one monitor, one OSD backed by memstore (all object data lives in
# the OSD's RAM, nothing is written to a disk image), one radosgw. No mgr: the
# data path (mon + osd + rgw) works without it; only `ceph -s`-style PG
# statistics and mgr modules are missing.
#
# Everything binds to 127.0.0.1 only. Progress goes to stderr; stdout carries
# only the `export ...` lines from s3-env.sh.
#
# Environment:
#   GALLRING_CEPH_DIR      state dir (default /tmp/gallring-ceph)
#   GALLRING_S3_PORT       RGW port (default 7480)
#   GALLRING_CEPH_TIMEOUT  seconds to wait for each daemon (default 60)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state_dir="${GALLRING_CEPH_DIR:-/tmp/gallring-ceph}"
port="${GALLRING_S3_PORT:-7480}"
timeout_s="${GALLRING_CEPH_TIMEOUT:-60}"
endpoint="http://127.0.0.1:${port}"

conf="${state_dir}/ceph.conf"
log_dir="${state_dir}/log"
run_dir="${state_dir}/run"
mon_dir="${state_dir}/mon"
osd_dir="${state_dir}/osd"

access_key="gallring-test-access"
secret_key="gallring-test-secret"
rgw_name="client.rgw.gallring"

log() { echo "s3-up: $*" >&2; }
die() {
  echo "s3-up: ERROR: $*" >&2
  exit 1
}

# Print the tail of a daemon log to stderr (for failure reports).
show_log() {
  local f="${log_dir}/$1.log"
  if [[ -f "${f}" ]]; then
    echo "---- last 40 lines of ${f} ----" >&2
    tail -n 40 "${f}" >&2 || true
    echo "----" >&2
  fi
}

rgw_answers() {
  # Anonymous GET / is ListBuckets; RGW answers it with an XML document.
  local body
  body="$(curl -s --max-time 2 "${endpoint}/" 2>/dev/null)" || return 1
  [[ "${body}" == *"<?xml"* ]]
}

# The ceph CLI/admin tools, pinned to our conf. `--conf` is also what
# s3-down.sh's fallback matches on.
ceph_cli() { timeout 30 ceph --conf "${conf}" --connect-timeout 10 "$@"; }
rgw_admin() { timeout 60 radosgw-admin --conf "${conf}" -n client.admin "$@"; }

# ---------------------------------------------------------------- reuse
# Serialise concurrent callers (e.g. several test binaries each running this
# script): the second one waits and then finds RGW answering (with the user
# already created). Daemons are started with fd 9 closed so they don't keep
# holding the lock.
mkdir -p "$(dirname "${state_dir}")"
exec 9>"${state_dir}.lock"
if ! flock -w 180 9; then
  die "timed out waiting for ${state_dir}.lock"
fi
if command -v curl >/dev/null 2>&1 && rgw_answers; then
  log "RGW already answers on ${endpoint}"
  exec "${script_dir}/s3-env.sh"
fi

# ---------------------------------------------------------------- install
need_pkgs=(radosgw ceph-mon ceph-osd ceph-common curl)
missing=()
for p in "${need_pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("${p}")
  fi
done
if ((${#missing[@]} > 0)); then
  ((EUID == 0)) || die "packages missing (${missing[*]}) and not root; install them first"
  log "installing ${missing[*]} (apt-get update first)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # Plain `install` (with Recommends) is what was verified on Debian 12.
  apt-get install -y -qq "${need_pkgs[@]}" >&2
fi
ceph_version="$(ceph --version 2>/dev/null || true)"
log "ceph version: ${ceph_version}"

# ---------------------------------------------------------------- fresh state
# Anything left in the state dir is stale: the OSD keeps its data in RAM, so a
# cluster whose RGW does not answer cannot be resumed. Start from scratch.
if [[ -e "${state_dir}" ]]; then
  log "cleaning stale state in ${state_dir}"
  "${script_dir}/s3-down.sh"
fi
mkdir -p "${log_dir}" "${run_dir}" "${mon_dir}" "${osd_dir}"

fsid="$(cat /proc/sys/kernel/random/uuid)"
osd_uuid="$(cat /proc/sys/kernel/random/uuid)"

log "writing ${conf}"
cat >"${conf}" <<EOF
[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
# Bind every daemon to loopback only.
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
run dir = ${run_dir}
pid file = ${run_dir}/\$name.pid
admin socket = ${run_dir}/\$name.asok
log file = ${log_dir}/\$name.log
log to stderr = false
err to stderr = false
# Test cluster on loopback: no cephx at all, so no keyrings to manage.
auth cluster required = none
auth service required = none
auth client required = none
# With auth "none" the msgr2 "secure" mode cannot be negotiated. Without these
# lines radosgw's mon connection fails with "get_initial_auth_request
# returned -13" (EACCES) and retries forever (verified on 16.2.15); plain
# clients only get through because their default also allows crc. Prefer crc
# everywhere.
ms mon client mode = crc secure
ms client mode = crc secure
ms service mode = crc secure
ms cluster mode = crc secure
# One OSD: single replica pools, and let CRUSH place replicas per OSD rather
# than per host.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
# RGW creates ~8 pools; keep the PG count (and so memory/startup) small.
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon warn on pool no redundancy = false
# /tmp may be fairly full on CI machines; don't let the mon shut itself down.
mon data avail crit = 0
mon data avail warn = 0
debug ms = 0
# Test-only speed-up: the mon batches map changes for up to 1 s by default;
# RGW creates its pools one by one at first start, so this adds up.
paxos propose interval = 0.1

[mon]
mon data = ${mon_dir}
mon allow pool delete = true
mon cluster log file = ${log_dir}/mon-cluster.log

[osd]
osd data = ${osd_dir}
# Keep all object data in RAM: fast, no disk image, gone on stop.
osd objectstore = memstore
# memstore's advertised capacity (default 1 GiB). Memory is only used for what
# is actually stored; this just keeps the OSD from reporting "full" early.
memstore device bytes = 4294967296
# RGW needs its object classes (cls_rgw, cls_lock, ...) loadable.
osd class load list = *
osd class default list = *
# Few cores: don't spawn dozens of op threads.
osd op num shards = 2
osd op num threads per shard = 2

# RGW settings shared by radosgw and radosgw-admin: the admin tool must see the
# same LC shard count and the same lifecycle "day" length, or
# "radosgw-admin lc list/process" look at other shards / use real days.
[client]
# Lifecycle in "debug" mode: one lifecycle *day* lasts 10 seconds, so an
# Expiration of Days=1 fires ~10-25 s after the object is written. In this
# mode RGW also ignores "rgw lifecycle work time" (always "may run") and
# re-schedules the LC pass every interval instead of once a day; the work
# time is widened anyway so nothing depends on the wall clock.
rgw lc debug interval = 10
rgw lifecycle work time = 00:00-23:59
# Few LC shards so a pass has little to walk, and one worker thread each for
# buckets/work pool is plenty for tests (2-core machines).
rgw lc max objs = 4
rgw lc max worker = 1
rgw lc max wp worker = 1
# Release the RAM of deleted/expired objects quickly (memstore).
rgw gc obj min wait = 10
rgw gc processor period = 10

[${rgw_name}]
# tcp_nodelay: without it small responses (GetObjectTagging, ~1 KiB XML) wait ~40 ms on
# Nagle + delayed ACK, which dominates every per-object request.
rgw frontends = beast endpoint=127.0.0.1:${port} tcp_nodelay=1
# Deliberately no "rgw zonegroup/zone" here: naming them makes radosgw look
# them up instead of creating the default realm-less zonegroup/zone on first
# start ("failed reading zonegroup info: ret -2").
# Log level 1 still logs one line per request (the beast access log).
debug rgw = 1
EOF

export CEPH_CONF="${conf}"

# ---------------------------------------------------------------- mon
log "creating mon..."
monmaptool --create --fsid "${fsid}" \
  --addv a "[v2:127.0.0.1:3300,v1:127.0.0.1:6789]" \
  "${state_dir}/monmap" >/dev/null
ceph-mon --conf "${conf}" --id a --mkfs --monmap "${state_dir}/monmap" \
  --keyring /dev/null >>"${log_dir}/mkfs.log" 2>&1 ||
  {
    tail -n 20 "${log_dir}/mkfs.log" >&2
    die "ceph-mon --mkfs failed"
  }
log "starting mon..."
# Daemons fork into the background themselves (pid file per daemon); their
# stdio is detached so `eval "$(s3-up.sh)"` doesn't wait on them.
ceph-mon --conf "${conf}" --id a </dev/null >>"${log_dir}/daemons.out" 2>&1 9>&- ||
  {
    show_log mon.a
    die "ceph-mon failed to start"
  }

deadline=$((SECONDS + timeout_s))
until ceph_cli mon stat >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    show_log mon.a
    die "mon did not answer within ${timeout_s}s"
  fi
  sleep 0.5
done

# ---------------------------------------------------------------- osd
log "creating osd..."
osd_id="$(ceph_cli osd new "${osd_uuid}")"
[[ "${osd_id}" =~ ^[0-9]+$ ]] || die "unexpected 'ceph osd new' output: ${osd_id}"
ceph-osd --conf "${conf}" --id "${osd_id}" --mkfs --osd-uuid "${osd_uuid}" \
  </dev/null >>"${log_dir}/mkfs.log" 2>&1 ||
  {
    tail -n 20 "${log_dir}/mkfs.log" >&2
    die "ceph-osd --mkfs failed"
  }
log "starting osd.${osd_id}..."
ceph-osd --conf "${conf}" --id "${osd_id}" </dev/null >>"${log_dir}/daemons.out" 2>&1 9>&- ||
  {
    show_log "osd.${osd_id}"
    die "ceph-osd failed to start"
  }

deadline=$((SECONDS + timeout_s))
until ceph_cli osd stat 2>/dev/null | grep -q " 1 up"; do
  if ((SECONDS >= deadline)); then
    show_log "osd.${osd_id}"
    die "osd.${osd_id} did not come up within ${timeout_s}s"
  fi
  sleep 0.5
done

# ---------------------------------------------------------------- rgw
log "starting radosgw on ${endpoint}..."
radosgw --conf "${conf}" -n "${rgw_name}" </dev/null >>"${log_dir}/daemons.out" 2>&1 9>&- ||
  {
    show_log "${rgw_name}"
    die "radosgw failed to start"
  }

deadline=$((SECONDS + timeout_s))
until rgw_answers; do
  rgw_pid="$(cat "${run_dir}/${rgw_name}.pid" 2>/dev/null || true)"
  if [[ -n "${rgw_pid}" ]] && ! kill -0 "${rgw_pid}" 2>/dev/null; then
    show_log "${rgw_name}"
    die "radosgw exited during startup"
  fi
  if ((SECONDS >= deadline)); then
    show_log "${rgw_name}"
    die "RGW did not answer on ${endpoint} within ${timeout_s}s"
  fi
  sleep 0.5
done

# ---------------------------------------------------------------- user
if rgw_admin user info --uid gallring >/dev/null 2>&1; then
  log "user gallring exists"
else
  log "creating S3 user gallring..."
  rgw_admin user create --uid gallring --display-name gallring \
    --access-key "${access_key}" --secret-key "${secret_key}" >/dev/null ||
    die "radosgw-admin user create failed"
fi

log "ready in ${SECONDS}s: ${endpoint} (state in ${state_dir}, logs in ${log_dir})"
exec "${script_dir}/s3-env.sh"
