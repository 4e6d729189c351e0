"""Read replicas (issue 23): ``twin db replica add`` makes a streaming hot standby of a cluster with
pg_basebackup, and the API reads from it (TWIN_READER_URLS), takes it out when it fails, and goes on reading from
it when the primary is down. A private cluster of its own: the shared one keeps wal_level=minimal."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from testdb import private_cluster

from twin import access, cluster, database, replication
from twin.settings import Settings

INSERT = ("INSERT INTO twin.municipalities (code, name, geom) VALUES (%s, %s, "
          "ST_Multi(ST_MakeEnvelope(150000, 450000, 151000, 451000, 28992)))")


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings) -> Iterator[Settings]:
    with private_cluster(base_settings, tmp_path_factory.mktemp("primary")) as s:
        try:
            yield s
        finally:
            for r in replication.replicas(s):
                replication.remove(s, r.name)


def _wait(predicate: object, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def _count(client: TestClient) -> int:
    r = client.get("/collections/municipalities/items", params={"limit": 1})
    assert r.status_code == 200, r.text
    return int(r.json()["numberMatched"])


def test_replica_add_streams_and_the_api_reads_from_it(primary: Settings) -> None:
    from api.app import create_app

    assert replication.wal_level(primary) == "minimal"
    rep = replication.add(primary, "r1")
    assert replication.wal_level(primary) == "replica"
    assert [r.name for r in replication.replicas(primary)] == ["r1"]
    st = replication.state(primary, rep)
    assert st.running and st.in_recovery is True and st.lag_s is not None
    with pytest.raises(Exception, match="exists already"):
        replication.add(primary, "r1")

    # A write on the primary reaches the standby; the standby refuses writes.
    with psycopg.connect(database.url_for(primary, "owner")) as conn:
        conn.execute(INSERT, ("GM9001", "Replicadorp"))
    replica_owner = replication.url(primary, rep, cluster.OWNER)

    def replicated() -> bool:
        with psycopg.connect(replica_owner) as c:
            row = c.execute("SELECT count(*) FROM twin.municipalities WHERE code = 'GM9001'").fetchone()
            return bool(row and row[0] == 1)

    assert _wait(replicated)
    with psycopg.connect(replica_owner) as c, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        c.execute(INSERT, ("GM9002", "Nee"))

    with psycopg.connect(database.url_for(primary, "owner"), autocommit=True) as conn:
        _, key = access.create_key(conn, "inspector", "ODX", access.parse_expiry("1h"), "replication test")
    settings = primary.model_copy(update={"reader_urls": [replication.url(primary, rep)], "replica_check_s": 0.3,
                                          "key_cache_s": 0.0})
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready"
        dbs = {d["role"]: d for d in ready["databases"]}
        assert dbs["replica"]["status"] == "up" and dbs["replica"]["lag_s"] is not None
        readers = client.app.state.readers  # type: ignore[attr-defined]
        assert _count(client) == 1
        assert _wait(lambda: _count(client) == 1 and readers.replicas[0].served >= 1, 20), \
            "reads go to the healthy replica"

        # The replica stops: the next reads go to the primary without an error; /readyz says it is down.
        replication.stop(primary, rep)
        for _ in range(5):
            assert _count(client) == 1
        assert _wait(lambda: client.get("/readyz").json()["databases"][1]["status"] == "down", 5)
        assert client.get("/readyz").status_code == 200

        # Back: it is taken in again and serves reads.
        replication.start(primary, rep)
        assert _wait(lambda: client.get("/readyz").json()["databases"][1]["status"] == "up", 10)
        before = client.app.state.readers.replicas[0].served  # type: ignore[attr-defined]

        def served_by_replica() -> bool:  # its pool reconnects in the background (slower on a busy machine)
            assert _count(client) == 1
            return bool(client.app.state.readers.replicas[0].served > before)  # type: ignore[attr-defined]

        assert _wait(served_by_replica, 20)

        # The primary stops: reads go on from the replica (status degraded), and come back to it after.
        cluster.down(primary)
        try:
            assert _count(client) == 1
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            # The standby still reports itself healthy while its primary is away (nothing left to replay).
            assert ready.json()["databases"][1]["status"] == "up"
            # Restricted records are not served while their audit row cannot be written on the primary.
            assert _wait(lambda: client.get("/collections/inspections/items",
                                            headers={"X-API-Key": key}).status_code == 503, 10)
            assert _count(client) == 1  # public layers go on
        finally:
            cluster.up(primary)
        assert _wait(lambda: client.get("/readyz").json()["status"] == "ready", 15)


def test_a_lagging_replica_is_taken_out(primary: Settings) -> None:
    from api.app import create_app

    rep = replication.find(primary, "r1") if replication.replicas(primary) else replication.add(primary, "r1")
    if not replication.state(primary, rep).running:
        replication.start(primary, rep)
    settings = primary.model_copy(update={"reader_urls": [replication.url(primary, rep)], "replica_check_s": 0.2,
                                          "max_replica_lag_s": 0.5})
    with psycopg.connect(replication.url(primary, rep, cluster.SUPERUSER, "postgres"), autocommit=True) as c:
        c.execute("SELECT pg_wal_replay_pause()")
        try:
            with psycopg.connect(database.url_for(primary, "owner")) as conn:
                conn.execute(INSERT, ("GM9003", "Achterdorp"))
            with TestClient(create_app(settings)) as client:
                assert _wait(lambda: client.get("/readyz").json()["databases"][1]["status"] == "down", 10)
                state = client.get("/readyz").json()["databases"][1]
                assert "lags" in state["error"]
                # Served by the primary: the new row is there (no stale answer from the paused standby).
                assert _count(client) == 2
        finally:
            c.execute("SELECT pg_wal_replay_resume()")


def test_remove_and_off(primary: Settings) -> None:
    for r in replication.replicas(primary):
        replication.remove(primary, r.name)
    assert replication.replicas(primary) == []
    assert not (cluster.cluster_paths(primary)[0].parent / "replicas" / "r1").exists()
    assert replication.disable(primary) is True
    assert replication.wal_level(primary) == "minimal"
    with pytest.raises(Exception, match="no replica named"):
        replication.remove(primary, "nope")


def test_reader_urls_setting_accepts_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_READER_URLS", "postgresql://h1/twin, postgresql://h2:5433/twin")
    assert Settings().reader_urls == ["postgresql://h1/twin", "postgresql://h2:5433/twin"]
    monkeypatch.setenv("TWIN_READER_URLS", '["postgresql://h3/twin"]')
    assert Settings().reader_urls == ["postgresql://h3/twin"]
