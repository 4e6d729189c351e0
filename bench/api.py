"""Benchmark of the spatial API: vth-twin against tipg and pygeoapi on the same tables, in one run, on loopback.

Both servers run as single uvicorn processes against the same database (tipg as the owner, because it
creates catalog functions in pg_temp, which the read-only API role cannot; vth-twin as its read-only
role, as in production, with the per-key rate limiter off since tipg has none). pygeoapi (its PostgreSQL
provider, configured in a temporary directory at run time: storage CRS RD New, as the twin stores it) is
the second peer, as a single uvicorn process of its Starlette app; it serves no vector tiles from PostGIS
tables without a tile provider setup, so it runs the feature workloads only. For each workload and
concurrency the client warms every server up, then sends requests for a fixed time and reports requests/s
and the p50/p95 latency, and the ratios vth-twin / tipg and vth-twin / pygeoapi.

Workloads (the medium or the national demo data, ``--scale``; both fill every page: the Amsterdam box holds
2,259 establishments on the medium twin and 13,333 on the national one, the CQL2 filter matches 3,652 and
21,996):
- ``items-bbox``: establishments in a city bbox (Amsterdam), limit 1,000, GeoJSON;
- ``items-cql2``: establishments with a CQL2 text filter, limit 1,000;
- ``tiles``: establishment MVT tiles over the Randstad at zoom 10 to 15 (a fixed random sample).

Prepare the data once (another database than the demo one is fine)::

    twin demo-data --scale medium --seed 42 --out /tmp/medium
    # a database of its own in the project's cluster (see docs/api.md), then
    TWIN_DATABASE_NAME=twin_bench twin ingest-all /tmp/medium

Run::

    .venv/bin/pip install -e '.[bench]'   # tipg, pygeoapi, psycopg2 (pygeoapi's driver)
    .venv/bin/python bench/api.py --scale medium [--seconds 8] [--json out.json] [--no-pygeoapi]   # twin_bench
    .venv/bin/python bench/api.py --scale national                                                 # twin_national
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import morecantile

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CITY_BBOX = "4.75,52.30,5.02,52.43"  # Amsterdam
RANDSTAD = (4.2, 51.85, 5.2, 52.45)
BASELINE = "baseline"
CQL2 = "sbi_code = '0141' AND visit_frequency_years = 3"
TILES_PER_ZOOM = 40
SCALES = {"medium": "twin_bench", "national": "twin_national"}


@dataclass
class Result:
    server: str
    workload: str
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    mean_kb: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server did not become ready: {url}")


def socket_dir() -> str:
    from twin.settings import Settings

    return str(Settings().socket_dir if os.environ.get("TWIN_DATA_DIR") else (ROOT / ".twin" / "run"))


def start_twin(database: str, port: int, tree: Path = ROOT) -> subprocess.Popen[bytes]:
    """vth-twin from the checkout ``tree`` (this one, or another commit's for a before/after comparison)."""
    # The tile cache is off (unless TWIN_TILE_CACHE_MB is set): the workload repeats a fixed sample of tiles,
    # which vth-twin would otherwise serve from memory while tipg cuts every one; like for like, both cut.
    env = {**os.environ, "TWIN_DATABASE_NAME": database, "TWIN_RATE_LIMIT_RPS": "0",
           "TWIN_TILE_CACHE_MB": os.environ.get("TWIN_TILE_CACHE_MB", "0"),
           "TWIN_DATA_DIR": os.environ.get("TWIN_DATA_DIR", str(ROOT / ".twin"))}
    return subprocess.Popen(
        [PYTHON, "-m", "uvicorn", "--factory", "api.app:app_from_env", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log", "--app-dir", str(tree)],
        cwd=tree, env={**env, "PYTHONPATH": str(tree)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def start_tipg(database: str, port: int, pg_port: int) -> subprocess.Popen[bytes]:
    host = urllib.parse.quote(socket_dir(), safe="")
    env = {**os.environ, "DATABASE_URL": f"postgresql://twin_owner@{host}:{pg_port}/{database}",
           "TIPG_DB_SCHEMAS": '["twin"]', "TIPG_DB_MAX_CONN_SIZE": "8", "TIPG_DEBUG": "false"}
    return subprocess.Popen(
        [PYTHON, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd="/tmp", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


PYGEOAPI = "pygeoapi"
PYGEOAPI_CONFIG = """\
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [en-US]
  limits: {{default_items: 10, max_items: 10000}}
  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: OSM}}
logging: {{level: ERROR}}
metadata:
  identification: {{title: vth-twin bench, description: bench, keywords: [bench], keywords_type: theme,
                   terms_of_service: none, url: http://127.0.0.1}}
  license: {{name: CC-BY 4.0, url: https://creativecommons.org/licenses/by/4.0/}}
  provider: {{name: bench, url: http://127.0.0.1}}
  contact: {{name: bench}}
resources:
  establishments:
    type: collection
    title: Establishments
    description: twin.establishments
    keywords: [bench]
    extents:
      spatial: {{bbox: [3.2, 50.7, 7.3, 53.6], crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84}}
    providers:
      - type: feature
        name: PostgreSQL
        data: {{host: {host}, port: {pg_port}, dbname: {database}, user: twin_owner, search_path: [twin, public]}}
        id_field: establishment_id
        table: establishments
        geom_field: geom
        storage_crs: http://www.opengis.net/def/crs/EPSG/0/28992
"""


def start_pygeoapi(database: str, port: int, pg_port: int, workdir: Path) -> tuple[int, subprocess.Popen[bytes]]:
    """pygeoapi's Starlette app with its PostgreSQL provider on twin.establishments (config written here)."""
    config = workdir / "pygeoapi-config.yml"
    config.write_text(PYGEOAPI_CONFIG.format(port=port, host=socket_dir(), pg_port=pg_port, database=database))
    openapi = workdir / "pygeoapi-openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    bin_dir = Path(PYTHON).parent
    subprocess.run([str(bin_dir / "pygeoapi"), "openapi", "generate", str(config), "--output-file", str(openapi)],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return port, subprocess.Popen(
        [PYTHON, "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def tile_sample(seed: int = 42) -> list[tuple[int, int, int]]:
    tms = morecantile.tms.get("WebMercatorQuad")
    rng = random.Random(seed)
    out = []
    for z in range(10, 16):
        tiles = list(tms.tiles(*RANDSTAD, zooms=[z]))
        out += [(t.z, t.x, t.y) for t in rng.sample(tiles, min(TILES_PER_ZOOM, len(tiles)))]
    rng.shuffle(out)
    return out


def workloads(twin: str, tipg: str, baseline: str | None = None,
              pygeoapi: str | None = None) -> dict[str, dict[str, list[str]]]:
    q_bbox = urllib.parse.urlencode({"bbox": CITY_BBOX, "limit": 1000})
    q_cql = urllib.parse.urlencode({"filter": CQL2, "filter-lang": "cql2-text", "limit": 1000})
    tiles = tile_sample()
    out = {
        "items-bbox": {
            "vth-twin": [f"{twin}/collections/establishments/items?{q_bbox}"],
            "tipg": [f"{tipg}/collections/twin.establishments/items?{q_bbox}"],
        },
        "items-cql2": {
            "vth-twin": [f"{twin}/collections/establishments/items?{q_cql}"],
            "tipg": [f"{tipg}/collections/twin.establishments/items?{q_cql}"],
        },
        "tiles": {
            "vth-twin": [f"{twin}/collections/establishments/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles],
            "tipg": [f"{tipg}/collections/twin.establishments/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles],
        },
    }
    if pygeoapi:  # the same feature queries; pygeoapi names the collection as configured
        q_pyg = urllib.parse.urlencode({"bbox": CITY_BBOX, "limit": 1000, "f": "json"})
        out["items-bbox"][PYGEOAPI] = [f"{pygeoapi}/collections/establishments/items?{q_pyg}"]
        q_pyg = urllib.parse.urlencode({"filter": CQL2, "filter-lang": "cql-text", "limit": 1000, "f": "json"})
        out["items-cql2"][PYGEOAPI] = [f"{pygeoapi}/collections/establishments/items?{q_pyg}"]
    if baseline:  # the same requests to the other checkout's vth-twin
        for urls in out.values():
            urls[BASELINE] = [u.replace(twin, baseline, 1) for u in urls["vth-twin"]]
    return out


async def measure(urls: list[str], concurrency: int, seconds: float) -> tuple[list[float], int, int]:
    """Send requests from ``concurrency`` clients for ``seconds``; latencies (s), errors, bytes."""
    latencies: list[float] = []
    errors = 0
    nbytes = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker(start: int) -> None:
            nonlocal errors, nbytes
            k = start
            while time.perf_counter() < stop:
                url = urls[k % len(urls)]
                k += concurrency
                t0 = time.perf_counter()
                r = await client.get(url)
                latencies.append(time.perf_counter() - t0)
                if r.status_code not in (200, 204):
                    errors += 1
                nbytes += len(r.content)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies, errors, nbytes


def summarise(server: str, workload: str, concurrency: int, seconds: float,
              latencies: list[float], errors: int, nbytes: int) -> Result:
    ms = sorted(v * 1000 for v in latencies)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))] if ms else float("nan")
    return Result(server, workload, concurrency, len(ms), errors, len(ms) / seconds,
                  statistics.median(ms) if ms else float("nan"), p95,
                  nbytes / max(len(ms), 1) / 1024)


def sanity(urls: dict[str, dict[str, list[str]]]) -> None:
    """Both servers answer the feature workloads with the same number of features."""
    for name in ("items-bbox", "items-cql2"):
        counts = {}
        for server, u in urls[name].items():
            with urllib.request.urlopen(u[0], timeout=60) as r:
                body = json.loads(r.read())
            counts[server] = (body.get("numberMatched"), body.get("numberReturned"))
        print(f"  {name}: (numberMatched, numberReturned) {counts}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="medium",
                        help="the demo scale loaded: medium (database twin_bench) or national (twin_national)")
    parser.add_argument("--database", help="database (in the project's cluster) to serve; overrides --scale")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per workload and concurrency")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up time per workload and server")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workloads", nargs="+", default=["items-bbox", "items-cql2", "tiles"])
    parser.add_argument("--pg-port", type=int, default=54329)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--no-pygeoapi", action="store_true", help="leave pygeoapi out")
    parser.add_argument("--baseline", type=Path, help="a checkout of another commit (e.g. `git worktree add "
                        "/tmp/before main`), served as a third server: before/after in one run")
    args = parser.parse_args()
    args.database = args.database or SCALES[args.scale]

    workdir = Path(tempfile.mkdtemp(prefix="bench-pygeoapi-"))
    ports = {"vth-twin": free_port(), "tipg": free_port()}
    pygeoapi = None if args.no_pygeoapi else start_pygeoapi(args.database, free_port(), args.pg_port, workdir)
    procs = {"vth-twin": start_twin(args.database, ports["vth-twin"]),
             "tipg": start_tipg(args.database, ports["tipg"], args.pg_port)}
    if args.baseline:
        ports[BASELINE] = free_port()
        procs[BASELINE] = start_twin(args.database, ports[BASELINE], args.baseline.resolve())
    if pygeoapi is not None:
        ports[PYGEOAPI], procs[PYGEOAPI] = pygeoapi
    servers = list(procs)
    results: list[Result] = []
    try:
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        wait_ready(f"{base['vth-twin']}/healthz", procs["vth-twin"])
        wait_ready(f"{base['tipg']}/collections", procs["tipg"])
        if args.baseline:
            wait_ready(f"{base[BASELINE]}/healthz", procs[BASELINE])
        if PYGEOAPI in procs:
            wait_ready(f"{base[PYGEOAPI]}/collections?f=json", procs[PYGEOAPI])
        urls = workloads(base["vth-twin"], base["tipg"], base.get(BASELINE), base.get(PYGEOAPI))
        print(f"vth-twin on {base['vth-twin']}, tipg on {base['tipg']}, database {args.database}")
        sanity(urls)
        for name in args.workloads:
            present = [server for server in servers if server in urls[name]]
            for server in present:
                asyncio.run(measure(urls[name][server], 1, args.warmup))
            for c in args.concurrency:
                for server in present:
                    lat, err, nbytes = asyncio.run(measure(urls[name][server], c, args.seconds))
                    r = summarise(server, name, c, args.seconds, lat, err, nbytes)
                    results.append(r)
                    print(f"  {name:11s} c={c} {server:8s} {r.rps:7.1f} req/s  p50 {r.p50_ms:7.1f} ms  "
                          f"p95 {r.p95_ms:7.1f} ms  {r.mean_kb:8.1f} kB/resp  errors {r.errors}")
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\nworkload     c   vth-twin req/s   tipg req/s   ratio   vth-twin p95   tipg p95")
    for name in args.workloads:
        for c in args.concurrency:
            a = next(r for r in results if r.server == "vth-twin" and r.workload == name and r.concurrency == c)
            b = next(r for r in results if r.server == "tipg" and r.workload == name and r.concurrency == c)
            print(f"{name:11s} {c:2d} {a.rps:15.1f} {b.rps:12.1f} {a.rps / b.rps:7.2f}x {a.p95_ms:11.1f} ms "
                  f"{b.p95_ms:7.1f} ms")
    if PYGEOAPI in servers:
        print("\nworkload     c   vth-twin req/s   pygeoapi req/s   ratio   vth-twin p95   pygeoapi p95")
        for name in args.workloads:
            for c in args.concurrency:
                a = next(r for r in results if r.server == "vth-twin" and r.workload == name and r.concurrency == c)
                p = next((r for r in results if r.server == PYGEOAPI and r.workload == name and r.concurrency == c),
                         None)
                if p is not None:
                    print(f"{name:11s} {c:2d} {a.rps:15.1f} {p.rps:16.1f} {a.rps / p.rps:7.2f}x {a.p95_ms:11.1f} ms "
                          f"{p.p95_ms:9.1f} ms")
    if args.baseline:
        print(f"\nworkload     c   vth-twin req/s   baseline req/s   ratio   (baseline: {args.baseline})")
        for name in args.workloads:
            for c in args.concurrency:
                a = next(r for r in results if r.server == "vth-twin" and r.workload == name and r.concurrency == c)
                b = next(r for r in results if r.server == BASELINE and r.workload == name and r.concurrency == c)
                print(f"{name:11s} {c:2d} {a.rps:15.1f} {b.rps:16.1f} {a.rps / b.rps:7.2f}x")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if all(r.errors == 0 for r in results) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
