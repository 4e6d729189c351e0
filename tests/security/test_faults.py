"""Faults the API must survive without a restart: the database restarting while it serves (keys and the
audit log included), and its connection dropped in the middle of a streamed export. A private cluster,
so the shared one is never disturbed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from servers import serve_app
from testdb import private_cluster

from twin import access, cluster, database
from twin.settings import Settings

BUILDINGS = 3_000  # polygons of 201 vertices: a CSV export of ~15 MB, far more than the socket buffers


@pytest.fixture(scope="module")
def fault_settings(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings) -> Iterator[Settings]:
    with private_cluster(base_settings, tmp_path_factory.mktemp("faults"), rate_limit_rps=0.0,
                         key_cache_s=0.0) as s:
        _seed(database.url_for(s, "writer"))
        yield s


def _seed(writer_url: str) -> None:
    """A few thousand large buildings (a long CSV export) and one establishment with one inspection."""
    with psycopg.connect(writer_url) as conn:
        conn.execute(
            "INSERT INTO twin.buildings (building_id, construction_year, use, height_m, geom) "
            "SELECT lpad(i::text, 16, '0'), 1900 + i %% 120, 'woonfunctie', 3 + i %% 20, "
            "ST_SetSRID(ST_Buffer(ST_MakePoint(150000 + (i %% 60) * 100, 450000 + (i / 60) * 100), 20, 50), 28992) "
            "FROM generate_series(1, %s) AS i", (BUILDINGS,))
        conn.execute(
            "INSERT INTO twin.establishments (establishment_id, name, sbi_code, org_code, geom) VALUES "
            "('E1', 'Agro BV', '0146', 'ODA', ST_SetSRID(ST_MakePoint(150050, 450050), 28992))")
        conn.execute(
            "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, org_code, "
            "geom) VALUES ('I1', 'E1', '2024-01-02', 'routine', 'voorschriften nageleefd', 'ODA', "
            "ST_SetSRID(ST_MakePoint(150050, 450050), 28992))")


@pytest.fixture(scope="module")
def admin_key(fault_settings: Settings) -> str:
    with psycopg.connect(database.url_for(fault_settings, "owner"), autocommit=True) as conn:
        return access.create_key(conn, "admin", None, None, "faults")[1]


def _audit_count(settings: Settings) -> int:
    with psycopg.connect(database.url_for(settings, "owner")) as conn:
        row = conn.execute("SELECT count(*) FROM twin.audit_log").fetchone()
        return int(row[0]) if row else 0


def test_database_restart_with_keys_and_audit(fault_settings: Settings, admin_key: str) -> None:
    from api.app import create_app

    key = {"X-API-Key": admin_key}
    with TestClient(create_app(fault_settings)) as c:
        assert c.get("/collections/inspections/items", headers=key).status_code == 200
        assert _audit_count(fault_settings) == 1
        cluster.down(fault_settings)
        started = time.monotonic()
        for path, headers in (("/whoami", key), ("/collections/inspections/items", key), ("/collections", {}),
                              ("/collections/inspections/aggregates", {})):
            r = c.get(path, headers=headers)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json()["code"] == "ServiceUnavailable" and r.headers["retry-after"]
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200
        assert time.monotonic() - started < 15, "requests must fail fast while the database is down"
        cluster.up(fault_settings)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and c.get("/readyz").status_code != 200:
            time.sleep(0.3)
        assert c.get("/readyz").status_code == 200
        r = c.get("/collections/inspections/items", headers=key)
        assert r.status_code == 200 and r.json()["numberReturned"] == 1
    # the audit pool reconnected too: the access after the restart is on record
    assert _audit_count(fault_settings) == 2


@pytest.fixture()
def live_server(fault_settings: Settings) -> Iterator[str]:
    with serve_app(fault_settings, log_level="critical") as base:
        yield base


def test_connection_dropped_mid_stream(fault_settings: Settings, live_server: str) -> None:
    """pg_terminate_backend of the API's connection during a CSV export: the client gets an incomplete
    transfer (an error), never a short file that looks whole; the API serves the next request."""
    url = f"{live_server}/collections/buildings/items"
    received = 0
    # the API's own role may end its own backends (no superuser needed)
    with httpx.Client(timeout=30) as http, psycopg.connect(database.url_for(fault_settings, "reader"),
                                                            autocommit=True) as reader:
        with pytest.raises(httpx.TransportError), http.stream("GET", url, params={"f": "csv"}) as r:
            assert r.status_code == 200
            chunks = r.iter_bytes()
            received += len(next(chunks))
            killed = reader.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'vth-twin-api' AND query ILIKE 'COPY%%' AND pid <> pg_backend_pid()"
            ).fetchone()
            assert killed == (1,), "the export's backend was not running a COPY"
            for chunk in chunks:
                received += len(chunk)
        assert 0 < received
        lines_expected = BUILDINGS + 1
        assert received < lines_expected * 201 * 20  # cut short: far from the whole export
        deadline = time.monotonic() + 10
        status = 0
        while time.monotonic() < deadline and status != 200:
            status = http.get(url, params={"limit": 1}).status_code
        assert status == 200
        assert http.get(f"{live_server}/readyz").status_code == 200


def test_full_disk_during_an_export(fault_settings: Settings) -> None:
    """A GeoPackage export that cannot be written (the file-size limit stands in for a full disk): a clear
    503, and no half-written file left behind."""
    import glob
    import resource
    import signal
    import tempfile

    from api.app import create_app

    pattern = f"{tempfile.gettempdir()}/twin-export-*"
    before = set(glob.glob(pattern))
    with TestClient(create_app(fault_settings)) as c:
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
        try:
            r = c.get("/collections/buildings/items", params={"f": "gpkg"})
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, previous)
        assert r.status_code == 503, r.text
        assert "could not write the export" in r.json()["description"]
        assert set(glob.glob(pattern)) == before
        r = c.get("/collections/buildings/items", params={"f": "gpkg", "limit": 10})
        assert r.status_code == 200 and r.content[:16] == b"SQLite format 3\x00"
