#!/usr/bin/env bash
# Fuzzes every parser of outside input (fuzz/fuzz_targets/*.rs) with cargo-fuzz / libFuzzer.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Runs each target (default: all of them) for SECONDS (default 30), one after another, and
# exits 1 if any of them crashed; a crashing input is saved under fuzz/artifacts/<target>/.
# Replay one with: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
#
# The committed seeds stay in fuzz/corpus/<target>/ (read only); inputs the fuzzer finds
# interesting go to fuzz/target/corpus/<target>/ and are reused by the next run.
# Environment: FUZZ_SANITIZER (address|none, default address), FUZZ_ARGS (more libFuzzer flags).
# cargo-fuzz needs nightly compiler flags: RUSTC_BOOTSTRAP=1 enables them on the stable toolchain.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-30}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
root="$(pwd)"
target_dir="$root/fuzz/target"
sanitizer="${FUZZ_SANITIZER:-address}"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(ls fuzz/fuzz_targets | sed -n 's/\.rs$//p' | sort)
fi

# The transaction_bundle target keeps a SQLite store in $TMPDIR: put it on a RAM disk when
# there is one (fsync per transaction), and remove it afterwards.
scratch="$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/keel-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

failed=()
for t in "${targets[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
        echo "no fuzz target '$t' (fuzz/fuzz_targets/$t.rs)" >&2
        exit 2
    fi
    # One build at a time (2 cores); cargo only rebuilds what changed.
    cargo fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir" "$t"
    work="$target_dir/corpus/$t"
    mkdir -p "$work" "fuzz/corpus/$t"
    args=(-max_total_time="$seconds" -print_final_stats=1)
    [ -f "fuzz/dicts/$t.dict" ] && args+=(-dict="$root/fuzz/dicts/$t.dict")
    # shellcheck disable=SC2206
    args+=(${FUZZ_ARGS:-})
    echo "== fuzzing $t for ${seconds}s" >&2
    if ! TMPDIR="$scratch" cargo fuzz run --sanitizer "$sanitizer" --target-dir "$target_dir" \
        "$t" "$work" "$root/fuzz/corpus/$t" -- "${args[@]}"; then
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "FUZZING FOUND CRASHES in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, no crash" >&2
