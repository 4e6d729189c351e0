"""Benchmark of the predictive violation model (issue 21) on a loaded twin (meant for the medium demo).

    .venv/bin/python bench/model.py --database twin_bench --json out.json [--no-backtest]

Measures, with the writer connection as the CLI uses it:
- features: every cut-off's feature table (the location context read once), wall clock;
- training: the final model on every cut-off (LightGBM + isotonic calibration, 3-fold), wall clock, CPU
  and peak memory of the process (max RSS);
- scoring: the features of every active establishment at the end of the data plus the calibrated
  probability (and, apart, the TreeSHAP reasons of a 1,000-visit plan);
- the full backtest (every split, bootstrap 300), unless --no-backtest.

Goals (issue 21): scoring every establishment under 10 s; a full backtest on the medium twin under 3 min;
training on the national demo under 5 min and 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from typing import Any

from twin import database
from twin.model import backtest, estimator, features
from twin.settings import Settings


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-backtest", action="store_true")
    args = ap.parse_args()
    s = Settings(**({"database_name": args.database} if args.database else {}))  # type: ignore[arg-type]
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "load_average": os.getloadavg()}}
    with database.connect(database.url_for(s, "writer")) as conn:
        t0, c0 = time.perf_counter(), _cpu()
        years = backtest.load_years(conn)
        out["features_all_cutoffs"] = {"seconds": round(time.perf_counter() - t0, 1),
                                       "cpu_seconds": round(_cpu() - c0, 1), "cutoffs": len(years),
                                       "rows": sum(len(y.frame) for y in years)}
        t0, c0 = time.perf_counter(), _cpu()
        model = backtest.train_on(years)
        out["train"] = {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(_cpu() - c0, 1),
                        "rows": int(sum(y.inspected.sum() for y in years))}
        _, end = backtest.cutoffs(conn)
        t0 = time.perf_counter()
        frame = features.features_at(conn, end)
        p = model.predict(frame)
        out["score_all"] = {"seconds": round(time.perf_counter() - t0, 1), "establishments": len(frame),
                            "mean_probability": round(float(p.mean()), 4)}
        t0 = time.perf_counter()
        estimator.reasons(model, frame.iloc[:1000])
        out["reasons_1000"] = {"seconds": round(time.perf_counter() - t0, 1)}
    if not args.no_backtest:
        t0, c0 = time.perf_counter(), _cpu()
        result = backtest.run(years, k_fixed=1000)
        out["backtest"] = {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(_cpu() - c0, 1),
                           "seconds_with_features": round(time.perf_counter() - t0
                                                          + out["features_all_cutoffs"]["seconds"], 1),
                           "lift_vs_rules_k1000": result["metrics"]["lift_vs_rules_k_fixed"],
                           "lift_vs_random_k1000": result["metrics"]["lift_vs_random_k_fixed"]}
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2)
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
