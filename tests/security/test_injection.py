"""An injection corpus through every parameter of every operation in the OpenAPI definition (/api):
stacked queries, quotes, comments, pg_sleep, UNION, unicode quotes, huge numbers, NaN, very long strings.
Each answer must be a 4xx or a correct 200 (never a 5xx) and come back in under 2 s; afterwards the data
is untouched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient
from security_fixture import ESTABLISHMENTS, INSPECTIONS

from twin.settings import Settings

PAYLOADS: tuple[str, ...] = (
    "'", "''", '"', "\\", "\\'", "';--", "'; DROP TABLE twin.inspections;--", "1; SELECT pg_sleep(5)",
    "1) OR 1=1--", "' OR '1'='1", "1 UNION SELECT NULL, version()--", "x' UNION SELECT key_hash FROM twin.api_keys--",
    "pg_sleep(5)", "x' AND pg_sleep(5) IS NULL AND 'a'='a", "/* comment */ 1", "-- comment", "$$; SELECT 1; $$",
    "E'\\x27'", "\u2019 OR \u20181\u2019=\u20181", "\u02bc; DROP TABLE x;--", "\uff07 OR 1=1", "\u0000", "%00",
    "1e309", "-1e309", "NaN", "nan", "Infinity", "-Infinity", "-0", "99999999999999999999999999999999",
    "-99999999999999999999", "0x7fffffff", "\uff11\uff12\uff13", "1,2,3,4,5,6,7", "5,52,5,52",
    "${jndi:ldap://127.0.0.1/x}", "<script>alert(1)</script>", "../../etc/passwd", "{{7*7}}", "",
    "A" * 10_000, "\u00e9" * 5_000,
    # CQL2-shaped: functions outside the allowlist, deep nesting, stacked statements
    "name = 'x' OR pg_sleep(5) IS NULL", "pg_sleep(5) = 1", "name = 'a'; DROP TABLE twin.establishments",
    "(" * 3_000 + "name = 'a'" + ")" * 3_000, "NOT " * 3_000 + "name = 'a'",
    " AND ".join(["name = 'a'"] * 1_500), "name IN (" + ",".join(f"'{i}'" for i in range(3_000)) + ")",
    "S_INTERSECTS(geometry, POLYGON((" + ",".join(f"{5 + i * 1e-5:.5f} 52" for i in range(2_000)) + ",5 52)))",
    "version() = 'x'", "current_setting('twin.role') = 'admin'", "set_config('twin.role','admin',true) = 'x'",
)
# The admin run (every code path of restricted layers) uses a core of the corpus to keep the suite quick.
CORE: tuple[str, ...] = ("'", "'; DROP TABLE twin.inspections;--", "1 UNION SELECT NULL, version()--",
                         "x' AND pg_sleep(5) IS NULL AND 'a'='a", "\u2019 OR \u20181\u2019=\u20181", "1e309", "NaN",
                         "\u0000", "A" * 10_000, "pg_sleep(5) = 1", "NOT " * 3_000 + "name = 'a'")
# Valid values for the parameters a request needs besides the one under attack.
VALID_PATH = {"collection_id": "establishments", "feature_id": "E-BV-A", "z": "10", "x": "525", "y": "337"}
VALID_QUERY = {"lon": "5.32", "lat": "52.04", "radius": "500"}
SLOW_S = 2.0
MAX_URL = 60_000  # httpx refuses longer URLs (real servers refuse them earlier still)


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in spec["paths"].items() for method, op in ops.items()
            if method in ("get", "post", "put", "patch", "delete")]


def _request(client: TestClient, method: str, path: str, op: dict[str, Any], target: tuple[str, str] | None,
             payload: str, headers: dict[str, str]) -> tuple[int, float, str]:
    path_values = dict(VALID_PATH)
    query: dict[str, str] = {}
    for p in op.get("parameters", []):
        if p["in"] == "query" and (p.get("required") or p["name"] in VALID_QUERY):
            query[p["name"]] = VALID_QUERY.get(p["name"], "1")
    if target is not None:
        where, name = target
        if where == "path":
            path_values[name] = payload
        else:
            query[name] = payload
    url = path
    for name, value in path_values.items():
        url = url.replace("{" + name + "}", quote(value, safe="") or "%20")
    kwargs: dict[str, Any] = {"params": query, "headers": headers}
    if "requestBody" in op:
        kwargs["json"] = {"type": "Polygon", "coordinates": payload} if target is None else {"type": payload}
    assert len(url) + len(quote(str(query), safe="")) < MAX_URL, "payload too long for a URL"
    started = time.monotonic()
    r = client.request(method, url, **kwargs)
    return r.status_code, time.monotonic() - started, r.text[:300]


@pytest.fixture(scope="module")
def inj_client(sec_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(sec_settings), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_corpus_through_every_parameter(inj_client: TestClient, keys: dict[str, str], who: str) -> None:
    headers = {"X-API-Key": keys["admin"]} if who == "admin" else {}
    spec = inj_client.get("/api").json()
    operations = _operations(spec)
    assert len(operations) >= 10
    failures: list[str] = []
    tried = 0
    for method, path, op in operations:
        targets: list[tuple[str, str] | None] = [(p["in"], p["name"]) for p in op.get("parameters", [])
                                                   if p["in"] in ("query", "path")]
        if "requestBody" in op:
            targets.append(None)
        for target in targets:
            payloads = PAYLOADS if who == "anonymous" else CORE
            if target == ("path", "collection_id"):
                payloads = (*PAYLOADS, "inspections")  # the restricted layer's own code paths
            for payload in payloads:
                status, elapsed, text = _request(inj_client, method, path, op, target, payload, headers)
                tried += 1
                if status >= 500 or elapsed > SLOW_S:
                    failures.append(f"{method} {path} {target} {payload[:60]!r}: {status} in {elapsed:.2f}s {text}")
    assert tried > (500 if who == "anonymous" else 150)
    assert not failures, "\n".join(failures[:30])


def test_data_is_untouched(inj_client: TestClient, sec_owner_url: str) -> None:
    with psycopg.connect(sec_owner_url) as conn:
        assert conn.execute("SELECT count(*) FROM twin.inspections").fetchone() == (len(INSPECTIONS),)
        assert conn.execute("SELECT count(*) FROM twin.establishments").fetchone() == (len(ESTABLISHMENTS),)
        names = {r[0] for r in conn.execute("SELECT name FROM twin.establishments").fetchall()}
    assert names == {e.name for e in ESTABLISHMENTS}


def test_filter_cannot_reach_other_functions_or_rows(inj_client: TestClient) -> None:
    """Filters that try to call SQL functions or lift the role are refused (400), not evaluated."""
    for f in ("pg_sleep(5) = 1", "set_config('twin.role','admin',true) = 'x'", "version() = 'x'",
              "name = 'a'; DROP TABLE twin.establishments", "NOT " * 3_000 + "name = 'a'"):
        r = inj_client.get("/collections/establishments/items", params={"filter": f})
        assert r.status_code == 400, (f[:40], r.status_code, r.text[:200])
        assert r.json()["code"] == "InvalidParameterValue"
