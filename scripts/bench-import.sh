#!/usr/bin/env bash
# Import benchmark: `keel import` of the Blaze Synthea set (122 files, 92,114 resources,
# transaction Bundles with conditional references) into a fresh data directory.
#
#   scripts/bench-import.sh [DATASET_DIR]
#
# Prints keel import's own summary (resources/s) and the process's CPU time and peak memory.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
dataset="${1:-$repo_root/../shared/fhir-test-assets/synthetic/blaze-synthea-120}"

cargo build --release -p keel >&2
work="$(mktemp -d "${TMPDIR:-/tmp}/keel-bench-import.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KB" \
    target/release/keel import --data "$work/data" "$dataset"
du -sh "$work/data" | awk '{print "database size: " $1}'
