#!/usr/bin/env bash
# Vendors axe-core (the accessibility checker of the browser tests) into
# frontend/static/vendor/axe-core-<version>/axe.min.js with its licence (MPL-2.0), from the npm registry.
# The app serves it like deck.gl (same origin, allowed by the page's CSP); only tests/frontend loads it into a page.
# Needs node and npm; the app never fetches anything at run time. To upgrade: change AXE_VERSION here and in
# tests/frontend/conftest.py, run this script, delete the old folder.
set -euo pipefail
AXE_VERSION=4.14.1
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm install --no-audit --no-fund --no-save "axe-core@$AXE_VERSION" >/dev/null
out="$root/frontend/static/vendor/axe-core-$AXE_VERSION"
mkdir -p "$out"
cp node_modules/axe-core/axe.min.js "$out/axe.min.js"
cp node_modules/axe-core/LICENSE "$out/LICENSE.txt"
sha256sum "$out/axe.min.js"
