#!/usr/bin/env bash
# The main job: set up, start the local PostGIS (unless TWIN_DATABASE_URL is set), migrate, load the
# demo data, and serve the API and the map on http://127.0.0.1:8000.
#   DEMO_SCALE=small|medium|national (default small), DEMO_SEED (default 42)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
twin=.venv/bin/twin
[ -n "${TWIN_DATABASE_URL:-}" ] || $twin db up
$twin db migrate
scale="${DEMO_SCALE:-small}"; seed="${DEMO_SEED:-42}"
out="${TWIN_DATA_DIR:-.twin}/demo-data/$scale-$seed"
# The generator is deterministic: an existing manifest for this scale and seed is the same data.
[ -f "$out/manifest.json" ] || $twin demo-data --scale "$scale" --seed "$seed" --out "$out"
# Idempotent: files loaded before are recorded as unchanged.
$twin ingest-all "$out"
echo "vth-twin: the map on http://${TWIN_HOST:-127.0.0.1}:${TWIN_PORT:-8000}/  the API on http://${TWIN_HOST:-127.0.0.1}:${TWIN_PORT:-8000}/docs"
exec $twin serve --host "${TWIN_HOST:-127.0.0.1}" --port "${TWIN_PORT:-8000}"
