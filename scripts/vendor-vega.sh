#!/usr/bin/env bash
# Vendors the dashboard's charting library into frontend/static/vendor/vega-<version>/: the minified dist files
# of vega, vega-lite and vega-embed from the npm registry, and vega-interpreter (ESM only on npm) bundled by
# esbuild into vega-interpreter.min.js (the global `vegaInterpreter`). The interpreter evaluates Vega
# expressions without `new Function`, so the dashboard runs under the page's CSP without 'unsafe-eval'.
# LICENSES.txt holds the licence of every npm package the bundles are built from (BSD-3-Clause, ISC, MIT).
# Needs node and npm and the npm registry; the app never fetches anything at run time. To upgrade: change the
# versions here and VEGA_VERSION in frontend/assets.py, run this script, delete the old folder.
set -euo pipefail
VEGA_VERSION=6.4.0
VEGA_LITE_VERSION=6.4.3
VEGA_EMBED_VERSION=7.3.0
VEGA_INTERPRETER_VERSION=2.3.2
ESBUILD_VERSION=0.28.2
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund "vega@$VEGA_VERSION" "vega-lite@$VEGA_LITE_VERSION" \
  "vega-embed@$VEGA_EMBED_VERSION" "vega-interpreter@$VEGA_INTERPRETER_VERSION" >/dev/null
licences="$( (ls -d node_modules/*/package.json node_modules/@*/*/package.json 2>/dev/null || true) | sort)"
npm install --no-audit --no-fund --no-save "esbuild@$ESBUILD_VERSION" >/dev/null
out="$root/frontend/static/vendor/vega-$VEGA_VERSION"
mkdir -p "$out"
cp node_modules/vega/build/vega.min.js "$out/vega.min.js"
cp node_modules/vega-lite/build/vega-lite.min.js "$out/vega-lite.min.js"
cp node_modules/vega-embed/build/vega-embed.min.js "$out/vega-embed.min.js"
echo 'export {expressionInterpreter} from "vega-interpreter";' > interpreter-entry.mjs
npx esbuild interpreter-entry.mjs --bundle --minify --format=iife --global-name=vegaInterpreter \
  --target=chrome100,firefox100,safari15 --legal-comments=none --log-level=warning \
  --outfile="$out/vega-interpreter.min.js"
{
  echo "Licences of the npm packages that vega.min.js, vega-lite.min.js, vega-embed.min.js and"
  echo "vega-interpreter.min.js are built from (installed by scripts/vendor-vega.sh)."
  for pkg in $licences; do
    dir="$(dirname "$pkg")"
    name="$(node -p "const p=require('./$pkg'); p.name + ' ' + p.version + ' (' + (p.license || 'see below') + ')'")"
    lic="$(find "$dir" -maxdepth 1 -iname 'licen[cs]e*' | head -1)"
    echo; echo "==== $name"
    if [ -n "$lic" ]; then cat "$lic"; fi
  done
} > "$out/LICENSES.txt"
cat > "$out/README.txt" <<TXT
The dashboard's charts (/dashboard): Vega $VEGA_VERSION, Vega-Lite $VEGA_LITE_VERSION and vega-embed
$VEGA_EMBED_VERSION (BSD-3-Clause; their minified dist files, unchanged) and vega-interpreter
$VEGA_INTERPRETER_VERSION (BSD-3-Clause; bundled by esbuild as the global vegaInterpreter, since npm ships it as
ESM only). The interpreter evaluates expressions without new Function, so no 'unsafe-eval' is needed in the
page's CSP. Vendored by scripts/vendor-vega.sh; licences of every package in LICENSES.txt.
TXT
sha256sum "$out"/*.js
