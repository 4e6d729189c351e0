"""Ingest benchmark: ``twin ingest`` against GDAL's ``ogr2ogr`` and ``GeoDataFrame.to_postgis``.

Loads the medium-scale establishments (50,000 points), buildings (500,000 polygons) and BAG addresses (786,906
points) GeoPackages, and DESIGN.md's reference case (``reference``: 500,000 random points on land, 4 attributes,
RD New, made here once with a fixed seed and loaded as BAG addresses), into one throwaway database, in one run,
with:

- ``twin ingest``: the command as a user runs it (interpreter start, validation, checks, COPY, index
  build, provenance), into the twin's own tables (empty at the start of each load);
- ``ogr2ogr``: ``-f PostgreSQL`` with ``PG_USE_COPY=YES`` into a new table with a GiST index (its default,
  no validation) — the peer;
- ``ogr2ogr (twin table)``: ``-append -preserve_fid`` (so that it can COPY) into a copy of the twin's
  table with the same indexes and constraints, the columns renamed by the registry's aliases — the
  like-for-like case;
- ``to_postgis``: geopandas ``read_file`` + ``to_postgis(chunksize=50000)`` + a GiST index — the floor.

Each is a separate process, timed wall-clock with its peak memory (``/usr/bin/time``). Prints rows/s and
the ratios to ogr2ogr and to_postgis, and the load average before and after (the machine may be shared:
compare ratios of one run); writes bench/results/ingest.json. ``--quick`` runs only ``twin ingest`` and
``ogr2ogr`` (the goal's pair). When ``twin ingest`` has a post-load data-quality step it runs with
``--no-quality``: that step is an analysis of the loaded layer, not validation, and ogr2ogr does neither.

``raster-tiles`` measures the tile size of the deposition raster: load time, zonal statistics of the 342
municipalities (ST_Clip + ST_SummaryStatsAgg, pixel centres) and 2,000 point values, per tile size.

Prepare the data once (about a minute)::

    .venv/bin/twin demo-data --scale medium --seed 42 --out /tmp/demo-medium

Run::

    .venv/bin/python bench/ingest.py --data /tmp/demo-medium
    .venv/bin/python bench/ingest.py raster-tiles --data /tmp/demo-medium
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import pyogrio  # noqa: E402

from ingest.validation import map_columns  # noqa: E402
from layers.registry import LAYERS  # noqa: E402
from twin import cluster, database  # noqa: E402
from twin.settings import Settings  # noqa: E402

DB = "twin_bench_ingest"
# (name, layer, file in the demo folder; None: made by reference_points)
DATASETS: tuple[tuple[str, str, str | None], ...] = (
    ("establishments", "establishments", "inrichtingen.gpkg"), ("buildings", "buildings", "bag_panden.gpkg"),
    ("addresses", "addresses", "bag_verblijfsobjecten.gpkg"), ("reference", "addresses", None))
REFERENCE_ROWS = 500_000
TO_POSTGIS = """
import sys, time, geopandas as gpd, sqlalchemy as sa
path, table, url = sys.argv[1:4]
t = time.perf_counter()
gdf = gpd.read_file(path, engine="pyogrio")
eng = sa.create_engine(url)
gdf.rename_geometry("geom").to_postgis(table, eng, schema="bench", if_exists="replace", chunksize=50000, index=False)
with eng.begin() as c:
    c.exec_driver_sql(f"CREATE INDEX ON bench.{table} USING gist (geom)")
print(len(gdf), time.perf_counter() - t)
"""


def settings() -> Settings:
    overrides: dict[str, Any] = {"database_name": DB}
    if "TWIN_DATA_DIR" not in os.environ:
        overrides["data_dir"] = ROOT / ".twin"
    return Settings(**overrides)


def fresh_database(s: Settings) -> None:
    if not s.local_cluster:
        raise SystemExit("bench/ingest.py creates its database in the local cluster; unset TWIN_DATABASE_URL")
    cluster.up(s)
    cluster.drop_database(s, DB)
    cluster.create_database(s, DB)
    database.migrate(s)
    with psycopg.connect(database.url_for(s, "owner"), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA bench")


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of a command run under /usr/bin/time."""
    with tempfile.NamedTemporaryFile(suffix=".time") as tf:
        proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", tf.name, *cmd], capture_output=True, text=True,
                              env=env, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {proc.stderr[-2000:]}")
        wall, kb = Path(tf.name).read_text().split()[-2:]
    return float(wall), int(kb) / 1024, proc.stdout


def pg_dsn(s: Settings) -> str:
    """The owner's connection for GDAL (a libpq keyword string)."""
    url = database.url_for(s, "owner")
    m = re.match(r"postgresql://([^@]+)@/([^?]+)\?host=([^&]+)&port=(\d+)", url)
    if not m:
        raise SystemExit(f"unexpected owner URL {url}")
    user, db, host, port = m.groups()
    return f"PG:dbname={db} host={host} port={port} user={user}"


def truncate(s: Settings, table: str) -> None:
    with psycopg.connect(database.url_for(s, "owner"), autocommit=True) as conn:
        conn.execute(f"TRUNCATE twin.{table} CASCADE")


def twin_table_copy(s: Settings, layer: str) -> str:
    """A table shaped like the twin's (columns, constraints, indexes), for ogr2ogr -append."""
    spec = LAYERS[layer]
    name = f"{spec.table}_twinlike"
    with psycopg.connect(database.url_for(s, "owner"), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS bench.{name}")
        conn.execute(f"CREATE TABLE bench.{name} (LIKE twin.{spec.table} INCLUDING ALL)")
    return name


def ogr_sql(layer: str, path: Path) -> str:
    """SELECT (SQLite dialect) renaming the file's columns to the twin's fields, by the registry's aliases, with
    blank text as NULL (as twin ingest reads it; the twin's CHECK constraints refuse ''): the least a user of
    ogr2ogr must do to load the file into the twin's table at all."""
    info = pyogrio.read_info(path)
    spec = LAYERS[layer]
    types = {f.name: f.type for f in spec.fields}
    mapping = map_columns(spec, [str(c) for c in info["fields"]])
    cols = ", ".join(f"NULLIF(TRIM(\"{src}\"), '') AS {field}" if types.get(field) == "text" else f'"{src}" AS {field}'
                     for field, src in mapping.fields.items())
    return f'SELECT {cols}, {info["geometry_name"]} FROM "{info["layer_name"]}"'


def twin_ingest_flags() -> list[str]:
    """``--no-quality`` when ``twin ingest`` has a post-load quality measurement (see the module docstring)."""
    proc = subprocess.run([str(ROOT / ".venv/bin/twin"), "ingest", "load", "--help"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    return ["--no-quality"] if "--no-quality" in proc.stdout else []


def reference_points(data: Path, n: int = REFERENCE_ROWS, seed: int = 42) -> Path:
    """DESIGN.md's reference case: ``n`` random points (uniform on land, inside the demo's municipalities) with 4
    attributes (a 16-digit id, a house number, a postcode, a place name), RD New, as a BAG-like GeoPackage
    layer ``verblijfsobject``. Made once per folder and seed, next to the bench's results."""
    out = ROOT / "bench" / "results" / f"reference_points_{n}_{seed}.gpkg"
    if out.exists():
        return out
    import numpy as np
    import pyarrow as pa
    import shapely

    info = pyogrio.read_arrow(data / "gemeenten.gpkg")[1]
    land = shapely.union_all(shapely.from_wkb(info.column(info.column_names[-1]).to_numpy(zero_copy_only=False)))
    shapely.prepare(land)
    xmin, ymin, xmax, ymax = land.bounds
    rng = np.random.default_rng(seed)
    xs: list[Any] = []
    ys: list[Any] = []
    have = 0
    while have < n:
        x, y = rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)
        inside = shapely.contains_xy(land, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        have += int(inside.sum())
    x, y = np.concatenate(xs)[:n], np.concatenate(ys)[:n]
    ids = np.arange(1, n + 1)
    letters = np.array(list("ABCDEFGHJKLMNPRSTVWXZ"))
    table = pa.table({
        "identificatie": pa.array([f"0363{i:012d}" for i in ids]),
        "huisnummer": pa.array(rng.integers(1, 400, n), pa.int32()),
        "postcode": pa.array([f"{a}{b}{c}" for a, b, c in zip(rng.integers(1000, 9999, n).tolist(),
                                                               letters[rng.integers(0, len(letters), n)],
                                                               letters[rng.integers(0, len(letters), n)],
                                                               strict=True)]),
        "woonplaats_naam": pa.array(np.array(["Amsterdam", "Utrecht", "Zwolle", "Tilburg"])[ids % 4]),
        "geom": pa.array(shapely.to_wkb(shapely.points(x, y)), pa.binary()),
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_arrow(table, out, layer="verblijfsobject", driver="GPKG", geometry_name="geom",
                        geometry_type="Point", crs="EPSG:28992")
    return out


def run_one(s: Settings, layer: str, path: Path, quick: bool = False, name: str | None = None) -> list[dict[str, Any]]:
    """Each tool on one file; the results carry the data set's ``name`` (default: the layer)."""
    rows = int(pyogrio.read_info(path)["features"])
    env = {**os.environ, "TWIN_DATABASE_NAME": DB, "TWIN_DATA_DIR": str(s.data_dir)}
    out: list[dict[str, Any]] = []
    dsn = pg_dsn(s)
    spec = LAYERS[layer]
    label = name or layer

    truncate(s, spec.table)
    flags = twin_ingest_flags()
    wall, mb, _ = timed([str(ROOT / ".venv/bin/twin"), "ingest", layer, str(path), *flags], env)
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        r = conn.execute("SELECT status, rows_inserted, timings FROM twin.ingest_runs ORDER BY id DESC LIMIT 1")
        status, inserted, timings = r.fetchone() or (None, 0, {})
    if status != "succeeded" or inserted != rows:
        raise SystemExit(f"twin ingest {layer}: {status}, {inserted} of {rows} rows")
    out.append({"tool": "twin ingest" + (" " + " ".join(flags) if flags else ""), "layer": label, "rows": rows,
                "seconds": wall, "peak_mb": mb, "inside_seconds": timings.get("total")})

    gdal_env = {**os.environ, "PG_USE_COPY": "YES"}
    wall, mb, _ = timed(["ogr2ogr", "-f", "PostgreSQL", dsn, str(path), "-nln", f"bench.{spec.table}_ogr",
                         "-overwrite", "-lco", "GEOMETRY_NAME=geom", "-lco", "SPATIAL_INDEX=GIST",
                         "--config", "PG_USE_COPY", "YES"], gdal_env)
    out.append({"tool": "ogr2ogr", "layer": label, "rows": rows, "seconds": wall, "peak_mb": mb})
    if quick:
        return out

    name = twin_table_copy(s, layer)
    # -preserve_fid: without it GDAL inserts row by row to read back each generated id (no COPY).
    wall, mb, _ = timed(["ogr2ogr", "-f", "PostgreSQL", dsn, str(path), "-nln", f"bench.{name}", "-append",
                         "-preserve_fid", "-sql", ogr_sql(layer, path), "-dialect", "SQLite", "-a_srs",
                         "EPSG:28992", "--config", "PG_USE_COPY", "YES"], gdal_env)
    out.append({"tool": "ogr2ogr (twin table)", "layer": label, "rows": rows, "seconds": wall, "peak_mb": mb})

    url = database.sqlalchemy_url(database.url_for(s, "owner"))
    wall, mb, _ = timed([sys.executable, "-c", TO_POSTGIS, str(path), f"{spec.table}_gpd", url])
    out.append({"tool": "to_postgis", "layer": label, "rows": rows, "seconds": wall, "peak_mb": mb})
    return out


def report(results: list[dict[str, Any]]) -> None:
    print(f"\n{'layer':<15} {'tool':<22} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'peak MB':>8} "
          f"{'vs ogr2ogr':>10} {'vs to_postgis':>13}")
    for layer in dict.fromkeys(r["layer"] for r in results):
        mine = [r for r in results if r["layer"] == layer]
        ogr = next(r for r in mine if r["tool"] == "ogr2ogr")["seconds"]
        gpd = next((r["seconds"] for r in mine if r["tool"] == "to_postgis"), None)
        for r in mine:
            vs_gpd = f"{gpd / r['seconds']:>12.2f}x" if gpd else f"{'-':>13}"
            print(f"{layer:<15} {r['tool']:<22} {r['rows']:>9,} {r['seconds']:>8.2f} {r['rows'] / r['seconds']:>9,.0f} "
                  f"{r['peak_mb']:>8.0f} {ogr / r['seconds']:>9.2f}x {vs_gpd}")


def bench_vectors(data: Path, repeat: int, quick: bool = False, layers: list[str] | None = None) -> None:
    load_before = os.getloadavg()
    s = settings()
    fresh_database(s)
    env = {**os.environ, "TWIN_DATABASE_NAME": DB, "TWIN_DATA_DIR": str(s.data_dir)}
    subprocess.run([str(ROOT / ".venv/bin/twin"), "ingest", "municipalities", str(data / "gemeenten.gpkg")],
                   env=env, check=True, capture_output=True)
    results: list[dict[str, Any]] = []
    for i in range(repeat):
        for name, layer, file in DATASETS:
            if layers and name not in layers:
                continue
            path = data / file if file else reference_points(data)
            if not path.exists():
                print(f"skipped {name}: no {path} (an older demo data set; regenerate it)", flush=True)
                continue
            run = run_one(s, layer, path, quick, name)
            results += run
            print(f"run {i + 1} {name}: " + ", ".join(f"{r['tool']} {r['seconds']:.2f} s" for r in run) +
                  f" (twin vs ogr2ogr {run[1]['seconds'] / run[0]['seconds']:.2f}x; load {os.getloadavg()[0]:.2f})",
                  flush=True)
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        key = (r["layer"], r["tool"])
        if key not in best or r["seconds"] < best[key]["seconds"]:
            best[key] = r
    final = list(best.values())
    report(final)
    load_after = os.getloadavg()
    print(f"\nload average (1, 5, 15 min): before {', '.join(f'{v:.2f}' for v in load_before)}; "
          f"after {', '.join(f'{v:.2f}' for v in load_after)}; {os.cpu_count()} cpus; best of {repeat}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest.json").write_text(json.dumps({"at": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
                                                 "load_before": load_before, "load": load_after,
                                                 "repeat": repeat, "results": final}, indent=2))


def bench_tiles(data: Path, sizes: list[int]) -> None:
    """Load the medium raster with each tile size and time zonal statistics and point queries."""
    import numpy as np

    from ingest import coverage_loader
    from ingest.loader import load

    s = settings()
    fresh_database(s)
    load(s, "municipalities", data / "gemeenten.gpkg")
    url = database.url_for(s, "owner")
    rng = np.random.default_rng(1)
    points = list(zip(rng.uniform(20000, 270000, 2000), rng.uniform(310000, 610000, 2000), strict=True))
    print(f"\n{'tile':>5} {'tiles':>7} {'load s':>7} {'zonal 342 s':>12} {'2,000 points s':>15}")
    for size in sizes:
        coverage_loader.TILE = size
        result = load(s, "nitrogen-deposition", data / "stikstofdepositie_ntot.tif", mode="replace")
        if result.status not in ("succeeded", "unchanged"):
            raise SystemExit(result.message)
        zonal = pts = float("inf")
        with psycopg.connect(url) as conn:
            for _ in range(3):  # best of three: the machine is shared
                t = time.perf_counter()
                conn.execute("""
                    SELECT m.code, (ST_SummaryStatsAgg(ST_Clip(d.rast, m.geom, true), 1, true)).mean
                    FROM twin.municipalities m JOIN twin.nitrogen_deposition d
                      ON ST_Intersects(d.rast, m.geom) AND d.year = 2025
                    GROUP BY m.code""").fetchall()
                zonal = min(zonal, time.perf_counter() - t)
                t = time.perf_counter()
                with conn.cursor() as cur:
                    for x, y in points:
                        cur.execute("SELECT ST_Value(rast, 1, p) FROM twin.nitrogen_deposition, "
                                    "ST_SetSRID(ST_MakePoint(%s, %s), 28992) p WHERE year = 2025 AND "
                                    "ST_Intersects(rast, p)", (x, y))
                        cur.fetchall()
                pts = min(pts, time.perf_counter() - t)
        print(f"{size:>5} {result.rows_read:>7,} {result.timings['total']:>7.2f} {zonal:>12.2f} {pts:>15.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", default="vectors", choices=("vectors", "raster-tiles"))
    parser.add_argument("--data", type=Path, default=Path("/tmp/demo-medium"),
                        help="Folder of 'twin demo-data --scale medium' (default /tmp/demo-medium)")
    parser.add_argument("--repeat", type=int, default=1, help="Runs per tool; the best counts")
    parser.add_argument("--tiles", default="50,100,128,256", help="Tile sizes for raster-tiles")
    parser.add_argument("--quick", action="store_true", help="Only twin ingest and ogr2ogr (vectors)")
    names = [name for name, _, _ in DATASETS]
    parser.add_argument("--layers", default=",".join(names),
                        help=f"Comma-separated data sets to load (vectors; default all: {', '.join(names)})")
    args = parser.parse_args()
    if not (args.data / "manifest.json").exists():
        raise SystemExit(f"{args.data}: no demo data; run: .venv/bin/twin demo-data --scale medium --seed 42 "
                         f"--out {args.data}")
    if args.what == "vectors":
        unknown = set(args.layers.split(",")) - set(names)
        if unknown:
            raise SystemExit(f"--layers: unknown {', '.join(sorted(unknown))}")
        bench_vectors(args.data, args.repeat, args.quick, args.layers.split(","))
    else:
        bench_tiles(args.data, [int(t) for t in args.tiles.split(",")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
