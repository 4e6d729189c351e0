"""The API's tile cache never hands a tile cut for one audience to another: the same inspections tile asked
by inspectors of two organisations holds each one's own inspections (row-level security), although the
first organisation's copy is in the cache."""

from __future__ import annotations

import mapbox_vector_tile
import morecantile
from fastapi.testclient import TestClient
from pyproj import Transformer
from security_fixture import ODA, ODB, expected_inspections

TMS = morecantile.tms.get("WebMercatorQuad")
TO_WGS84 = Transformer.from_crs(28992, 4326, always_xy=True)


def _ids(content: bytes) -> set[str]:
    if not content:
        return set()
    layer = mapbox_vector_tile.decode(content)["inspections"]
    return {f["properties"]["inspection_id"] for f in layer["features"]}


def test_a_cached_tile_is_served_only_to_its_own_audience(sec_client: TestClient, keys: dict[str, str]) -> None:
    lon, lat = TO_WGS84.transform(160000.0, 460000.0)  # between the organisations' inspections
    t = TMS.tile(lon, lat, 8)
    url = f"/collections/inspections/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    a1 = sec_client.get(url, headers={"X-API-Key": keys["inspector_a"]})
    a2 = sec_client.get(url, headers={"X-API-Key": keys["inspector_a"]})
    b = sec_client.get(url, headers={"X-API-Key": keys["inspector_b"]})
    admin = sec_client.get(url, headers={"X-API-Key": keys["admin"]})
    assert (a1.status_code, a2.status_code, b.status_code, admin.status_code) == (200, 200, 200, 200), a1.text
    assert (a1.headers["X-Tile-Cache"], a2.headers["X-Tile-Cache"]) == ("miss", "hit")
    assert b.headers["X-Tile-Cache"] == "miss"
    assert a2.content == a1.content
    assert _ids(a1.content) == expected_inspections("inspector", ODA)
    assert _ids(b.content) == expected_inspections("inspector", ODB)
    assert _ids(admin.content) == expected_inspections("admin")
    # private: a shared cache between the server and the caller must not keep it either
    assert a1.headers["Cache-Control"].startswith("private") and "X-API-Key" in a1.headers["Vary"]
