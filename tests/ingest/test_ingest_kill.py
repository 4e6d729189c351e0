"""A load killed with SIGKILL in the middle (during the COPY, or after the merge just before COMMIT) leaves
the twin exactly as it was; the next run succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_fixtures import ESTABLISHMENTS, ROOT, cli_env, rows, scalar, table_checksum, write_csv

from ingest.loader import PAUSE_AT_ENV, PAUSE_FILE_ENV, load
from twin.settings import Settings

pytestmark = pytest.mark.usefixtures("empty_layers")


def kill_when_paused(settings: Settings, tmp_path: Path, phase: str, *args: str) -> None:
    """Run ``twin ingest ARGS`` in a subprocess with the loader's pause hook at ``phase``, and SIGKILL it there."""
    marker = tmp_path / "paused"
    env = cli_env(settings, {PAUSE_AT_ENV: phase, PAUSE_FILE_ENV: str(marker)})
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "ingest", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the load never reached the pause"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("phase", ["copy", "commit"])
def test_sigkill_leaves_the_previous_data(phase: str, ingest_settings: Settings, ingest_owner: str,
                                          tmp_path: Path) -> None:
    load(ingest_settings, "establishments", write_csv(tmp_path / "a.csv", ESTABLISHMENTS), crs="EPSG:28992")
    before = table_checksum(ingest_owner, "establishments")
    changed = [{**r, "naam": r["naam"] + " (nieuw)"} for r in ESTABLISHMENTS[:10]]
    changed += [{**ESTABLISHMENTS[0], "inrichting_id": "IE777"}]
    src = write_csv(tmp_path / "b.csv", changed)
    kill_when_paused(ingest_settings, tmp_path, phase, "establishments", str(src), "--crs", "EPSG:28992", "--mode",
                     "replace")
    # The server ends the orphaned transaction when it sees the closed socket; the data never changed.
    assert table_checksum(ingest_owner, "establishments") == before
    killed = scalar(ingest_owner, "SELECT max(id) FROM twin.ingest_runs")
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992", mode="replace")
    assert (result.status, result.rows_inserted, result.rows_updated, result.rows_deleted) == ("succeeded", 1, 10, 2)
    # The killed run is recorded as interrupted, not left 'running'.
    status, message = rows(ingest_owner, "SELECT status, message FROM twin.ingest_runs WHERE id = %s", (killed,))[0]
    assert status == "failed" and message.startswith("interrupted")


def test_sigkill_during_a_first_bulk_load_leaves_the_empty_table_as_it_was(ingest_settings: Settings,
                                                                           ingest_owner: str, tmp_path: Path) -> None:
    """A first load of 50,000 rows into the empty table takes the fast road: it truncates the table (new
    storage, no WAL with wal_level = minimal) and sets aside its indexes and keys. Killed during its COPY, all
    of that rolls back: the same storage, the same indexes and constraints, nothing left set aside."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from ingest.merge import DEFER_INDEXES_MIN_ROWS

    n = DEFER_INDEXES_MIN_ROWS
    i = np.arange(n)
    x, y = 120000.0 + (i % 250) * 40.0, 480000.0 + (i // 250) * 40.0  # 10 x 10 m boxes on land near Amsterdam
    gdf = gpd.GeoDataFrame({"identificatie": [f"{k:016d}" for k in range(1, n + 1)]},
                           geometry=shapely.box(x, y, x + 10, y + 10), crs="EPSG:28992")
    src = tmp_path / "panden.gpkg"
    gdf.to_file(src, layer="pand")

    def shape() -> list[tuple[object, ...]]:
        return rows(ingest_owner, "SELECT pg_relation_filenode('twin.buildings'), (SELECT array_agg(indexdef ORDER BY "
                    "indexname) FROM pg_indexes WHERE schemaname = 'twin' AND tablename = 'buildings'), (SELECT "
                    "array_agg(pg_get_constraintdef(oid) ORDER BY conname) FROM pg_constraint WHERE conrelid = "
                    "'twin.buildings'::regclass), (SELECT count(*) FROM twin.ingest_deferred_indexes), "
                    "(SELECT count(*) FROM twin.buildings)")

    before = shape()
    kill_when_paused(ingest_settings, tmp_path, "copy", "buildings", str(src), "--no-quality")
    deadline = time.monotonic() + 10  # the server notices the closed socket and rolls back
    while shape() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert shape() == before
    result = load(ingest_settings, "buildings", src)
    assert (result.status, result.rows_inserted) == ("succeeded", n) and "indexes" in result.timings
    after = shape()
    assert after[0][1:4] == before[0][1:4] and after[0][4] == n
    if scalar(ingest_owner, "SHOW wal_level") == "minimal":
        assert after[0][0] != before[0][0]  # the good load took the fast road: new storage


def test_sigkill_before_the_commit_of_a_first_staged_bulk_load(ingest_settings: Settings, ingest_owner: str,
                                                                tmp_path: Path) -> None:
    """Permits are staged. A first load of 50,000 truncates the empty table, sets aside its indexes, keys and
    foreign key, inserts, and adds them back; killed just before COMMIT, the table is as it was: empty, the
    same storage, the same definition."""
    from ingest.merge import DEFER_INDEXES_MIN_ROWS

    load(ingest_settings, "establishments", write_csv(tmp_path / "e.csv", ESTABLISHMENTS), crs="EPSG:28992")
    ids = [e["inrichting_id"] for e in ESTABLISHMENTS]
    permits = [{"zaaknummer": f"Z-{i:06d}", "inrichting_id": ids[i % len(ids)], "soort": "melding",
                "status": "verleend", "datum_aanvraag": "2020-01-10", "datum_besluit": "2020-06-01"}
               for i in range(DEFER_INDEXES_MIN_ROWS)]
    src = write_csv(tmp_path / "p.csv", permits)

    def shape() -> list[tuple[object, ...]]:
        return rows(ingest_owner, "SELECT pg_relation_filenode('twin.permits'), (SELECT array_agg(indexdef ORDER BY "
                    "indexname) FROM pg_indexes WHERE schemaname = 'twin' AND tablename = 'permits'), (SELECT "
                    "array_agg(pg_get_constraintdef(oid) ORDER BY conname) FROM pg_constraint WHERE conrelid = "
                    "'twin.permits'::regclass), (SELECT count(*) FROM twin.ingest_deferred_indexes), "
                    "(SELECT count(*) FROM twin.permits)")

    before = shape()
    assert before[0][4] == 0 and any("FOREIGN KEY" in d for d in before[0][2])
    kill_when_paused(ingest_settings, tmp_path, "commit", "permits", str(src), "--no-quality")
    deadline = time.monotonic() + 10
    while shape() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert shape() == before
    result = load(ingest_settings, "permits", src)
    assert (result.status, result.rows_inserted) == ("succeeded", DEFER_INDEXES_MIN_ROWS)
    assert shape()[0][1:4] == before[0][1:4]
