#!/usr/bin/env bash
# Benchmark: seed N small objects into the local S3 server, then measure
#   - raw ListObjectsV2 over the bucket,
#   - raw GetObjectTagging + PutObjectTagging on every object (same concurrency as gallring),
#   - a cold gallring pass (classify + tag every object) and a warm pass (nothing changed),
# each in its own process (peak RSS is per phase). Prints a table and the ratios.
#
#   scripts/bench.sh [N] [CONCURRENCY] [lock]     # defaults: 20000 16
#
# With `lock`, the bucket is a new one with Object Lock (a hold then sets legal holds too);
# its objects cannot be deleted while held, so each such run leaves its bucket behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-20000}"
conc="${2:-16}"
lock="${3:-}"
case "$lock" in
  "") bucket="bench-${n}"; seed_flags=(--recreate) ;;
  lock) bucket="bench-lock-${n}-$(date +%s)"; seed_flags=(--object-lock) ;;
  *) echo "bench: the third argument is 'lock' or nothing, not '$lock'" >&2; exit 2 ;;
esac

eval "$(scripts/s3-up.sh)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION GALLRING_S3_ENDPOINT
cargo build --quiet --release --locked --example seed --example bench
bin=target/release/examples

echo "bench: seeding ${n} objects into ${bucket}" >&2
"${bin}/seed" --bucket "${bucket}" --layout flat --count "${n}" "${seed_flags[@]}" --concurrency 32

# As the chart's Deployment runs gallring (see charts/gallring/templates/deployment.yaml).
export MALLOC_ARENA_MAX=2
run() { "${bin}/bench" "$@" --bucket "${bucket}" --concurrency "${conc}"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }

index="$(mktemp -d)"
newhost="$(mktemp -d)"
trap 'rm -rf "$index" "$newhost"' EXIT
list="$(run raw-list)"
tag="$(run raw-tag)"
cold="$(run pass --index-dir "$index")"
steady="$(run pass --index-dir "$index")"
list2="$(run raw-list)"
warm="$(run pass)"
restored="$(run pass --index-dir "$newhost")"
steady2="$(run pass --index-dir "$index")"
# The listing as a pass with an index makes it, by hand: cut every 900 keys, 8 ranges at once.
ranged="$(run raw-list --ranges 8 --count "$n")"
du_index="$(du -sk "$index" | cut -f1)"
# Hold latency: a new hold on 1, 100 and 1,000 keys spread over the bucket; the time from the
# start of the pass until the hold-first step has protected them (before the listing). Right
# before each, the same number of other keys protected by hand (`raw-hold`: tags read, legal
# hold read and set on an Object Lock bucket, tags written), the floor side by side.
holds=()
offset=0
for h in 1 100 1000; do
  # Each run selects objects no earlier run selected: every one needs its writes.
  offset=$((offset + 1))
  raw="$(run raw-hold --hold-keys "$h" --count "$n" --hold-offset "$offset" 2>/dev/null)"
  offset=$((offset + 1))
  out="$(run pass --index-dir "$index" --hold-keys "$h" --count "$n" --hold-offset "$offset")"
  holds+=("${h}:$(field "$raw" seconds):${out%%$'\n'*}")
done

printf '\nN=%s objects, concurrency %s, bucket %s, Ceph RGW on loopback, release build\n\n' "$n" "$conc" "$bucket"
printf '%-30s %10s %12s %14s %14s\n' phase seconds objects/s requests/obj "peak RSS MiB"
for row in "raw ListObjectsV2:${list}" "raw Get+PutObjectTagging:${tag}" "gallring cold pass:${cold}" \
  "steady, index:${steady}" "raw ListObjectsV2 (2):${list2}" "steady, no index:${warm}" \
  "new host, snapshot:${restored}" "steady, index (2):${steady2}" "raw ListObjectsV2, 8 ranges:${ranged}"; do
  name="${row%%:\{*}"; json="{${row#*:\{}"
  printf '%-30s %10s %12s %14s %14.1f\n' "$name" "$(field "$json" seconds)" "$(field "$json" objects_per_second)" \
    "$(field "$json" requests_per_object)" "$(python3 -c "print($(field "$json" peak_rss_kib)/1024)")"
done
python3 - "$tag" "$cold" "$warm" "$list" "$steady" "$list2" "$steady2" "$du_index" "$ranged" <<'PY'
import json, sys
tag, cold, warm, lst, steady, lst2, steady2 = (json.loads(a) for a in sys.argv[1:8])
du_kib = int(sys.argv[8])
ranged = json.loads(sys.argv[9])
print()
print(f"cold pass / raw Get+PutObjectTagging rate: {cold['objects_per_second'] / tag['objects_per_second']:.2f}x (target >= 0.9x)")
print(f"steady pass with index, time / raw listing time: {steady['seconds'] / lst['seconds']:.2f}x and "
      f"{steady2['seconds'] / lst2['seconds']:.2f}x (target <= 1.1x); "
      f"{steady['requests']} and {steady2['requests']} requests, "
      f"{steady['requests'] / steady['objects']:.4f} and {steady2['requests'] / steady2['objects']:.4f} per object "
      f"(the first reads the journal's segments the cold pass left and checkpoints it; listing alone "
      f"{lst['requests'] / lst['objects']:.4f})")
print(f"steady pass with index, time / the same ranged listing by hand: {steady2['seconds'] / ranged['seconds']:.2f}x")
print(f"steady pass without index, time / raw listing time: {warm['seconds'] / lst2['seconds']:.1f}x "
      f"({warm['requests_per_object']:.3f} requests per object)")
print(f"index on disk: {du_kib} KiB for {cold['objects']} objects = "
      f"{du_kib / 1024 / max(cold['objects'], 1) * 1e6 / 1024:.2f} GiB per million objects")
PY
printf '\nhold latency (pass start until protected, before the listing):\n'
python3 -c "import json,sys; r=json.loads(sys.argv[1])['objects_per_second']; print(f'  (the raw Get+PutObjectTagging rate above protects 1000 objects in {1000/r:.2f} s)')" "$tag"
for row in "${holds[@]}"; do
  h="${row%%:*}"; rest="${row#*:}"
  printf '  %5s keys: by hand %7.3f s; gallring %s\n' "$h" "${rest%%:*}" "${rest#*:}"
done
