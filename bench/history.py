"""History benchmark (issue 20, docs/history.md): what the history triggers cost a re-delivery, and what an
as-of query costs against the current-state one, on the medium twin.

    TWIN_DATABASE_NAME=twin_bench .venv/bin/twin db migrate
    TWIN_DATABASE_NAME=twin_bench .venv/bin/python bench/history.py --data /tmp/medium [--repeat 3]
    TWIN_DATABASE_NAME=my_copy .venv/bin/python bench/history.py --first-load --no-redelivery --no-queries

0. First load (--first-load; empties the establishments and their history, so never on a shared database):
   the establishments file into an empty table, history triggers off and on alternately (migration 0017 writes
   the versions of a first load with the version table's constraint and indexes set aside).
1. Re-delivery: the full establishments file with 1% of the rows changed (name), loaded by `ingest.loader.load`
   (upsert) alternately with the history triggers off and on (ALTER TABLE ... DISABLE TRIGGER, as owner),
   each delivery flipping between the original and the changed file, so every run changes 1% of the rows.
2. Storage: the history's size before and after one re-delivery, per changed row.
3. Queries through the API (TestClient, as an admin key): an items page with a bbox and the area context of an
   establishment, current state against geldigOp/beschikbaarOp; median of --repeat x 5 requests each.
The machine is shared: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: bench/ingest.py would hide the ingest package

from ingest.loader import load  # noqa: E402
from twin.database import url_for  # noqa: E402
from twin.settings import Settings  # noqa: E402

TRIGGERS = ("establishments_history_ins", "establishments_history_upd", "establishments_history_del")
SHARED = ("twin", "twin_bench")  # databases others read: no --first-load there


def changed_copy(src: Path, out: Path, share: float = 0.01) -> int:
    """The CSV with the name of every 1/share-th row changed; returns how many rows changed."""
    n = 0
    step = round(1 / share)
    with src.open(newline="", encoding="utf-8") as f, out.open("w", newline="", encoding="utf-8") as g:
        reader = csv.reader(f)
        writer = csv.writer(g)
        writer.writerow(next(reader))
        for i, row in enumerate(reader):
            if i % step == 0:
                row[1] = row[1] + " (gewijzigd)"
                n += 1
            writer.writerow(row)
    return n


def triggers(settings: Settings, on: bool) -> None:
    with psycopg.connect(url_for(settings, "owner"), autocommit=True) as conn:
        for t in TRIGGERS:
            conn.execute(f"ALTER TABLE twin.establishments {'ENABLE' if on else 'DISABLE'} TRIGGER {t}")


def history_bytes(settings: Settings) -> int:
    with psycopg.connect(url_for(settings, "owner")) as conn:
        row = conn.execute("SELECT pg_total_relation_size('history.establishments_versions')").fetchone()
        return int(row[0]) if row else 0


def first_load(settings: Settings, original: Path, repeat: int) -> None:
    """The whole file into an empty establishments table (and an empty history), triggers off and on."""
    if settings.database_name in SHARED:
        raise SystemExit(f"--first-load empties the establishments of {settings.database_name}: use a database of "
                         "your own (TWIN_DATABASE_NAME), loaded from the demo files")
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeat):
        for on in (False, True):
            with psycopg.connect(url_for(settings, "owner"), autocommit=True) as conn:
                for t in (*TRIGGERS, "establishments_history_trunc"):
                    conn.execute(f"ALTER TABLE twin.establishments DISABLE TRIGGER {t}")
                conn.execute("TRUNCATE twin.establishments CASCADE")
                conn.execute("TRUNCATE history.establishments_versions, history.permits_versions, "
                             "history.inspections_versions")
                for t in (*TRIGGERS, "establishments_history_trunc"):
                    conn.execute(f"ALTER TABLE twin.establishments {'ENABLE' if on else 'DISABLE'} TRIGGER {t}")
            try:
                t0 = time.perf_counter()
                r = load(settings, "establishments", original, crs="EPSG:28992", max_reject_rate=1)
                times[on].append(time.perf_counter() - t0)
                print(f"  triggers {'on ' if on else 'off'}: {times[on][-1]:.2f} s wall ({r.status}, "
                      f"{r.rows_inserted} rows), stage+triggers {r.timings.get('stage', 0):.2f} s")
            finally:
                triggers(settings, True)
                with psycopg.connect(url_for(settings, "owner"), autocommit=True) as conn:
                    conn.execute("ALTER TABLE twin.establishments ENABLE TRIGGER establishments_history_trunc")
    off, on_ = min(times[False]), min(times[True])
    print(f"first load, best of {repeat}: off {off:.2f} s, on {on_:.2f} s: {on_ / off:.2f}x")


def redelivery(settings: Settings, original: Path, changed: Path, repeat: int) -> None:
    load(settings, "establishments", original, crs="EPSG:28992", max_reject_rate=1)  # start from the original
    times: dict[bool, list[float]] = {False: [], True: []}
    files = [changed, original]
    k = 0
    for _ in range(repeat):
        for on in (False, True):
            triggers(settings, on)
            try:
                t0 = time.perf_counter()
                r = load(settings, "establishments", files[k % 2], crs="EPSG:28992", max_reject_rate=1)
                times[on].append(time.perf_counter() - t0)
                print(f"  triggers {'on ' if on else 'off'}: {times[on][-1]:.2f} s wall ({r.status}), merge "
                      f"{r.timings.get('merge', 0):.3f} s, updated {r.rows_updated}")
            finally:
                triggers(settings, True)
            k += 1
    if k % 2:  # leave the original loaded
        load(settings, "establishments", original, crs="EPSG:28992", max_reject_rate=1)
    off, on_ = min(times[False]), min(times[True])
    print(f"re-delivery, best of {repeat}: off {off:.2f} s, on {on_:.2f} s: {on_ / off:.2f}x")
    before = history_bytes(settings)
    r = load(settings, "establishments", changed, crs="EPSG:28992", max_reject_rate=1)
    after = history_bytes(settings)
    print(f"storage: +{(after - before) / 1024:.0f} kB for {r.rows_updated} changed rows "
          f"({(after - before) / max(r.rows_updated, 1):.0f} bytes per changed row; history "
          f"{after / 1024 / 1024:.1f} MB)")
    load(settings, "establishments", original, crs="EPSG:28992", max_reject_rate=1)


def queries(settings: Settings, repeat: int) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from twin.access import create_key

    with psycopg.connect(url_for(settings, "owner")) as conn:
        _, token = create_key(conn, "admin", None)
        conn.commit()
        est = conn.execute("SELECT establishment_id FROM twin.establishments ORDER BY id LIMIT 1 OFFSET 777"
                           ).fetchone()
    assert est is not None
    as_of = "geldigOp=2026-01-01&beschikbaarOp=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cases = {
        "items (bbox, 100)": "/collections/establishments/items?bbox=5.0,52.0,5.4,52.3&limit=100",
        "inspections items (100)": "/collections/inspections/items?limit=100",
        "context (500 m)": f"/analysis/context?establishment={est[0]}&radius=500",
    }
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for name, path in cases.items():
            sep = "&" if "?" in path else "?"
            res = {}
            for label, url in (("current", path), ("as-of", f"{path}{sep}{as_of}")):
                assert client.get(url, headers=headers).status_code == 200, client.get(url, headers=headers).text
                samples = []
                for _ in range(repeat * 5):
                    t0 = time.perf_counter()
                    client.get(url, headers=headers)
                    samples.append(time.perf_counter() - t0)
                res[label] = statistics.median(samples)
            print(f"{name}: current {res['current'] * 1000:.1f} ms, as-of {res['as-of'] * 1000:.1f} ms: "
                  f"{res['as-of'] / res['current']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/tmp/medium"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--first-load", action="store_true", help="also time a first load (not on a shared database)")
    ap.add_argument("--no-redelivery", action="store_true")
    ap.add_argument("--no-queries", action="store_true")
    args = ap.parse_args()
    settings = Settings()
    print(f"database {settings.database_name}, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        changed = Path(tmp) / "inrichtingen_1pct.csv"
        original = Path(tmp) / "inrichtingen.csv"
        original.write_bytes((args.data / "inrichtingen.csv").read_bytes())
        if args.first_load:
            first_load(settings, original, args.repeat)
        if not args.no_redelivery:
            print(f"{changed_copy(args.data / 'inrichtingen.csv', changed)} rows changed in the re-delivery")
            redelivery(settings, original, changed, args.repeat)
    if not args.no_queries:
        queries(settings, args.repeat)
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
