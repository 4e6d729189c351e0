"""Load test: a bounded run of a realistic request mix against ``twin serve`` on loopback.

A closed loop of ``--concurrency`` asyncio clients (httpx) sends, for ``--seconds`` (and at most
``--max-requests``), a mix modelled on a supervision office using the map and the API:

- ``tile``      40%  vector tiles (establishments, buildings, deposition-hexagons) at zoom 11-15 around
                     real establishment locations;
- ``items``     25%  GeoJSON pages (limit 100) of establishments and permits in a ~2 km bbox;
- ``point``     15%  nitrogen deposition at a point (/coverages/nitrogen-deposition/point);
- ``context``   10%  the area context of a point (/analysis/context, radius 500 m);
- ``inspections`` 10%  inspections of an organisation in a bbox, as an inspector (API key: key lookup,
                     row-level security and the audit log on the path).

It reports throughput (requests/s), latency percentiles overall and per kind, and every non-2xx answer
or transport error. The run stops by itself: after ``--seconds`` or ``--max-requests``.

With ``--serve`` the script starts ``twin serve`` itself on a free loopback port against
``TWIN_DATABASE_NAME`` (the per-key rate limit off, since one client sends everything), creates a
temporary inspector key for the run and revokes it afterwards, and stops the server (its own process).

Prepare the medium-scale twin once::

    .venv/bin/twin demo-data --scale medium --seed 42 --out /tmp/medium
    export TWIN_DATABASE_NAME=twin_load && .venv/bin/twin db migrate && .venv/bin/twin ingest-all /tmp/medium

Run (60 s, 8 clients)::

    TWIN_DATABASE_NAME=twin_load .venv/bin/python bench/load.py --serve --seconds 60 --concurrency 8

Faults under load (issue 23): ``--topology`` starts scripts/scale.py (a replica, PgBouncer, two API processes,
nginx) around the local cluster and loads it through nginx; ``--faults`` stops the replica at 20% of the run,
starts it at 40%, stops the primary at 55% and starts it at 80%, and reports every answer per phase (status
counts and the slowest). Give it a cluster of its own, since it stops the primary::

    export TWIN_DATA_DIR=/tmp/twin-faults TWIN_PG_PORT=54400 && .venv/bin/twin db up && .venv/bin/twin db migrate
    .venv/bin/twin demo-data --scale small --out /tmp/small && .venv/bin/twin ingest-all /tmp/small
    .venv/bin/python bench/load.py --topology --faults --seconds 60 --concurrency 8 --json bench/results/faults.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import morecantile

ROOT = Path(__file__).resolve().parent.parent
TMS = morecantile.tms.get("WebMercatorQuad")
MIX: tuple[tuple[str, float], ...] = (
    ("tile", 0.40), ("items", 0.25), ("point", 0.15), ("context", 0.10), ("inspections", 0.10),
)
TILE_LAYERS = ("establishments", "buildings", "deposition-hexagons")


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    sent: int = 0
    phase: str = "steady"  # --faults: what is down now
    by_phase: dict[str, dict[str, Any]] = field(default_factory=dict)

    def note(self, ok: bool, status: str, elapsed: float) -> None:
        """Per phase of a --faults run: answers by status, the slowest, and whether a 200 was well-formed."""
        p = self.by_phase.setdefault(self.phase, {"requests": 0, "status": defaultdict(int), "max_ms": 0.0})
        p["requests"] += 1
        p["status"][status] += 1
        p["max_ms"] = max(p["max_ms"], round(elapsed * 1000, 1))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of the values, in the values' unit."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


Place = tuple[float, float, str | None]


def request_for(kind: str, rng: random.Random, places: list[Place], own: list[Place]) -> tuple[str, dict[str, Any]]:
    """(path, query) of one request of ``kind`` near a random real place (the inspector's own
    organisation's places for inspections)."""
    lon, lat, _ = rng.choice(own if kind == "inspections" and own else places)
    lon += rng.uniform(-0.01, 0.01)
    lat += rng.uniform(-0.01, 0.01)
    if kind == "tile":
        z = rng.randint(11, 15)
        t = TMS.tile(lon, lat, z)
        layer = rng.choice(TILE_LAYERS)
        return f"/collections/{layer}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}", {}
    if kind == "items":
        layer = rng.choice(("establishments", "permits"))
        bbox = f"{lon - 0.015:.5f},{lat - 0.009:.5f},{lon + 0.015:.5f},{lat + 0.009:.5f}"
        return f"/collections/{layer}/items", {"bbox": bbox, "limit": 100}
    if kind == "point":
        return "/coverages/nitrogen-deposition/point", {"lon": f"{lon:.5f}", "lat": f"{lat:.5f}"}
    if kind == "context":
        return "/analysis/context", {"lon": f"{lon:.5f}", "lat": f"{lat:.5f}", "radius": 500}
    bbox = f"{lon - 0.03:.5f},{lat - 0.018:.5f},{lon + 0.03:.5f},{lat + 0.018:.5f}"
    return "/collections/inspections/items", {"bbox": bbox, "limit": 100}


ONLY: list[str] = []  # --only: one kind of request (the capacity model's requests per second per kind)


async def worker(client: httpx.AsyncClient, stats: Stats, rng: random.Random, deadline: float, max_requests: int,
                 places: list[Place], key: str | None, org: str | None) -> None:
    own = [p for p in places if p[2] == org]
    mix = [(k, w) for k, w in MIX if not ONLY or k in ONLY]
    kinds = [k for k, _ in mix]
    weights = [w for _, w in mix]
    while time.monotonic() < deadline and stats.sent < max_requests:
        kind = rng.choices(kinds, weights)[0]
        path, params = request_for(kind, rng, places, own)
        headers = {"X-API-Key": key} if kind == "inspections" and key else {}
        stats.sent += 1
        started = time.perf_counter()
        try:
            r = await client.get(path, params=params, headers=headers)
            await r.aread()
            ok = 200 <= r.status_code < 300 or r.status_code == 304
            status = str(r.status_code)
            if r.status_code == 200 and r.headers.get("content-type", "").startswith(("application/json",
                                                                                    "application/geo+json")):
                body = r.json()  # a wrong answer would be a 200 that is not what was asked for
                if kind in ("items", "inspections") and body.get("type") != "FeatureCollection":
                    ok, status = False, "200 but not a FeatureCollection"
        except httpx.HTTPError as exc:
            ok, status = False, type(exc).__name__
        except ValueError:
            ok, status = False, "200 with a broken body"
        elapsed = time.perf_counter() - started
        stats.note(ok, status, elapsed)
        if ok:
            stats.latencies[kind].append(elapsed)
        else:
            stats.errors[f"{kind} {status}"] += 1
            if len(stats.samples) < 10:
                stats.samples.append(f"{status} {path}?{httpx.QueryParams(params)}")


async def places_from(client: httpx.AsyncClient, n: int) -> list[Place]:
    """Real establishment locations (lon, lat, organisation) to centre the requests on."""
    r = await client.get("/collections/establishments/items", params={"limit": n, "properties": "org_code"})
    r.raise_for_status()
    out = []
    for f in r.json()["features"]:
        lon, lat = f["geometry"]["coordinates"][:2]
        out.append((float(lon), float(lat), f["properties"].get("org_code")))
    if not out:
        raise SystemExit("the twin has no establishments: load the medium-scale twin first (see the docstring)")
    return out


async def faults(stats: Stats, seconds: float, settings: Any, events: list[dict[str, Any]]) -> None:
    """--faults: stop the replica, start it again, stop the primary, start it again, at fixed shares of the run."""
    from twin import cluster, replication

    rep = replication.replicas(settings)[0]
    plan = ((0.2, "replica down", lambda: replication.stop(settings, rep)),
            (0.4, "steady again", lambda: replication.start(settings, rep)),
            (0.55, "primary down", lambda: cluster.down(settings)),
            (0.8, "primary back", lambda: cluster.up(settings)))
    started = time.monotonic()
    for share, phase, action in plan:
        await asyncio.sleep(max(0.0, started + share * seconds - time.monotonic()))
        t0 = time.monotonic()
        await asyncio.to_thread(action)
        stats.phase = phase
        events.append({"at_s": round(t0 - started, 1), "event": phase, "took_s": round(time.monotonic() - t0, 1)})


async def run(base_url: str, seconds: float, concurrency: int, max_requests: int, seed: int, key: str | None,
              org: str | None, warmup: float, fault_settings: Any = None) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        places = await places_from(client, 5000)
        if warmup > 0:  # fill caches and pools; not counted
            warm = Stats()
            end = time.monotonic() + warmup
            await asyncio.gather(*(worker(client, warm, random.Random(seed + 1000 + i), end, 10**9, places, key, org)
                                   for i in range(concurrency)))
        stats = Stats()
        events: list[dict[str, Any]] = []
        started = time.monotonic()
        deadline = started + seconds
        chaos = [faults(stats, seconds, fault_settings, events)] if fault_settings is not None else []
        await asyncio.gather(*(worker(client, stats, random.Random(seed + i), deadline, max_requests, places, key, org)
                               for i in range(concurrency)), *chaos)
        wall = time.monotonic() - started
    all_latencies = [v for values in stats.latencies.values() for v in values]
    ok = len(all_latencies)
    errors = sum(stats.errors.values())
    ms = 1000.0
    return {
        "base_url": base_url, "seconds": round(wall, 1), "concurrency": concurrency, "seed": seed,
        "requests": ok + errors, "ok": ok, "errors": errors, "error_kinds": dict(stats.errors),
        "error_samples": stats.samples,
        "throughput_rps": round(ok / wall, 1),
        "p50_ms": round(percentile(all_latencies, 50) * ms, 1), "p95_ms": round(percentile(all_latencies, 95) * ms, 1),
        "p99_ms": round(percentile(all_latencies, 99) * ms, 1),
        "per_kind": {k: {"n": len(v), "p50_ms": round(percentile(v, 50) * ms, 1),
                         "p95_ms": round(percentile(v, 95) * ms, 1)} for k, v in sorted(stats.latencies.items())},
        **({"fault_events": events,
            "phases": {k: {**v, "status": dict(v["status"])} for k, v in stats.by_phase.items()}}
           if fault_settings is not None else {}),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int) -> subprocess.Popen[bytes]:
    """``twin serve`` on 127.0.0.1:port, rate limit off (one client sends everything); waits for /readyz."""
    env = {**os.environ, "TWIN_RATE_LIMIT_RPS": "0"}
    proc = subprocess.Popen([str(ROOT / ".venv/bin/twin"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"twin serve exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("twin serve did not become ready within 60 s (is the database migrated and loaded?)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL of a running API (without --serve)")
    ap.add_argument("--serve", action="store_true", help="Start 'twin serve' on a free loopback port for the run")
    ap.add_argument("--seconds", type=float, default=60.0, help="Measured duration (default 60)")
    ap.add_argument("--warmup", type=float, default=5.0, help="Unmeasured warm-up (default 5)")
    ap.add_argument("--concurrency", type=int, default=8, help="Concurrent clients (default 8)")
    ap.add_argument("--max-requests", type=int, default=200_000, help="Stop after this many requests")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--key", default=os.environ.get("TWIN_BENCH_KEY"), help="Inspector API key (else created "
                    "with --serve, or the inspections share is sent anonymously and counted as errors)")
    ap.add_argument("--org", default="ODUTR", help="Organisation of the inspector key created with --serve")
    ap.add_argument("--json", type=Path, help="Also write the result here")
    ap.add_argument("--topology", action="store_true", help="Start the scale-out topology (scripts/scale.py: a "
                    "replica, PgBouncer, two API processes, nginx) around the local cluster and load it through nginx")
    ap.add_argument("--faults", action="store_true", help="With --topology: stop the replica, then the primary, "
                    "during the run (and start them again); report every answer per phase. Use a cluster of its "
                    "own (TWIN_DATA_DIR, TWIN_PG_PORT): this one is stopped for a while")
    ap.add_argument("--only", choices=[k for k, _ in MIX], action="append",
                    help="Only this kind of request (repeatable); default the whole mix")
    args = ap.parse_args()
    ONLY[:] = args.only or []
    if args.faults and not args.topology:
        raise SystemExit("--faults needs --topology")
    if not args.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")) and not args.serve:
        raise SystemExit("the load test runs on loopback only: use --serve or a 127.0.0.1 URL")
    proc = None
    key_id = None
    key = args.key
    try:
        if args.serve:
            from twin import access, database
            from twin.settings import get_settings

            settings = get_settings()
            if key is None:
                with database.connect(database.url_for(settings, "owner"), autocommit=True) as conn:
                    meta, key = access.create_key(conn, "inspector", args.org, access.parse_expiry("1h"), "bench/load")
                    key_id = meta.key_id
            port = _free_port()
            proc = serve(port)
            args.url = f"http://127.0.0.1:{port}"
        fault_settings = None
        if args.topology:
            from twin import access, database
            from twin.settings import get_settings

            settings = get_settings()
            if key is None:
                with database.connect(database.url_for(settings, "owner"), autocommit=True) as conn:
                    meta, key = access.create_key(conn, "inspector", args.org, access.parse_expiry("1h"), "bench/load")
                    key_id = meta.key_id
            up = subprocess.run([sys.executable, str(ROOT / "scripts" / "scale.py"), "up", "--port", str(_free_port())],
                                capture_output=True, text=True, check=True,
                                env={**os.environ, "TWIN_RATE_LIMIT_RPS": "0"})  # one client sends everything
            args.url = up.stdout.split("up: ", 1)[1].split()[0]
            fault_settings = settings if args.faults else None
        result = asyncio.run(run(args.url, args.seconds, args.concurrency, args.max_requests, args.seed, key,
                                 args.org, args.warmup, fault_settings))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        if args.topology:
            subprocess.run([sys.executable, str(ROOT / "scripts" / "scale.py"), "down"], capture_output=True)
        if key_id is not None:
            with database.connect(database.url_for(settings, "owner"), autocommit=True) as conn:
                access.revoke_key(conn, key_id)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    sys.exit(1 if result["errors"] and not args.faults else 0)


if __name__ == "__main__":
    main()
