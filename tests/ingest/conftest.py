"""Fixtures of the ingest tests: a throwaway database of their own (loads replace whole layers and count
rows, so they must not share tables with the API tests), with the real municipalities loaded, and a
helper to run the ``twin`` CLI against it in a subprocess."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from testdb import throwaway_database

from ingest.loader import load
from twin import database
from twin.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MUNICIPALITIES = ROOT / "twin" / "data" / "nl_gemeenten_2023.gpkg"
LAYER_TABLES = ("inspections", "permits", "establishments", "natura2000_habitats", "natura2000_areas",
                "housing_sites", "buildings", "addresses", "deposition_hexagons", "nitrogen_deposition",
                "nitrogen_deposition_years", "nitrogen_deposition_o4", "nitrogen_deposition_o16")


@pytest.fixture(scope="session")
def ingest_settings(base_settings: Settings) -> Iterator[Settings]:
    """Settings of a fresh, migrated database for the ingest tests, with the municipalities loaded."""
    with throwaway_database(base_settings, f"twin_test_{os.getpid()}_ingest") as s:
        result = load(s, "municipalities", MUNICIPALITIES)
        assert result.status == "succeeded", result.message
        yield s


@pytest.fixture(scope="session")
def ingest_owner(ingest_settings: Settings) -> str:
    return database.url_for(ingest_settings, "owner")


@pytest.fixture()
def empty_layers(ingest_owner: str) -> None:
    """Empty every layer table except the municipalities (and the runs, which only grow)."""
    with psycopg.connect(ingest_owner) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"twin.{t}" for t in LAYER_TABLES) + " CASCADE")
