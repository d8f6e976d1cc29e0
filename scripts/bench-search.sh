#!/usr/bin/env bash
# Search benchmark with about one million resources stored.
#
#   scripts/bench-search.sh
#
# 1. builds keel and keel-loadgen (release);
# 2. unless BENCH_DATA names an existing data directory, imports the Blaze Synthea set
#    BENCH_COPIES times (default 11: 11 x 92,114 = 1,013,254 resources; each copy of the patient
#    Bundles is a new set of patients, the shared practitioners and organisations load once);
# 3. serves it on a loopback port and runs the three searches of issue 2 with keel-loadgen,
#    each request for a randomly chosen patient, watching the server's memory.
#
# Environment: BENCH_DATA (reuse a data directory), BENCH_COPIES [11], BENCH_CONNECTIONS [8],
# BENCH_DURATION [30s], BENCH_WARMUP [5s], BENCH_POSTGRES (a PostgreSQL server URL: a fresh
# schema there instead of SQLite).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
blaze="$repo_root/../shared/fhir-test-assets/synthetic/blaze-synthea-120"
copies="${BENCH_COPIES:-11}"

cargo build --release -p keel -p keel-loadgen >&2
keel="${CARGO_TARGET_DIR:-$repo_root/target}/release/keel"
loadgen="${CARGO_TARGET_DIR:-$repo_root/target}/release/keel-loadgen"
source "$repo_root/scripts/bench-postgres.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/keel-bench-search.XXXXXX")"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
    bench_postgres_cleanup
}
trap cleanup EXIT

data="${BENCH_DATA:-}"
if [[ -z "$data" ]]; then
    data="$work/data"
    "$keel" import "${db_args[@]}" --data "$data" "$blaze"/0-*.json.bz2
    for i in $(seq 1 "$copies"); do
        mkdir -p "$work/copy-$i"
        find "$blaze" -name "*.json.bz2" ! -name "0-*" -exec cp {} "$work/copy-$i/" \;
        "$keel" import "${db_args[@]}" --data "$data" "$work/copy-$i"
        rm -rf "$work/copy-$i"
    done
fi

"$keel" serve --insecure-no-auth "${db_args[@]}" --data "$data" --listen 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
server_pid=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$work/serve.out" 2>/dev/null && break
    sleep 0.1
done
base="$(sed -n 's/^keel: listening on //p' "$work/serve.out")"
echo "serving $(curl -s "$base/Observation?_summary=count" | sed 's/.*"total":\([0-9]*\).*/\1/') Observations at $base" >&2

"$loadgen" search --base "$base" --pid "$server_pid" \
    --connections "${BENCH_CONNECTIONS:-8}" --duration "${BENCH_DURATION:-30s}" --warmup "${BENCH_WARMUP:-5s}" \
    --max-ids 100000 \
    --query 'Observation?patient={Patient}&code=http://loinc.org|8867-4&date=ge2015-01-01' \
    --query 'Patient?name={Patient.name.family}&birthdate={Patient.birthDate}' \
    --query 'Condition?patient={Patient}'
