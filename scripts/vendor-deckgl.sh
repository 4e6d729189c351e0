#!/usr/bin/env bash
# Rebuilds the map's deck.gl bundle, frontend/static/vendor/deckgl-<version>/deckgl.min.js and LICENSES.txt,
# from the npm packages pinned in frontend/js/package.json and package-lock.json (deck.gl 9.3.6 with
# luma.gl 9.3.3 and loaders.gl 4.4.3, the versions inside pydeck 0.9.3's notebook bundle).
# Needs node and npm and the npm registry; the app never fetches anything at run time.
# When pydeck is upgraded: set the versions of its bundle (grep VERSION in pydeck/nbextension/static/index.js)
# in package.json, run `npm install` in frontend/js, DECKGL_VERSION in frontend/assets.py, then this script.
set -euo pipefail
cd "$(dirname "$0")/../frontend/js"
npm ci --no-audit --no-fund
node build.mjs
sha256sum ../static/vendor/deckgl-*/deckgl.min.js
