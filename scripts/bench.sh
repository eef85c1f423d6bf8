#!/usr/bin/env bash
# Benchmark: seed N small objects into the local S3 server, then measure
#   - raw ListObjectsV2 over the bucket,
#   - raw PutObjectTagging on every object (same concurrency as gallring),
#   - a cold gallring pass (classify + tag every object) and a warm pass (nothing changed),
# each in its own process (peak RSS is per phase). Prints a table and the ratios.
#
#   scripts/bench.sh [N] [CONCURRENCY]      # defaults: 20000 16
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-20000}"
conc="${2:-16}"
bucket="bench-${n}"

eval "$(scripts/s3-up.sh)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION GALLRING_S3_ENDPOINT
cargo build --quiet --release --locked --example seed --example bench
bin=target/release/examples

echo "bench: seeding ${n} objects into ${bucket}" >&2
"${bin}/seed" --bucket "${bucket}" --layout flat --count "${n}" --recreate --concurrency 32

run() { "${bin}/bench" "$1" --bucket "${bucket}" --concurrency "${conc}"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }

list="$(run raw-list)"
tag="$(run raw-tag)"
cold="$(run pass)"
warm="$(run pass)"

printf '\nN=%s objects, concurrency %s, Ceph RGW on loopback, release build\n\n' "$n" "$conc"
printf '%-22s %10s %12s %14s %14s\n' phase seconds objects/s requests/obj "peak RSS MiB"
for row in "raw ListObjectsV2:${list}" "raw PutObjectTagging:${tag}" "gallring cold pass:${cold}" "gallring warm pass:${warm}"; do
  name="${row%%:\{*}"; json="{${row#*:\{}"
  printf '%-22s %10s %12s %14s %14.1f\n' "$name" "$(field "$json" seconds)" "$(field "$json" objects_per_second)" \
    "$(field "$json" requests_per_object)" "$(python3 -c "print($(field "$json" peak_rss_kib)/1024)")"
done
python3 - "$tag" "$cold" "$warm" "$list" <<'PY'
import json, sys
tag, cold, warm, lst = (json.loads(a) for a in sys.argv[1:])
print()
print(f"cold pass / raw tagging rate: {cold['objects_per_second'] / tag['objects_per_second']:.2f}x (target >= 0.8x)")
print(f"warm pass / raw listing rate: {warm['objects_per_second'] / lst['objects_per_second']:.3f}x "
      f"({warm['requests_per_object']:.3f} requests per object; list-only would be {lst['requests_per_object']:.3f})")
PY
