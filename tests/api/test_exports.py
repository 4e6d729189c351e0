"""Exports of item queries as CSV (streamed from COPY) and GeoPackage (written by pyogrio), the whole
result when the client asks for it, read back with independent readers (csv, shapely, pyogrio)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
import pyogrio
import pytest
import shapely
from api_fixtures import PREFIX, Establishment
from fastapi.testclient import TestClient

ITEMS = "/collections/establishments/items"
AREA = "3.49,53.49,3.60,53.56"
MANY = 250  # more than a default page (100)
MANY_AREA = "3.69,53.49,3.80,53.56"


@pytest.fixture(scope="module")
def many(writer_url: str, api_data: list[Establishment]) -> Iterator[list[str]]:
    """250 more points east of the grid, so that an export has more rows than a page."""
    ids = [f"{PREFIX}x{n:04d}" for n in range(MANY)]
    with psycopg.connect(writer_url) as conn:
        conn.execute(
            "INSERT INTO twin.establishments (establishment_id, name, sbi_code, geom) "
            "SELECT %s || lpad(n::text, 4, '0'), 'Export ' || n, '0141', "
            "ST_Transform(ST_SetSRID(ST_Point(3.70 + (n %% 25) * 0.004, 53.50 + (n / 25) * 0.005), 4326), 28992) "
            "FROM generate_series(0, %s - 1) n",
            (f"{PREFIX}x", MANY),
        )
    yield ids
    with psycopg.connect(writer_url) as conn:
        conn.execute("DELETE FROM twin.establishments WHERE establishment_id LIKE %s", (f"{PREFIX}x%",))


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export(client: TestClient, api_data: list[Establishment]) -> None:
    r = client.get(ITEMS, params={"f": "csv", "bbox": AREA, "sortby": "-started_on"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = read_csv(r.text)
    expected = sorted(sorted(api_data, key=lambda e: e.id), key=lambda e: e.started_on, reverse=True)
    assert [row["establishment_id"] for row in rows] == [e.id for e in expected]
    first = rows[0]
    assert list(first)[0] == "establishment_id" and list(first)[-1] == "geometry"
    by_id = {e.id: e for e in api_data}
    for row in rows:
        e = by_id[row["establishment_id"]]
        point = shapely.from_wkt(row["geometry"])
        assert (point.x, point.y) == pytest.approx((e.lon, e.lat), abs=1e-6)
        assert row["sbi_code"] == e.sbi_code
        assert row["brzo"] == ("true" if e.brzo else "false")
        assert row["started_on"] == e.started_on.isoformat()
        assert row["name"] == ("" if e.sole_proprietor else e.name)  # masked personal data
    assert r.headers["ogc-numbermatched"] == str(len(api_data))


def test_csv_export_follows_the_query(client: TestClient, api_data: list[Establishment]) -> None:
    r = client.get(ITEMS, params={"f": "csv", "bbox": AREA, "filter": "visit_frequency_years >= 5",
                                  "properties": "sbi_code", "crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert r.status_code == 200
    rows = read_csv(r.text)
    assert sorted(row["establishment_id"] for row in rows) == sorted(e.id for e in api_data if e.frequency >= 5)
    assert set(rows[0]) == {"establishment_id", "sbi_code", "geometry"}
    e = next(e for e in api_data if e.id == rows[0]["establishment_id"])
    point = shapely.from_wkt(rows[0]["geometry"])
    assert (point.x, point.y) == pytest.approx((e.lat, e.lon), abs=1e-6)  # EPSG:4326: lat first
    bad = client.get(ITEMS, params={"f": "csv", "filter": "sbi_code = 1"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "filter"


def test_an_export_is_the_whole_result_not_a_page(client: TestClient, many: list[str]) -> None:
    page = client.get(ITEMS, params={"bbox": MANY_AREA}).json()
    assert page["numberReturned"] == 100 and page["numberMatched"] == MANY
    r = client.get(ITEMS, params={"bbox": MANY_AREA, "f": "csv"})
    rows = read_csv(r.text)
    assert sorted(row["establishment_id"] for row in rows) == many
    assert "link" not in r.headers
    r = client.get(ITEMS, params={"bbox": MANY_AREA, "f": "csv", "limit": 120, "offset": 100})
    rows = read_csv(r.text)
    assert [row["establishment_id"] for row in rows] == many[100:220]
    # the next link carries a cursor after row 220 (keyset paging) and leads on from there
    assert 'rel="next"' in r.headers["link"] and "cursor=" in r.headers["link"]
    following = read_csv(client.get(r.headers["link"].split(">")[0].lstrip("<")).text)
    assert [row["establishment_id"] for row in following] == many[220:340]


def test_gpkg_export(client: TestClient, api_data: list[Establishment], many: list[str], tmp_path: Path) -> None:
    r = client.get(ITEMS, params={"f": "gpkg", "bbox": AREA})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "out.gpkg"
    path.write_bytes(r.content)
    info = pyogrio.read_info(path)
    assert info["features"] == len(api_data)
    assert info["geometry_type"] == "Point"
    assert "4326" in info["crs"] or "CRS84" in info["crs"]
    meta, _fids, geometry, fields = pyogrio.raw.read(path)
    names = list(meta["fields"])
    col = {n: fields[i] for i, n in enumerate(names)}
    by_id = {e.id: e for e in api_data}
    for i, fid in enumerate(col["establishment_id"]):
        e = by_id[fid]
        point = shapely.from_wkb(geometry[i])
        assert (point.x, point.y) == pytest.approx((e.lon, e.lat), abs=1e-6)
        assert col["visit_frequency_years"][i] == e.frequency
        assert bool(col["brzo"][i]) == e.brzo
        assert np.datetime64(col["started_on"][i], "D") == np.datetime64(e.started_on)
    # the whole result, in RD New, filtered
    r = client.get(ITEMS, params={"f": "gpkg", "bbox": MANY_AREA, "crs": "EPSG:28992"})
    path.write_bytes(r.content)
    info = pyogrio.read_info(path)
    assert info["features"] == MANY and "28992" in info["crs"]
    # an empty result is still a valid GeoPackage
    r = client.get(ITEMS, params={"f": "gpkg", "bbox": AREA, "filter": "sbi_code = 'none'"})
    assert r.status_code == 200
    path.write_bytes(r.content)
    assert pyogrio.read_info(path)["features"] == 0


def test_exports_of_restricted_layers_need_rights(client: TestClient, api_data: list[Establishment]) -> None:
    for fmt in ("csv", "gpkg"):
        assert client.get("/collections/inspections/items", params={"f": fmt}).status_code == 401


def test_permit_dates_in_csv(client: TestClient, api_data: list[Establishment]) -> None:
    r = client.get("/collections/permits/items", params={"f": "csv", "bbox": AREA, "datetime": "2019-01-01/2019-02-28"})
    rows = read_csv(r.text)
    assert [row["decided_on"] for row in rows] == [date(2019, 1, 1).isoformat(), date(2019, 1, 31).isoformat()]
