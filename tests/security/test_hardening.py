"""The HTTP surface: security headers and the CSP nonce, CORS off unless configured, the body limit (413),
per-key rate limits (429 + Retry-After), statement timeouts (503 with a message), and the input caps."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.auth import PrincipalDep
from api.deps import ConnDep, PoolDep
from api.middleware import TokenBucket
from twin.settings import Settings


def _app(settings: Settings) -> FastAPI:
    from api.app import create_app

    app = create_app(settings)

    @app.get("/_h/nonce")
    async def nonce(request: Request) -> Any:
        from fastapi.responses import HTMLResponse

        n = request.state.csp_nonce
        return HTMLResponse(f"<!doctype html><script nonce='{n}'>1</script>")

    @app.post("/_h/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/_h/slow")
    async def slow(principal: PrincipalDep, conn: ConnDep) -> dict[str, str]:
        await conn.execute("SET LOCAL statement_timeout = '100ms'")
        await conn.execute("SELECT pg_sleep(5)")
        return {"never": "here"}

    @app.get("/_h/slow-pool")
    async def slow_pool(pool: PoolDep) -> dict[str, str]:
        async with pool.connection() as conn:
            await conn.execute("SET LOCAL statement_timeout = '100ms'")
            await conn.execute("SELECT pg_sleep(5)")
        return {"never": "here"}

    return app


@pytest.fixture(scope="module")
def hclient(sec_settings: Settings) -> Iterator[TestClient]:
    with TestClient(_app(sec_settings)) as c:
        yield c


def test_security_headers_on_json_and_html(hclient: TestClient) -> None:
    r = hclient.get("/collections")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    r = hclient.get("/", headers={"Accept": "text/html"})
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    assert directives["worker-src"] == "'self'" and directives["img-src"] == "'self' data:"
    assert re.fullmatch(r"'self' 'nonce-[A-Za-z0-9_-]{22}'( .*)?", directives["script-src"])
    for d in ("connect-src", "img-src", "script-src", "style-src"):
        assert "*" not in directives[d] and "http:" not in directives[d] and "https:" not in directives[d], d
    # errors from the middleware carry the headers too
    r = hclient.get("/collections", headers={"X-API-Key": "bad"})
    assert r.status_code == 401 and r.headers["x-content-type-options"] == "nosniff"


def test_csp_nonce_is_per_request_and_on_request_state(hclient: TestClient) -> None:
    seen = set()
    for _ in range(3):
        r = hclient.get("/_h/nonce")
        nonce = re.search(r"nonce='([^']+)'", r.text).group(1)  # type: ignore[union-attr]
        assert f"'nonce-{nonce}'" in r.headers["content-security-policy"]
        seen.add(nonce)
    assert len(seen) == 3


def test_basemap_origin_is_allowed_when_configured(sec_settings: Settings) -> None:
    s = sec_settings.model_copy(update={"basemap_url": "https://service.pdok.nl/brt/wmts/{z}/{x}/{y}.png"})
    with TestClient(_app(s)) as c:
        csp = c.get("/_h/nonce").headers["content-security-policy"]
    assert "img-src 'self' data: https://service.pdok.nl;" in csp
    assert "connect-src 'self' https://service.pdok.nl;" in csp


def test_cors_is_off_unless_configured(hclient: TestClient, sec_settings: Settings) -> None:
    r = hclient.get("/collections", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    r = hclient.options("/collections",
                        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers
    s = sec_settings.model_copy(update={"cors_origins": ["https://viewer.example"]})
    with TestClient(_app(s)) as c:
        r = c.get("/collections", headers={"Origin": "https://viewer.example"})
        assert r.headers["access-control-allow-origin"] == "https://viewer.example"
        r = c.options("/collections", headers={"Origin": "https://viewer.example",
                                               "Access-Control-Request-Method": "GET",
                                               "Access-Control-Request-Headers": "authorization"})
        assert r.status_code == 200 and "authorization" in r.headers["access-control-allow-headers"].lower()
        r = c.get("/collections", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_body_limit(hclient: TestClient, sec_settings: Settings) -> None:
    limit = sec_settings.max_body_bytes
    assert limit == 1_048_576
    r = hclient.post("/_h/echo", content=b"x" * limit)
    assert r.status_code == 200 and r.json() == {"bytes": limit}
    r = hclient.post("/_h/echo", content=b"x" * (limit + 1))
    assert r.status_code == 413
    assert r.json()["code"] == "PayloadTooLarge" and "1,048,576" in r.json()["description"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(20):
            yield b"y" * 100_000

    r = hclient.post("/_h/echo", content=chunks())
    assert r.status_code == 413
    r = hclient.post("/_h/echo", content=b"{}", headers={"Content-Length": "abc"})
    assert r.status_code == 400


def test_rate_limit_per_key_and_address(sec_settings: Settings, keys: dict[str, str]) -> None:
    s = sec_settings.model_copy(update={"rate_limit_rps": 0.5, "rate_limit_burst": 3})
    with TestClient(_app(s)) as c:
        codes = [c.get("/conformance").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/conformance")
        assert r.status_code == 429 and r.json()["code"] == "TooManyRequests"
        assert 1 <= int(r.headers["retry-after"]) <= 2  # one token per 2 s
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200  # never metered
        # a key has its own bucket, separate from the address and from other keys
        for name in ("advisor", "admin"):
            codes = [c.get("/conformance", headers={"X-API-Key": keys[name]}).status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429], name
    # wrong keys count against the address like anonymous requests; a valid key from there still works
    with TestClient(_app(s)) as c:
        bad = {"X-API-Key": "twin_000000000000_" + "A" * 43}
        assert [c.get("/conformance", headers=bad).status_code for _ in range(4)] == [401, 401, 401, 429]
        assert c.get("/conformance").status_code == 429
        assert c.get("/conformance", headers={"X-API-Key": keys["inspector_a"]}).status_code == 200


def test_token_bucket_refills() -> None:
    b = TokenBucket(rate=2.0, burst=2)
    assert [b.take("k", now=0.0) for _ in range(2)] == [0.0, 0.0]
    assert b.take("k", now=0.0) == pytest.approx(0.5)
    assert b.take("k", now=0.5) == 0.0  # 0.5 s at 2/s: one token back
    assert b.take("other", now=0.5) == 0.0
    assert TokenBucket(rate=0, burst=1).take("k") == 0.0  # 0: no limit


def test_statement_timeout_is_503_with_a_message(hclient: TestClient) -> None:
    for path in ("/_h/slow", "/_h/slow-pool"):
        started = time.monotonic()
        r = hclient.get(path)
        assert r.status_code == 503, r.text
        assert "took longer than" in r.json()["description"] and r.headers["retry-after"]
        assert time.monotonic() - started < 2
    assert hclient.get("/collections").status_code == 200  # the pool recovered its connection


def test_input_caps_end_to_end(hclient: TestClient) -> None:
    """The caps hold at the API whoever parses the input: polygon vertices (10,000), body size (1 MB),
    radius, page size and offset, CQL2 nesting depth and functions."""

    def circle(n: int) -> dict[str, Any]:
        ring = [[5.2 + 0.01 * math.cos(2 * math.pi * i / n), 52.1 + 0.01 * math.sin(2 * math.pi * i / n)]
                for i in range(n)]
        return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}

    stats = "/coverages/nitrogen-deposition/statistics"
    assert hclient.post(stats, json=circle(9_999)).status_code == 200  # 10,000 vertices with the closing one
    r = hclient.post(stats, json=circle(10_000))
    assert r.status_code == 400 and "10,001 vertices" in r.json()["description"]
    r = hclient.post(stats, content=b'{"type": "Polygon", "coordinates": [[' + b"[5.1, 52.1]," * 100_000 + b"]]}",
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = hclient.get("/analysis/context", params={"lon": 5.3, "lat": 52.0, "radius": 5001})
    assert r.status_code == 400 and r.json()["parameter"] == "radius"
    for radius in ("nan", "inf", "-1", "0"):
        r = hclient.get("/analysis/context", params={"lon": 5.3, "lat": 52.0, "radius": radius})
        assert r.status_code == 400 and r.json()["parameter"] == "radius", (radius, r.text)
    items = "/collections/establishments/items"
    r = hclient.get(items, params={"limit": 10**9})  # capped, not refused
    assert r.status_code == 200 and r.json()["numberReturned"] == 4
    for name, value in (("limit", "0"), ("limit", "-5"), ("offset", str(10**10)), ("limit", "1e309")):
        r = hclient.get(items, params={name: value})
        assert r.status_code == 400 and r.json()["parameter"] == name, (name, value)
    deep = "name = 'a'"
    for i in range(60):  # alternating, so that AND/OR chains cannot be flattened
        deep = f"(name = 'a' {'AND' if i % 2 else 'OR'} {deep})"
    r = hclient.get(items, params={"filter": deep})
    assert r.status_code == 400 and "deeper" in r.json()["description"]
    r = hclient.get(items, params={"filter": "UPPER(name) = 'A'"})
    assert r.status_code == 400 and "not supported" in r.json()["description"]


def test_openapi_documents_auth_and_errors(hclient: TestClient) -> None:
    doc = hclient.get("/api").json()
    assert hclient.get("/openapi.json").json() == doc
    assert set(doc["components"]["securitySchemes"]) == {"apiKey", "bearer"}
    assert {} in doc["security"]  # anonymous access stays possible
    responses = doc["paths"]["/collections/{collection_id}/items"]["get"]["responses"]
    for code in ("400", "401", "403", "404", "413", "429", "503"):
        assert responses[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_answers_for_key_holders_are_not_cached(hclient: TestClient, keys: dict[str, str]) -> None:
    r = hclient.get("/collections/establishments/items", headers={"X-API-Key": keys["inspector_a"]})
    assert r.headers["cache-control"] == "no-store"
    assert "X-API-Key" in r.headers["vary"] and "Authorization" in r.headers["vary"]
    r = hclient.get("/collections/establishments/items")
    assert "no-store" not in r.headers.get("cache-control", "")
