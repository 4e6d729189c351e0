"""Benchmark of the quality measurement over changed rows only (twin.quality.delta, issue 24) against the full
measurement of the same rules, on the same state, in one run.

    .venv/bin/python bench/quality_delta.py --database twin_national --fraction 0.01

What it does, on a loaded and measured twin (it changes the data and puts it back):

1. makes sure the rules that read the addresses have a recorded measurement of the current state;
2. writes a mutation delivery of ``--fraction`` of the addresses (half with another street name, half moved
   by 3 m) as a CSV and loads it with the loader (``twin ingest addresses``), which records the differences;
3. measures the rules that read the addresses twice: incrementally (as ``twin ingest`` does after a load) and in
   full (``incremental=False``: every rule counted over every record, the peer), and checks that both give the
   same counts, public counts and examples;
4. delivers the original values of those addresses again and measures both ways once more.

Prints the load with and without the counting of its differences (the loader's ``quality_delta`` timing) and
the two measurements, with their ratio. The load average before and after is printed: on a 2-core machine
other work changes the figures a lot.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # bench/ingest.py would shadow the ingest package

from ingest import loader  # noqa: E402
from twin import database  # noqa: E402
from twin.quality import evaluate, measure_and_record, rules_reading  # noqa: E402
from twin.settings import Settings, get_settings  # noqa: E402

COLUMNS = ("address_id", "street", "house_number", "house_letter", "house_number_addition", "postcode", "city",
           "municipality_code")


def _write(path: Path, rows: list[tuple[Any, ...]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*COLUMNS, "x", "y"])
        w.writerows(rows)


def _measure(settings: Settings, incremental: bool) -> tuple[float, dict[str, Any]]:
    rules = rules_reading(frozenset({"addresses"}))
    with database.connect(database.url_for(settings, "writer")) as conn:
        t0 = time.perf_counter()
        report = evaluate(conn, settings, rules, incremental=incremental)
        seconds = time.perf_counter() - t0
    out = {r.rule.id: (r.checked, r.failed, r.public, r.examples, r.incremental is not None)
           for r in report.results if r.applicable}
    return seconds, out


def _round(settings: Settings, path: Path, label: str) -> dict[str, Any]:
    load = loader.load(settings, "addresses", path, crs="EPSG:28992")
    assert load.status == "succeeded", load.message
    inc_s, inc = _measure(settings, True)
    full_s, full = _measure(settings, False)
    for rid, f in full.items():
        assert inc[rid][:4] == f[:4], f"{rid}: incremental {inc[rid][:2]} against full {f[:2]}"
    n_inc = sum(1 for v in inc.values() if v[4])
    print("  " + ", ".join(f"{k[len('quality_delta_'):]} {v:.2f} s" for k, v in load.timings.items()
                           if k.startswith("quality_delta_")))
    print(f"{label}: load {load.timings.get('total', 0):.1f} s, of which counting its differences "
          f"{load.timings.get('quality_delta', 0):.2f} s ({load.rows_updated} records updated); "
          f"measurement incremental {inc_s:.1f} s ({n_inc} of {len(inc)} rules over the changed records), "
          f"full {full_s:.1f} s: {full_s / inc_s:.1f}x")
    return {"label": label, "load_s": load.timings.get("total"), "delta_s": load.timings.get("quality_delta"),
            "updated": load.rows_updated, "incremental_s": inc_s, "full_s": full_s, "rules": len(inc),
            "rules_incremental": n_inc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", help="database name in the local cluster (default TWIN_DATABASE_NAME)")
    ap.add_argument("--fraction", type=float, default=0.01, help="share of the addresses changed (default 0.01)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    settings = get_settings()
    if args.database:
        settings = settings.model_copy(update={"database_name": args.database})
    print(f"load average {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    measure_and_record(settings, rules_reading(frozenset({"addresses"})))
    print(f"the rules that read the addresses measured and recorded: {time.perf_counter() - t0:.1f} s")
    every = max(int(round(1 / args.fraction)), 1)
    with database.connect(database.url_for(settings, "writer")) as conn:
        cols = ", ".join(COLUMNS)
        original = conn.execute(f"SELECT {cols}, ST_X(geom), ST_Y(geom) FROM twin.addresses "  # noqa: S608
                                "WHERE id %% %s = 7 ORDER BY id", (every,)).fetchall()
    changed = [(*r[:1], (r[1] or "") + " (gewijzigd)", *r[2:8], r[8], r[9]) if i % 2 else
               (*r[:8], r[8] + 3, r[9]) for i, r in enumerate(original)]
    print(f"{len(original)} of the addresses change")
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(folder / "mutaties.csv", changed)
        _write(folder / "herstel.csv", list(original))
        rounds.append(_round(settings, folder / "mutaties.csv", "mutation"))
        rounds.append(_round(settings, folder / "herstel.csv", "original values again"))
    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"database": settings.database_name, "changed": len(original),
                                         "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
