"""The API behind PgBouncer in transaction mode (issue 23, "Pooling"): Debian's pgbouncer on a free loopback
port in front of the security tests' database, the API's reader URL pointed at it, and the access tests' key
assertions run through it. Under transaction pooling consecutive transactions of one client connection land on
different server connections, so anything session-level (a ``SET ROLE``, a ``set_config(..., false)``, a
prepared statement) would leak to, or be missing for, the next client: the role and organisation of a request
must live and die with its transaction (``SET LOCAL``), and psycopg must not prepare statements."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from security_fixture import ESTABLISHMENTS, INSPECTIONS, ODA, ODB, expected_inspections
from servers import free_port

from twin import cluster, database
from twin.access import REQUEST_SETTINGS_SQL, Principal, request_settings
from twin.settings import Settings

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
ROLES = (("admin", "admin", None), ("inspector_a", "inspector", ODA), ("inspector_b", "inspector", ODB),
         ("advisor", "advisor", ODA))


@pytest.fixture(scope="module")
def bouncer(sec_settings: Settings) -> Iterator[int]:
    """PgBouncer (pool_mode=transaction, 2 server connections per pool so that clients share them) on a
    free loopback port in front of the local cluster's socket; yields the port."""
    assert Path(PGBOUNCER).exists(), "pgbouncer is not installed: apt-get install pgbouncer (scripts/setup.sh)"
    d = Path(tempfile.mkdtemp(prefix="twin-pgbouncer-"))  # not under pytest's 0700 folder: the service user
    d.chmod(0o755)                                        # that pgbouncer switches to must read it
    port = free_port()
    _, sock = cluster.cluster_paths(sec_settings)
    users = ("twin_reader", "twin_auditor", "twin_owner", "twin_writer")
    (d / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in users))
    (d / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={sock} port={sec_settings.pg_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {d / 'userlist.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits\n"
        "server_reset_query =\nadmin_users = twin_owner\n")
    for f in d.iterdir():
        f.chmod(0o644)
    user = cluster.service_user()
    log = (d / "pgbouncer.out").open("wb")
    proc = subprocess.Popen([PGBOUNCER, *(["-u", user] if user else []), str(d / "pgbouncer.ini")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"postgresql://twin_reader@127.0.0.1:{port}/{sec_settings.database_name}"
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = (d / "pgbouncer.out").read_text()
                    raise RuntimeError(f"pgbouncer did not start: {out}") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def bouncer_settings(sec_settings: Settings, bouncer: int) -> Settings:
    """The security tests' settings with the API's reader URL on PgBouncer (the owner stays on the socket)."""
    return sec_settings.model_copy(update={
        "database_url": database.url_for(sec_settings, "owner"),
        "reader_url": f"postgresql://twin_reader@127.0.0.1:{bouncer}/{sec_settings.database_name}",
        "pgbouncer": True,
    })


@pytest.fixture(scope="module")
def bclient(bouncer_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(bouncer_settings)) as c:
        yield c


def _ids(doc: dict[str, Any]) -> set[str]:
    return {f["id"] for f in doc["features"]}


def test_the_api_reads_through_pgbouncer(bclient: TestClient, bouncer: int) -> None:
    """The reader URL really is PgBouncer's: its connections show up in SHOW CLIENTS."""
    assert bclient.get("/collections/establishments/items").status_code == 200
    url = f"postgresql://twin_owner@127.0.0.1:{bouncer}/pgbouncer"
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        cur = conn.cursor()
        cur.execute("SHOW CLIENTS")
        names = [d.name for d in cur.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert any(r["user"] == "twin_reader" for r in rows), rows


def test_items_of_inspections_per_role(bclient: TestClient, keys: dict[str, str]) -> None:
    r = bclient.get("/collections/inspections/items")
    assert r.status_code == 401
    assert bclient.get("/collections/inspections/items", headers={"X-API-Key": keys["public"]}).status_code == 403
    for _ in range(4):  # more than psycopg's prepare threshold (5 executions) over the loop, on 2 server conns
        for name, role, org in ROLES:
            r = bclient.get("/collections/inspections/items", params={"limit": 100},
                            headers={"X-API-Key": keys[name]})
            assert r.status_code == 200, r.text
            doc = r.json()
            assert _ids(doc) == expected_inspections(role, org), name
            assert doc["numberMatched"] == len(expected_inspections(role, org))
            assert {"inspector" in f["properties"] for f in doc["features"]} == {role in ("inspector", "admin")}
    other = next(i.inspection_id for i in INSPECTIONS if i.org == ODB)
    assert bclient.get(f"/collections/inspections/items/{other}",
                       headers={"X-API-Key": keys["inspector_a"]}).status_code == 404
    assert bclient.get(f"/collections/inspections/items/{other}",
                       headers={"X-API-Key": keys["inspector_b"]}).status_code == 200


def test_sole_proprietors_are_masked(bclient: TestClient, keys: dict[str, str]) -> None:
    cases = ((None, lambda e: not e.sole), ("public", lambda e: not e.sole), ("advisor", lambda e: not e.sole),
             ("inspector_a", lambda e: not e.sole or e.org == ODA), ("admin", lambda e: True))
    for _ in range(2):
        for name, shown in cases:
            headers = {"X-API-Key": keys[name]} if name else {}
            r = bclient.get("/collections/establishments/items", params={"f": "csv"}, headers=headers)
            assert r.status_code == 200, r.text
            for e in ESTABLISHMENTS:
                assert (e.name in r.text) == shown(e), (name, e.establishment_id)


def test_settings_do_not_outlive_the_transaction(bouncer_settings: Settings) -> None:
    """Through PgBouncer: after a request's transaction, the next transaction (on whichever server connection)
    sees nothing of it: role, twin.role and twin.org_code are back to the reader's (fail closed)."""
    url = database.url_for(bouncer_settings, "reader")
    with psycopg.connect(url, prepare_threshold=None) as conn:
        for _ in range(6):
            with conn.transaction():
                conn.execute(REQUEST_SETTINGS_SQL, request_settings(Principal(role="admin")))
                assert len(conn.execute("SELECT inspection_id FROM twin.inspections").fetchall()) == len(INSPECTIONS)
            row = conn.execute("SELECT current_user, current_setting('twin.role', true), "
                               "count(*) FROM twin.inspections").fetchone()
            conn.rollback()
            assert row is not None and row[0] == "twin_reader" and not row[1] and row[2] == 0, row


def test_two_roles_interleaved_never_see_each_others_rows(bouncer_settings: Settings, keys: dict[str, str]) -> None:
    """Two inspectors of different organisations and an anonymous caller hammer the API at the same time
    through 2 shared server connections: every answer holds exactly the caller's rows."""
    from api.app import create_app

    errors: list[str] = []
    with TestClient(create_app(bouncer_settings)) as c:
        def worker(name: str | None, role: str, org: str | None) -> None:
            headers = {"X-API-Key": keys[name]} if name else {}
            expected = expected_inspections(role, org) if name else set()
            for _ in range(25):
                if name is None:
                    r = c.get("/collections/establishments/items", params={"f": "csv"})
                    sole = [e for e in ESTABLISHMENTS if e.sole]
                    if r.status_code != 200 or any(e.name in r.text for e in sole):
                        errors.append(f"anonymous saw a sole proprietor or failed: {r.status_code}")
                    continue
                r = c.get("/collections/inspections/items", params={"limit": 100}, headers=headers)
                if r.status_code != 200:
                    errors.append(f"{name}: {r.status_code} {r.text[:200]}")
                elif _ids(r.json()) != expected:
                    errors.append(f"{name} saw {sorted(_ids(r.json()) ^ expected)} wrongly")

        threads = [threading.Thread(target=worker, args=a) for a in
                   (("inspector_a", "inspector", ODA), ("inspector_b", "inspector", ODB), (None, "anonymous", None),
                    ("inspector_a", "inspector", ODA), ("inspector_b", "inspector", ODB))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors[:5]
