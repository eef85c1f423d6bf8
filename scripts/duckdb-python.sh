#!/usr/bin/env bash
# Prints the path of a Python with DuckDB (pinned), installing it into a virtualenv under
# ~/.cache/gallring on first use. The fault suite reads gallring's journal with it, without
# gallring's code (README: "Reading the journal without gallring").
#
#   python="$(scripts/duckdb-python.sh)"
set -euo pipefail
version=1.1.3
venv="${GALLRING_DUCKDB_VENV:-${HOME:-/root}/.cache/gallring/duckdb-${version}}"
log() { printf 'duckdb-python: %s\n' "$*" >&2; }
if ! "${venv}/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '${version}')" 2>/dev/null; then
  python="$(command -v python3 || true)"
  [[ -n "${python}" ]] || { log "python3 is missing: apt-get install python3 python3-venv"; exit 1; }
  if ! "${python}" -c "import ensurepip, venv" 2>/dev/null; then
    ((EUID == 0)) || { log "${python} cannot make a virtualenv and not root: apt-get install python3-venv"; exit 1; }
    log "installing python3-venv..."
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
  fi
  log "installing duckdb==${version} into ${venv}..."
  rm -rf -- "${venv}"
  mkdir -p "$(dirname "${venv}")"
  "${python}" -m venv "${venv}" >&2
  "${venv}/bin/pip" install -q --disable-pip-version-check "duckdb==${version}" >&2
fi
printf '%s\n' "${venv}/bin/python"
