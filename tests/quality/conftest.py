"""Fixtures of the data-quality tests: a throwaway database of their own with the fixture twin of
quality_fixture.py loaded through the real 'twin ingest' (and the SQL records the loader refuses)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from testdb import throwaway_database

sys.path.insert(0, str(Path(__file__).parent))

from quality_fixture import MUNICIPALITIES, SQL_RECORDS, Fixture, run_cli, write  # noqa: E402

from twin import database  # noqa: E402
from twin.settings import Settings  # noqa: E402

LOAD_ORDER = ("establishments", "permits", "inspections", "addresses", "buildings", "natura2000-habitats",
              "housing-sites")


@dataclass
class Twin:
    settings: Settings
    owner: str
    fixture: Fixture


@pytest.fixture(scope="session")
def quality_twin(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    """The fixture twin, loaded layer by layer with 'twin ingest' (each load measures and records the rules)."""
    from quality_fixture import AS_OF

    with throwaway_database(base_settings, f"twin_test_{os.getpid()}_quality", quality_as_of=AS_OF) as s:
        owner = database.url_for(s, "owner")
        done = run_cli(s, "ingest", "municipalities", f"{MUNICIPALITIES}")
        assert done.returncode == 0, done.stdout + done.stderr
        fx = write(tmp_path_factory.mktemp("quality"), owner)
        for layer in LOAD_ORDER:
            done = run_cli(s, "ingest", layer, str(fx.files[layer]), "--crs", "EPSG:28992")
            assert done.returncode == 0, f"{layer}: {done.stdout}{done.stderr}"
            assert "rejected" not in done.stdout.split("ingest summary")[0], done.stdout
        with psycopg.connect(owner) as conn:
            for stmt in SQL_RECORDS:
                conn.execute(stmt)
        yield Twin(s, owner, fx)
