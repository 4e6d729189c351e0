"""Shared-cache safety (issue 23): public tiles and layer downloads say a shared cache (nginx, Varnish, a CDN)
may keep them, with an ETag that every API process gives alike; an answer to a caller with a credential (API
key as Bearer, X-API-Key or Basic) is private or no-store and varies on the credential headers, so no shared
cache ever stores it or serves it to someone else. Cookies are no credential here: they change nothing."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import ExitStack

import morecantile
import psycopg
import pytest
from api_fixtures import Establishment
from fastapi.testclient import TestClient

from twin import access
from twin.settings import Settings

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def key(owner_url: str) -> str:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        return access.create_key(conn, "admin", None, None, "cache headers test")[1]


@pytest.fixture(scope="module")
def two(settings: Settings, api_data: list[Establishment],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient]]:
    """Two API processes on one database (as behind a load balancer), downloads in folders of their own."""
    from api.app import create_app

    with ExitStack() as stack:
        a, b = (stack.enter_context(TestClient(create_app(settings.model_copy(update={
            "download_dir": tmp_path_factory.mktemp("dl"), "rate_limit_rps": 0.0})))) for _ in range(2))
        yield a, b


def _tile(e: Establishment, z: int = 12) -> str:
    t = TMS.tile(e.lon, e.lat, z)
    return f"/collections/establishments/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"


def _credentials(key: str) -> dict[str, dict[str, str]]:
    basic = base64.b64encode(f"qgis:{key}".encode()).decode()
    return {"bearer": {"Authorization": f"Bearer {key}"}, "x-api-key": {"X-API-Key": key},
            "basic": {"Authorization": f"Basic {basic}"}}


def _public_paths(api_data: list[Establishment]) -> list[str]:
    e = api_data[0]
    return ["/", "/conformance", "/collections", "/collections/establishments",
            "/collections/establishments/items?limit=5", f"/collections/establishments/items/{e.id}",
            "/collections/establishments/tiles/WebMercatorQuad/tilejson.json", _tile(e),
            "/collections/establishments/download.csv", "/collections/municipalities/download.gpkg"]


def test_public_tiles_and_downloads_are_for_shared_caches(two: tuple[TestClient, TestClient],
                                                          api_data: list[Establishment]) -> None:
    a, b = two
    for path in (_tile(api_data[0]), "/collections/establishments/download.csv",
                 "/collections/municipalities/download.gpkg", "/collections/municipalities/download.parquet"):
        ra, rb = a.get(path), b.get(path)
        assert ra.status_code == rb.status_code == 200, (path, ra.text[:300])
        cc = ra.headers["cache-control"].lower()
        assert "public" in cc and "private" not in cc and "no-store" not in cc, (path, cc)
        assert ra.headers["etag"] and ra.headers["etag"] == rb.headers["etag"], path  # any process: the same tag
        if not path.endswith(".gpkg"):  # a GeoPackage holds the time it was written (see docs/scaling.md)
            assert ra.content == rb.content, path
        assert "set-cookie" not in ra.headers
        again = b.get(path, headers={"If-None-Match": ra.headers["etag"]})
        assert again.status_code == 304 and again.headers["etag"] == ra.headers["etag"], path


def test_a_layer_change_changes_the_download_etag(two: tuple[TestClient, TestClient], writer_url: str,
                                                  api_data: list[Establishment]) -> None:
    """The download's ETag comes from the layer's version: a cache revalidating after a load gets the new file."""
    a, _ = two
    path = "/collections/establishments/download.csv"
    before = a.get(path).headers["etag"]
    e = api_data[0]
    with psycopg.connect(writer_url) as conn:
        conn.execute("UPDATE twin.establishments SET city = city WHERE establishment_id = %s", (e.id,))
    after = a.get(path)
    assert after.status_code == 200 and after.headers["etag"] != before
    assert a.get(path, headers={"If-None-Match": before}).status_code == 200


@pytest.mark.parametrize("how", ["bearer", "x-api-key", "basic"])
def test_answers_to_a_credential_are_never_shared(two: tuple[TestClient, TestClient], api_data: list[Establishment],
                                                 key: str, how: str) -> None:
    a, _ = two
    headers = _credentials(key)[how]
    for path in _public_paths(api_data):
        r = a.get(path, headers=headers)
        assert r.status_code == 200, (how, path, r.status_code, r.text[:300])
        cc = r.headers.get("cache-control", "").lower()
        assert "public" not in cc and ("private" in cc or "no-store" in cc), (how, path, cc)
        vary = r.headers.get("vary", "").lower()
        assert "authorization" in vary and "x-api-key" in vary, (how, path, vary)
        assert "set-cookie" not in r.headers


def test_anonymous_answers_that_a_credential_would_change_vary_on_it(two: tuple[TestClient, TestClient],
                                                                     api_data: list[Establishment]) -> None:
    """Items and downloads of a layer with per-record masking differ for key holders: the anonymous copy says
    so (Vary), or is a public tile (the same for everyone: tiles carry public fields only)."""
    a, _ = two
    for path in _public_paths(api_data):
        r = a.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        cc = r.headers.get("cache-control", "").lower()
        vary = r.headers.get("vary", "").lower()
        if "/tiles/WebMercatorQuad/" in path and not path.endswith(".json"):
            assert "public" in cc
        else:
            assert "authorization" in vary and "x-api-key" in vary, (path, cc, vary)


def _without_timestamp(body: bytes) -> bytes:
    """A page's body without its ``timeStamp`` (the time of the answer, to the second: two requests may straddle
    a second)."""
    return re.sub(rb'"timeStamp":"[^"]*"', b'"timeStamp":""', body)


def test_cookies_change_nothing(two: tuple[TestClient, TestClient], api_data: list[Establishment]) -> None:
    a, _ = two
    for path in _public_paths(api_data):
        plain = a.get(path)
        a.cookies.set("session", "something")
        with_cookie = a.get(path)
        a.cookies.clear()
        assert with_cookie.status_code == plain.status_code == 200, path
        if "/items" in path or "/download" in path or "/tiles/" in path:
            assert _without_timestamp(with_cookie.content) == _without_timestamp(plain.content), path
        for h in ("cache-control", "vary", "etag"):
            assert with_cookie.headers.get(h) == plain.headers.get(h), (path, h)
        assert "set-cookie" not in with_cookie.headers
