"""Monitoring benchmark (issue 22's goals) on the medium twin:

- ``compute``: a full ``twin monitor compute`` (every KPI, every month, quarter and year, every dimension and
  organisation, the disclosure control, the trend tests, stored): goal under 60 s on 2 cores. It stores a run
  (the KPI requests below read it).
- ``kpi requests``: ``/monitoring/kpis/{id}`` as JSON and CSV from uvicorn on loopback (a process of its own, as
  bench/api.py runs it), anonymous, at concurrency 1 and 4: goal p95 under 100 ms. The first request of each
  (computed, then kept per process for the immutable run) is reported apart.
- a named peer, side by side: the compliance rate per municipality and quarter computed with pandas ``groupby``
  from a read of the tables, against the twin computing (and storing) the compliance KPI for every period type,
  dimension and organisation with its disclosure control; the peer's figures are checked against the twin's.

The dashboard's first chart is measured by bench/dashboard.py (Chromium).

    TWIN_DATABASE_NAME=twin_bench .venv/bin/python bench/monitoring.py
        [--seconds 8] [--json bench/results/monitoring.json] [--skip-requests | --requests-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import free_port, measure, start_twin, summarise, wait_ready  # noqa: E402

VERDICTS = ("voorschriften nageleefd", "voorschriften overtreden", "akkoord na aanwijzing")
WORKLOADS = {
    "compliance quarter x municipality (json)": "/monitoring/kpis/compliance?period=quarter&by=municipality",
    "compliance quarter x municipality (csv)": "/monitoring/kpis/compliance?period=quarter&by=municipality&f=csv",
    "coverage year x sector (json)": "/monitoring/kpis/coverage?period=year&by=sector",
    "permits in force per month (json)": "/monitoring/kpis/permits_in_force?period=month",
    "follow-up year x organisation (csv)": "/monitoring/kpis/follow_up?period=year&by=organisation&f=csv",
}


def run_compute(url: str, k: int, kpi_ids: list[str] | None = None) -> dict[str, Any]:
    import psycopg

    from twin.monitoring import compute

    with psycopg.connect(url) as conn:
        run = compute.compute(conn, k=k, kpi_ids=kpi_ids)
        conn.commit()
    return {"run_id": run.run_id, "seconds": round(run.seconds, 2), "values": run.values, "public": run.public,
            "suppressed": run.suppressed, "flagged": run.flagged,
            "steps": {name: round(v, 2) for name, v in run.timings.items()}}


def pandas_peer(url: str, run_id: int) -> dict[str, Any]:
    """Compliance per municipality and quarter with pandas from a read of the tables; compared with the twin's
    stored figures of the same run (all organisations, by municipality, quarters)."""
    import pandas as pd
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "SELECT i.inspected_on, i.result, e.municipality_code FROM twin.inspections i "
            "JOIN twin.establishments e ON e.establishment_id = i.establishment_id "
            "WHERE i.result = ANY(%s) AND i.inspected_on <= current_date", (list(VERDICTS),))
        df = pd.DataFrame(cur.fetchall(), columns=["inspected_on", "result", "municipality_code"])
    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    df["quarter"] = pd.to_datetime(df["inspected_on"]).dt.to_period("Q").dt.start_time.dt.date
    df["complied"] = df["result"] == "voorschriften nageleefd"
    df["municipality_code"] = df["municipality_code"].fillna("(unknown)")
    table = df.groupby(["quarter", "municipality_code"]).agg(num=("complied", "sum"), den=("complied", "size"))
    t_group = time.perf_counter() - t1
    with psycopg.connect(url) as conn:
        twin = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            "SELECT period_start, dimension_value, numerator, denominator FROM twin.kpi_values WHERE run_id = %s "
            "AND kpi = 'compliance' AND period_type = 'quarter' AND dimension = 'municipality' "
            "AND scope_org IS NULL", (run_id,)).fetchall()}
    peer = {(q, m): (float(r.num), float(r.den)) for (q, m), r in table.iterrows()}
    return {"peer": "pandas groupby (read + group, one table: quarter x municipality, no disclosure control)",
            "read_s": round(t_read, 2), "groupby_s": round(t_group, 3), "total_s": round(t_read + t_group, 2),
            "cells": len(peer), "agrees_with_twin": peer == twin}


def kpi_requests(database: str, seconds: float) -> list[dict[str, Any]]:
    port = free_port()
    proc = start_twin(database, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/monitoring/kpis", proc)
        out = []
        import httpx

        for name, path in WORKLOADS.items():
            # the first request of a run's table computes it (a cache miss); the rest are served from the
            # per-process cache of the run's answers, as a dashboard's users and a BI refresh meet them
            t = time.perf_counter()
            first = httpx.get(base + path, timeout=30)
            out.append({"workload": name, "first_request_ms": round((time.perf_counter() - t) * 1000, 1),
                        "cache": first.headers.get("x-analysis-cache")})
            print(out[-1], flush=True)
            asyncio.run(measure([base + path], 1, 1.0))  # warm up
            for concurrency in (1, 4):
                lat, errors, nbytes = asyncio.run(measure([base + path], concurrency, seconds))
                r = summarise("vth-twin", name, concurrency, seconds, lat, errors, nbytes)
                out.append({"workload": name, "concurrency": concurrency, "requests": r.requests,
                            "errors": r.errors, "rps": round(r.rps, 1), "p50_ms": round(r.p50_ms, 1),
                            "p95_ms": round(r.p95_ms, 1), "kb": round(r.mean_kb, 1)})
                print(out[-1], flush=True)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="per workload and concurrency")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-requests", action="store_true")
    parser.add_argument("--requests-only", action="store_true", help="only the KPI requests, on the latest run")
    args = parser.parse_args()
    from twin import database
    from twin.settings import get_settings

    s = get_settings()
    url = database.url_for(s, "writer")
    from psycopg.conninfo import conninfo_to_dict

    # the database actually read (TWIN_DATABASE_URL, e.g. twin_bench, overrides the settings' database name)
    dbname = str(conninfo_to_dict(url).get("dbname") or s.database_name)
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "database": dbname,
                           "cpus": os.cpu_count(), "load_before": [round(x, 1) for x in os.getloadavg()]}
    if not args.requests_only:
        full = run_compute(url, s.k_anonymity)
        out["compute"] = full
        print("compute", json.dumps(full, indent=1), flush=True)
        compliance = run_compute(url, s.k_anonymity, ["compliance"])
        peer = pandas_peer(url, compliance["run_id"])
        out["compliance_vs_pandas"] = {"twin_compliance_kpi_s": compliance["seconds"], **peer,
                                       "ratio_twin_over_pandas": round(compliance["seconds"] / peer["total_s"], 2)}
        print("peer", out["compliance_vs_pandas"], flush=True)
    if not args.skip_requests:
        out["kpi_requests"] = kpi_requests(s.database_name, args.seconds)
        out["kpi_request_p95_ms_max"] = max(r["p95_ms"] for r in out["kpi_requests"] if "p95_ms" in r)
        out["kpi_first_request_ms_max"] = max(r["first_request_ms"] for r in out["kpi_requests"]
                                              if "first_request_ms" in r)
    out["load_after"] = [round(x, 1) for x in os.getloadavg()]
    print(json.dumps({k: v for k, v in out.items() if k != "kpi_requests"}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
