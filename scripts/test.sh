#!/usr/bin/env bash
# The test command (README): fetches the test assets once, then runs every test of the
# workspace — unit, property, contract, API-over-HTTP and end-to-end tests of the real binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/fetch-test-assets.sh
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc --quiet
scripts/test-browser.sh
