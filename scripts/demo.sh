#!/usr/bin/env bash
# The main job: set up, start the local PostGIS (unless TWIN_DATABASE_URL is set), migrate, load the
# demo data, and serve the API and the map on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
twin=.venv/bin/twin
$twin db up
$twin db migrate
scale="${DEMO_SCALE:-small}"; seed="${DEMO_SEED:-42}"
out="${TWIN_DATA_DIR:-.twin}/demo-data/$scale-$seed"
if $twin demo-data --help >/dev/null 2>&1; then
  [ -f "$out/manifest.json" ] || $twin demo-data --scale "$scale" --seed "$seed" --out "$out"
  if $twin ingest-all --help >/dev/null 2>&1; then
    $twin ingest-all "$out"
  fi
fi
exec $twin serve --host "${TWIN_HOST:-127.0.0.1}" --port "${TWIN_PORT:-8000}"
