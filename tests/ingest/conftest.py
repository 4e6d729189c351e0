"""Fixtures of the ingest tests: a throwaway database of their own (loads replace whole layers and count
rows, so they must not share tables with the API tests), with the real municipalities loaded, and a
helper to run the ``twin`` CLI against it in a subprocess."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingest.loader import load
from twin import cluster, database
from twin.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MUNICIPALITIES = ROOT / "twin" / "data" / "nl_gemeenten_2023.gpkg"
LAYER_TABLES = ("inspections", "permits", "establishments", "natura2000_habitats", "housing_sites", "buildings",
                "deposition_hexagons", "nitrogen_deposition", "nitrogen_deposition_years", "nitrogen_deposition_o4",
                "nitrogen_deposition_o16")


@pytest.fixture(scope="session")
def ingest_settings(base_settings: Settings) -> Iterator[Settings]:
    """Settings of a fresh, migrated database for the ingest tests, with the municipalities loaded."""
    name = f"twin_test_{os.getpid()}_ingest"
    s = base_settings.model_copy(update={"database_name": name})
    if s.local_cluster:
        cluster.up(s)
        cluster.drop_database(s, name)
        cluster.create_database(s, name)
    else:
        admin = database.url_for(base_settings, "owner")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        s = s.model_copy(update={"database_url": database.url_for(base_settings, "owner", name)})
    database.migrate(s)
    result = load(s, "municipalities", MUNICIPALITIES)
    assert result.status == "succeeded", result.message
    yield s
    if s.local_cluster:
        cluster.up(s)
        cluster.drop_database(s, name)
    else:
        with psycopg.connect(database.url_for(base_settings, "owner"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def ingest_owner(ingest_settings: Settings) -> str:
    return database.url_for(ingest_settings, "owner")


@pytest.fixture()
def empty_layers(ingest_owner: str) -> None:
    """Empty every layer table except the municipalities (and the runs, which only grow)."""
    with psycopg.connect(ingest_owner) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"twin.{t}" for t in LAYER_TABLES) + " CASCADE")
