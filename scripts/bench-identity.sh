#!/usr/bin/env bash
# Keel's matcher side by side with Splink (issue 6): the same files, the same machine, one run.
# For each data set, `keel match` and Splink (scripts/splink-link.py, DuckDB backend) each run
# under /usr/bin/time -v: wall time, peak RSS and the F1 each prints against the truth.
#
#   scripts/bench-identity.sh            # FEBRL4 (5,000 x 5,000) and 1,000,000 x 1,000,000 synthetic
#   scripts/bench-identity.sh febrl      # FEBRL4 only
#   BENCH_PEOPLE=200000 scripts/bench-identity.sh sim   # the synthetic run at another size
#
# Splink 4.0.17 is installed into .bench/splink-venv (pip) on first use. The 1M Splink run
# takes minutes.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
only="${1:-all}"
people="${BENCH_PEOPLE:-1000000}"
work="$repo_root/.bench"
venv="$work/splink-venv"
mkdir -p "$work"

scripts/fetch-test-assets.sh >/dev/null
cargo build --release -q -p keel
keel="${CARGO_TARGET_DIR:-$repo_root/target}/release/keel"
if ! "$venv/bin/python" -c 'import splink' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q splink==4.0.17
fi

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; splink $("$venv/bin/python" -c 'import splink; print(splink.__version__)')"

# measure LABEL COMMAND...: runs it under /usr/bin/time -v and prints one line.
measure() {
    local label="$1"
    shift
    local log="$work/$label.log" timing="$work/$label.time"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    /usr/bin/time -v -o "$timing" "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
    local wall rss f1
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$timing")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f MB", $2/1024}' "$timing")
    f1=$(grep -E '^precision ' "$log" | tail -1)
    printf '%-14s wall %s, peak RSS %s, %s\n' "$label" "$wall" "$rss" "$f1"
}

febrl="${KEEL_TEST_ASSETS:-$repo_root/.test-assets}/febrl"
if [[ "$only" == all || "$only" == febrl ]]; then
    echo "== FEBRL4: 5,000 x 5,000"
    measure keel-febrl4 "$keel" match --quiet --left "$febrl/dataset4a.csv" --right "$febrl/dataset4b.csv" \
        --truth "$febrl/febrl4_truth.csv" --out "$work/keel-febrl4-pairs.csv"
    measure splink-febrl4 "$venv/bin/python" scripts/splink-link.py "$febrl/dataset4a.csv" \
        "$febrl/dataset4b.csv" "$febrl/febrl4_truth.csv" --id-column soc_sec_id
fi
if [[ "$only" == all || "$only" == sim ]]; then
    sim="$work/sim-$people"
    if [[ ! -s "$sim/truth.csv" ]]; then
        "$keel" sim linkage --people "$people" --seed 1 --out "$sim" >/dev/null
    fi
    echo "== keel sim linkage --people $people --seed 1: $people x $people"
    measure keel-sim "$keel" match --quiet --left "$sim/left.csv" --right "$sim/right.csv" \
        --nhs-number-column nhs_number --truth "$sim/truth.csv" --out "$work/keel-sim-pairs.csv"
    measure splink-sim "$venv/bin/python" scripts/splink-link.py "$sim/left.csv" "$sim/right.csv" \
        "$sim/truth.csv" --id-column nhs_number
fi
