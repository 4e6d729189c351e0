#!/usr/bin/env bash
# Install what vth-twin needs and is missing: Debian's PostgreSQL + PostGIS (and, with --test, GDAL's
# command-line tools and Chromium for the browser tests), then the project in .venv.
# A second run with nothing changed installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- system packages -------------------------------------------------------------------------------
pg_major() {
  local m
  m=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)
  if [ -z "$m" ] && command -v apt-cache >/dev/null; then
    m=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -1)
  fi
  echo "$m"
}

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if [ -z "${TWIN_DATABASE_URL:-}" ] || [ "$WITH_TEST" = 1 ]; then
  if command -v dpkg-query >/dev/null; then
    have_pkg postgresql || missing+=(postgresql)
    major=$(pg_major)
    if [ -n "$major" ]; then
      have_pkg "postgresql-$major-postgis-3" || missing+=("postgresql-$major-postgis-3")
    else
      missing+=(postgresql-15-postgis-3)
    fi
  fi
fi
if [ "$WITH_TEST" = 1 ] && command -v dpkg-query >/dev/null; then
  have_pkg gdal-bin || missing+=(gdal-bin)
  have_pkg chromium || missing+=(chromium)
  # PgBouncer for the pooling test (tests/security/test_pgbouncer.py starts its own, on a free loopback port)
  have_pkg pgbouncer || missing+=(pgbouncer)
  # nginx (load balancer and shared cache) for the scale-out topology test (tests/twin/test_scale_topology.py)
  have_pkg nginx-light || have_pkg nginx || missing+=(nginx-light)
  # QGIS 3.22 (Debian's) headless for the GIS-client test (tests/api/test_gis_clients.py): ~3.5 min the first time
  have_pkg python3-qgis || missing+=(qgis python3-qgis)
fi
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 && command -v dpkg-query >/dev/null; then
  missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    die "this system has no apt-get. Install these yourself (or their equivalents): PostgreSQL 15+ with PostGIS 3 \
(server and postgis_raster), GDAL command-line tools, Chromium, Python 3.11+ with venv; or set TWIN_DATABASE_URL \
to an existing PostGIS."
  fi
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "installing ${missing[*]} needs root: run as root or install sudo"
    SUDO="sudo"
  fi
  say "installing ${missing[*]} with apt-get"
  $SUDO apt-get update -qq
  # A freshly installed postgresql may bring a newer major than guessed: resolve PostGIS after it.
  base=(); for p in "${missing[@]}"; do case "$p" in postgresql-*-postgis-3) ;; *) base+=("$p");; esac; done
  [ ${#base[@]} -gt 0 ] && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${base[@]}" >/dev/null
  major=$(pg_major)
  [ -n "$major" ] || die "PostgreSQL did not install: see the apt-get output above"
  if ! have_pkg "postgresql-$major-postgis-3"; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-$major-postgis-3" >/dev/null \
      || die "could not install postgresql-$major-postgis-3"
  fi
  # Debian starts a system cluster on 5432; the twin runs its own on TWIN_PG_PORT and leaves that one alone.
fi

# --- Python environment ----------------------------------------------------------------------------
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is needed (found $("$PYTHON" -V 2>&1)); set PYTHON=..."
extras="."; tag=base
[ "$WITH_TEST" = 1 ] && { extras=".[test,bench]"; tag=test; }
hash=$(sha256sum pyproject.toml | cut -c1-16)
stamp=".venv/.installed-$hash-$tag"
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
# The test extras include everything the demo needs: either stamp will do for the demo.
if [ ! -f "$stamp" ] && ! { [ "$tag" = base ] && [ -f ".venv/.installed-$hash-test" ]; }; then
  say "installing vth-twin into .venv ($extras)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$extras"
  find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$hash-*" -delete
  touch "$stamp"
fi
