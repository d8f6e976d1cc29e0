#!/usr/bin/env bash
# Browser journeys through the clinician web UI (tests/browser): starts `keel demo` on a fresh
# data directory and free ports, installs the test's npm packages (npm ci, unless node_modules
# is newer than the lock file), and drives headless chromium through the journeys with axe-core
# checks. Screenshots: .test-output/browser/.
# Needs /usr/bin/chromium and npm (scripts/install-browser-deps.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --quiet -p keel
target_dir="${CARGO_TARGET_DIR:-target}"
data="$(mktemp -d)"
out="$data/demo.out"
: >"$out"
"$target_dir/debug/keel" demo --data "$data/keel" --listen 127.0.0.1:0 --patients 1500 >"$out" 2>"$data/demo.err" &
demo=$!
trap 'kill $demo 2>/dev/null || true; wait $demo 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
    grep -q '^Keel demo ready' "$out" && break
    kill -0 $demo 2>/dev/null || { cat "$data/demo.err"; echo "keel demo exited"; exit 1; }
    sleep 0.2
done
grep -q '^Keel demo ready' "$out" || { cat "$data/demo.err"; echo "keel demo was not ready in 60 s"; exit 1; }
ui="$(sed -n 's#^keel: listening on \(http://[^/]*\)/fhir$#\1#p' "$out")"
tpp_faults="$(sed -n 's#^keel demo: TPP-style simulator faults at \(.*\)$#\1#p' "$out")"
emis_patient="$(grep -E '^ +999[0-9]{7} +registered at .*emis-style' "$out" | head -1 | awk '{print $1}')"
tpp_patient="$(grep -E '^ +999[0-9]{7} +registered at .*tpp-style' "$out" | head -1 | awk '{print $1}')"

cd tests/browser
# The packages of package-lock.json, installed again only when the lock file changed.
[ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --silent
KEEL_UI="$ui" KEEL_TPP_FAULTS="$tpp_faults" KEEL_PATIENTS="$emis_patient,$tpp_patient" \
    KEEL_SCREENSHOTS="../../.test-output/browser" node journeys.mjs
