"""Benchmark of the four analyses on a loaded twin (the medium or the national demo data).

    .venv/bin/python bench/analysis.py                      # the dev database (TWIN_ settings)
    .venv/bin/python bench/analysis.py --database twin_bench --points 100 --runs 3 --json out.json
    .venv/bin/python bench/analysis.py --scale national     # database twin_national, every role

Measures, on one reader connection, each analysis as the API runs it for an admin (a transaction that
acts for the caller, so the row-level security of inspections applies; the analysis; the result turned
into JSON; what the API adds is routing and sending):

- area context (default radius 500 m) at ``--points`` random points on land (municipalities sampled by
  area, one random point in each), p50/p95;
- the full housing-nitrogen run (every site) and the full inspection-priority ranking (every establishment
  scored, top 100 returned), for every role (``--roles``): live (what the first request after a data change
  costs: computed and stored, migration 0019), then cold (a new connection's first request, read from the
  rows kept for the current data) and warm (``--runs`` more requests);
- the area summary of ``--municipalities`` random municipalities.

Goals (issues 6 and 24): context p95 under 100 ms; on the national twin housing-nitrogen under 3 s and the
full priority ranking under 5 s, cold, for every role.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from twin import database
from twin.analyses.common import FULL, Disclosure, act_as, to_wgs84
from twin.analyses.context import area_context
from twin.analyses.housing import housing_nitrogen, refresh_sites, sites_params
from twin.analyses.priority import inspection_priority, refresh_ranking
from twin.analyses.summary import area_summary
from twin.settings import Settings, get_settings

POINTS_SQL = """
SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (
  SELECT (ST_Dump(ST_GeneratePoints(geom, 1, %(seed)s))).geom AS p
  FROM (SELECT geom FROM twin.municipalities ORDER BY -ln(random()) / ST_Area(geom) LIMIT %(n)s) m
) s
"""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


SCALES = {"medium": "twin_bench", "national": "twin_national"}
ROLES = ("admin", "inspector", "advisor", "anonymous")
LIVE_TIMEOUT = "900s"  # the live computation is what a store costs, not a request: no statement timeout


async def timed(conn: psycopg.AsyncConnection, fn: Callable[[], Awaitable[Any]],
                who: Disclosure = FULL) -> tuple[float, Any]:
    """Milliseconds of one analysis as the API runs it: a transaction acting for the caller (default an
    admin), the analysis, the end of the transaction, the result turned into JSON."""
    t0 = time.perf_counter()
    await act_as(conn, who)
    result = await fn()
    await conn.rollback()
    json.dumps(result, default=str)
    return (time.perf_counter() - t0) * 1000, result


def summary(name: str, ms: list[float], note: str) -> dict[str, Any]:
    return {"analysis": name, "n": len(ms), "p50_ms": round(percentile(ms, 50), 1),
            "p95_ms": round(percentile(ms, 95), 1), "max_ms": round(max(ms), 1), "note": note}


async def full_runs(settings: Settings, url: str, args: argparse.Namespace, org: str | None) -> list[dict[str, Any]]:
    """Housing-nitrogen (every site) and inspection-priority (every establishment): live once, then per role
    cold (a new connection) and warm, read from what is kept for the current data."""
    out: list[dict[str, Any]] = []
    year = time.gmtime().tm_year
    analyses: dict[str, Callable[..., Awaitable[Any]]] = {
        "housing-nitrogen (all sites)": lambda conn, who, stored: housing_nitrogen(
            conn, settings, disclosure=who, stored=stored),
        "inspection-priority (all)": lambda conn, who, stored: inspection_priority(
            conn, settings, limit=100, disclosure=who, stored=stored),
    }
    for name, call in analyses.items():
        if not args.no_live:
            async with await psycopg.AsyncConnection.connect(url) as conn:
                await conn.execute(f"SET statement_timeout = '{LIVE_TIMEOUT}'")
                await conn.commit()
                t, _ = await timed(conn, lambda conn=conn, call=call: call(conn, FULL, False))
            out.append(summary(f"{name}, live", [t], "computed, as the first request after a data change"))
            print(f"{name}, live: {t:.0f} ms", flush=True)
        t0 = time.perf_counter()  # store what the current data gives (nothing to do when it is stored already)
        if name.startswith("housing"):
            await refresh_sites(settings, sites_params(settings, year))
        else:
            await refresh_ranking(settings)
        print(f"{name}, stored for the current data in {time.perf_counter() - t0:.1f} s", flush=True)
        for role in args.roles:
            who = Disclosure(role, org if role == "inspector" else None)
            if name.startswith("inspection") and not who.inspections:
                continue
            async with await psycopg.AsyncConnection.connect(url) as conn:
                cold, res = await timed(conn, lambda conn=conn, call=call, who=who: call(conn, who, True), who)
                warm = [(await timed(conn, lambda conn=conn, call=call, who=who: call(conn, who, True), who))[0]
                        for _ in range(args.runs)]
            source = res.get("ranking_source") or res.get("analysis_source") or {}
            n = res.get("numberMatched", res.get("numberReturned"))
            label = f"{role}" + (f" {who.org_code}" if who.org_code else "")
            out.append(summary(f"{name}, {label}, cold", [cold], f"{n} rows, stored: {source.get('stored')}"))
            out.append(summary(f"{name}, {label}, warm", warm, f"{args.runs} runs"))
            print(f"{name}, {label}: cold {cold:.0f} ms, warm p50 {out[-1]['p50_ms']} ms", flush=True)
    return out


async def run(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    url = database.url_for(settings, "reader")
    async with await psycopg.AsyncConnection.connect(url, autocommit=False) as conn:
        await act_as(conn, FULL)
        await conn.execute("SELECT setseed(%s)", (args.seed / 1000,))
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM twin.establishments), (SELECT count(*) FROM twin.inspections), "
            "(SELECT count(*) FROM twin.housing_sites), (SELECT count(*) FROM twin.deposition_hexagons), "
            "(SELECT count(*) FROM twin.buildings), (SELECT count(*) FROM twin.nitrogen_deposition), "
            "(SELECT count(*) FROM twin.municipalities)")
        counts = dict(zip(("establishments", "inspections", "housing_sites", "deposition_hexagons", "buildings",
                           "raster_tiles", "municipalities"), await cur.fetchone() or (), strict=True))
        if not counts.get("municipalities") or not counts.get("establishments"):
            sys.exit("the database holds no municipalities or establishments: load the demo data first "
                     "('twin demo-data --scale medium' and 'twin ingest-all').")
        cur = await conn.execute(POINTS_SQL, {"seed": args.seed, "n": args.points})
        points = [to_wgs84(x, y) for x, y in await cur.fetchall()]
        cur = await conn.execute("SELECT code FROM twin.municipalities ORDER BY random() LIMIT %s",
                                 (args.municipalities,))
        codes = [r[0] for r in await cur.fetchall()]
        cur = await conn.execute("SELECT org_code FROM twin.establishments WHERE org_code IS NOT NULL "
                                 "GROUP BY org_code ORDER BY count(*) DESC LIMIT 1")
        found = await cur.fetchone()
        org = found[0] if found else None
        await conn.commit()

        results = []
        for lon, lat in points[:5]:  # warm-up: caches and plans
            await timed(conn, lambda lon=lon, lat=lat: area_context(conn, settings, lon=lon, lat=lat))
        ms = []
        for lon, lat in points:
            t, _ = await timed(conn, lambda lon=lon, lat=lat: area_context(conn, settings, lon=lon, lat=lat))
            ms.append(t)
        results.append(summary("context (r = 500 m)", ms, f"{len(points)} random points on land"))
        print(f"context: p50 {results[-1]['p50_ms']} ms, p95 {results[-1]['p95_ms']} ms", flush=True)

        results += await full_runs(settings, url, args, org)

        ms = []
        for code in codes:
            t, _ = await timed(conn, lambda code=code: area_summary(conn, settings, municipality_code=code))
            ms.append(t)
        results.append(summary("area-summary (municipality)", ms, f"{len(codes)} random municipalities"))
        print(f"area-summary: p50 {results[-1]['p50_ms']} ms", flush=True)
    return {"database": settings.database_name, "counts": counts, "results": results,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
                       f"{platform.python_implementation()} {platform.python_version()}",
            "at": time.strftime("%Y-%m-%d %H:%M")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="database name in the local cluster (default TWIN_DATABASE_NAME, or "
                        "that of --scale)")
    parser.add_argument("--scale", choices=sorted(SCALES), help="the demo scale loaded: medium (twin_bench) or "
                        "national (twin_national)")
    parser.add_argument("--roles", default=",".join(ROLES), help="roles of the full runs (default all four)")
    parser.add_argument("--no-live", action="store_true", help="skip the live computation of the full runs")
    parser.add_argument("--points", type=int, default=100, help="random points for the context (default 100)")
    parser.add_argument("--runs", type=int, default=3, help="runs of the full housing and priority analyses")
    parser.add_argument("--municipalities", type=int, default=10, help="municipalities for the area summary")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the points")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    args.roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    settings = get_settings()
    database_name = args.database or (SCALES[args.scale] if args.scale else None)
    if database_name:
        settings = settings.model_copy(update={"database_name": database_name})
    report = asyncio.run(run(settings, args))
    print(f"\n{'analysis':60} {'n':>4} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  note")
    for r in report["results"]:
        print(f"{r['analysis']:60} {r['n']:>4} {r['p50_ms']:>9.1f} {r['p95_ms']:>9.1f} {r['max_ms']:>9.1f}  "
              f"{r['note']}")
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in report["counts"].items()))
    print("machine: " + report["machine"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
