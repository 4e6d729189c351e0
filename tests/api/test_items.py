"""OGC API Features items: paging, bbox, datetime, limit/offset, property filters, properties, sortby,
single features, errors and restricted layers. Expected answers are worked out from the fixture grid."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
import pytest
from api_fixtures import LAT0, LON0, PREFIX, STEP, Establishment, permits
from fastapi.testclient import TestClient

ITEMS = "/collections/establishments/items"
# The fixture area (the grid spans lon 3.50-3.59, lat 53.50-53.55): nothing else lies there.
AREA = "3.49,53.49,3.60,53.56"


def ids(body: dict[str, Any]) -> list[str]:
    return [f["id"] for f in body["features"]]


def get(client: TestClient, path: str = ITEMS, status: int = 200, **params: Any) -> dict[str, Any]:
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def error(client: TestClient, parameter: str | None, path: str = ITEMS, status: int = 400, **params: Any) -> str:
    """Request that must fail with an OGC-style error body naming ``parameter``; returns the description."""
    body = get(client, path, status, **params)
    assert set(body) >= {"code", "description"}
    if parameter is not None:
        assert body.get("parameter") == parameter, body
    return str(body["description"])


def test_bbox_selects_the_grid_points_inside(client: TestClient, api_data: list[Establishment]) -> None:
    # columns 2..4 and rows 1..2: edges half-way between grid points
    bbox = (LON0 + 1.5 * STEP, LAT0 + 0.5 * STEP, LON0 + 4.5 * STEP, LAT0 + 2.5 * STEP)
    body = get(client, bbox=",".join(f"{v:.4f}" for v in bbox))
    expected = sorted(e.id for e in api_data if bbox[0] < e.lon < bbox[2] and bbox[1] < e.lat < bbox[3])
    assert len(expected) == 3 * 2
    assert ids(body) == expected
    assert body["numberMatched"] == body["numberReturned"] == 6
    assert body["type"] == "FeatureCollection"
    f = body["features"][0]
    assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
    e = next(e for e in api_data if e.id == f["id"])
    assert f["geometry"]["coordinates"] == pytest.approx([e.lon, e.lat], abs=1e-6)


def test_bbox_with_heights_and_errors(client: TestClient, api_data: list[Establishment]) -> None:
    body = get(client, bbox="3.49,53.49,-10,3.60,53.56,100")
    assert body["numberMatched"] == len(api_data)
    for bad in ("1,2,3", "a,b,c,d", "1,2,3,4,5", "3.6,53.5,3.5,53.6", "nan,1,2,3", "200,1,201,2"):
        error(client, "bbox", bbox=bad)


def test_paging_through_the_whole_collection_returns_every_feature_once(
    client: TestClient, api_data: list[Establishment], reader_url: str
) -> None:
    with psycopg.connect(reader_url) as conn:
        row = conn.execute("SELECT count(*) FROM twin.establishments").fetchone()
        assert row is not None
        total = row[0]
    seen: list[str] = []
    url: str | None = f"{ITEMS}?limit=17"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["numberMatched"] == total
        assert body["numberReturned"] == len(body["features"]) <= 17
        seen += ids(body)
        rels = {link["rel"]: link["href"] for link in body["links"]}
        if pages > 0:
            assert "prev" in rels
        url = rels.get("next")
        pages += 1
        assert pages <= total // 17 + 2
    assert len(seen) == len(set(seen)) == total
    assert {e.id for e in api_data} <= set(seen)


def test_limit_and_offset(client: TestClient, api_data: list[Establishment]) -> None:
    everything = sorted(e.id for e in api_data)
    assert ids(get(client, bbox=AREA)) == everything  # default limit 100 > 60
    page = get(client, bbox=AREA, limit=10, offset=25)
    assert ids(page) == everything[25:35]
    assert page["numberMatched"] == 60 and page["numberReturned"] == 10
    rels = {link["rel"]: link["href"] for link in page["links"]}
    # next carries a cursor after the page's last feature (keyset paging), prev the offset before it
    assert "cursor=" in rels["next"] and "offset=" not in rels["next"] and "offset=15" in rels["prev"]
    assert ids(client.get(rels["next"]).json()) == everything[35:45]
    last = get(client, bbox=AREA, limit=10, offset=55)
    assert ids(last) == everything[55:] and "next" not in {link["rel"] for link in last["links"]}
    beyond = get(client, bbox=AREA, limit=10, offset=100)
    assert beyond["features"] == [] and beyond["numberMatched"] == 60
    # above the maximum: the maximum applies (OGC API Features 1.0.1), not an error
    big = get(client, bbox=AREA, limit=50_000)
    assert big["numberReturned"] == 60
    for bad in ("0", "-1", "ten", "1.5", ""):
        error(client, "limit", bbox=AREA, limit=bad)
    for bad in ("-1", "x"):
        error(client, "offset", bbox=AREA, offset=bad)


def test_property_equality_filters(client: TestClient, api_data: list[Establishment]) -> None:
    body = get(client, bbox=AREA, sbi_code="0141")
    assert ids(body) == sorted(e.id for e in api_data if e.sbi_code == "0141")
    assert len(body["features"]) == 15
    body = get(client, bbox=AREA, brzo="true", visit_frequency_years="1")
    assert ids(body) == sorted(e.id for e in api_data if e.brzo and e.frequency == 1)
    body = get(client, bbox=AREA, started_on="2003-04-01")
    assert ids(body) == sorted(e.id for e in api_data if e.started_on == date(2003, 4, 1))
    error(client, "visit_frequency_years", visit_frequency_years="often")
    error(client, "brzo", brzo="maybe")
    error(client, "started_on", started_on="yesterday")
    description = error(client, "sbi", sbi="0141")
    assert "unknown query parameter" in description and "sbi_code" in description
    for repeated in (f"bbox={AREA}&bbox={AREA}", "limit=1&limit=2"):
        r = client.get(f"{ITEMS}?{repeated}")
        assert r.status_code == 400 and r.json()["parameter"] == repeated.split("=")[0]


def test_properties_chooses_fields(client: TestClient, api_data: list[Establishment]) -> None:
    body = get(client, bbox=AREA, properties="sbi_code,city", limit=3)
    assert all(set(f["properties"]) == {"sbi_code", "city"} for f in body["features"])
    body = get(client, bbox=AREA, properties="", limit=3)
    assert all(f["properties"] == {} for f in body["features"])
    assert "nope" in error(client, "properties", properties="sbi_code,nope")


def test_sortby(client: TestClient, api_data: list[Establishment]) -> None:
    body = get(client, bbox=AREA, sortby="-started_on")
    expected = [e.id for e in sorted(sorted(api_data, key=lambda e: e.id), key=lambda e: e.started_on, reverse=True)]
    assert ids(body) == expected
    body = get(client, bbox=AREA, sortby="environmental_category,-visit_frequency_years")
    keyed = sorted(api_data, key=lambda e: e.id)
    keyed = sorted(keyed, key=lambda e: -e.frequency)
    keyed = sorted(keyed, key=lambda e: e.category)
    assert ids(body) == [e.id for e in keyed]
    # '+' arrives as a space when not encoded
    r = client.get(f"{ITEMS}?bbox={AREA}&sortby=+city&limit=100")
    assert r.status_code == 200
    cities = [f["properties"]["city"] for f in r.json()["features"]]
    assert cities == [None] * 10 + ["Teststad"] * 50
    error(client, "sortby", sortby="-nope")
    error(client, "sortby", sortby=",")


def test_datetime_on_the_time_field(client: TestClient, api_data: list[Establishment]) -> None:
    path = "/collections/permits/items"
    mine = permits()

    def expect(lo: date | None, hi: date | None) -> list[str]:
        return sorted(p.id for p in mine if (lo is None or p.decided_on >= lo) and (hi is None or p.decided_on <= hi))

    cases = {
        "2019-01-31": (date(2019, 1, 31), date(2019, 1, 31)),
        "2019-01-31T23:30:00Z": (date(2019, 1, 31), date(2019, 1, 31)),
        "2019-02-01T00:30:00+02:00": (date(2019, 1, 31), date(2019, 1, 31)),  # 22:30 UTC the day before
        "2019-03-01/2019-06-30": (date(2019, 3, 1), date(2019, 6, 30)),
        "../2019-03-02": (None, date(2019, 3, 2)),
        "2020-06-01/..": (date(2020, 6, 1), None),
        "/2019-02-01": (None, date(2019, 2, 1)),
    }
    for value, (lo, hi) in cases.items():
        body = get(client, path, bbox=AREA, datetime=value)
        assert ids(body) == expect(lo, hi), value
        assert expect(lo, hi), value
    for bad in ("2019-13-01", "yesterday", "2019-06-01/2019-01-01", "..", "2019-01-01/2019-02-01/2019-03-01"):
        error(client, "datetime", path, datetime=bad)
    # layers without a time field ignore a well-formed datetime (and still reject a malformed one)
    assert get(client, bbox=AREA, datetime="2019-01-01")["numberMatched"] == len(api_data)
    error(client, "datetime", datetime="not-a-date")


def test_single_feature(client: TestClient, api_data: list[Establishment]) -> None:
    e = api_data[7]
    r = client.get(f"{ITEMS}/{e.id}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    f = r.json()
    assert f["id"] == e.id and f["properties"]["name"] == e.name and f["properties"]["sbi_code"] == e.sbi_code
    assert f["geometry"]["coordinates"] == pytest.approx([e.lon, e.lat], abs=1e-6)
    assert {link["rel"] for link in f["links"]} >= {"self", "collection"}
    assert get(client, f"{ITEMS}/{e.id}", properties="city")["properties"] == {"city": e.city}
    error(client, None, f"{ITEMS}/{PREFIX}missing", status=404)
    error(client, "bbox", f"{ITEMS}/{e.id}", bbox=AREA)


def test_personal_data_of_sole_proprietors_is_masked(client: TestClient, api_data: list[Establishment]) -> None:
    body = get(client, bbox=AREA)
    by_id = {f["id"]: f["properties"] for f in body["features"]}
    for e in api_data:
        props = by_id[e.id]
        assert props["name"] == (None if e.sole_proprietor else e.name)
        assert props["kvk_number"] == (None if e.sole_proprietor else e.kvk)
    # filtering on a masked field cannot find a sole proprietor by name
    sole = next(e for e in api_data if e.sole_proprietor)
    assert get(client, bbox=AREA, name=sole.name)["features"] == []


def test_errors_and_restricted_layers(client: TestClient, api_data: list[Establishment]) -> None:
    error(client, None, "/collections/nope/items", status=404)
    error(client, None, "/collections/nope/items/x", status=404)
    error(client, "f", f="xml")
    for path in ("/collections/inspections/items", f"/collections/inspections/items/{PREFIX}i000"):
        r = client.get(path)
        assert r.status_code == 401
        assert "restricted" in r.json()["description"]


def test_collection_documents(client: TestClient, api_data: list[Establishment]) -> None:
    doc = get(client, "/collections/permits")
    assert doc["extent"]["temporal"]["interval"][0][0] <= f"{permits()[0].decided_on.isoformat()}T00:00:00Z"
    assert "http://www.opengis.net/def/crs/EPSG/0/28992" in doc["crs"]
    west, south, east, north = doc["extent"]["spatial"]["bbox"][0]
    assert west <= LON0 and north >= LAT0
    rels = {link["rel"] for link in doc["links"]}
    assert {"self", "items", "tiles", "http://www.opengis.net/def/rel/ogc/1.0/queryables"} <= rels
    listing = get(client, "/collections")
    readable = {c["id"]: c["readable"] for c in listing["collections"]}
    assert readable["establishments"] is True and readable["inspections"] is False
    conformance = get(client, "/conformance")["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conformance


def test_queryables(client: TestClient) -> None:
    r = client.get("/collections/establishments/queryables")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/schema+json")
    schema = r.json()
    props = schema["properties"]
    assert props["sbi_code"]["type"] == "string"
    assert props["visit_frequency_years"] == {**props["visit_frequency_years"], "type": "integer",
                                              "enum": [1, 3, 5, 10]}
    assert props["started_on"]["format"] == "date"
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    assert schema["additionalProperties"] is False
    assert "inspector" not in get(client, "/collections/inspections/queryables")["properties"]
