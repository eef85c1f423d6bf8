#!/usr/bin/env bash
# The gallring demo: the Tryg notice (policies/002-tryg) enforced on a real S3 store.
#
#   scripts/demo.sh
#
# Starts a local Ceph RADOS Gateway if none is running (installing Debian's Ceph packages on
# first use), fills a bucket with ~150 synthetic call recordings from the last four years,
# runs `gallring run` against it and narrates what happens. RGW runs with a 10-second
# lifecycle "day", so the 30-day advisory transcripts expire through S3 lifecycle in about
# five minutes. Everything stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
metric() { # metric NAME [label filter]: the value of a gauge from /metrics
  # awk reads to the end (no early exit), so curl never sees a closed pipe.
  { curl -s --max-time 2 "http://${metrics_addr}/metrics" || true; } | awk -v n="$1" -v f="${2:-}" \
    '!done && $1 ~ "^"n"({|$)" && index($1, f) { print $2; done = 1 }'
}

bucket=tryg-opkald-demo
metrics_addr=127.0.0.1:9464
wait_minutes="${GALLRING_DEMO_MINUTES:-8}"

say "1. Starting the S3 store (Ceph RGW on 127.0.0.1)"
eval "$(scripts/s3-up.sh)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION GALLRING_S3_ENDPOINT
echo "   endpoint ${GALLRING_S3_ENDPOINT}"

say "2. Building gallring"
cargo build --quiet --locked --bin gallring --example seed
gallring=target/debug/gallring

say "3. Filling bucket ${bucket} with synthetic recordings laid out as Tryg describes"
target/debug/examples/seed --bucket "${bucket}" --layout tryg --calls 80 --recreate
cat <<'TXT'
   samtaler/<date>/<call>/audio.wav        archive audio: 1 year (documentation), 6 months more
                                           only with consent (quality): the longer one counts
   samtaler/<date>/<call>/transcript.json  made only with consent: 3 years (quality)
   kvalitet/<date>/<call>/audio.wav        the quality team's copy: 6 months (consent)
   raadgivning/<date>/<call>/seg-1.masked.json  real-time advisory text, masked: 30 days
   eksport/2024-rapport.csv                matches no rule: reported, never deleted
   Calls are spread over four years (metadata call-start); one customer has an open complaint.
TXT

say "4. Running gallring against the bucket (log: target/demo-run.log)"
"${gallring}" run --manifests demo/manifests --metrics-addr "${metrics_addr}" >target/demo-run.log 2>&1 &
run_pid=$!
trap 'kill ${run_pid} 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  grep -q "recordings/${bucket}:" target/demo-run.log 2>/dev/null && break
  if ! kill -0 "${run_pid}" 2>/dev/null; then
    echo "gallring run stopped:"; cat target/demo-run.log; exit 1
  fi
  sleep 1
done
strip() { sed -E 's/\x1b\[[0-9;]*m//g; s/^.* gallring::cli::run: //; s/ bucket=.*$//'; }
echo "   First pass:"
grep -m1 "recordings/${bucket}:" target/demo-run.log | strip | fold -s -w 100 | sed 's/^/     /'
echo "   Lifecycle rules written (other rules in the bucket are kept):"
grep "lifecycle rule:" target/demo-run.log | strip | sed 's/^lifecycle rule: /     /'
echo "   Recordings whose retention had already ended, deleted by gallring itself (their call"
echo "   time is far from their upload time, so S3 lifecycle cannot express their deadline):"
grep "run: deleted " target/demo-run.log | strip | sed 's/^deleted /     /' | head -8
grep "more deleted" target/demo-run.log | head -1 | strip | sed 's/^/     /'
echo "   Held by the complaint (no deadline while the complaint is open):"
echo "     gallring_held_objects{reason=\"Complaint\"} = $(metric gallring_held_objects 'reason="Complaint"')"
echo "   The number alerts fire on:"
echo "     gallring_overdue_objects = $(metric gallring_overdue_objects)"

say "5. Letting time pass: RGW's lifecycle day is 10 s, so 30 days take ~5 minutes"
masked_start="$(metric gallring_classified_objects 'kind="maskedTranscript"')"
echo "   masked advisory transcripts tagged expire-30d: ${masked_start:-0}; waiting for S3 lifecycle to remove them"
deadline=$((SECONDS + wait_minutes * 60))
while ((SECONDS < deadline)); do
  sleep 30
  masked="$(metric gallring_classified_objects 'kind="maskedTranscript"')"
  printf '   %3ds: masked transcripts %s, retained %s, held %s, overdue %s\n' \
    "$SECONDS" "${masked:-?}" "$(metric gallring_objects 'state="retained"')" \
    "$(metric gallring_objects 'state="held"')" "$(metric gallring_overdue_objects)"
  if [[ "${masked:-1}" == "0" ]]; then
    break
  fi
done

say "6. Result"
grep "recordings/${bucket}:" target/demo-run.log | tail -1 | strip | fold -s -w 100 | sed 's/^/   /'
overdue="$(metric gallring_overdue_objects)"
echo "   gallring_overdue_objects = ${overdue}"
if [[ "$(metric gallring_classified_objects 'kind="maskedTranscript"')" == "0" && "${overdue}" == "0" ]]; then
  first="$(grep -m1 "recordings/${bucket}:" target/demo-run.log | strip | sed -E 's/^[^:]+: ([0-9]+) objects.*/\1/')"
  last="$(grep "recordings/${bucket}:" target/demo-run.log | tail -1 | strip | sed -E 's/^[^:]+: ([0-9]+) objects.*/\1/')"
  echo "   S3 lifecycle (not gallring) removed $((first - last)) objects tagged expire-30d: the masked"
  echo "   advisory transcripts, and any copy whose deadline fell 30 days after its upload (with real"
  echo "   days, each goes at its own deadline). Everything else keeps its deadline; nothing overdue."
else
  echo "   (lifecycle has not finished yet; run again with GALLRING_DEMO_MINUTES=12)"
fi
echo "   Stop the store with scripts/s3-down.sh"
