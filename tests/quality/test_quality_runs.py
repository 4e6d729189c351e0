"""Quality is tracked per delivery: a second delivery of the establishments that empties two more KvK numbers,
loaded with the real 'twin ingest', shows as worse than the previous delivery in the report (JSON) and in
latest_results_sql."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import psycopg
from conftest import Twin
from quality_fixture import run_cli

from twin import quality

RULE = "establishments.kvk_number-filled"


def _runs(owner: str) -> list[int]:
    with psycopg.connect(owner) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM twin.ingest_runs WHERE layer = 'establishments' "
                                           "AND status = 'succeeded' ORDER BY id").fetchall()]


def test_a_worse_delivery_shows_as_worse(quality_twin: Twin, tmp_path: Path) -> None:
    s, owner = quality_twin.settings, quality_twin.owner
    original = quality_twin.fixture.files["establishments"]
    with original.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        if r["establishment_id"] in ("E-CLEAN", "E-BRZO"):
            r["kvk_number"] = ""
    worse = tmp_path / "inrichtingen-2.csv"
    with worse.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    first_run = _runs(owner)[-1]
    try:
        done = run_cli(s, "ingest", "establishments", str(worse), "--crs", "EPSG:28992")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "worse than the previous delivery" in done.stdout and RULE in done.stdout
        second_run = _runs(owner)[-1]
        assert second_run > first_run

        done = run_cli(s, "quality", "report", "--layer", "establishments", "--format", "json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        rule = next(r for r in report["rules"] if r["id"] == RULE)
        n = len(quality_twin.fixture.establishments) + 1  # and E-SQL, loaded after the first delivery
        # before: E-NO-KVK of the delivery's 20 establishments; now E-NO-KVK, E-CLEAN and E-BRZO of 21
        assert (rule["checked"], rule["failed"], rule["run_id"]) == (n, 3, second_run)
        assert rule["previous"]["failed"] == 1 and rule["previous"]["checked"] == n - 1
        assert rule["previous"]["run_id"] == first_run
        assert rule["change"]["failed"] == 2
        assert rule["change"]["score"] == round((1 - 3 / n) - (1 - 1 / (n - 1)), 6) < 0
        assert rule["source"] == str(worse)
        layer = next(x for x in report["layers"] if x["layer"] == "establishments")
        assert layer["source"] == str(worse) and layer["run_id"] == second_run

        with psycopg.connect(owner) as conn:
            latest = {r[0]: r for r in conn.execute(quality.latest_results_sql()).fetchall()}
        # rule_id, layer, kind, checked, failed, score, run_id, measured_at, previous_checked, previous_failed,
        # previous_score, previous_run_id: recorded by the ingest (the report above did not record)
        got = latest[RULE]
        assert (got[4], got[6], got[9], got[11]) == (3, second_run, 1, first_run)
    finally:  # the other tests read the first delivery
        done = run_cli(s, "ingest", "establishments", str(original), "--crs", "EPSG:28992", "--no-quality")
        assert done.returncode == 0, done.stdout + done.stderr
