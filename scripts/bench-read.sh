#!/usr/bin/env bash
# Read benchmark: Keel serving the Blaze Synthea set, hammered with GET Patient/{id}.
#
#   scripts/bench-read.sh [extra keel-loadgen read flags...]
#
# 1. builds keel and keel-loadgen in release mode;
# 2. imports the Synthea Bundles into a fresh temporary data directory (`keel import`);
# 3. starts `keel serve` on a free loopback port (127.0.0.1, port chosen by the system);
# 4. runs `keel-loadgen read --type Patient` against it, watching the server's memory and CPU;
# 5. prints the figures and stops the server (the data directory is removed).
#
# Everything stays on this machine: the load generator targets only the loopback URL that
# `keel serve` printed, and stops by itself after the warm-up and the duration.
#
# Environment (defaults in brackets):
#   BENCH_DATASET      Bundles to import [../shared/fhir-test-assets/synthetic/blaze-synthea-120]
#   BENCH_TYPE         resource type read [Patient]
#   BENCH_CONNECTIONS  keep-alive connections [32]
#   BENCH_DURATION     measured time [20s]
#   BENCH_WARMUP       warm-up before measuring [3s]
#   BENCH_JSON         1 to print keel-loadgen's JSON object instead of its table [0]
#   KEEL_WORKERS       server worker threads [one per core]
#   BENCH_POSTGRES     a PostgreSQL server URL: serve from a fresh schema there instead of SQLite
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

dataset="${BENCH_DATASET:-$repo_root/../shared/fhir-test-assets/synthetic/blaze-synthea-120}"
type="${BENCH_TYPE:-Patient}"
connections="${BENCH_CONNECTIONS:-32}"
duration="${BENCH_DURATION:-20s}"
warmup="${BENCH_WARMUP:-3s}"

if [[ ! -d "$dataset" ]]; then
    echo "bench-read: no dataset at $dataset" >&2
    exit 2
fi

echo "bench-read: building (release)" >&2
cargo build --release -p keel -p keel-loadgen >&2
keel="${CARGO_TARGET_DIR:-$repo_root/target}/release/keel"
loadgen="${CARGO_TARGET_DIR:-$repo_root/target}/release/keel-loadgen"
source "$repo_root/scripts/bench-postgres.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/keel-bench-read.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    bench_postgres_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

data="$work/data"
echo "bench-read: importing $dataset into $data" >&2
import_start=$(date +%s.%N)
"$keel" import "${db_args[@]}" --data "$data" "$dataset" >&2 2>"$work/import.log" || {
    cat "$work/import.log" >&2
    echo "bench-read: import failed" >&2
    exit 1
}
import_end=$(date +%s.%N)
echo "bench-read: import took $(awk "BEGIN {printf \"%.1f\", $import_end - $import_start}") s" >&2

# Port 0: the system picks a free port; keel prints the address it listens on.
"$keel" serve --insecure-no-auth "${db_args[@]}" --data "$data" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
base=""
for _ in $(seq 1 300); do
    if line="$(grep -m1 '^keel: listening on ' "$work/serve.out" 2>/dev/null)"; then
        base="${line#keel: listening on }"
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$work/serve.err" >&2
        echo "bench-read: keel serve exited" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$base" ]]; then
    echo "bench-read: keel serve did not start within 30 s" >&2
    exit 1
fi
case "$base" in
    http://127.*) ;;
    *) echo "bench-read: unexpected server address $base" >&2; exit 1 ;;
esac
echo "bench-read: keel serve (pid $server_pid) at $base; $(nproc) cores" >&2

json_flag=()
[[ "${BENCH_JSON:-0}" == "1" ]] && json_flag=(--json)
status=0
"$loadgen" read --base "$base" --type "$type" --connections "$connections" --duration "$duration" \
    --warmup "$warmup" --pid "$server_pid" "${json_flag[@]}" "$@" || status=$?
exit "$status"
