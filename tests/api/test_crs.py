"""OGC API Features Part 2: the crs and bbox-crs parameters, axis order and the Content-Crs header.
Expected coordinates come from pyproj, independently of PostGIS."""

from __future__ import annotations

from typing import Any

import pytest
from api_fixtures import LAT0, LON0, STEP, Establishment
from fastapi.testclient import TestClient
from pyproj import Transformer

ITEMS = "/collections/establishments/items"
AREA = "3.49,53.49,3.60,53.56"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
RD = "http://www.opengis.net/def/crs/EPSG/0/28992"
MERCATOR = "http://www.opengis.net/def/crs/EPSG/0/3857"
TO_RD = Transformer.from_crs("EPSG:4326", "EPSG:28992", always_xy=True)
TO_MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def features(client: TestClient, **params: Any) -> tuple[dict[str, Any], str]:
    r = client.get(ITEMS, params=params)
    assert r.status_code == 200, r.text
    by_id = {f["id"]: f["geometry"]["coordinates"] for f in r.json()["features"]}
    return by_id, r.headers["content-crs"]


def test_output_crs_and_axis_order(client: TestClient, api_data: list[Establishment]) -> None:
    lonlat, header = features(client, bbox=AREA)
    assert header == f"<{CRS84}>"
    latlon, header = features(client, bbox=AREA, crs=EPSG4326)
    assert header == f"<{EPSG4326}>"
    rd, header = features(client, bbox=AREA, crs=RD)
    assert header == f"<{RD}>"
    merc, _ = features(client, bbox=AREA, crs="EPSG:3857")
    for e in api_data:
        assert lonlat[e.id] == pytest.approx([e.lon, e.lat], abs=1e-6)
        assert latlon[e.id] == pytest.approx([e.lat, e.lon], abs=1e-6)  # EPSG:4326 is latitude first
        assert rd[e.id] == pytest.approx(list(TO_RD.transform(e.lon, e.lat)), abs=0.01)
        assert merc[e.id] == pytest.approx(list(TO_MERCATOR.transform(e.lon, e.lat)), abs=0.01)
    r = client.get(f"{ITEMS}/{api_data[3].id}", params={"crs": EPSG4326})
    assert r.headers["content-crs"] == f"<{EPSG4326}>"
    assert r.json()["geometry"]["coordinates"] == pytest.approx([api_data[3].lat, api_data[3].lon], abs=1e-6)


def test_bbox_crs(client: TestClient, api_data: list[Establishment]) -> None:
    west, south, east, north = LON0 + 0.5 * STEP, LAT0 + 1.5 * STEP, LON0 + 3.5 * STEP, LAT0 + 3.5 * STEP
    expected = sorted(e.id for e in api_data if west < e.lon < east and south < e.lat < north)
    assert len(expected) == 3 * 2

    def ids(**params: Any) -> list[str]:
        r = client.get(ITEMS, params=params)
        assert r.status_code == 200, r.text
        return [f["id"] for f in r.json()["features"]]

    assert ids(bbox=f"{west},{south},{east},{north}") == expected
    assert ids(bbox=f"{west},{south},{east},{north}", **{"bbox-crs": CRS84}) == expected
    # EPSG:4326: latitude first
    assert ids(bbox=f"{south},{west},{north},{east}", **{"bbox-crs": EPSG4326}) == expected
    # the same numbers in lon/lat order mean a box near the equator east of Africa: nothing there
    assert ids(bbox=f"{west},{south},{east},{north}", **{"bbox-crs": EPSG4326}) == []
    # RD New: the box around the projected corners (edges are straight in RD, slightly curved in lon/lat,
    # but the grid points lie half a step from every edge)
    xs, ys = TO_RD.transform([west, east, west, east], [south, south, north, north])
    rd_box = f"{min(xs)},{min(ys)},{max(xs)},{max(ys)}"
    assert ids(bbox=rd_box, **{"bbox-crs": RD}) == expected
    assert ids(bbox=rd_box, **{"bbox-crs": "EPSG:28992"}) == expected


def test_unsupported_crs_is_a_400(client: TestClient) -> None:
    for params, parameter in (
        ({"crs": "EPSG:31370"}, "crs"),
        ({"crs": "http://www.opengis.net/def/crs/EPSG/0/2154"}, "crs"),
        ({"bbox": AREA, "bbox-crs": "nonsense"}, "bbox-crs"),
        ({"bbox-crs": "EPSG:9999"}, "bbox-crs"),
    ):
        r = client.get(ITEMS, params=params)
        assert r.status_code == 400
        body = r.json()
        assert body["parameter"] == parameter and "28992" in body["description"]
    r = client.get(f"{ITEMS}/x", params={"crs": "EPSG:1"})
    assert r.status_code == 400 and r.json()["parameter"] == "crs"


def test_lat_lon_out_of_range_in_epsg_4326_is_explained(client: TestClient) -> None:
    r = client.get(ITEMS, params={"bbox": "100,3,101,4", "bbox-crs": EPSG4326})
    assert r.status_code == 400
    assert "latitude, longitude" in r.json()["description"]


def test_a_world_bbox_is_clipped_not_broken(client: TestClient, api_data: list[Establishment]) -> None:
    r = client.get(ITEMS, params={"bbox": "-180,-90,180,90", "limit": 1})
    assert r.status_code == 200
    assert r.json()["numberMatched"] >= len(api_data)
    r = client.get(ITEMS, params={"bbox": "100,-50,120,-40"})  # far from the Netherlands
    assert r.status_code == 200 and r.json()["features"] == []
