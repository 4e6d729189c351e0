"""Downloading a whole layer through the API against reading it straight from PostGIS, in one run.

1. ``ogr2ogr -f GPKG`` of the medium twin's buildings through the API (GDAL's OAPIF driver following the
   ``next`` links, ``PAGE_SIZE=10000``) against ``ogr2ogr`` reading ``twin.buildings`` over a ``PG:``
   connection, into the same kind of file;
2. the bulk download (``/collections/buildings/download.gpkg``): the first request (the file is made) and
   a second one (sent from the cache);
3. the latency of a 1,000-feature page at the start, the middle and the end of the layer with cursors
   (median of 5), against the same depths by offset where the cap allows.

    TWIN_DATABASE_NAME=twin_bench .venv/bin/twin db migrate    # once
    .venv/bin/python bench/paging.py --database twin_bench [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_spec = importlib.util.spec_from_file_location("bench_api", ROOT / "bench" / "api.py")
assert _spec and _spec.loader
bench_api = importlib.util.module_from_spec(_spec)
sys.modules["bench_api"] = bench_api
_spec.loader.exec_module(bench_api)


def run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds a command takes (it must succeed)."""
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    took = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {r.stderr[-2000:]}")
    return took


def features_in(path: Path) -> int:
    import pyogrio

    return int(pyogrio.read_info(path)["features"])


def get(url: str) -> tuple[float, bytes, dict[str, str]]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = r.read()
        headers = dict(r.headers)
    return time.perf_counter() - start, body, headers


def download_to(url: str, path: Path) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=1800) as r, path.open("wb") as fh:
        shutil.copyfileobj(r, fh, 1 << 20)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="twin_bench")
    parser.add_argument("--collection", default="buildings")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    import psycopg

    from api.paging import Cursors, load_secret, query_hash
    from layers.registry import LAYERS
    from twin import database
    from twin.access import ANONYMOUS
    from twin.settings import Settings

    settings = Settings(database_name=args.database)
    spec = LAYERS[args.collection]
    with psycopg.connect(database.url_for(settings, "owner")) as conn:
        total = int(conn.execute(f"SELECT count(*) FROM {spec.qualified_table}").fetchone()[0])  # type: ignore[index]
        keys = {depth: conn.execute(
            f"SELECT {spec.key} FROM {spec.qualified_table} ORDER BY {spec.key} OFFSET %s LIMIT 1", (depth,),
        ).fetchone()[0] for depth in (total // 2, total - 1000)}  # type: ignore[index]
    print(f"{args.collection}: {total:,} features in {args.database}")

    port = bench_api.free_port()
    proc = bench_api.start_twin(args.database, port)
    base = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {"features": total, "collection": args.collection}
    try:
        bench_api.wait_ready(f"{base}/healthz", proc)
        tmp = Path(tempfile.mkdtemp(prefix="twin-bench-paging-"))
        pg = (f"PG:dbname={args.database} host={bench_api.socket_dir()} port={settings.pg_port} "
              "user=twin_owner")
        # side by side: PostGIS straight, then through the API
        out["ogr2ogr_pg_s"] = run(["ogr2ogr", "-f", "GPKG", str(tmp / "pg.gpkg"), pg, spec.qualified_table,
                                   "-nln", args.collection])
        out["ogr2ogr_oapif_s"] = run(["ogr2ogr", "-f", "GPKG", str(tmp / "api.gpkg"),
                                      f"OAPIF:{base}/collections/{args.collection}", args.collection,
                                      "-oo", "PAGE_SIZE=10000"])
        out["pg_features"] = features_in(tmp / "pg.gpkg")
        out["oapif_features"] = features_in(tmp / "api.gpkg")
        out["ratio"] = out["ogr2ogr_oapif_s"] / out["ogr2ogr_pg_s"]
        # the bulk download: made once per version, then sent from disk
        dl = f"{base}/collections/{args.collection}/download.gpkg"
        out["download_first_s"] = download_to(dl, tmp / "dl1.gpkg")
        out["download_cached_s"] = download_to(dl, tmp / "dl2.gpkg")
        out["download_features"] = features_in(tmp / "dl2.gpkg")
        out["download_mb"] = (tmp / "dl2.gpkg").stat().st_size / 1e6
        # page latency by depth: cursors (signed as the server does) against offsets
        cursors = Cursors(load_secret(settings), query_hash(spec, ANONYMOUS, _params()))
        items = f"{base}/collections/{args.collection}/items?limit=1000"
        pages = {"first": items, "middle (cursor)": f"{items}&cursor={cursors.encode([keys[total // 2]])}",
                 "last (cursor)": f"{items}&cursor={cursors.encode([keys[total - 1000]])}",
                 f"offset {settings.max_offset:,}": f"{items}&offset={settings.max_offset}"}
        latency = {}
        for name, url in pages.items():
            get(url)  # warm
            times = [get(url)[0] for _ in range(5)]
            latency[name] = statistics.median(times) * 1000
        out["page_ms"] = latency
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    print(f"ogr2ogr PG -> GPKG          {out['ogr2ogr_pg_s']:7.1f} s  ({out['pg_features']:,} features)")
    print(f"ogr2ogr OAPIF -> GPKG       {out['ogr2ogr_oapif_s']:7.1f} s  ({out['oapif_features']:,} features, "
          f"PAGE_SIZE=10000)  = {out['ratio']:.2f}x PostGIS")
    print(f"download.gpkg, first        {out['download_first_s']:7.1f} s  (made: {out['download_mb']:.0f} MB)")
    print(f"download.gpkg, cached       {out['download_cached_s']:7.1f} s  ({out['download_features']:,} features)")
    for name, ms in out["page_ms"].items():
        print(f"page of 1,000, {name:<14} {ms:7.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def _params() -> Any:
    from starlette.datastructures import QueryParams

    return QueryParams("limit=1000")


if __name__ == "__main__":
    raise SystemExit(main())
