#!/usr/bin/env bash
# Import benchmark: `keel import` of the Blaze Synthea set (122 files, 92,114 resources,
# transaction Bundles with conditional references) into a fresh data directory.
#
#   scripts/bench-import.sh [DATASET_DIR]
#
# Prints keel import's own summary (resources/s) and the process's CPU time and peak memory.
# BENCH_POSTGRES=postgres://USER@HOST:PORT/DB: into a fresh PostgreSQL schema instead of SQLite.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
dataset="${1:-$repo_root/../shared/fhir-test-assets/synthetic/blaze-synthea-120}"

cargo build --release -p keel >&2
keel="${CARGO_TARGET_DIR:-$repo_root/target}/release/keel"
work="$(mktemp -d "${TMPDIR:-/tmp}/keel-bench-import.XXXXXX")"
source "$repo_root/scripts/bench-postgres.sh"
trap 'rm -rf "$work"; bench_postgres_cleanup' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KB" \
    "$keel" import "${db_args[@]}" --data "$work/data" "$dataset"
echo "database size: $(bench_database_size "$work/data")"
