"""Benchmark of the predictive violation model (issue 21) on a loaded twin (meant for the medium demo).

    .venv/bin/python bench/model.py --database twin_bench --json out.json [--no-backtest]
    .venv/bin/python bench/model.py --database twin_national --score-only [--model ID]   # scoring only

Measures, with the writer connection as the CLI uses it:
- features: every cut-off's feature table (the location context read once), wall clock;
- training: the final model on every cut-off (LightGBM + isotonic calibration, 3-fold), wall clock, CPU
  and peak memory of the process (max RSS);
- scoring: the features of every active establishment at the end of the data plus the calibrated
  probability, with the location context cached (it changes only when establishments, buildings, hexagons
  or housing sites are loaded again; its cold cost is reported apart), and the TreeSHAP reasons of a
  1,000-visit plan;
- the full backtest (every split, bootstrap 300), unless --no-backtest;
- with --score-only, only the scoring, with a model from the registry (--model ID, default the newest): no
  features of past cut-offs, no training, no backtest (for the national twin, where training is measured apart);
- with --oracle-seed (the seed the loaded demo was generated with), a reference ranking in the backtest by
  the demo generator's own chance of a violation at a routine visit (sector rate x the hidden operator
  propensity x 1.3 after a recent violation, docs/demo-data.md): the ceiling any ranking from the twin's
  records can reach. Only the benchmark reads these hidden values, never the model.

Goals (issue 21): scoring every establishment under 10 s; a full backtest on the medium twin under 3 min;
training on the national demo under 5 min and 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from twin import database
from twin.model import backtest, estimator, features, registry
from twin.settings import Settings


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def oracle(scale: str, seed: int) -> Any:
    """The reference ranking of the demo generator's true routine-visit chance (see the module's doc)."""
    import numpy as np

    from demo import catalog
    from demo.geo import build_geography
    from demo.manifest import SCALES
    from demo.tables import make_establishments

    sc = SCALES[scale]
    est = make_establishments(build_geography(sc.region), sc.establishments, seed)
    rate = est["h_sector"].map(catalog.SECTOR_VIOLATION_RATE) * est["h_prop"]
    base = dict(zip(est["inrichting_id"], rate, strict=True))

    def reference(year: backtest.Year) -> dict[str, Any]:
        b = year.frame["establishment_id"].map(base).astype(float)
        recent = year.frame["n_violations_5y"].to_numpy() > 0
        return {"oracle": np.where(recent, 1.3, 1.0) * b.fillna(b.mean()).to_numpy()}

    return reference


def score_all(conn: Any, model: Any) -> tuple[dict[str, Any], Any]:
    """Features of every establishment active at the end of the data plus the calibrated probability; the
    location context cold (computed and cached) and then read from the cache, as the CLI does."""
    _, end = backtest.cutoffs(conn)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        features.context(conn, Path(cache))  # cold: computed and cached
        t1, c1 = time.perf_counter(), _cpu()
        frame = features.features_at(conn, end, cache_dir=Path(cache))  # context read from the cache
        t2, c2 = time.perf_counter(), _cpu()
        p = model.predict(frame)
        t3 = time.perf_counter()
    return {"seconds": round(t3 - t1, 1), "context_cold_seconds": round(t1 - t0, 1),
            "features_seconds": round(t2 - t1, 1), "features_cpu_seconds": round(c2 - c1, 1),
            "model_seconds": round(t3 - t2, 2), "establishments": len(frame),
            "mean_probability": round(float(p.mean()), 4), "load_average_after": os.getloadavg()}, frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-backtest", action="store_true")
    ap.add_argument("--no-train", action="store_true", help="only the backtest (e.g. on a second seed)")
    ap.add_argument("--oracle-seed", type=int, default=None, help="seed of the loaded demo: add the ceiling")
    ap.add_argument("--oracle-scale", default="medium")
    ap.add_argument("--threads", type=int, default=1, help="LightGBM threads for the final training (default 1)")
    ap.add_argument("--score-only", action="store_true", help="only the scoring, with a stored model")
    ap.add_argument("--model", default=None, help="with --score-only: the registry's model id (default newest)")
    args = ap.parse_args()
    s = Settings(**({"database_name": args.database} if args.database else {}))  # type: ignore[arg-type]
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "load_average": os.getloadavg()}}
    if args.score_only:
        with database.connect(database.url_for(s, "writer")) as conn:
            out["score_all"], _ = score_all(conn, registry.load(s.data_dir, args.model))
        out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2)
        print(json.dumps(out, indent=2))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(out, f, indent=2)
        return
    with database.connect(database.url_for(s, "writer")) as conn:
        t0, c0 = time.perf_counter(), _cpu()
        years = backtest.load_years(conn)
        out["features_all_cutoffs"] = {"seconds": round(time.perf_counter() - t0, 1),
                                       "cpu_seconds": round(_cpu() - c0, 1), "cutoffs": len(years),
                                       "rows": sum(len(y.frame) for y in years)}
        if not args.no_train:
            t0, c0 = time.perf_counter(), _cpu()
            model = backtest.train_on(years, n_jobs=args.threads)
            out["train"] = {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(_cpu() - c0, 1),
                            "rows": int(sum(y.inspected.sum() for y in years)), "threads": args.threads,
                            "peak_rss_gb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                        / 1024 ** 2, 2)}
            out["score_all"], frame = score_all(conn, model)
            t0 = time.perf_counter()
            estimator.reasons(model, frame.iloc[:1000])
            out["reasons_1000"] = {"seconds": round(time.perf_counter() - t0, 1)}
    if not args.no_backtest:
        reference = oracle(args.oracle_scale, args.oracle_seed) if args.oracle_seed is not None else None
        t0, c0 = time.perf_counter(), _cpu()
        result = backtest.run(years, k_fixed=1000, reference=reference)
        m = result["metrics"]
        out["backtest"] = {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(_cpu() - c0, 1),
                           "seconds_with_features": round(time.perf_counter() - t0
                                                          + out["features_all_cutoffs"]["seconds"], 1),
                           "metrics": {k: v for k, v in m.items() if k.startswith(("precision", "random", "lift",
                                                                                    "rules_lift", "oracle",
                                                                                    "blend", "pr_auc", "brier"))}}
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2)
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
