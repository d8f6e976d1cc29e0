#!/usr/bin/env bash
# Simulated-PCN generation benchmark (issue 3):
#   1. the default PCN: 40,000 patients with full clinical records, native format;
#   2. 1,000,000 patients, demographics and registrations only, native format;
#   3. (optional, BENCH_SIM_FHIR=1) the default PCN as FHIR R4 NDJSON, for comparison.
#
#   scripts/bench-sim-generate.sh [SEED]
#
# Prints, per run: wall time, CPU time, peak RSS, output size, persons/s and entries/s (from
# `keel sim generate`'s own summary line). Targets: (1) < 60 s, (2) < 30 s, both < 1 GB RSS.
# The native format is the benchmarked one: full FHIR NDJSON for 40,000 patients is about
# 25 million resources (~17 GB), bound by disk writes rather than generation.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
seed="${1:-1}"

cargo build --release -p keel >&2
work="$(mktemp -d "${TMPDIR:-/tmp}/keel-bench-sim.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

run() {
    local name="$1"
    shift
    local out="$work/$name"
    echo
    echo "== $name: keel sim generate --seed $seed $* --out DIR"
    /usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KB" \
        target/release/keel sim generate --seed "$seed" --quiet "$@" --out "$out" \
        | grep -E '^(generated|FHIR resources)'
    du -sh "$out" | awk '{print "output size: " $1}'
    rm -rf "$out"
}

run default-pcn-native --patients 40000 --practices 5 --format native
run million-demographics-native --patients 1000000 --practices 5 --demographics-only --format native
if [[ "${BENCH_SIM_FHIR:-0}" == "1" ]]; then
    run default-pcn-fhir --patients 40000 --practices 5 --format fhir
fi
