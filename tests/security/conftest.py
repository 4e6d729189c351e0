"""Fixtures of the security tests: a database of their own (so their rows never disturb other tests),
seeded through the writer role like an ingest, API keys of every role, and a client of the API."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from security_fixture import ODA, ODB, seed
from testdb import throwaway_database

from twin import access, database
from twin.settings import Settings


@pytest.fixture(scope="session")
def sec_settings(base_settings: Settings) -> Iterator[Settings]:
    """A fresh migrated database for the security tests, seeded; no rate limit, no key cache."""
    with throwaway_database(base_settings, f"twin_sec_{os.getpid()}", rate_limit_rps=0.0, key_cache_s=0.0) as s:
        seed(database.url_for(s, "writer"))
        yield s


@pytest.fixture(scope="session")
def sec_owner_url(sec_settings: Settings) -> str:
    return database.url_for(sec_settings, "owner")


@pytest.fixture(scope="session")
def sec_reader_url(sec_settings: Settings) -> str:
    return database.url_for(sec_settings, "reader")


@pytest.fixture(scope="session")
def keys(sec_owner_url: str) -> dict[str, str]:
    """Full API keys by name: public, advisor, inspector_a, inspector_b, admin."""
    out = {}
    with psycopg.connect(sec_owner_url, autocommit=True) as conn:
        for name, role, org in (("public", "public", None), ("advisor", "advisor", ODA),
                                ("inspector_a", "inspector", ODA), ("inspector_b", "inspector", ODB),
                                ("admin", "admin", None)):
            _, full = access.create_key(conn, role, org, None, f"test {name}")
            out[name] = full
    return out


@pytest.fixture(scope="module")
def sec_client(sec_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(sec_settings)) as c:
        yield c
