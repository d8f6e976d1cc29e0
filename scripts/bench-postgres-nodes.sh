#!/usr/bin/env bash
# PostgreSQL read and search throughput, one node against two (issue 7): the Blaze Synthea set
# imported into a fresh schema, then
#   1. one `keel serve` node under `keel-loadgen` (read Patient/{id}, then Condition?patient=X);
#   2. two `keel serve` nodes on the same schema and data directory (shared audit key), each
#      under its own `keel-loadgen` with half the connections, run at the same time; the
#      figure is the sum of the two.
#
#   BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/test scripts/bench-postgres-nodes.sh
#
# Environment (defaults in brackets):
#   BENCH_POSTGRES     the PostgreSQL server URL [postgres://postgres@127.0.0.1:5432/test]
#   BENCH_DATASET      Bundles to import [../shared/fhir-test-assets/synthetic/blaze-synthea-120]
#   BENCH_CONNECTIONS  keep-alive connections in all, split across the nodes [32]
#   BENCH_DURATION     measured time of each run [20s]
#   BENCH_WARMUP       warm-up before measuring [3s]
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export BENCH_POSTGRES="${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"
dataset="${BENCH_DATASET:-$repo_root/../shared/fhir-test-assets/synthetic/blaze-synthea-120}"
connections="${BENCH_CONNECTIONS:-32}"
duration="${BENCH_DURATION:-20s}"
warmup="${BENCH_WARMUP:-3s}"

cargo build --release -p keel -p keel-loadgen >&2
keel="${CARGO_TARGET_DIR:-$repo_root/target}/release/keel"
loadgen="${CARGO_TARGET_DIR:-$repo_root/target}/release/keel-loadgen"
source "$repo_root/scripts/bench-postgres.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/keel-bench-nodes.XXXXXX")"
server_pids=()
cleanup() {
    for pid in "${server_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
    bench_postgres_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$keel" import "${db_args[@]}" --data "$work/data" "$dataset"

# Starts a node on a free loopback port; sets `base` to its FHIR base URL.
start_node() {
    local n="$1"
    "$keel" serve --insecure-no-auth "${db_args[@]}" --data "$work/data" --listen 127.0.0.1:0 \
        >"$work/serve-$n.out" 2>"$work/serve-$n.err" &
    server_pids+=($!)
    base=""
    for _ in $(seq 1 300); do
        base="$(sed -n 's/^keel: listening on //p' "$work/serve-$n.out")"
        [[ -n "$base" ]] && return
        sleep 0.1
    done
    cat "$work/serve-$n.err" >&2
    echo "bench-postgres-nodes: node $n did not start" >&2
    exit 1
}
start_node 1
base1="$base"
start_node 2
base2="$base"

# One loadgen run: prints "req/s p50 p99" from its JSON report.
load() {
    local base="$1" conns="$2" kind="$3"
    local args=(--base "$base" --connections "$conns" --duration "$duration" --warmup "$warmup" --json)
    if [[ "$kind" == read ]]; then
        "$loadgen" read --type Patient "${args[@]}"
    else
        "$loadgen" search --max-ids 100000 --query 'Condition?patient={Patient}' "${args[@]}"
    fi | jq -r '"\(.throughput_rps) \(.latency_ms.p50) \(.latency_ms.p99) errors=\(.errors)"'
}

for kind in read search; do
    echo "$kind, one node, $connections connections: $(load "$base1" "$connections" "$kind")"
    half=$((connections / 2))
    load "$base1" "$half" "$kind" >"$work/a" &
    a=$!
    load "$base2" "$half" "$kind" >"$work/b" &
    b=$!
    wait "$a" "$b"
    echo "$kind, two nodes, $half connections each: node 1 $(cat "$work/a"); node 2 $(cat "$work/b");" \
        "sum $(awk '{s += $1} END {printf "%.0f", s}' "$work/a" "$work/b") req/s"
done
