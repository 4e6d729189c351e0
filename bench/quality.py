"""Benchmark of the full data-quality report on a loaded twin (meant for the medium-scale demo data).

    .venv/bin/python bench/quality.py                           # the database of the TWIN_ settings
    .venv/bin/python bench/quality.py --database twin_medium --runs 3 --json out.json
    .venv/bin/python bench/quality.py --database twin_national --runs 1 --no-warmup --no-peer --goal 90

Measures, as the writer (the role of 'twin quality report', which sees every row), ``--runs`` times:

- the report as ``twin quality report`` makes it (``twin.quality.evaluate``): the simple rules of a layer in
  one shared scan of its table, the other rules one query each, up to TWIN_QUALITY_EXAMPLES examples per
  failing rule, the previous measurements; its per-rule timings (the shared scan split over its rules);
- the peer: the same rules the naive way, one full-scan ``count_sql`` per rule plus the same example queries.
  Both give the same counts (checked before timing). No external tool fits as a peer: great_expectations
  (not installed, a heavy dependency) would pull every table into Python; this peer is the same SQL without
  the shared scans, which is what a rules engine without them does.

Rules that do not apply on this database (an older schema, an empty layer) are listed and skipped by both.
Goals: the full report on the medium twin in under 30 s (issue 9), on the national twin in under 90 s (issue
24; there one run takes minutes, so ``--no-warmup --no-peer``). The load average before and after each run is
printed and kept: on a 2-core machine other work changes the figures a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

import psycopg

from twin import database
from twin.quality import count_sql, evaluate, examples_sql
from twin.quality.evaluate import QualityReport
from twin.settings import Settings, get_settings


def naive(conn: psycopg.Connection, settings: Settings, report: QualityReport) -> tuple[float, dict[str, Any]]:
    """Every applicable rule of ``report`` with its own count query, plus the examples: (seconds, counts)."""
    t0 = time.perf_counter()
    counts = {}
    for r in report.results:
        if not r.applicable:
            continue
        row = conn.execute(count_sql(r.rule, settings)).fetchone()
        assert row is not None
        counts[r.rule.id] = (int(row[0]), int(row[1]))
        if row[1] and settings.quality_examples:
            conn.execute(examples_sql(r.rule, settings.quality_examples, settings)).fetchall()
    return time.perf_counter() - t0, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", help="database name in the local cluster (default TWIN_DATABASE_NAME)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-peer", action="store_true", help="skip the naive per-rule peer")
    ap.add_argument("--no-warmup", action="store_true", help="skip the unmeasured first report that warms the cache")
    ap.add_argument("--goal", type=float, default=30.0, help="seconds the median report should stay under")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    settings = get_settings()
    if args.database:
        settings = settings.model_copy(update={"database_name": args.database})
    url = database.url_for(settings, "writer")

    with database.connect(url, autocommit=True) as conn:
        sizes: dict[str, int] = dict(conn.execute(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE schemaname = 'twin' "
            "AND relname IN ('establishments', 'permits', 'inspections', 'buildings', 'addresses', "
            "'deposition_hexagons')").fetchall())
        print(f"database {settings.database_name}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(sizes.items())))
        if not args.no_warmup:
            evaluate(conn, settings)  # warm the cache once
        ours, peer = [], []
        loads: list[tuple[float, float]] = []
        report = None
        for _ in range(args.runs):
            before = os.getloadavg()[0]
            t0 = time.perf_counter()
            report = evaluate(conn, settings)
            ours.append(time.perf_counter() - t0)
            loads.append((before, os.getloadavg()[0]))
            if not args.no_peer:
                secs, counts = naive(conn, settings, report)
                peer.append(secs)
                mine = {r.rule.id: (r.checked, r.failed) for r in report.results if r.applicable}
                assert counts == mine, "the peer counts differently"
    assert report is not None
    skipped = [r for r in report.results if not r.applicable]
    print(f"\n{len(report.results) - len(skipped)} rules measured, {len(skipped)} not applicable:")
    for r in skipped:
        print(f"  n/a {r.rule.id}: {r.note}")
    print("\nslowest rules (last run, s; a shared scan is split over its rules):")
    for r in sorted(report.results, key=lambda r: -r.seconds)[:15]:
        print(f"  {r.seconds:7.3f}  {r.rule.id}  ({r.checked:,} checked, {r.failed:,} failed)")
    print("\nper layer (s):")
    per_layer: dict[str, float] = {}
    for r in report.results:
        per_layer[r.rule.layer] = per_layer.get(r.rule.layer, 0.0) + r.seconds
    for layer, secs in per_layer.items():
        print(f"  {secs:7.3f}  {layer}")
    med = statistics.median(ours)
    print(f"\nfull report (twin.quality.evaluate): median {med:.2f} s of {args.runs} runs "
          f"({', '.join(f'{x:.2f}' for x in ours)}); goal < {args.goal:g} s: "
          f"{'met' if med < args.goal else 'NOT met'}")
    print("load average (1 min) before -> after each run: "
          + ", ".join(f"{a:.2f} -> {b:.2f}" for a, b in loads))
    out: dict[str, Any] = {"database": settings.database_name, "rows": sizes, "runs": ours, "load_average": loads,
                           "rules": len(report.results), "not_applicable": len(skipped),
                           "per_rule_s": {r.rule.id: round(r.seconds, 4) for r in report.results},
                           "cpus": os.cpu_count(), "python": platform.python_version()}
    if peer:
        pmed = statistics.median(peer)
        print(f"naive peer (one count_sql per rule): median {pmed:.2f} s ({', '.join(f'{x:.2f}' for x in peer)}); "
              f"ratio peer/ours {pmed / med:.2f}x")
        out["peer_runs"] = peer
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
