#!/usr/bin/env bash
# The gallring demo: the Tryg notice (policies/002-tryg) enforced on a real S3 store.
#
#   scripts/demo.sh
#
# Starts a local Ceph RADOS Gateway if none is running (installing Debian's Ceph packages on
# first use), fills a bucket with ~150 synthetic call recordings from the last four years,
# runs `gallring run` against it and narrates what happens: deletions past retention, two
# holds keeping recordings whose retention has ended, one of them released and its recording
# deleted. RGW runs with a 10-second lifecycle "day", so the 30-day advisory transcripts expire
# through S3 lifecycle in about five minutes. Everything stays on 127.0.0.1. Exits non-zero,
# saying why, when what it shows did not happen.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
metric() { # metric NAME [label filter]: the value of a gauge from /metrics
  # awk reads to the end (no early exit), so curl never sees a closed pipe.
  { curl -s --max-time 2 "http://${metrics_addr}/metrics" || true; } | awk -v n="$1" -v f="${2:-}" \
    '!done && $1 ~ "^"n"({|$)" && index($1, f) { print $2; done = 1 }'
}

fail() { printf '\n\033[1;31mdemo FAILED: %s\033[0m\n' "$*" >&2; exit 1; }
s3_status() { # the HTTP status of a HEAD of KEY, straight from the store: 200 present, 404 gone
  # S3 SigV4 needs the payload hash header, which curl does not add by itself.
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -I -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    --aws-sigv4 "aws:amz:${AWS_REGION}:s3" --user "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}" \
    "${GALLRING_S3_ENDPOINT}/${bucket}/$1" || true
}
# KEY STATUS WHY: fail unless the store answers HEAD of KEY with STATUS.
expect_status() {
  local got
  got="$(s3_status "$1")"
  [[ "${got}" == "$2" ]] || fail "$1: the store answers ${got}, expected $2: $3"
}

bucket=tryg-opkald-demo
metrics_addr=127.0.0.1:9464
wait_minutes="${GALLRING_DEMO_MINUTES:-8}"
# gallring run reads a copy: the demo deletes a LegalHold from it (step 6), as case tooling
# would, and demo/manifests stays as committed.
manifests=target/demo-manifests

say "1. Starting the S3 store (Ceph RGW on 127.0.0.1)"
eval "$(scripts/s3-up.sh)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION GALLRING_S3_ENDPOINT
echo "   endpoint ${GALLRING_S3_ENDPOINT}"

say "2. Building gallring"
cargo build --quiet --locked --bin gallring --example seed
gallring=target/debug/gallring

say "3. Filling bucket ${bucket} with synthetic recordings laid out as Tryg describes"
# The seed prints the calls the demo's holds are about: "<case> <subject> <key prefix>".
cases="$(target/debug/examples/seed --bucket "${bucket}" --layout tryg --calls 80 --recreate)"
complaint_call="$(awk '$1 == "complaint" { print $3 }' <<<"${cases}")"
access_call="$(awk '$1 == "access-request" { print $3 }' <<<"${cases}")"
[[ -n "${complaint_call}" && -n "${access_call}" ]] || fail "the seed named no case calls: ${cases}"
complaint_audio="${complaint_call}audio.wav"
complaint_transcript="${complaint_call}transcript.json"
complaint_copy="kvalitet/${complaint_call#samtaler/}audio.wav"
access_audio="${access_call}audio.wav"
cat <<'TXT'
   samtaler/<date>/<call>/audio.wav        archive audio: 1 year (documentation), 6 months more
                                           only with consent (quality): the longer one counts
   samtaler/<date>/<call>/transcript.json  made only with consent: 3 years (quality)
   kvalitet/<date>/<call>/audio.wav        the quality team's copy: 6 months (consent)
   raadgivning/<date>/<call>/seg-1.masked.json  real-time advisory text, masked: 30 days
   eksport/2024-rapport.csv                matches no rule: reported, never deleted
   Calls are spread over four years (metadata call-start). Two customers have a case about a
   call more than a year old (demo/manifests): an open complaint (holds.yaml) and an access
   request (indsigt.yaml), each made within the call's first year.
TXT
rm -rf "${manifests}"
cp -r demo/manifests "${manifests}"

# The journal is signed: a key made for this demo (a Secret in the cluster).
journal_key=target/demo-journal.key
rm -f "${journal_key}"
journal_public="$("${gallring}" journal keygen --out "${journal_key}" | sed -n 's/^public key //p')"
strip() { sed -E 's/\x1b\[[0-9;]*m//g; s/^.* gallring::cli::run: //; s/ bucket=.*$//'; }
# start_run LOG: starts `gallring run` on the manifests copy and waits for its first pass.
start_run() {
  run_log="$1"
  # RGW here counts lifecycle days in 10 s (scripts/s3-up.sh): gallring attributes expiries
  # accordingly in its journal.
  "${gallring}" run --manifests "${manifests}" --metrics-addr "${metrics_addr}" \
    --lifecycle-day-seconds 10 --journal-signing-key "${journal_key}" >"${run_log}" 2>&1 &
  run_pid=$!
  for _ in $(seq 1 60); do
    grep -q "recordings/${bucket}:" "${run_log}" 2>/dev/null && return 0
    if ! kill -0 "${run_pid}" 2>/dev/null; then
      echo "gallring run stopped:"; cat "${run_log}"; exit 1
    fi
    sleep 1
  done
  fail "gallring run finished no pass in 60 s (log: ${run_log})"
}
# explain KEY: what `gallring explain` says about KEY, indented.
explain() {
  "${gallring}" explain --manifests "${manifests}" "$1" | sed 's/^/     /'
}
# one_year_after KEY: the date one year after KEY's recording time, as gallring explain reads it.
one_year_after() {
  local recorded
  recorded="$("${gallring}" explain --manifests "${manifests}" "$1" | awk '$1 == "recorded" { print $2 }')"
  date -u -d "${recorded%%T*} +1 year" +%F
}

say "4. Running gallring against the bucket (log: target/demo-run.log)"
run_pid=
trap '[[ -n "${run_pid}" ]] && kill "${run_pid}" 2>/dev/null || true' EXIT
start_run target/demo-run.log
echo "   First pass:"
grep -m1 "recordings/${bucket}:" "${run_log}" | strip | fold -s -w 100 | sed 's/^/     /'
echo "   Lifecycle rules written (other rules in the bucket are kept):"
grep "lifecycle rule:" "${run_log}" | strip | sed 's/^lifecycle rule: /     /'
echo "   Recordings whose retention had already ended, deleted by gallring itself (their call"
echo "   time is far from their upload time, so S3 lifecycle cannot express their deadline):"
grep "run: deleted " "${run_log}" | strip | sed 's/^deleted /     /' | head -8
grep "more deleted" "${run_log}" | head -1 | strip | sed 's/^/     /'
echo "   The number alerts fire on:"
echo "     gallring_overdue_objects = $(metric gallring_overdue_objects)"

say "5. Holds keep recordings whose own retention has ended"
for key in "${complaint_audio}" "${complaint_transcript}" "${access_audio}"; do
  expect_status "${key}" 200 "a held recording was deleted while held"
done
echo "   The complaint's call: its archive audio was due on $(one_year_after "${complaint_audio}"), a year after the"
echo "   call; the open complaint keeps it (gallring explain):"
explain "${complaint_audio}" | grep -E '^ +(key|purposes|recorded|decision|holds|tag) '
echo "   Its transcript (kept 3 years on consent anyway) is held with it, by the recording id:"
explain "${complaint_transcript}" | grep -E '^ +(key|decision) '
echo "   Its quality copy is not: a case keeps the archive, not the duplicates (policies/002-tryg,"
echo "   reading E), so gallring deleted the copy in the first pass, its six months long past:"
explain "${complaint_copy}" | grep -E '^ +(key|present|journal) |deletion intended|deleted by'
expect_status "${complaint_copy}" 404 "the quality copy is past its six months and not held"
echo "   The access request's call: its audio was due on $(one_year_after "${access_audio}"); it is"
echo "   kept while the request is open:"
explain "${access_audio}" | grep -E '^ +(key|decision|holds) '
echo "     gallring_held_objects{reason=\"Complaint\"} = $(metric gallring_held_objects 'reason="Complaint"')"
echo "     gallring_held_objects{reason=\"AccessRequest\"} = $(metric gallring_held_objects 'reason="AccessRequest"')"
echo "   The access request itself (a SubjectRequest, type Access) is answered with a manifest of"
echo "   what gallring keeps about the customer, written to the bucket's state location:"
answer="$(grep -m1 "Access SubjectRequest/recordings/indsigt-demo-2" "${run_log}" | strip)" ||
  fail "gallring run logged no answer to the access request (see ${run_log})"
fold -s -w 96 <<<"${answer}" | sed 's/^/     /'
grep -q ": Completed;" <<<"${answer}" || fail "the access request is not Completed: ${answer}"
manifest_path="$(sed -nE 's|.*manifest s3://([^;]+);.*|\1|p' <<<"${answer}")"
[[ -n "${manifest_path}" ]] || fail "the answer names no manifest: ${answer}"
curl -sf --max-time 5 -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
  --aws-sigv4 "aws:amz:${AWS_REGION}:s3" --user "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}" \
  "${GALLRING_S3_ENDPOINT}/${manifest_path}" >target/demo-access-manifest.json ||
  fail "the access manifest s3://${manifest_path} cannot be read"
python3 - "${access_audio}" target/demo-access-manifest.json <<'PY' || fail "the access manifest is not as expected (target/demo-access-manifest.json)"
import json, sys
key, path = sys.argv[1], sys.argv[2]
m = json.load(open(path))
rows = m["recordings"]
mine = [r for r in rows if r["key"] == key]
assert mine and mine[0]["holds"], f"{key} is not listed as held"
for r in rows[:3]:
    purposes = "; ".join(f"{p} ({b})" for p, b in r["purposes"].items())
    print(f"     {r['key']}  {r.get('kind')}  {purposes}  holds: {', '.join(r['holds']) or 'none'}")
print(f"     ... {len(rows)} object(s) in target/demo-access-manifest.json; no content")
PY

say "6. The access request is answered: its LegalHold is deleted"
# gallring run reads its manifests when it starts (before deleting it re-reads only the holds,
# and only to stop deletions a new hold covers), so it is restarted on the manifests without
# the hold. Its first pass finds the hold gone and journals it as released at that pass's time.
rm "${manifests}/indsigt.yaml"
echo "   removed ${manifests}/indsigt.yaml; restarting gallring run (log: target/demo-run-2.log)"
kill "${run_pid}"
wait "${run_pid}" 2>/dev/null || true
start_run target/demo-run-2.log
grep -m1 "recordings/${bucket}:" "${run_log}" | strip | fold -s -w 100 | sed 's/^/     /'
echo "   Tryg keeps nothing after an access request is answered (holdRelease AccessRequest P0D):"
echo "   the floor is the release itself, and gallring deletes the recording in the same pass:"
grep -F "run: deleted ${access_audio}:" "${run_log}" | strip | sed 's/^deleted /     /' \
  || fail "${access_audio} was not deleted after its hold was released (see ${run_log})"
expect_status "${access_audio}" 404 "gallring logged its deletion"
echo "   The store answers 404 for it; gallring explain reads when and by whom from the journal:"
explain "${access_audio}"
echo "   The complaint is still open: its recordings stay held."
for key in "${complaint_audio}" "${complaint_transcript}"; do
  expect_status "${key}" 200 "the complaint hold was not released, yet the recording is gone"
done

say "7. Letting time pass: RGW's lifecycle day is 10 s, so 30 days take ~5 minutes"
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
# A pass counts an object when it reads it; the journal records a removal by lifecycle only
# once a complete listing no longer shows it, and RGW's listing can show an expired object
# for a while after it is gone. Wait (up to 4 minutes) until gallring has journaled them.
gone_wait=$((SECONDS + 240))
while ((SECONDS < gone_wait)); do
  gone="$(metric gallring_objects_gone_total 'cause="lifecycle"')"
  (( ${gone:-0} >= ${masked_start:-1} )) && break
  sleep 5
done
echo "   removals by S3 lifecycle journaled by gallring: $(metric gallring_objects_gone_total 'cause="lifecycle"')"

say "8. Result"
grep "recordings/${bucket}:" "${run_log}" | tail -1 | strip | fold -s -w 100 | sed 's/^/   /'
overdue="$(metric gallring_overdue_objects)"
echo "   gallring_overdue_objects = ${overdue}"
for key in "${complaint_audio}" "${complaint_transcript}"; do
  expect_status "${key}" 200 "the complaint hold was never released, yet the recording is gone"
done
echo "   The complaint's audio and transcript are still there, held; the answered access"
echo "   request's recording is gone."
[[ "${overdue}" == "0" ]] || fail "gallring_overdue_objects is ${overdue:-missing}, expected 0"
[[ "$(metric gallring_classified_objects 'kind="maskedTranscript"')" == "0" ]] ||
  fail "S3 lifecycle has not removed every masked transcript yet; run again with GALLRING_DEMO_MINUTES=12"
# A pass counts the objects it leaves (not those it deletes): what left after the first pass
# and was not deleted by gallring, S3 lifecycle removed.
passes="$(cat target/demo-run.log target/demo-run-2.log | grep "recordings/${bucket}:" | strip)"
first="$(head -1 <<<"${passes}" | sed -E 's/^[^:]+: ([0-9]+) objects.*/\1/')"
last="$(tail -1 <<<"${passes}" | sed -E 's/^[^:]+: ([0-9]+) objects.*/\1/')"
later="$(tail -n +2 <<<"${passes}" | sed -E 's/.*, deleted ([0-9]+).*/\1/' | awk '{ s += $1 } END { print s + 0 }')"
echo "   After the first pass, gallring deleted ${later} object(s) (the answered access request's"
echo "   recording) and S3 lifecycle removed $((first - last - later)) tagged expire-30d: the masked advisory"
echo "   transcripts, and any copy whose deadline fell 30 days after its upload (with real days,"
echo "   each goes at its own deadline). Everything else keeps its deadline; nothing overdue."

say "9. Evidence for the auditor: gallring evidence and gallring journal verify"
rm -rf target/demo-evidence
"${gallring}" evidence --manifests "${manifests}" --out target/demo-evidence \
  --journal-signing-key "${journal_key}" | fold -s -w 100 | sed 's/^/   /'
expired="$(grep -c ',lifecycle,' target/demo-evidence/dispositions.csv || true)"
echo "   Dispositions S3 lifecycle made, each with its rule and how gallring knows (${expired}):"
grep ',lifecycle,' target/demo-evidence/dispositions.csv | head -2 | cut -d, -f1,2,4,9- |
  fold -s -w 96 | sed 's/^/     /'
echo "   The access request's recording, deleted by gallring:"
grep "${access_audio}" target/demo-evidence/dispositions.csv | cut -d, -f1,2,4,9- |
  fold -s -w 96 | sed 's/^/     /'
((expired >= ${masked_start:-1})) ||
  fail "gallring evidence shows ${expired} lifecycle expiries, expected at least ${masked_start:-1}"
grep -q "${access_audio}" target/demo-evidence/dispositions.csv ||
  fail "gallring evidence does not show the access request's recording"
echo "   The access request, received and answered (requests.csv):"
cut -d, -f1-4 target/demo-evidence/requests.csv | tail -n +2 | sed 's/^/     /'
grep -q ',Completed,SubjectRequest/recordings/indsigt-demo-2,Access,' target/demo-evidence/requests.csv ||
  fail "gallring evidence does not show the access request's answer"
"${gallring}" journal verify --manifests "${manifests}" --public-key "${journal_public}" |
  sed 's/^/   /' || fail "the journal does not verify"
"${gallring}" report --manifests "${manifests}" --out target/demo-report.html >/dev/null ||
  fail "gallring report failed"
grep -q 'gallring-expire-30d' target/demo-report.html ||
  fail "the report does not show the lifecycle rule that expired the masked transcripts"
grep -q 'SubjectRequest/recordings/indsigt-demo-2' target/demo-report.html ||
  fail "the report does not show the access request and its answer"
echo "   The same for a person to read (one file, no external requests): target/demo-report.html"
echo "   Stop the store with scripts/s3-down.sh"
