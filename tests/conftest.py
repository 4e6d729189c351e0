"""Test fixtures: one throwaway database per test session in the project's PostGIS cluster (or in the
server of TWIN_DATABASE_URL), migrated by the real migrations. Never the demo database.

A skipped test fails the run: a silent skip would hide a broken setup.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from testdb import throwaway_database

from twin import database
from twin.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
_skipped: list[str] = []


def _test_db_name() -> str:
    return f"twin_test_{os.getpid()}"


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings as the project's scripts use them (TWIN_DATA_DIR defaults to <repo>/.twin, as in twin.settings)."""
    overrides: dict[str, object] = {}
    if "TWIN_DATA_DIR" not in os.environ:
        overrides["data_dir"] = ROOT / ".twin"
    return Settings(**overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(base_settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a fresh, migrated throwaway database."""
    with throwaway_database(base_settings, _test_db_name()) as s:
        yield s


@pytest.fixture(scope="session")
def owner_url(settings: Settings) -> str:
    return database.url_for(settings, "owner")


@pytest.fixture(scope="session")
def writer_url(settings: Settings) -> str:
    return database.url_for(settings, "writer")


@pytest.fixture(scope="session")
def reader_url(settings: Settings) -> str:
    return database.url_for(settings, "reader")


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    """The API through its lifespan (one reader pool), against the test database."""
    from api.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and os.environ.get("TWIN_ALLOW_SKIPS") != "1":
        print(f"\nerror: {len(_skipped)} test(s) were skipped; a skipped test fails the run:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
