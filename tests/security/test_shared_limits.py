"""API processes that act as one (issue 23, "Stateless API replicas"): two app instances on one database share
their rate limits (a token bucket on the primary, written once per TWIN_RATE_LIMIT_SYNC requests of a caller) and
learn of a revoked key within TWIN_REVOCATION_CHECK_S (the key epoch); with the shared store unreachable each
falls back to its own limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import psycopg
import pytest
from fastapi.testclient import TestClient
from servers import free_port

from twin import access, database
from twin.settings import Settings


@pytest.fixture()
def fresh_buckets(sec_owner_url: str) -> Iterator[None]:
    """The shared buckets emptied before and after (other tests of this database meter the same address)."""
    with psycopg.connect(sec_owner_url, autocommit=True) as conn:
        conn.execute("DELETE FROM twin.rate_buckets")
    yield
    with psycopg.connect(sec_owner_url, autocommit=True) as conn:
        conn.execute("DELETE FROM twin.rate_buckets")


def _two_apps(settings: Settings) -> tuple[ExitStack, TestClient, TestClient]:
    from api.app import create_app

    stack = ExitStack()
    a = stack.enter_context(TestClient(create_app(settings)))
    b = stack.enter_context(TestClient(create_app(settings)))
    return stack, a, b


def _new_key(owner_url: str, role: str = "public") -> tuple[str, str]:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        meta, full = access.create_key(conn, role, None, None, "shared limits test")
    return meta.key_id, full


def test_a_key_revoked_is_refused_by_every_process_within_the_check(sec_settings: Settings,
                                                                   sec_owner_url: str) -> None:
    check = 0.5
    s = sec_settings.model_copy(update={"key_cache_s": 60.0, "revocation_check_s": check})
    key_id, full = _new_key(sec_owner_url)
    headers = {"X-API-Key": full}
    stack, a, b = _two_apps(s)
    with stack:
        assert a.get("/whoami", headers=headers).status_code == 200
        assert b.get("/whoami", headers=headers).status_code == 200  # both have it cached for 60 s
        with psycopg.connect(sec_owner_url, autocommit=True) as conn:
            access.revoke_key(conn, key_id)  # `twin keys revoke`, from any machine
        revoked_at = time.monotonic()
        refused: dict[str, float] = {}
        while len(refused) < 2 and time.monotonic() - revoked_at < 5:
            for name, c in (("a", a), ("b", b)):
                if name not in refused and c.get("/whoami", headers=headers).status_code == 401:
                    refused[name] = time.monotonic() - revoked_at
            time.sleep(0.05)
        assert set(refused) == {"a", "b"}, refused
        assert max(refused.values()) <= check + 0.5, refused  # the documented bound, plus a request's time


def test_without_the_epoch_check_the_cache_keeps_a_revoked_key(sec_settings: Settings, sec_owner_url: str) -> None:
    """The control: TWIN_REVOCATION_CHECK_S=0 leaves only the key cache's lifetime."""
    s = sec_settings.model_copy(update={"key_cache_s": 60.0, "revocation_check_s": 0.0})
    key_id, full = _new_key(sec_owner_url)
    stack, a, b = _two_apps(s)
    with stack:
        assert b.get("/whoami", headers={"X-API-Key": full}).status_code == 200
        with psycopg.connect(sec_owner_url, autocommit=True) as conn:
            access.revoke_key(conn, key_id)
        time.sleep(1.0)
        assert b.get("/whoami", headers={"X-API-Key": full}).status_code == 200  # cached for 60 s
        assert a.get("/whoami", headers={"X-API-Key": full}).status_code == 401  # never cached: refused


def _served(a: TestClient, b: TestClient, n: int, headers: dict[str, str]) -> int:
    ok = 0
    for i in range(n):
        r = (a if i % 2 == 0 else b).get("/conformance", headers=headers)
        assert r.status_code in (200, 429), r.text
        ok += r.status_code == 200
    return ok


BURST, SYNC = 20, 2


@pytest.mark.usefixtures("fresh_buckets")
def test_the_burst_across_two_processes_is_the_configured_one(sec_settings: Settings, sec_owner_url: str) -> None:
    s = sec_settings.model_copy(update={"rate_limit_rps": 0.01, "rate_limit_burst": BURST, "rate_limit_sync": SYNC})
    stack, a, b = _two_apps(s)
    with stack:
        ok = _served(a, b, 3 * BURST, {"X-API-Key": _new_key(sec_owner_url)[1]})
        # each process may spend at most SYNC tokens the other has not heard of yet
        assert BURST <= ok <= BURST + 2 * SYNC, ok
        r = b.get("/conformance")  # the address has a bucket of its own
        assert r.status_code == 200
    with psycopg.connect(sec_owner_url) as conn:
        clients = [row[0] for row in conn.execute("SELECT client FROM twin.rate_buckets").fetchall()]
    assert clients and all(len(c) == 32 and "testclient" not in c for c in clients)  # hashed, no address kept
    # the same with per-process buckets: each process grants the whole burst
    s = s.model_copy(update={"rate_limit_shared": False})
    stack, a, b = _two_apps(s)
    with stack:
        assert _served(a, b, 3 * BURST, {"X-API-Key": _new_key(sec_owner_url)[1]}) == 2 * BURST


@pytest.mark.usefixtures("fresh_buckets")
def test_writes_to_the_shared_store_are_few(sec_settings: Settings, sec_owner_url: str) -> None:
    """A caller within its limit costs one write per TWIN_RATE_LIMIT_SYNC requests, not one per request."""
    s = sec_settings.model_copy(update={"rate_limit_rps": 1000.0, "rate_limit_burst": 1000, "rate_limit_sync": 10})
    headers = {"X-API-Key": _new_key(sec_owner_url)[1]}

    def writes() -> int:
        with psycopg.connect(sec_owner_url) as conn:
            row = conn.execute("SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables "
                               "WHERE relid = 'twin.rate_buckets'::regclass").fetchone()
            conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(row[0]) if row else 0

    stack, a, b = _two_apps(s)
    with stack:
        before = writes()
        assert _served(a, b, 100, headers) == 100
        time.sleep(0.6)  # the statistics are flushed at most every 0.5 s
        assert writes() - before <= 100 // 10 + 2


def test_an_unreachable_store_falls_back_to_per_process_limits(sec_settings: Settings) -> None:
    """With the primary's shared table out of reach (here: the auditor's connections go nowhere), each process
    limits on its own, quickly and without errors."""
    s = sec_settings.model_copy(update={
        "database_url": database.url_for(sec_settings, "owner"),
        "auditor_url": f"postgresql://twin_auditor@127.0.0.1:{free_port()}/nowhere",
        "rate_limit_rps": 0.01, "rate_limit_burst": 5, "rate_limit_sync": 2, "audit_enabled": False,
    })
    stack, a, b = _two_apps(s)
    with stack:
        started = time.monotonic()
        assert [a.get("/conformance").status_code for _ in range(7)] == [200] * 5 + [429] * 2
        assert [b.get("/conformance").status_code for _ in range(6)] == [200] * 5 + [429]
        assert time.monotonic() - started < 5


def test_one_signing_secret_for_cursors_and_report_links(sec_settings: Settings, sec_owner_url: str,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """A next link (cursor) and a signed report link made by one process work on another with the same
    TWIN_CURSOR_SECRET (each here with a data folder of its own, as on two machines) and fail on one with
    another secret."""
    from pydantic import SecretStr

    from api.app import create_app

    def app(secret: str) -> TestClient:
        return TestClient(create_app(sec_settings.model_copy(update={
            "cursor_secret": SecretStr(secret), "data_dir": tmp_path_factory.mktemp("host"),
            "database_url": database.url_for(sec_settings, "owner")})))

    key = {"X-API-Key": _new_key(sec_owner_url, "admin")[1]}
    href = "/analysis/context?establishment=E-BV-A&f=json"
    with app("one shared secret " * 3) as a, app("one shared secret " * 3) as b, app("another secret " * 3) as c:
        first = a.get("/collections/establishments/items", params={"limit": 1})
        assert first.status_code == 200, first.text
        next_href = next(link["href"] for link in first.json()["links"] if link["rel"] == "next")
        assert "cursor=" in next_href
        path = next_href[next_href.index("/collections"):]
        second = b.get(path)
        assert second.status_code == 200, second.text
        assert second.json()["features"][0]["id"] != first.json()["features"][0]["id"]
        assert c.get(path).status_code == 400

        link = a.get("/analysis/link", params={"href": href}, headers=key)
        assert link.status_code == 200, link.text
        signed = link.json()["href"]
        assert "grant=" in signed
        direct = a.get(href, headers=key)
        opened = b.get(signed)
        assert opened.status_code == direct.status_code != 401, opened.text
        assert opened.headers["cache-control"] == "private, no-store"
        assert c.get(signed).status_code == 401
