"""Area summary: a hand-built world of two municipalities (RD x 24-32 km, y 526-534 km, offshore) whose
figures are counted here from the inserted rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pytest
from analyses_support import (
    Raster,
    api_key,
    as_role,
    cleanup_statements,
    drop_api_keys,
    establishment,
    execute,
    hexagon,
    hexagon_row,
    housing_site,
    inspection,
    lonlat,
    municipality,
    permit,
)
from fastapi.testclient import TestClient
from shapely.geometry import Point, box, mapping

from twin.analyses.common import Disclosure
from twin.analyses.summary import area_summary, polygon_from_geojson
from twin.crs import CRS84
from twin.settings import Settings

AS_OF = date(2024, 12, 31)
GM_W, GM_E = box(24000, 526000, 28000, 534000), box(28000, 526000, 32000, 534000)
# id: x, y, category, Brzo, sole proprietor
EST = {
    "AN-S1": (25000, 527000, "3.1", False, False),
    "AN-S2": (25500, 527500, "3.1", False, False),
    "AN-S3": (26500, 529000, "4.2", True, False),
    "AN-S4": (24800, 531000, None, False, False),
    "AN-S5": (27000, 533000, "2", False, True),
    "AN-S6": (31000, 533000, "5.1", False, False),
}
INSPECTIONS = [  # establishment, date, result, LHS cell
    ("AN-S1", "2022-03-01", "voorschriften nageleefd", None),
    ("AN-S2", "2022-04-01", "voorschriften overtreden", "B2"),
    ("AN-S3", "2022-05-01", "akkoord na aanwijzing", None),
    ("AN-S4", "2022-06-01", "voorschriften niet van toepassing", None),
    ("AN-S1", "2023-03-01", "voorschriften overtreden", "A1"),
    ("AN-S3", "2023-04-01", "voorschriften nageleefd", None),
    ("AN-S5", "2023-05-01", "voorschriften overtreden", "C3"),
    ("AN-S2", "2023-06-01", "nader onderzoek noodzakelijk", None),
    ("AN-S1", "2024-03-01", "voorschriften nageleefd", None),
    ("AN-S2", "2024-04-01", "voorschriften nageleefd", None),
    ("AN-S3", "2024-05-01", "voorschriften overtreden", None),
    ("AN-S1", "2025-03-01", "voorschriften overtreden", "D4"),  # after the reference date
    ("AN-S6", "2023-03-01", "voorschriften overtreden", "A2"),  # the other municipality
]
PERMITS = [  # id, establishment, status, valid from, valid until
    ("AN-SP1", "AN-S1", "verleend", "2020-01-01", None),
    ("AN-SP2", "AN-S1", "aangevraagd", None, None),
    ("AN-SP3", "AN-S2", "verleend", "2019-01-01", "2023-01-01"),
    ("AN-SP4", "AN-S3", "geweigerd", None, None),
    ("AN-SP5", "AN-S6", "verleend", "2020-01-01", None),
]
HEXES = {  # receptor: x, y, year, deposition, lowest KDW
    1: (26000, 530000, 2023, 1500, 1000),
    2: (24500, 533000, 2023, 800, 1000),
    3: (25000, 527500, 2023, 950, 1000),
    4: (28030, 532000, 2023, 800, 1000),  # crosses the boundary; its centre lies east
    5: (26000, 530000, 2022, 900, 1000),
}
SITES = {
    "AN-SS1": (box(26600, 529100, 26700, 529200), 100),
    "AN-SS2": (box(27800, 530000, 28300, 530200), 200),  # 40 % west, 60 % east
    "AN-SS3": (box(31400, 526800, 31600, 527000), 50),
}
TILE = {
    2022: Raster(24000, 534000, 500, np.array([[1000 + 10 * c + r for c in range(8)] for r in range(16)], float)),
    2023: Raster(24000, 534000, 500, np.array([[900 + 20 * c - 3 * r for c in range(8)] for r in range(16)], float)),
}
POLYGON = box(24500, 528000, 27000, 532000)


@pytest.fixture(scope="module")
def world(owner_url: str) -> Iterator[None]:
    execute(owner_url, [
        *cleanup_statements(),
        municipality("GM9941", "AN-Strand-West", GM_W),
        municipality("GM9942", "AN-Strand-Oost", GM_E),
        *(establishment(eid, x, y, category=cat, brzo=brzo, sole=sole) for eid, (x, y, cat, brzo, sole) in EST.items()),
        *(inspection(f"AN-SI{n}", eid, on, res, lhs=lhs) for n, (eid, on, res, lhs) in enumerate(INSPECTIONS)),
        *(permit(pid, eid, status=st, valid_from=vf, valid_until=vu) for pid, eid, st, vf, vu in PERMITS),
        *(hexagon_row(990300000 + rid, yr, hexagon(x, y), dep, kdw) for rid, (x, y, yr, dep, kdw) in HEXES.items()),
        *(housing_site(sid, geom, n) for sid, (geom, n) in SITES.items()),
        *(raster.insert(year, f"AN-{year}") for year, raster in TILE.items()),
    ])
    yield
    execute(owner_url, cleanup_statements())
    drop_api_keys(owner_url)


def expected(area: Any, sole_visible: bool = True) -> dict[str, Any]:
    inside = {eid for eid, (x, y, *_rest) in EST.items() if area.intersects(Point(x, y))}
    per_year: dict[int, dict[str, int]] = {}
    cells: dict[str, int] = {}
    for eid, on, res, lhs in INSPECTIONS:
        if eid not in inside or date.fromisoformat(on) > AS_OF or (EST[eid][4] and not sole_visible):
            continue
        y = per_year.setdefault(int(on[:4]), {"inspections": 0, "assessed": 0, "compliant": 0})
        y["inspections"] += 1
        y["assessed"] += res not in ("voorschriften niet van toepassing", "nader onderzoek noodzakelijk")
        y["compliant"] += res == "voorschriften nageleefd"
        if res == "voorschriften overtreden":
            cells[lhs or "unknown"] = cells.get(lhs or "unknown", 0) + 1
    return {"inside": inside, "per_year": per_year, "cells": cells}


def _summary(reader_url: str, settings: Settings, role: str = "admin", **kwargs: Any) -> dict[str, Any]:
    return as_role(reader_url, area_summary, settings, role=role, as_of=AS_OF, disclosure=Disclosure(role), **kwargs)


def test_establishments_and_permits(world: None, reader_url: str, settings: Settings) -> None:
    s = _summary(reader_url, settings, municipality_code="GM9941")
    want = expected(GM_W)
    assert want["inside"] == {"AN-S1", "AN-S2", "AN-S3", "AN-S4", "AN-S5"}
    by_cat = {c["category"]: c["count"] for c in s["establishments"]["by_category"]}
    assert by_cat == {"1": 0, "2": 1, "3.1": 2, "3.2": 0, "4.1": 0, "4.2": 1, "5.1": 0, "5.2": 0, "5.3": 0, "6": 0,
                      None: 1}
    assert s["establishments"]["total"] == 5 and s["establishments"]["brzo"] == 1
    # SP1 granted and in force; SP3 expired on 2023-01-01; SP5 belongs to the other municipality.
    assert s["permits"]["by_status"] == {"aangevraagd": 1, "in behandeling": 0, "verleend": 2, "geweigerd": 1,
                                         "ingetrokken": 0, "vervallen": 0}
    assert s["permits"]["active"] == 1 and s["permits"]["total"] == 4
    assert s["area"] == {"kind": "municipality", "code": "GM9941", "name": "AN-Strand-West", "area_ha": 3200.0}


def test_inspection_trend_and_lhs_cells(world: None, reader_url: str, settings: Settings) -> None:
    s = _summary(reader_url, settings, municipality_code="GM9941")
    want = expected(GM_W)
    got = {y["year"]: y for y in s["inspections"]["per_year"]}
    assert sorted(got) == sorted(want["per_year"]) == [2022, 2023, 2024]
    for year, w in want["per_year"].items():
        assert {k: got[year][k] for k in w} == w
        assert got[year]["compliance_rate"] == pytest.approx(w["compliant"] / w["assessed"], abs=1e-4)
    # By hand: 2022 1 of 3 assessed (the "not applicable" one is not assessed), 2023 1 of 3, 2024 2 of 3.
    assert [got[y]["compliance_rate"] for y in (2022, 2023, 2024)] == [0.3333, 0.3333, 0.6667]
    cells = s["inspections"]["violations_by_lhs_cell"]
    assert {k: v for k, v in cells.items() if v} == want["cells"] == {"B2": 1, "A1": 1, "C3": 1, "unknown": 1}
    assert len(cells) == 17


def test_advisor_trend_leaves_out_sole_proprietors(world: None, reader_url: str, settings: Settings) -> None:
    s = _summary(reader_url, settings, role="advisor", municipality_code="GM9941")
    got = {y["year"]: y for y in s["inspections"]["per_year"]}
    want = expected(GM_W, sole_visible=False)
    assert got[2023]["assessed"] == want["per_year"][2023]["assessed"] == 2
    assert got[2023]["compliance_rate"] == 0.5
    assert "sole proprietors" in s["inspections"]["scope"]


def test_deposition_and_habitat_share(world: None, reader_url: str, settings: Settings) -> None:
    s = _summary(reader_url, settings, municipality_code="GM9941")
    dep = s["deposition"]["per_year"]
    assert [d["year"] for d in dep] == [2022, 2023]
    for d in dep:
        want = TILE[d["year"]].centre_stats(GM_W)
        assert d["pixels"] == want["count"] == 128
        assert d["mean"] == pytest.approx(want["mean"], abs=0.05)
    hab = {h["year"]: h for h in s["deposition"]["habitat_per_year"]}
    ha = hexagon(0, 0).area / 10000
    # 2023: H1 (overloaded), H2 (below), H3 (approaching: 950 > 1000 - 70) have their centre here; H4 not.
    assert hab[2023]["hexagons"] == 3 and hab[2023]["habitat_ha"] == pytest.approx(3 * ha, abs=0.006)
    assert hab[2023]["overloaded_ha"] == pytest.approx(ha, abs=0.006)
    assert hab[2023]["approaching_ha"] == pytest.approx(ha, abs=0.006)
    assert hab[2023]["overloaded_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert hab[2022]["hexagons"] == 1 and hab[2022]["overloaded_share"] == 0
    east = _summary(reader_url, settings, municipality_code="GM9942")["deposition"]
    assert {h["year"]: h["hexagons"] for h in east["habitat_per_year"]} == {2023: 1}
    assert east["per_year"] == []  # the raster only touches its boundary


def test_housing_counted_once(world: None, reader_url: str, settings: Settings) -> None:
    west = _summary(reader_url, settings, municipality_code="GM9941")["housing"]
    east = _summary(reader_url, settings, municipality_code="GM9942")["housing"]
    share_w = SITES["AN-SS2"][0].intersection(GM_W).area / SITES["AN-SS2"][0].area
    assert share_w == pytest.approx(0.4)  # so SS2 belongs to the east
    assert [s["site_id"] for s in west["list"]] == ["AN-SS1"]
    assert [s["site_id"] for s in west["partly_here_assigned_elsewhere"]] == ["AN-SS2"]
    assert sorted(s["site_id"] for s in east["list"]) == ["AN-SS2", "AN-SS3"]
    assert west["sites"] + east["sites"] == len(SITES)
    assert west["planned_dwellings"] + east["planned_dwellings"] == sum(n for _, n in SITES.values())
    # SS1 lies 141 m from AN-S3 (category 4.2: 300 m, 200 m in a mixed area): conflict.
    assert Point(26500, 529000).distance(SITES["AN-SS1"][0]) == pytest.approx(141.42, abs=0.01)
    assert west["by_verdict"]["conflict"] == {"sites": 1, "planned_dwellings": 100}
    # SS2: the overloaded H1 is 1,738 m away (attention); SS3: nothing within 5 km.
    assert {s["site_id"]: s["verdict"] for s in east["list"]} == {"AN-SS2": "attention", "AN-SS3": "no constraint"}
    assert east["by_verdict"]["attention"] == {"sites": 1, "planned_dwellings": 200}


def test_posted_polygon(world: None, reader_url: str, settings: Settings) -> None:
    ring = [lonlat(x, y) for x, y in POLYGON.exterior.coords]
    area = polygon_from_geojson({"type": "Polygon", "coordinates": [ring]}, settings, CRS84)
    # Straight edges in lon/lat bow by centimetres in RD over 4 km.
    assert area.hausdorff_distance(POLYGON) < 0.5
    s = _summary(reader_url, settings, area=area)
    assert s["area"]["kind"] == "polygon" and s["area"]["area_ha"] == pytest.approx(POLYGON.area / 10000, abs=0.01)
    want = expected(POLYGON)
    assert want["inside"] == {"AN-S3", "AN-S4"} and s["establishments"]["total"] == 2
    assert {y["year"]: y["inspections"] for y in s["inspections"]["per_year"]} == \
        {y: w["inspections"] for y, w in want["per_year"].items()}
    assert s["deposition"]["per_year"][1]["mean"] == pytest.approx(TILE[2023].centre_stats(POLYGON)["mean"], abs=0.05)
    assert s["deposition"]["habitat_per_year"][-1]["overloaded_share"] == 1.0  # only H1's centre lies inside
    assert [x["site_id"] for x in s["housing"]["list"]] == ["AN-SS1"]


def test_api_municipality_anonymous(world: None, client: TestClient) -> None:
    r = client.get("/analysis/area-summary", params={"municipality": "GM9941", "as_of": "2024-12-31"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["establishments"]["total"] == 5
    assert body["inspections"]["per_year"] is None and "API key" in body["inspections"]["note"]
    assert body["housing"]["sites"] == 1


def test_api_posted_polygon(world: None, client: TestClient) -> None:
    ring = [list(lonlat(x, y)) for x, y in POLYGON.exterior.coords]
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    r = client.post("/analysis/area-summary", params={"as_of": "2024-12-31"}, json=feature)
    assert r.status_code == 200, r.text
    assert r.json()["establishments"]["total"] == 2
    # The same polygon in RD New.
    r = client.post("/analysis/area-summary", params={"crs": "EPSG:28992"}, json=mapping(POLYGON))
    assert r.status_code == 200 and r.json()["establishments"]["total"] == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("not json", "not JSON"),
        ({"type": "Point", "coordinates": [4.0, 52.0]}, "Polygon or MultiPolygon"),
        ({"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50]]]},
         "outside the Netherlands"),
        ({"type": "Polygon", "coordinates": [[[3.3, 51], [7, 51], [7, 53.5], [3.3, 53.5], [3.3, 51]]]},
         "at most 5,000"),
        ({"type": "Polygon", "coordinates": [[[4, 52], [4.1, 52.1], [4.1, 52], [4, 52.1], [4, 52]]]},
         "not valid"),
        ({"type": "FeatureCollection", "features": []}, "not a FeatureCollection"),
    ],
)
def test_api_bad_polygons(world: None, client: TestClient, body: Any, words: str) -> None:
    if isinstance(body, str):
        r = client.post("/analysis/area-summary", content=body, headers={"content-type": "application/json"})
    else:
        r = client.post("/analysis/area-summary", json=body)
    assert r.status_code == 400, r.text
    assert words in r.json()["description"] and r.json()["parameter"] == "body"


def test_api_missing_or_unknown_municipality(world: None, client: TestClient) -> None:
    r = client.get("/analysis/area-summary")
    assert r.status_code == 400 and r.json()["parameter"] == "municipality"
    r = client.get("/analysis/area-summary", params={"municipality": "GM9999"})
    assert r.status_code == 404 and "GM9999" in r.json()["description"]


def test_polygon_smaller_than_a_pixel(world: None, reader_url: str, settings: Settings) -> None:
    tiny = box(25100, 530100, 25200, 530200)  # inside one 500 m pixel, away from its centre
    dep = _summary(reader_url, settings, area=tiny)["deposition"]["per_year"]
    assert [(d["year"], d["method"], d["pixels"]) for d in dep] == [(2022, "area-weighted", 1),
                                                                     (2023, "area-weighted", 1)]
    assert dep[1]["mean"] == TILE[2023].value_at(25150, 530150)


def test_api_advisor_gets_the_trend(world: None, client: TestClient, owner_url: str) -> None:
    r = client.get("/analysis/area-summary", params={"municipality": "GM9941", "as_of": "2024-12-31"},
                   headers=api_key(owner_url, "advisor"))
    assert r.status_code == 200, r.text
    got = {y["year"]: y for y in r.json()["inspections"]["per_year"]}
    want = expected(GM_W, sole_visible=False)["per_year"]
    assert {y: (g["assessed"], g["compliant"]) for y, g in got.items()} == \
        {y: (w["assessed"], w["compliant"]) for y, w in want.items()}
