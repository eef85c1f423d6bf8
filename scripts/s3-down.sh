#!/usr/bin/env bash
# Stop the single-node Ceph cluster started by scripts/s3-up.sh and remove its
# state directory. Idempotent: running it with nothing up is fine.
#
# Only processes started for *our* ceph.conf are touched: first the ones named
# by the pid files in the state dir, then (fallback) any process whose command
# line carries our exact `--conf <state dir>/ceph.conf` argument.
set -euo pipefail

state_dir="${GALLRING_CEPH_DIR:-/tmp/gallring-ceph}"
conf="${state_dir}/ceph.conf"
run_dir="${state_dir}/run"

log() { echo "s3-down: $*" >&2; }

# Refuse to `rm -rf` something that is obviously not ours.
case "${state_dir}" in
  "" | "/" | "/tmp" | "/tmp/" | "${HOME:-/root}" | "${HOME:-/root}/")
    log "refusing to use state dir '${state_dir}'"
    exit 1
    ;;
  *) ;;
esac

# Collect pids: pid files first, then processes started with our conf path.
pids=()
if [[ -d "${run_dir}" ]]; then
  for f in "${run_dir}"/*.pid; do
    [[ -e "${f}" ]] || continue
    pid="$(tr -dc '0-9' <"${f}")"
    if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then
      pids+=("${pid}")
    fi
  done
fi
if command -v pgrep >/dev/null 2>&1; then
  # The conf path is unique to this state dir and every daemon/tool started
  # by s3-up.sh gets it as a separate `--conf PATH` argument. Escape regex
  # metacharacters of the path for pgrep's ERE.
  conf_re="$(printf '%s' "${conf}" | sed 's/[][\\.^$*+?(){}|]/\\&/g')"
  while read -r pid; do
    if [[ -n "${pid}" && "${pid}" != "$$" ]]; then
      pids+=("${pid}")
    fi
  done < <(pgrep -f -- "--conf ${conf_re}( |\$)" || true)
fi

if ((${#pids[@]} > 0)); then
  # De-duplicate.
  mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -un || true)
  log "stopping ${#pids[@]} ceph process(es): ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  # The data is thrown away anyway, and an OSD whose mon is already gone waits
  # ~5 s ("osd mon shutdown timeout") to be marked down: don't wait long
  # before SIGKILL.
  for _ in $(seq 1 20); do
    alive=()
    for pid in "${pids[@]}"; do
      if kill -0 "${pid}" 2>/dev/null; then
        alive+=("${pid}")
      fi
    done
    if ((${#alive[@]} == 0)); then
      break
    fi
    sleep 0.1
  done
  if ((${#alive[@]} > 0)); then
    log "killing ${alive[*]}"
    kill -KILL "${alive[@]}" 2>/dev/null || true
    sleep 0.2
  fi
else
  log "no ceph processes running for ${conf}"
fi

if [[ -d "${state_dir}" ]]; then
  log "removing ${state_dir}"
  rm -rf -- "${state_dir}"
fi
