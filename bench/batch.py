"""Benchmark of the batch steps on a loaded twin: the deposition hexagons (single process and on Dask), the
quality measurement, and the model's features (issue 23, "National batch work on a distributed engine").

    .venv/bin/python bench/batch.py --scale national                    # database twin_national
    .venv/bin/python bench/batch.py --scale medium --steps hexagons     # database twin_bench, one step
    .venv/bin/python bench/batch.py --scale national --dask-workers 2 --runs 2

Read-only on the database: every step reads as the writer and nothing is committed.

- ``hexagons``: ``ingest.hexagons`` as ``twin ingest derive-hexagons`` runs it, split into its phases: the
  grid (habitats, the receptors over them, the national hexagons over the land), the block-wise computation
  of every year (``compute``: ``mosaic`` + ``weighted_means`` per block of ``_blocks``) single-process, the
  same on a local Dask cluster (``compute_distributed``; cluster start-up timed apart) with the two results
  checked equal (ids and values, 1e-9), and the merge of an unchanged recomputation (staged, merged by
  ``merge_staged`` and rolled back).
- ``quality``: ``twin.quality.evaluate`` over every rule (what ``twin quality report`` and ingest-all's
  quality step run), plus EXPLAIN ANALYZE of the ``--explain`` slowest rules' counts with PostgreSQL's
  parallel workers and with them off.
- ``model``: ``twin.model.backtest.load_years`` without its context cache (the features and labels at every
  cut-off, what ``twin model backtest`` and ``train`` read first).

The figures are merged into ``--json`` (default bench/results/national_batch.json for --scale national,
bench/results/batch_<scale>.json otherwise) with the load average next to each.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/: bench/ingest.py would hide the ingest package

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
from psycopg import sql  # noqa: E402

from twin import database  # noqa: E402
from twin.settings import Settings, get_settings  # noqa: E402

SCALES = {"medium": "twin_bench", "national": "twin_national"}
STEPS = ("hexagons", "quality", "model")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("hexagon_id", "ascending")])


def equal_tables(a: pa.Table, b: pa.Table, tol: float = 1e-9) -> bool:
    """Same hexagon ids and the same values (floats within ``tol``)."""
    if a.num_rows != b.num_rows:
        return False
    a, b = _sorted(a), _sorted(b)
    for col in a.column_names:
        x, y = a[col].to_numpy(zero_copy_only=False), b[col].to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            if not np.allclose(x, y, rtol=0, atol=tol, equal_nan=True):
                return False
        elif not all(p == q or (p is None and q is None) for p, q in zip(x.tolist(), y.tolist(), strict=True)):
            return False
    return True


def bench_hexagons(settings: Settings, runs: int, workers: int,
                   save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    from ingest import hexagons as hx
    from ingest.merge import merge_staged
    from ingest.runs import RunResult
    from layers.registry import DEPOSITION_HEXAGONS

    url = database.url_for(settings, "writer")
    out: dict[str, Any] = {"runs": []}
    with database.connect(url) as conn:
        years = [r[0] for r in conn.execute("SELECT year FROM twin.nitrogen_deposition_years ORDER BY year")]
        last = conn.execute("SELECT timings, started_at::text FROM twin.ingest_runs WHERE layer = "
                            "'deposition-hexagons' AND status IN ('succeeded', 'unchanged') ORDER BY started_at "
                            "DESC LIMIT 1").fetchone()
        out["years"] = years
        out["last_recorded_run"] = {"timings": last[0], "started_at": last[1]} if last else None
        conn.rollback()
    for n in range(runs):
        run: dict[str, Any] = {"load_before": load()}
        with database.connect(url) as conn:
            t0 = time.perf_counter()
            habitats = hx.Habitats.load(conn)
            fine = hx.receptor_ids(habitats)
            national = hx.national_grid()
            coarse = hx.land_ids(conn, national)
            run["grid_s"] = round(time.perf_counter() - t0, 2)
            run["hexagons"] = {"1ha": int(len(fine)), "national": int(len(coarse))}
            t0, c0 = time.perf_counter(), time.process_time()
            single = [hx.compute(conn, hx.RECEPTORS, fine, "1ha", years, habitats),
                      hx.compute(conn, national, coarse, "national", years, habitats)]
            run["compute_single_s"] = round(time.perf_counter() - t0, 2)
            # Python's own CPU time: the rest is the database reading and sending the raster tiles (and waiting).
            run["compute_single_python_cpu_s"] = round(time.process_time() - c0, 2)
            run["load_after_single"] = load()
            run["rows"] = sum(t.num_rows for t in single)
            snap = conn.execute("SELECT pg_export_snapshot()").fetchone()
            t0 = time.perf_counter()
            with hx.dask_client(workers=workers) as client:
                run["dask_startup_s"] = round(time.perf_counter() - t0, 2)
                t1 = time.perf_counter()
                dist = [hx.compute_distributed(client, url, snap[0] if snap else None, hx.RECEPTORS, fine, "1ha",
                                               years),
                        hx.compute_distributed(client, url, snap[0] if snap else None, national, coarse,
                                               "national", years)]
                run[f"compute_dask_{workers}w_s"] = round(time.perf_counter() - t1, 2)
            run["load_after_dask"] = load()
            run["dask_equal"] = all(equal_tables(a, b) for a, b in zip(single, dist, strict=True))
            # The merge of an unchanged recomputation, rolled back.
            t0 = time.perf_counter()
            cols = hx.COLUMNS
            conn.execute(sql.SQL("CREATE TEMP TABLE ingest_stage ON COMMIT DROP AS SELECT {} FROM twin.{} WITH NO "
                                 "DATA").format(sql.SQL(", ").join(map(sql.Identifier, cols)),
                                                sql.Identifier(DEPOSITION_HEXAGONS.table)))
            with conn.cursor().copy(sql.SQL("COPY ingest_stage ({}) FROM STDIN (FORMAT csv)").format(
                    sql.SQL(", ").join(map(sql.Identifier, cols)))) as cp:
                for table in single:
                    for batch in table.select(cols).to_batches(50_000):
                        buf = io.BytesIO()
                        pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
                        cp.write(buf.getbuffer())
            result = RunResult(None, DEPOSITION_HEXAGONS.id, "bench", "replace")
            result.rows_read = run["rows"]
            merge_staged(conn, DEPOSITION_HEXAGONS, cols, result, into_empty=False)
            run["merge_unchanged_s"] = round(time.perf_counter() - t0, 2)
            run["merge_changed_rows"] = result.rows_inserted + result.rows_updated + result.rows_deleted
            conn.rollback()
        print(f"hexagons run {n + 1}: {run}", flush=True)
        out["runs"].append(run)
        save(out)  # a run takes minutes on the national twin: keep each one
    for key in ("grid_s", "compute_single_s", f"compute_dask_{workers}w_s", "dask_startup_s", "merge_unchanged_s"):
        out[f"median_{key}"] = statistics.median(r[key] for r in out["runs"])
    return out


def bench_quality(settings: Settings, runs: int, explain: int,
                  save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    from twin.quality import count_sql, evaluate

    url = database.url_for(settings, "writer")
    out: dict[str, Any] = {"runs": []}
    with database.connect(url) as conn:
        report = None
        for _ in range(runs):
            before = load()
            t0 = time.perf_counter()
            report = evaluate(conn, settings)
            secs = time.perf_counter() - t0
            out["runs"].append({"seconds": round(secs, 2), "load_before": before, "load_after": load()})
            print(f"quality: {secs:.1f} s (load {before})", flush=True)
            conn.rollback()
        assert report is not None
        ranked = sorted((r for r in report.results if r.applicable), key=lambda r: -r.seconds)
        out["rules"] = len(report.results)
        out["slowest_rules_s"] = {r.rule.id: round(r.seconds, 2) for r in ranked[:8]}
        out["median_s"] = statistics.median(r["seconds"] for r in out["runs"])
        save(out)
        # PostgreSQL's own parallel query on the slowest rules (each one count query), with workers and without.
        explains: list[dict[str, Any]] = []
        out["explain"] = explains
        for r in ranked[:explain]:
            query = count_sql(r.rule, settings)
            entry: dict[str, Any] = {"rule": r.rule.id}
            for label, workers in (("parallel", None), ("serial", 0)):
                if workers is not None:
                    conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                t0 = time.perf_counter()
                plan = [row[0] for row in conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS OFF) ") + query)]
                entry[f"{label}_s"] = round(time.perf_counter() - t0, 2)
                entry[f"{label}_workers"] = [p.strip() for p in plan if "Workers" in p]
                entry[f"{label}_plan_head"] = list(plan[:6])
                conn.rollback()
            explains.append(entry)
            save(out)
            print(f"quality EXPLAIN {entry['rule']}: parallel {entry['parallel_s']} s {entry['parallel_workers']}, "
                  f"serial {entry['serial_s']} s", flush=True)
    return out


def bench_model(settings: Settings, runs: int) -> dict[str, Any]:
    from twin.model import backtest

    url = database.url_for(settings, "writer")
    out: dict[str, Any] = {"runs": []}
    with database.connect(url) as conn:
        for _ in range(runs):
            before = load()
            t0 = time.perf_counter()
            years = backtest.load_years(conn, cache_dir=None)
            secs = time.perf_counter() - t0
            out["runs"].append({"seconds": round(secs, 2), "cutoffs": len(years), "load_before": before,
                                "load_after": load()})
            print(f"model features: {secs:.1f} s for {len(years)} cut-offs (load {before})", flush=True)
            conn.rollback()
    out["median_s"] = statistics.median(r["seconds"] for r in out["runs"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="national",
                    help="the demo scale loaded: medium (twin_bench) or national (twin_national)")
    ap.add_argument("--database", help="database name in the local cluster (overrides --scale)")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--dask-workers", type=int, default=2, help="worker processes of the local Dask cluster")
    ap.add_argument("--explain", type=int, default=1, help="EXPLAIN ANALYZE the N slowest quality rules, "
                    "with parallel workers and without (each takes minutes on the national twin)")
    ap.add_argument("--json", type=Path, help="merge the figures into this file")
    args = ap.parse_args()
    settings = get_settings()
    name = args.database or SCALES[args.scale]
    settings = settings.model_copy(update={"database_name": name})
    path = args.json or Path(__file__).parent / "results" / (
        "national_batch.json" if args.scale == "national" else f"batch_{args.scale}.json")
    figures: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    figures.update({"database": name, "cpus": os.cpu_count(), "python": platform.python_version(),
                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    with database.connect(database.url_for(settings, "writer"), autocommit=True) as conn:
        figures["rows"] = dict(conn.execute(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE schemaname = 'twin' AND relname IN "
            "('establishments', 'permits', 'inspections', 'buildings', 'addresses', 'natura2000_habitats', "
            "'nitrogen_deposition', 'deposition_hexagons')").fetchall())
    failed = False

    def write(data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")

    for step in [s.strip() for s in args.steps.split(",") if s.strip()]:
        try:
            if step == "hexagons":
                figures["hexagons"] = bench_hexagons(settings, args.runs, args.dask_workers,
                                                     lambda part: write({**figures, "hexagons": part}))
            elif step == "quality":
                figures["quality"] = bench_quality(settings, args.runs, args.explain,
                                                   lambda part: write({**figures, "quality": part}))
            elif step == "model":
                figures["model_features"] = bench_model(settings, args.runs)
            else:
                raise SystemExit(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
        except Exception:  # one failing step (e.g. a package being edited) must not lose the others' figures
            failed = True
            traceback.print_exc()
            figures.setdefault("errors", {})[step] = traceback.format_exc(limit=3)
        else:
            figures.get("errors", {}).pop(step, None)
        write(figures)
    print(f"figures in {path}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
