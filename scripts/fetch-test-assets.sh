#!/usr/bin/env bash
# Fetch the test assets that Keel's tests and code generator read.
#
# Downloads the HL7 FHIR R4 examples package (hl7.fhir.r4.examples@4.0.1, CC0)
# with `npm pack` and extracts it to
#   $KEEL_TEST_ASSETS/hl7.fhir.r4.examples/package/...
# where KEEL_TEST_ASSETS defaults to <repo>/.test-assets.
#
# Idempotent: does nothing when the package is already extracted.
# Uses only npm and tar.
set -euo pipefail

PKG_NAME="hl7.fhir.r4.examples"
PKG_VERSION="4.0.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="${KEEL_TEST_ASSETS:-$repo_root/.test-assets}"
dest="$assets/$PKG_NAME"
marker="$dest/package/package.json"

if [[ -f "$marker" ]] && grep -q "\"version\" *: *\"$PKG_VERSION\"" "$marker"; then
    echo "fetch-test-assets: $PKG_NAME@$PKG_VERSION already present in $dest"
    exit 0
fi

mkdir -p "$assets"
tmp=""
staging=""
cleanup() { rm -rf "$tmp" "$staging"; }
trap cleanup EXIT

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
