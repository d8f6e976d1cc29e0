#!/usr/bin/env bash
# What the browser tests need on a fresh Debian machine: chromium (headless) and npm. Skips
# whatever is already installed.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q && apt-get install -y -q "${missing[@]}"
fi
