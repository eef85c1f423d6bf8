#!/usr/bin/env bash
# Stop the moto server started by scripts/moto-up.sh, by the pid in its pid file only.
# Idempotent: running it with nothing up is fine. moto keeps its state in memory, so stopping
# it also forgets every bucket.
set -euo pipefail

state_dir="${GALLRING_MOTO_DIR:-/tmp/gallring-moto}"
pid_file="${state_dir}/moto.pid"

log() { echo "moto-down: $*" >&2; }

pid="$(tr -dc '0-9' <"${pid_file}" 2>/dev/null || true)"
if [[ -z "${pid}" ]] || ! kill -0 "${pid}" 2>/dev/null; then
  log "no moto running for ${pid_file}"
  rm -f -- "${pid_file}"
  exit 0
fi
# The pid file may be stale and the pid reused: only stop a moto_server.
if ! tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q "moto_server"; then
  log "pid ${pid} is not a moto_server; leaving it alone"
  rm -f -- "${pid_file}"
  exit 0
fi
log "stopping moto (pid ${pid})"
kill -TERM "${pid}" 2>/dev/null || true
for _ in $(seq 1 50); do
  kill -0 "${pid}" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "${pid}" 2>/dev/null; then
  log "killing ${pid}"
  kill -KILL "${pid}" 2>/dev/null || true
fi
rm -f -- "${pid_file}"
