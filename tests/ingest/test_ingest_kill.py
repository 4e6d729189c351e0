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


@pytest.mark.parametrize("phase", ["copy", "commit"])
def test_sigkill_leaves_the_previous_data(phase: str, ingest_settings: Settings, ingest_owner: str,
                                          tmp_path: Path) -> None:
    load(ingest_settings, "establishments", write_csv(tmp_path / "a.csv", ESTABLISHMENTS), crs="EPSG:28992")
    before = table_checksum(ingest_owner, "establishments")
    changed = [{**r, "naam": r["naam"] + " (nieuw)"} for r in ESTABLISHMENTS[:10]]
    changed += [{**ESTABLISHMENTS[0], "inrichting_id": "IE777"}]
    src = write_csv(tmp_path / "b.csv", changed)
    marker = tmp_path / "paused"
    env = cli_env(ingest_settings, {PAUSE_AT_ENV: phase, PAUSE_FILE_ENV: str(marker)})
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "ingest", "establishments", str(src), "--crs",
                             "EPSG:28992", "--mode", "replace"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the load never reached the pause"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # The server ends the orphaned transaction when it sees the closed socket; the data never changed.
    assert table_checksum(ingest_owner, "establishments") == before
    killed = scalar(ingest_owner, "SELECT max(id) FROM twin.ingest_runs")
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992", mode="replace")
    assert (result.status, result.rows_inserted, result.rows_updated, result.rows_deleted) == ("succeeded", 1, 10, 2)
    # The killed run is recorded as interrupted, not left 'running'.
    status, message = rows(ingest_owner, "SELECT status, message FROM twin.ingest_runs WHERE id = %s", (killed,))[0]
    assert status == "failed" and message.startswith("interrupted")
