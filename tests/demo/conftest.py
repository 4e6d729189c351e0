"""Fixtures of the demo-data tests: test_demo.py needs no database; test_demo_defects.py loads the small
scale into a throwaway database of its own (loads replace whole layers, so it must not share tables with
the ingest or API tests), with the real municipalities loaded as `twin ingest-all` expects."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from testdb import throwaway_database

from ingest.loader import load
from twin import database
from twin.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MUNICIPALITIES = ROOT / "twin" / "data" / "nl_gemeenten_2023.gpkg"


@pytest.fixture(scope="session")
def ingest_settings(base_settings: Settings) -> Iterator[Settings]:
    """Settings of a fresh, migrated database for the demo-data load, with the municipalities loaded."""
    with throwaway_database(base_settings, f"twin_test_{os.getpid()}_demo") as s:
        result = load(s, "municipalities", MUNICIPALITIES)
        assert result.status == "succeeded", result.message
        yield s


@pytest.fixture(scope="session")
def ingest_owner(ingest_settings: Settings) -> str:
    return database.url_for(ingest_settings, "owner")
