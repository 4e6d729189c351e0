"""Area context: a hand-built world around the point C = RD (40020, 500035); every expected number is
worked out here from the coordinates and values inserted (shapely for distances and pixel overlaps)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import date

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
    habitat,
    hexagon,
    hexagon_row,
    housing_site,
    inspection,
    lonlat,
    municipality,
    permit,
)
from fastapi.testclient import TestClient
from shapely.geometry import Point, box

from twin.analyses.common import Disclosure
from twin.analyses.context import area_context
from twin.settings import Settings

C = (40020.0, 500035.0)
AS_OF = date(2024, 6, 30)
EST = {"AN-C1": (40100.0, 500200.0), "AN-C2": (39700.0, 499900.0), "AN-C3": (40600.0, 500000.0)}
CATS = {"AN-C1": "4.2", "AN-C2": "3.1", "AN-C3": "5.1"}
GUIDE = {"4.2": 300.0, "3.1": 50.0, "5.1": 500.0}
REDUCED = {"4.2": 200.0, "3.1": 30.0, "5.1": 300.0}  # one VNG distance step lower (mixed area)

R2022 = Raster(39000, 501000, 100, np.array([[1500 + 7 * c + 3 * r for c in range(20)] for r in range(20)], float))
V2023 = np.array([[1300 + 5 * c + 11 * r for c in range(20)] for r in range(20)], float)
V2023[8, 11] = -9999  # one nodata pixel inside the circle
R2023 = Raster(39000, 501000, 100, V2023)

CH1 = box(41000, 500500, 41600, 501100)
CH2 = box(39130, 500810, 39270, 500960)
CH3 = box(43100, 500000, 43300, 500200)
CH4 = box(40900, 499100, 41100, 499300)
CS1 = box(40250, 500300, 40450, 500500)
CS2 = box(39740, 499850, 39800, 499950)
CS3 = box(40700, 499500, 40900, 499700)


@pytest.fixture(scope="module")
def world(owner_url: str) -> Iterator[None]:
    statements = [
        *cleanup_statements(),
        municipality("GM9911", "AN-West", box(38000, 498000, 40500, 502000)),
        municipality("GM9912", "AN-Oost", box(40500, 498000, 43000, 502000)),
        establishment("AN-C1", *EST["AN-C1"], name="Varkenshouderij Jansen", category="4.2", sbi="01461",
                      sole=True, kvk="12345678", ab_type="C", freq=3),
        establishment("AN-C2", *EST["AN-C2"], name="Bakkerij De Korenaar BV", category="3.1", kvk="87654321"),
        establishment("AN-C3", *EST["AN-C3"], name="Metaalwerk BV", category="5.1"),
        inspection("AN-CI1", "AN-C1", "2022-03-01", "voorschriften overtreden", lhs="B3", follow_up="uitgevoerd"),
        inspection("AN-CI2", "AN-C1", "2023-05-10", "voorschriften overtreden", lhs="C2", follow_up="opgelegd"),
        inspection("AN-CI3", "AN-C1", "2023-09-01", "voorschriften overtreden", lhs="A1", kind="complaint"),
        inspection("AN-CI4", "AN-C1", "2025-01-01", "voorschriften nageleefd"),  # after the reference date
        inspection("AN-CI5", "AN-C2", "2023-01-01", "voorschriften overtreden", lhs="B2", follow_up="in uitvoering"),
        inspection("AN-CI6", "AN-C2", "2023-06-01", "voorschriften nageleefd"),
        permit("AN-CP1", "AN-C1", valid_from="2020-01-01", nh3=1200),
        permit("AN-CP2", "AN-C1", valid_from="2019-01-01", valid_until="2023-12-31"),
        permit("AN-CP3", "AN-C1", status="aangevraagd"),
        permit("AN-CP4", "AN-C1", valid_from="2025-01-01"),
        permit("AN-CP5", "AN-C2", permit_type="melding"),
        R2022.insert(2022, "AN-2022"),
        R2023.insert(2023, "AN-2023"),
        habitat("AN-CH1", CH1, 786, habitat_type="H4010A"),
        habitat("AN-CH2", CH2, 1071, habitat_type="H4030"),
        habitat("AN-CH3", CH3, 500, habitat_type="H7110A"),
        habitat("AN-CH4", CH4, 1071, habitat_type="H9190"),
        hexagon_row(990000001, 2023, hexagon(41150, 500650), 1500),
        hexagon_row(990000002, 2023, hexagon(41300, 500800), 1700),
        hexagon_row(990000003, 2023, hexagon(41450, 500950), 800),
        hexagon_row(990000002, 2022, hexagon(41300, 500800), 2500),  # an older year
        hexagon_row(990000002, 2025, hexagon(41300, 500800), 100),  # after the reference year
        hexagon_row(990000004, 2023, box(41600, 500700, 41700, 500800), 9999),  # touches CH1 only
        hexagon_row(990000005, 2023, hexagon(41000, 499200), 1030),
        housing_site("AN-CS1", CS1, 120),
        housing_site("AN-CS2", CS2, 8),
        housing_site("AN-CS3", CS3, 40),
    ]
    execute(owner_url, statements)
    yield
    execute(owner_url, cleanup_statements())
    drop_api_keys(owner_url)


def _context(reader_url: str, settings: Settings, role: str = "admin", org: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
    lon, lat = lonlat(*C)
    # The hexagon year is given (2023), so that other modules' rows for later years cannot change it.
    params = {"lon": lon, "lat": lat, "as_of": AS_OF, "year": 2023} | kwargs
    return as_role(reader_url, area_context, settings, role=role, org_code=org,
                   disclosure=Disclosure(role, org), **params)


def test_establishments_in_the_circle(world: None, reader_url: str, settings: Settings) -> None:
    result = _context(reader_url, settings)
    centre = Point(C)
    expected = sorted((centre.distance(Point(xy)), eid) for eid, xy in EST.items() if centre.distance(Point(xy)) <= 500)
    ids = [e["establishment_id"] for e in result["establishments"]]
    assert ids == [eid for _, eid in expected] == ["AN-C1", "AN-C2"]
    by_id = {e["establishment_id"]: e for e in result["establishments"]}
    for d, eid in expected:
        assert by_id[eid]["distance_m"] == pytest.approx(d, abs=0.06)
        assert by_id[eid]["environmental_category"] == CATS[eid]
        assert by_id[eid]["guide_distance_m"] == GUIDE[CATS[eid]]
    c1, c2 = by_id["AN-C1"], by_id["AN-C2"]
    assert c1["sbi_code"] == "01461" and c1["name"] == "Varkenshouderij Jansen" and c1["kvk_number"] == "12345678"
    # Last inspection on or before the reference date: AN-CI3; AN-CI4 lies after it.
    assert c1["last_inspection"] == {"date": "2023-09-01", "kind": "complaint", "result": "voorschriften overtreden",
                                     "lhs_cell": "A1"}
    # Open: CI2 (opgelegd) and CI3 (no follow-up); CI1 was carried out.
    assert c1["open_violations"] == 2
    # CI5 is still "in uitvoering" but the later CI6 found the establishment compliant.
    assert c2["last_inspection"]["date"] == "2023-06-01" and c2["open_violations"] == 0
    # Active on 2024-06-30: CP1 (granted, in force); not CP2 (expired), CP3 (applied), CP4 (from 2025).
    assert [p["permit_id"] for p in c1["active_permits"]] == ["AN-CP1"]
    assert c1["active_permits"][0]["nh3_kg_per_year"] == 1200
    assert [p["permit_id"] for p in c2["active_permits"]] == ["AN-CP5"]


def test_without_reference_date_later_inspection_counts(world: None, reader_url: str, settings: Settings) -> None:
    result = _context(reader_url, settings, as_of=date(2025, 6, 1))
    c1 = next(e for e in result["establishments"] if e["establishment_id"] == "AN-C1")
    # AN-CI4 (2025-01-01, compliant) now is the last inspection and closes CI2 and CI3.
    assert c1["last_inspection"]["date"] == "2025-01-01" and c1["open_violations"] == 0
    assert [p["permit_id"] for p in c1["active_permits"]] == ["AN-CP1", "AN-CP4"]


def test_deposition_at_point_and_in_circle(world: None, reader_url: str, settings: Settings) -> None:
    dep = _context(reader_url, settings)["deposition"]
    assert dep["at_point"] == [
        {"year": 2022, "label": "AN-2022", "value": R2022.value_at(*C)},
        {"year": 2023, "label": "AN-2023", "value": R2023.value_at(*C)},
    ]
    circle = Point(C).buffer(500, quad_segs=8)
    for row, raster in zip(dep["in_circle"], (R2022, R2023), strict=True):
        want = raster.centre_stats(circle)
        assert row["pixels"] == want["count"]
        assert row["min"] == pytest.approx(want["min"], abs=0.05)
        assert row["max"] == pytest.approx(want["max"], abs=0.05)
        assert row["mean"] == pytest.approx(want["mean"], abs=0.05)
    assert dep["in_circle"][1]["pixels"] == dep["in_circle"][0]["pixels"] - 1  # the nodata pixel


def test_habitats_within_3_km(world: None, reader_url: str, settings: Settings) -> None:
    habitats = {h["habitat_id"]: h for h in _context(reader_url, settings)["habitats"]}
    centre = Point(C)
    assert centre.distance(CH3) > 3000 and "AN-CH3" not in habitats
    assert set(habitats) == {"AN-CH1", "AN-CH2", "AN-CH4"}
    for hid, geom in (("AN-CH1", CH1), ("AN-CH2", CH2), ("AN-CH4", CH4)):
        assert habitats[hid]["distance_m"] == pytest.approx(centre.distance(geom), abs=0.06)
    # CH1: hexagons of 2023 whose centre lies inside it: 1500, 1700, 800; the one touching its edge is not.
    h1 = habitats["AN-CH1"]
    assert (h1["year"], h1["hexagons"], h1["source"]) == (2023, 3, "deposition-hexagons")
    assert h1["deposition_max"] == 1700 and h1["deposition_mean"] == pytest.approx((1500 + 1700 + 800) / 3, abs=0.05)
    assert h1["exceedance"] == 1700 - 786 and h1["status"] == "overloaded"
    # CH4: 1030 against KDW 1071: 41 below, within the 70 margin.
    assert habitats["AN-CH4"]["exceedance"] == 1030 - 1071 and habitats["AN-CH4"]["status"] == "approaching"
    # CH2 has no hexagons: the raster of 2023, area-weighted over the pixels it overlaps.
    h2 = habitats["AN-CH2"]
    want = R2023.weighted(CH2)
    assert (h2["source"], h2["year"]) == ("nitrogen-deposition", 2023)
    assert h2["deposition_max"] == pytest.approx(want["max"], abs=0.05)
    assert h2["deposition_mean"] == pytest.approx(want["mean"], abs=0.05)
    assert h2["exceedance"] == pytest.approx(want["max"] - 1071, abs=0.05)
    assert h2["status"] == ("overloaded" if want["max"] > 1071 else "approaching" if want["max"] > 1001 else "below")


def test_current_year_is_the_latest_not_after_the_reference_year(world: None, reader_url: str, owner_url: str,
                                                                  settings: Settings) -> None:
    import psycopg

    with psycopg.connect(owner_url) as conn:
        row = conn.execute("SELECT max(year) FROM twin.deposition_hexagons WHERE resolution = '1ha' "
                           "AND year <= 2024").fetchone()
    current = row[0] if row else None
    h1 = next(h for h in _context(reader_url, settings, year=None)["habitats"] if h["habitat_id"] == "AN-CH1")
    if current == 2023:  # ours: the 2025 hexagon lies after the reference year 2024 (from as_of)
        assert (h1["year"], h1["deposition_max"], h1["source"]) == (2023, 1700, "deposition-hexagons")
    else:  # another module left hexagons of 2024: CH1 has none then and falls back to the raster
        assert current == 2024 and h1["source"] == "nitrogen-deposition"


def test_year_parameter_selects_older_hexagons(world: None, reader_url: str, settings: Settings) -> None:
    h1 = next(h for h in _context(reader_url, settings, year=2022)["habitats"] if h["habitat_id"] == "AN-CH1")
    assert (h1["year"], h1["deposition_max"], h1["exceedance"]) == (2022, 2500, 2500 - 786)


def test_housing_within_guide_distance(world: None, reader_url: str, settings: Settings) -> None:
    sites = {s["site_id"]: s for s in _context(reader_url, settings)["housing_within_guide_distance"]}
    # CS3 lies within 500 m of AN-C3, but AN-C3 is outside the circle.
    assert Point(EST["AN-C3"]).distance(CS3) < GUIDE["5.1"] and Point(C).distance(Point(EST["AN-C3"])) > 500
    assert set(sites) == {"AN-CS1", "AN-CS2"}
    (e1,) = sites["AN-CS1"]["establishments"]
    d1 = Point(EST["AN-C1"]).distance(CS1)
    assert e1["establishment_id"] == "AN-C1" and e1["distance_m"] == pytest.approx(d1, abs=0.06)
    assert d1 < REDUCED["4.2"] and e1["severity"] == "conflict"
    (e2,) = sites["AN-CS2"]["establishments"]
    d2 = Point(EST["AN-C2"]).distance(CS2)
    assert REDUCED["3.1"] <= d2 < GUIDE["3.1"] and e2["severity"] == "attention"
    assert e2["distance_m"] == pytest.approx(d2, abs=0.06) and e2["mixed_area_distance_m"] == REDUCED["3.1"]


def test_municipality(world: None, reader_url: str, settings: Settings) -> None:
    result = _context(reader_url, settings)
    assert result["municipality"] == {"code": "GM9911", "name": "AN-West"}
    # The circle reaches x = 40520, past the boundary at 40500.
    assert [m["code"] for m in result["municipalities_in_circle"]] == ["GM9911", "GM9912"]


def test_around_an_establishment(world: None, reader_url: str, settings: Settings) -> None:
    result = _context(reader_url, settings, lon=None, lat=None, establishment="AN-C1", radius=100)
    assert result["centre"]["establishment_id"] == "AN-C1"
    assert (result["centre"]["x"], result["centre"]["y"]) == EST["AN-C1"]
    assert [e["establishment_id"] for e in result["establishments"]] == ["AN-C1"]
    assert result["establishments"][0]["distance_m"] == 0


def test_advisor_sees_no_inspections_of_sole_proprietors(world: None, reader_url: str, settings: Settings) -> None:
    by_id = {e["establishment_id"]: e for e in _context(reader_url, settings, role="advisor")["establishments"]}
    c1, c2 = by_id["AN-C1"], by_id["AN-C2"]
    assert (c1["inspections_visible"], c1["last_inspection"], c1["open_violations"]) == (False, None, None)
    assert (c1["name"], c1["kvk_number"]) == (None, None)
    assert c2["inspections_visible"] and c2["last_inspection"]["date"] == "2023-06-01" and c2["name"]


def test_inspector_of_the_organisation_sees_everything(world: None, reader_url: str, settings: Settings) -> None:
    result = _context(reader_url, settings, role="inspector", org="ODAN")
    own = {e["establishment_id"]: e for e in result["establishments"]}
    assert own["AN-C1"]["name"] == "Varkenshouderij Jansen" and own["AN-C1"]["open_violations"] == 2
    result = _context(reader_url, settings, role="inspector", org="ODXX")
    other = {e["establishment_id"]: e for e in result["establishments"]}
    assert other["AN-C1"]["name"] is None and other["AN-C1"]["last_inspection"] is None
    assert other["AN-C2"]["name"] == "Bakkerij De Korenaar BV" and other["AN-C2"]["open_violations"] is None


# --- The API -------------------------------------------------------------------------------------------------
def test_api_anonymous_gets_no_personal_or_inspection_data(world: None, client: TestClient) -> None:
    lon, lat = lonlat(*C)
    r = client.get("/analysis/context", params={"lon": lon, "lat": lat, "as_of": "2024-06-30"})
    assert r.status_code == 200, r.text
    body = r.json()
    by_id = {e["establishment_id"]: e for e in body["establishments"]}
    assert set(by_id) == {"AN-C1", "AN-C2"}
    assert by_id["AN-C1"]["name"] is None and by_id["AN-C1"]["kvk_number"] is None
    assert by_id["AN-C2"]["name"] == "Bakkerij De Korenaar BV"
    for e in by_id.values():
        assert e["last_inspection"] is None and e["open_violations"] is None and not e["inspections_visible"]
    assert body["inspection_scope"].startswith("none")
    assert {s["site_id"] for s in body["housing_within_guide_distance"]} == {"AN-CS1", "AN-CS2"}
    cs1 = next(s for s in body["housing_within_guide_distance"] if s["site_id"] == "AN-CS1")
    assert cs1["establishments"][0]["name"] is None  # the sole proprietor's name, also here


def test_api_with_keys(world: None, client: TestClient, owner_url: str) -> None:
    """Through the real authentication and row-level security: an inspector of the organisation sees the
    sole proprietor and its open violations; an advisor sees neither."""
    lon, lat = lonlat(*C)
    params = {"lon": lon, "lat": lat, "as_of": "2024-06-30"}
    own = client.get("/analysis/context", params=params, headers=api_key(owner_url, "inspector", "ODAN")).json()
    c1 = next(e for e in own["establishments"] if e["establishment_id"] == "AN-C1")
    assert c1["name"] == "Varkenshouderij Jansen" and c1["open_violations"] == 2
    assert c1["last_inspection"]["lhs_cell"] == "A1"
    adv = client.get("/analysis/context", params=params, headers=api_key(owner_url, "advisor")).json()
    by_id = {e["establishment_id"]: e for e in adv["establishments"]}
    assert by_id["AN-C1"]["name"] is None and by_id["AN-C1"]["open_violations"] is None
    assert by_id["AN-C2"]["open_violations"] == 0 and by_id["AN-C2"]["last_inspection"]["date"] == "2023-06-01"


def test_api_empty_circle(world: None, client: TestClient) -> None:
    lon, lat = lonlat(20000, 480000)
    body = client.get("/analysis/context", params={"lon": lon, "lat": lat, "radius": 1000}).json()
    assert body["establishments"] == [] and body["habitats"] == [] and body["housing_within_guide_distance"] == []
    assert body["deposition"]["at_point"] == [] and body["deposition"]["in_circle"] == []
    assert body["municipality"] is None and body["municipalities_in_circle"] == []
    assert body["radius_m"] == 1000


@pytest.mark.parametrize(
    ("params", "status", "parameter", "words"),
    [
        ({"lon": 10.0, "lat": 50.0}, 400, "lon", "outside the Netherlands"),
        ({"lon": 52.1, "lat": 5.1}, 400, "lon", "swap"),
        ({"lon": 4.0, "lat": 52.5, "radius": 5001}, 400, "radius", "maximum of 5000"),
        ({"lon": 4.0, "lat": 52.5, "radius": -1}, 400, "radius", "positive"),
        ({"lon": 4.0}, 400, "lat", "lon and lat"),
        ({"establishment": "AN-NOPE"}, 404, "establishment", "not in the twin"),
        ({"establishment": "AN-C1", "lon": 4.0, "lat": 52.5}, 400, "establishment", "not both"),
        ({"lon": 4.0, "lat": 52.5, "f": "pdf"}, 400, "f", "f=html"),
        ({"lon": "nan", "lat": 52.5}, 400, "lon", "finite"),
        ({"lon": 4.0, "lat": 52.5, "radius": "nan"}, 400, "radius", "positive"),
        ({"establishment": "AN-\x01"}, 400, "establishment", "control characters"),
        ({"establishment": "x" * 201}, 400, "establishment", "at most 200"),
    ],
)
def test_api_bad_input(world: None, client: TestClient, params: dict, status: int, parameter: str, words: str) -> None:
    r = client.get("/analysis/context", params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["parameter"] == parameter and words in body["description"]


def test_api_default_radius(world: None, client: TestClient) -> None:
    lon, lat = lonlat(*C)
    assert client.get("/analysis/context", params={"lon": lon, "lat": lat}).json()["radius_m"] == 500


def test_api_printable_report(world: None, client: TestClient) -> None:
    lon, lat = lonlat(*C)
    r = client.get("/analysis/context", params={"lon": lon, "lat": lat, "as_of": "2024-06-30", "f": "html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "Gebiedsrapport: AN-West (GM9911)" in page
    assert "@media print" in page and "@page" in page
    assert "AN-CS1" in page and "Bakkerij De Korenaar BV" in page and "Varkenshouderij Jansen" not in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # no external assets
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert m is not None
    png = base64.b64decode(m.group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (600, 600)


def test_sync_wrapper_in_a_script_and_in_a_notebook(world: None, settings: Settings) -> None:
    """The synchronous wrapper opens its own connection; inside a running event loop (Jupyter) it runs in a
    worker thread."""
    import asyncio

    from twin.analyses.context import area_context_sync

    lon, lat = lonlat(*C)
    plain = area_context_sync(settings, lon=lon, lat=lat, as_of=AS_OF, year=2023)

    async def notebook_cell() -> dict:
        return area_context_sync(settings, lon=lon, lat=lat, as_of=AS_OF, year=2023)

    in_loop = asyncio.run(notebook_cell())
    for result in (plain, in_loop):
        c1 = next(e for e in result["establishments"] if e["establishment_id"] == "AN-C1")
        assert c1["open_violations"] == 2 and c1["name"] == "Varkenshouderij Jansen"  # trusted like an admin
    assert plain == in_loop


def test_report_of_an_establishment_names_it_as_far_as_the_reader_may_see(world: None, client: TestClient,
                                                                          owner_url: str) -> None:
    """Issue 18: the title is the establishment's name and address (masked for a natural person unless the
    reader may see it), the full inspection history up to the reference date for those who may see it."""
    params = {"establishment": "AN-C1", "as_of": "2024-06-30", "f": "html"}
    try:
        anonymous = client.get("/analysis/context", params=params).text
        # AN-C1 is a sole proprietor: no name in the title, no history, for an anonymous reader
        assert "<title>Gebiedsrapport: inrichting AN-C1 (naam en adres afgeschermd)" in anonymous
        assert "Varkenshouderij Jansen" not in anonymous and "Inspectiegeschiedenis (–)" in anonymous
        inspector = client.get("/analysis/context", params={**params, "lang": "en"},
                               headers=api_key(owner_url, "inspector", "ODAN")).text
        assert "<title>Area report: Varkenshouderij Jansen</title>" in inspector
        # CI1, CI2, CI3 up to 30 June 2024 (CI4 is of 2025): the full history, newest first, in long dates
        assert "Inspection history (3)" in inspector
        history = inspector[inspector.index("Inspection history (3)"):]
        assert history.index("1 September 2023") < history.index("10 May 2023") < history.index("1 March 2022")
        assert "Inspecteur X" not in inspector  # staff names stay out
        other = client.get("/analysis/context", params=params, headers=api_key(owner_url, "inspector", "ODX")).text
        assert "Varkenshouderij Jansen" not in other and "Inspectiegeschiedenis (–)" in other
    finally:
        drop_api_keys(owner_url)


def test_report_is_styled_and_printable_under_the_csp(world: None, client: TestClient) -> None:
    """Issue 18 item 1: the <style> carries the response's CSP nonce, no inline handler, the print button is
    wired from an external script; Dutch by default."""
    lon, lat = lonlat(*C)
    r = client.get("/analysis/context", params={"lon": lon, "lat": lat, "as_of": "2024-06-30", "f": "html"})
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
    assert f'<style nonce="{nonce}">' in r.text and "style-src 'self' 'nonce-" in csp
    assert "onclick" not in r.text and re.search(r'<script src="/static/report\.js\?v=[0-9a-f]+" defer>', r.text)
    assert '<html lang="nl">' in r.text and "Afdrukken / opslaan als PDF" in r.text
    assert "Peildatum 30 juni 2024" in r.text and "Gegenereerd op" in r.text
    script = client.get(re.search(r'src="(/static/report\.js[^"]*)"', r.text).group(1))  # type: ignore[union-attr]
    assert script.status_code == 200 and "window.print()" in script.text
