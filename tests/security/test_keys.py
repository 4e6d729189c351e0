"""API keys: created by the CLI and shown once, stored hashed, sent as Bearer or X-API-Key, listed,
revoked, expiring; the reader role cannot read the key table."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from twin import access
from twin.errors import InvalidParameter
from twin.settings import Settings


def _cli_env(settings: Settings) -> dict[str, str]:
    return {"TWIN_DATA_DIR": str(settings.data_dir), "TWIN_DATABASE_NAME": settings.database_name,
            **({"TWIN_DATABASE_URL": settings.database_url} if settings.database_url else {})}


def _cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    from cli.main import app

    res = CliRunner().invoke(app, list(args), env=_cli_env(settings))
    return res.exit_code, res.stdout, res.stderr


def test_cli_creates_a_key_shown_once_and_stored_hashed(sec_settings: Settings, sec_owner_url: str,
                                                        sec_client: TestClient) -> None:
    code, out, err = _cli(sec_settings, "keys", "create", "--role", "inspector", "--org", "ODA", "--expires", "90d",
                          "--label", "cli test")
    assert code == 0, err
    key = out.strip()
    m = re.fullmatch(r"twin_([0-9a-f]{12})_([A-Za-z0-9_-]{43})", key)
    assert m, key
    key_id, secret = m.groups()
    assert "not shown again" in err
    with psycopg.connect(sec_owner_url) as conn:
        row = conn.execute("SELECT key_hash, role, org_code, label, expires_at FROM twin.api_keys WHERE key_id = %s",
                           (key_id,)).fetchone()
    assert row is not None
    key_hash, role, org, label, expires_at = row
    assert secret not in key_hash and key not in key_hash
    assert key_hash == "sha256$" + hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()
    assert (role, org, label) == ("inspector", "ODA", "cli test")
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=5)

    # the key works, sent either way
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}, {"authorization": f"bearer {key}"}):
        r = sec_client.get("/whoami", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"role": "inspector", "org_code": "ODA", "name": key_id, "authenticated": True}

    # listed without its secret
    code, out, _ = _cli(sec_settings, "keys", "list", "--json")
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    mine = [k for k in listed if k["key_id"] == key_id]
    assert mine and mine[0]["state"] == "active" and mine[0]["label"] == "cli test"
    assert secret not in out

    # revoked: refused at once (the test app caches nothing)
    code, out, _ = _cli(sec_settings, "keys", "revoke", key_id)
    assert code == 0 and "revoked" in out
    r = sec_client.get("/whoami", headers={"X-API-Key": key})
    assert r.status_code == 401
    code, out, _ = _cli(sec_settings, "keys", "list", "--json")
    assert [json.loads(x)["state"] for x in out.splitlines() if key_id in x] == ["revoked"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "inspector"), "needs --org"),
        (("--role", "root", "--org", "X"), "role 'root' is unknown"),
        (("--role", "advisor", "--expires", "soon"), "is not understood"),
        (("--role", "advisor", "--expires", "2001-01-01"), "lies in the past"),
        (("--role", "advisor", "--org", "a b;drop"), "is not allowed"),
    ],
)
def test_cli_refuses_bad_keys(sec_settings: Settings, args: tuple[str, ...], message: str) -> None:
    code, out, err = _cli(sec_settings, "keys", "create", *args)
    assert code == 1
    assert message in err
    assert "twin_" not in out


def test_cli_revoke_unknown_key(sec_settings: Settings) -> None:
    code, _, err = _cli(sec_settings, "keys", "revoke", "000000000000")
    assert code == 1 and "no API key with id" in err


def test_expired_key_is_refused(sec_owner_url: str, sec_client: TestClient) -> None:
    with psycopg.connect(sec_owner_url, autocommit=True) as conn:
        meta, full = access.create_key(conn, "advisor", "ODA", datetime.now(UTC) + timedelta(hours=1), "expiring")
        assert sec_client.get("/whoami", headers={"X-API-Key": full}).json()["role"] == "advisor"
        conn.execute("UPDATE twin.api_keys SET expires_at = now() - interval '1 second' WHERE key_id = %s",
                     (meta.key_id,))
    r = sec_client.get("/whoami", headers={"X-API-Key": full})
    assert r.status_code == 401


def test_bad_credentials_get_one_answer(sec_client: TestClient, keys: dict[str, str]) -> None:
    """Unknown id, wrong secret, malformed: the same 401, so nothing tells which keys exist."""
    good = keys["advisor"]
    key_id = good.split("_")[1]
    wrong_secret = f"twin_{key_id}_{'A' * 43}"
    unknown_id = f"twin_{'0' * 12}_{good.split('_', 2)[2]}"
    bodies = set()
    for bad in (wrong_secret, unknown_id, "twin_short", "x" * 100):
        r = sec_client.get("/collections", headers={"X-API-Key": bad})
        assert r.status_code == 401, bad
        assert r.headers["www-authenticate"].startswith("Bearer")
        if bad.startswith("twin_"):
            bodies.add(r.text)
    assert len(bodies) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer "},
        {"X-API-Key": ""},
    ],
)
def test_other_schemes_are_refused(sec_client: TestClient, headers: dict[str, str]) -> None:
    r = sec_client.get("/collections", headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == "Unauthorized"


def test_two_different_credentials_are_refused(sec_client: TestClient, keys: dict[str, str]) -> None:
    r = sec_client.get("/whoami", headers={"Authorization": f"Bearer {keys['admin']}", "X-API-Key": keys["public"]})
    assert r.status_code == 401 and "differ" in r.json()["description"]
    r = sec_client.get("/whoami", headers={"Authorization": f"Bearer {keys['admin']}", "X-API-Key": keys["admin"]})
    assert r.status_code == 200 and r.json()["role"] == "admin"


def test_reader_cannot_read_the_key_table(sec_reader_url: str, keys: dict[str, str]) -> None:
    key_id = keys["admin"].split("_")[1]
    with psycopg.connect(sec_reader_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT key_hash FROM twin.api_keys")
    with psycopg.connect(sec_reader_url) as conn:
        row = conn.execute("SELECT role FROM twin.api_key_lookup(%s)", (key_id,)).fetchone()
        assert row == ("admin",)


def test_parse_expiry() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert access.parse_expiry("90d", now) == now + timedelta(days=90)
    assert access.parse_expiry("12h", now) == now + timedelta(hours=12)
    assert access.parse_expiry("2w", now) == now + timedelta(days=14)
    assert access.parse_expiry("2027-01-31", now) == datetime(2027, 2, 1, tzinfo=UTC)
    assert access.parse_expiry(None, now) is None
    for bad in ("0d", "yesterday", "2020-01-01", "-5d"):
        with pytest.raises(InvalidParameter):
            access.parse_expiry(bad, now)


def test_key_cache_lags_revocation_by_at_most_its_ttl(sec_settings: Settings, sec_owner_url: str) -> None:
    """With TWIN_KEY_CACHE_S > 0 a revoked key keeps working until its cache entry expires, not longer."""
    import time

    from api.app import create_app

    with psycopg.connect(sec_owner_url, autocommit=True) as conn:
        meta, full = access.create_key(conn, "public", None, None, "cached")
    with TestClient(create_app(sec_settings.model_copy(update={"key_cache_s": 1.0}))) as c:
        assert c.get("/whoami", headers={"X-API-Key": full}).status_code == 200
        with psycopg.connect(sec_owner_url, autocommit=True) as conn:
            access.revoke_key(conn, meta.key_id)
        assert c.get("/whoami", headers={"X-API-Key": full}).status_code == 200  # cached
        time.sleep(1.1)
        assert c.get("/whoami", headers={"X-API-Key": full}).status_code == 401
