#!/usr/bin/env bash
# Simulator and integration-layer benchmarks (issues 3 and 4), each a `cargo bench` target with
# its own p50/p99 output; measure on a quiet machine (the load average is printed before each).
#
#   scripts/bench-integration.sh            # all of them
#   scripts/bench-integration.sh serve      # only the simulators serving a 5,000-entry record
#
#   serve        keel-sim        serve_record        each simulator serves a 5,000-entry record (< 20 ms p50)
#   map          keel-integrations emis_map, tpp_map, gpconnect_map   adapters' parse + map of one
#   render       keel-api        record_render       the canonical record as an R4 Bundle
#   assembly     keel-api        record_assembly     Keel's own time to assemble a 5,000-entry record (< 25 ms p50)
#   concurrency  keel-api        record_concurrency  200 concurrent records, one practice down
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
only="${1:-all}"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"

bench() {
    local group="$1" package="$2" target="$3"
    if [[ "$only" != "all" && "$only" != "$group" ]]; then
        return
    fi
    cargo bench -p "$package" --bench "$target" --no-run >/dev/null 2>&1 || cargo bench -p "$package" --bench "$target" --no-run
    echo
    echo "== $package/$target (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
    cargo bench -q -p "$package" --bench "$target" 2>/dev/null
}

bench serve keel-sim serve_record
bench map keel-integrations emis_map
bench map keel-integrations tpp_map
bench map keel-integrations gpconnect_map
bench render keel-api record_render
bench assembly keel-api record_assembly
bench concurrency keel-api record_concurrency
