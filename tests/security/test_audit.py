"""The audit log: every successful access to restricted records is appended (who, when, endpoint,
parameters, records) by twin_auditor; nobody can change or delete entries; only admins read them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from security_fixture import ODA, expected_inspections
from typer.testing import CliRunner

from api.audit import auditor_url
from api.auth import PrincipalDep, record_access, require_read
from api.deps import ConnDep
from layers.registry import LAYERS
from twin.access import REQUEST_SETTINGS_SQL, Principal, request_settings
from twin.settings import Settings


def _entries(owner_url: str, endpoint: str) -> list[dict[str, Any]]:
    with psycopg.connect(owner_url) as conn:
        cur = conn.execute("SELECT principal, role, org_code, method, endpoint, parameters, records, status, layers, "
                           "at FROM twin.audit_log WHERE endpoint = %s ORDER BY id", (endpoint,))
        cols = [d.name for d in cur.description or []]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


@pytest.fixture(scope="module")
def audit_client(sec_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    app: FastAPI = create_app(sec_settings)
    spec = LAYERS["inspections"]

    @app.get("/_audit/items")
    async def items(principal: PrincipalDep, conn: ConnDep, result: str | None = None) -> dict[str, Any]:
        require_read(principal, spec)
        cur = await conn.execute("SELECT inspection_id FROM twin.inspections ORDER BY 1")
        ids = [r[0] for r in await cur.fetchall()]
        return {"type": "FeatureCollection", "numberReturned": len(ids),
                "features": [{"type": "Feature", "id": i, "geometry": None, "properties": {}} for i in ids]}

    @app.get("/_audit/csv")
    async def csv(principal: PrincipalDep, conn: ConnDep) -> PlainTextResponse:
        require_read(principal, spec)
        cur = await conn.execute("SELECT inspection_id FROM twin.inspections ORDER BY 1")
        body = "inspection_id\n" + "".join(f"{r[0]}\n" for r in await cur.fetchall())
        return PlainTextResponse(body, media_type="text/csv")

    @app.get("/_audit/told")
    async def told(principal: PrincipalDep) -> dict[str, str]:
        require_read(principal, spec)
        record_access(7)
        return {"tiles": "binary"}

    with TestClient(app) as c:
        yield c


def test_access_is_recorded(audit_client: TestClient, keys: dict[str, str], sec_owner_url: str) -> None:
    before = datetime.now(UTC)
    key_id = keys["inspector_a"].split("_")[1]
    r = audit_client.get("/_audit/items", params={"result": "x'; DROP TABLE t;--", "api_key": "secret!"},
                         headers={"X-API-Key": keys["inspector_a"]})
    assert r.status_code == 200
    n = len(expected_inspections("inspector", ODA))
    assert r.json()["numberReturned"] == n
    [entry] = _entries(sec_owner_url, "/_audit/items")
    assert entry["principal"] == key_id and entry["role"] == "inspector" and entry["org_code"] == ODA
    assert entry["method"] == "GET" and entry["status"] == 200 and entry["layers"] == ["inspections"]
    assert entry["records"] == n
    assert entry["parameters"] == {"result": "x'; DROP TABLE t;--"}  # the key-like parameter is left out
    assert before <= entry["at"] <= datetime.now(UTC)


def test_records_counted_from_csv_and_from_the_route(audit_client: TestClient, keys: dict[str, str],
                                                     sec_owner_url: str) -> None:
    assert audit_client.get("/_audit/csv", headers={"X-API-Key": keys["admin"]}).status_code == 200
    assert _entries(sec_owner_url, "/_audit/csv")[-1]["records"] == len(expected_inspections("admin"))
    assert audit_client.get("/_audit/told", headers={"X-API-Key": keys["advisor"]}).status_code == 200
    assert _entries(sec_owner_url, "/_audit/told")[-1]["records"] == 7


def test_refused_and_public_requests_are_not_records(audit_client: TestClient, keys: dict[str, str],
                                                     sec_owner_url: str) -> None:
    n = len(_entries(sec_owner_url, "/_audit/items"))
    assert audit_client.get("/_audit/items").status_code == 401
    assert audit_client.get("/_audit/items", headers={"X-API-Key": keys["public"]}).status_code == 403
    assert len(_entries(sec_owner_url, "/_audit/items")) == n
    assert audit_client.get("/collections/inspections/aggregates").status_code == 200
    assert _entries(sec_owner_url, "/collections/inspections/aggregates") == []


def test_admins_read_the_log_over_http(audit_client: TestClient, keys: dict[str, str]) -> None:
    audit_client.get("/_audit/told", headers={"X-API-Key": keys["inspector_b"]})
    key_id = keys["inspector_b"].split("_")[1]
    r = audit_client.get("/admin/audit", params={"who": key_id}, headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["numberReturned"] >= 1
    assert {e["principal"] for e in page["entries"]} == {key_id}
    assert page["entries"][0]["endpoint"] == "/_audit/told"
    r = audit_client.get("/admin/audit", params={"layer": "inspections", "limit": 1},
                         headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200 and r.json()["numberReturned"] == 1
    assert audit_client.get("/admin/audit", headers={"X-API-Key": keys["inspector_a"]}).status_code == 403
    assert audit_client.get("/admin/audit").status_code == 401
    assert audit_client.get("/admin/audit", params={"layer": "nope"},
                            headers={"X-API-Key": keys["admin"]}).status_code == 400
    r = audit_client.get("/admin/audit", params={"limit": 5000}, headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameterValue", r.text
    assert r.json()["parameter"] == "limit" and "limit" in r.json()["description"]


def test_cli_lists_the_log(audit_client: TestClient, keys: dict[str, str], sec_settings: Settings) -> None:
    from cli.main import app

    audit_client.get("/_audit/told", headers={"X-API-Key": keys["advisor"]})
    env = {"TWIN_DATA_DIR": str(sec_settings.data_dir), "TWIN_DATABASE_NAME": sec_settings.database_name,
           **({"TWIN_DATABASE_URL": sec_settings.database_url} if sec_settings.database_url else {})}
    res = CliRunner().invoke(app, ["audit", "list", "--json", "--layer", "inspections", "--limit", "3"], env=env)
    assert res.exit_code == 0, res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(lines) == 3 and lines[0]["endpoint"] == "/_audit/told"
    assert lines[0]["principal"] == keys["advisor"].split("_")[1]
    res = CliRunner().invoke(app, ["audit", "list", "--since", "last tuesday"], env=env)
    assert res.exit_code == 1 and "not an ISO date" in res.stderr


def test_log_is_append_only(sec_settings: Settings, sec_owner_url: str, sec_reader_url: str) -> None:
    with psycopg.connect(auditor_url(sec_settings), autocommit=True) as conn:
        conn.execute("INSERT INTO twin.audit_log (principal, role, endpoint) VALUES ('t', 'admin', '/append-test')")
        for stmt in ("UPDATE twin.audit_log SET principal = 'x'", "DELETE FROM twin.audit_log",
                     "TRUNCATE twin.audit_log", "SELECT * FROM twin.audit_log",
                     "INSERT INTO twin.audit_log (principal, role, endpoint, at) "
                     "VALUES ('t', 'a', '/e', '2000-01-01')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
    # the owner: no UPDATE/DELETE policy (forced RLS), so they touch no row; TRUNCATE is refused by the trigger
    with psycopg.connect(sec_owner_url, autocommit=True) as conn:
        for stmt in ("UPDATE twin.audit_log SET principal = 'x' WHERE endpoint = '/append-test'",
                     "DELETE FROM twin.audit_log WHERE endpoint = '/append-test'"):
            assert conn.execute(stmt).rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("TRUNCATE twin.audit_log")
        # even with row security switched off (the owner can), the trigger refuses changes
        for stmt in ("UPDATE twin.audit_log SET principal = 'x' WHERE endpoint = '/append-test'",
                     "DELETE FROM twin.audit_log WHERE endpoint = '/append-test'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"), conn.transaction():
                conn.execute("ALTER TABLE twin.audit_log NO FORCE ROW LEVEL SECURITY")
                conn.execute(stmt)
        assert conn.execute("SELECT principal FROM twin.audit_log WHERE endpoint = '/append-test'").fetchall() == [
            ("t",)]
    # the reader reads the log only as admin; every other role is refused outright
    with psycopg.connect(sec_reader_url) as conn:
        for role in ("inspector", "advisor", "public", None):
            if role:
                conn.execute(REQUEST_SETTINGS_SQL, request_settings(Principal(role=role, org_code="ODA")))  # type: ignore[arg-type]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM twin.audit_log")
            conn.rollback()
        conn.execute(REQUEST_SETTINGS_SQL, request_settings(Principal(role="admin")))
        assert conn.execute("SELECT count(*) FROM twin.audit_log WHERE endpoint = '/append-test'").fetchone() == (1,)


def test_feature_routes_are_audited(sec_client: TestClient, keys: dict[str, str], sec_owner_url: str) -> None:
    key_id = keys["admin"].split("_")[1]
    r = sec_client.get("/collections/inspections/items", params={"limit": 3, "sortby": "-inspected_on"},
                       headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200 and r.json()["numberReturned"] == 3
    entry = _entries(sec_owner_url, "/collections/inspections/items")[-1]
    assert (entry["principal"], entry["records"], entry["layers"]) == (key_id, 3, ["inspections"])
    assert entry["parameters"] == {"limit": "3", "sortby": "-inspected_on"}
    r = sec_client.get("/collections/inspections/items", params={"f": "csv"}, headers={"X-API-Key": keys["advisor"]})
    assert r.status_code == 200
    entry = _entries(sec_owner_url, "/collections/inspections/items")[-1]
    assert entry["records"] == len(expected_inspections("advisor"))
    one = sorted(expected_inspections("inspector", ODA))[0]
    assert sec_client.get(f"/collections/inspections/items/{one}",
                          headers={"X-API-Key": keys["inspector_a"]}).status_code == 200
    assert _entries(sec_owner_url, f"/collections/inspections/items/{one}")[-1]["records"] == 1
    # public layers are not audited
    sec_client.get("/collections/establishments/items", headers={"X-API-Key": keys["admin"]})
    assert _entries(sec_owner_url, "/collections/establishments/items") == []


def test_analyses_that_read_inspections_are_audited(sec_client: TestClient, keys: dict[str, str],
                                                    sec_owner_url: str) -> None:
    key_id = keys["inspector_b"].split("_")[1]
    params = {"lon": "5.32", "lat": "52.04", "radius": "500"}
    assert sec_client.get("/analysis/context", params=params).status_code == 200
    assert _entries(sec_owner_url, "/analysis/context") == []  # anonymous: no restricted records served
    r = sec_client.get("/analysis/context", params=params, headers={"X-API-Key": keys["inspector_b"]})
    assert r.status_code == 200
    [entry] = _entries(sec_owner_url, "/analysis/context")
    assert entry["principal"] == key_id and entry["layers"] == ["inspections"]
    assert entry["parameters"] == params
    r = sec_client.get("/analysis/inspection-priority", headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200, r.text
    assert _entries(sec_owner_url, "/analysis/inspection-priority")[-1]["role"] == "admin"
