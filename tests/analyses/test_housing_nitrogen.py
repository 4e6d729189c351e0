"""Housing against nitrogen and zoning: a hand-built world north of the context test's (RD y 513-530 km,
offshore). The expected figures of every site are computed here with shapely from the inserted geometries
and values, and the verdicts from the rules as docs/analyses.md states them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pytest
from analyses_support import (
    Raster,
    as_role,
    cleanup_statements,
    establishment,
    execute,
    hexagon,
    hexagon_row,
    housing_site,
    municipality,
)
from fastapi.testclient import TestClient
from shapely.geometry import Point, box, shape
from shapely.geometry.base import BaseGeometry

from twin.analyses.common import Disclosure
from twin.analyses.housing import housing_nitrogen
from twin.settings import Settings

AS_OF = date(2024, 6, 30)
GM_W, GM_E = box(36000, 516000, 40000, 524000), box(40000, 516000, 44000, 524000)
TILE_A = Raster(37000, 522000, 100, np.array([[1200 + 4 * c + 9 * r for c in range(20)] for r in range(60)], float))
TILE_B = Raster(39000, 522000, 100, np.array([[1200 + 4 * (c + 20) + 9 * r for c in range(20)] for r in range(60)],
                                              float))
SITES: dict[str, BaseGeometry] = {
    "AN-HS1": box(38850, 520030, 39150, 520230),  # across the two raster tiles
    "AN-HS2": box(39800, 517000, 40300, 517400),  # across the two municipalities (40 % west, 60 % east)
    "AN-HS3": box(37200, 523000, 37500, 523300),
    "AN-HS4": box(43000, 523000, 43200, 523200),  # nothing near, no raster
    "AN-HS5": box(35800, 518000, 36000, 518200),  # touches the west municipality from outside
}
DWELLINGS = {"AN-HS1": 200, "AN-HS2": 350, "AN-HS3": 60, "AN-HS4": 25, "AN-HS5": 12}
# id: (x, y, category, sole proprietor)
ESTABLISHMENTS = {
    "AN-HE1": (39230.0, 520130.0, "4.1", True),
    "AN-HE2": (38780.0, 520130.0, "3.2", False),
    "AN-HE3": (39000.0, 520270.0, "2", False),
    "AN-HE4": (39000.0, 520130.0, None, False),
    "AN-HE5": (39000.0, 521680.0, "6", False),
}
GUIDE = {"1": 10, "2": 30, "3.1": 50, "3.2": 100, "4.1": 200, "4.2": 300, "5.1": 500, "5.2": 700, "5.3": 1000,
         "6": 1500}
# receptor: (x, y, year, deposition, lowest KDW)
HEXAGONS = {
    1: (41100, 517200, 2023, 1900, 1071),
    2: (41300, 517200, 2023, 1060, 1071),
    3: (40050, 514000, 2023, 800, 1071),
    4: (37350, 525600, 2023, 2000, 714),
    5: (37350, 525600, 2021, 5000, 714),
    6: (34500, 523150, 2023, 1021, 1071),
    7: (37350, 523700, 2025, 9000, 714),
    8: (37350, 529000, 2023, 3000, 714),
}
# The reference year is given explicitly (2023), so that hexagons other test modules may leave in the
# session database for later years cannot change the current year.
RADIUS, NEAR, MARGIN, REF_YEAR = 5000.0, 1000.0, 70.0, 2023


@pytest.fixture(scope="module")
def world(owner_url: str) -> Iterator[None]:
    statements = [
        *cleanup_statements(),
        municipality("GM9921", "AN-Noord-West", GM_W),
        municipality("GM9922", "AN-Noord-Oost", GM_E),
        TILE_A.insert(2023, "AN-2023"),
        TILE_B.insert(2023, "AN-2023"),
        *(establishment(eid, x, y, category=cat, sole=sole, name=f"Bedrijf {eid}")
          for eid, (x, y, cat, sole) in ESTABLISHMENTS.items()),
        *(housing_site(sid, geom, DWELLINGS[sid], municipality_code="GM0000" if sid == "AN-HS5" else None)
          for sid, geom in SITES.items()),
        *(hexagon_row(990100000 + rid, year, hexagon(x, y), dep, kdw)
          for rid, (x, y, year, dep, kdw) in HEXAGONS.items()),
    ]
    execute(owner_url, statements)
    yield
    execute(owner_url, cleanup_statements())


def expected_site(sid: str) -> dict[str, Any]:
    """The figures and verdict of a site, from first principles."""
    site = SITES[sid]
    # The current year: the latest hexagon year not after the reference year, across the twin.
    current = max(h[2] for h in HEXAGONS.values() if h[2] <= REF_YEAR)
    hexes = [(h[3] - h[4], hexagon(h[0], h[1])) for h in HEXAGONS.values()
             if h[2] == current and hexagon(h[0], h[1]).distance(site) <= RADIUS]
    year = current if hexes else None
    over = [(exc, g) for exc, g in hexes if exc > 0]
    appr = [(exc, g) for exc, g in hexes if -MARGIN < exc <= 0]
    ests = []
    for eid, (x, y, cat, _) in ESTABLISHMENTS.items():
        if cat is None:
            continue
        d = Point(x, y).distance(site)
        if d < GUIDE[cat]:
            steps = list(GUIDE.values())
            reduced = steps[steps.index(GUIDE[cat]) - 1] if GUIDE[cat] > 10 else 0
            ests.append((d, eid, cat, reduced))
    reasons_conflict = [e for e in ests if e[0] < e[3]]
    nearest_over = min((g.distance(site) for _, g in over), default=None)
    if reasons_conflict or (nearest_over is not None and nearest_over <= NEAR):
        verdict = "conflict"
    elif ests or over or appr:
        verdict = "attention"
    else:
        verdict = "no constraint"
    tiles = [TILE_A, TILE_B]
    pairs = [(px.intersection(site).area, v) for t in tiles for px, v in t.pixels()]
    pairs = [(a, v) for a, v in pairs if a > 0]
    dep = None if not pairs else {"mean": sum(a * v for a, v in pairs) / sum(a for a, _ in pairs),
                                  "max": max(v for _, v in pairs)}
    return {
        "year": year,
        "overloaded": len(over), "overloaded_ha": sum(g.area for _, g in over) / 10000,
        "approaching": len(appr), "approaching_ha": sum(g.area for _, g in appr) / 10000,
        "worst": max((exc for exc, _ in over + appr), default=None),
        "nearest_over": nearest_over,
        "nearest_appr": min((g.distance(site) for _, g in appr), default=None),
        "establishments": sorted(ests), "verdict": verdict, "deposition": dep,
    }


def _run(reader_url: str, settings: Settings, role: str = "admin", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("year", REF_YEAR)
    kwargs.setdefault("lang", "en")  # the reasons below are checked in English
    return as_role(reader_url, housing_nitrogen, settings, role=role, as_of=AS_OF, disclosure=Disclosure(role),
                   **kwargs)


def _ours(collection: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in collection["features"] if f["id"].startswith("AN-")}


@pytest.mark.parametrize("sid", sorted(SITES))
def test_site_figures_and_verdict(world: None, reader_url: str, settings: Settings, sid: str) -> None:
    feature = _ours(_run(reader_url, settings))[sid]
    p = feature["properties"]
    want = expected_site(sid)
    hx = p["habitats"]
    assert hx["year"] == want["year"]
    assert hx["overloaded_hexagons"] == want["overloaded"]
    assert hx["overloaded_ha"] == pytest.approx(want["overloaded_ha"], abs=0.006)
    assert hx["approaching_hexagons"] == want["approaching"]
    assert hx["approaching_ha"] == pytest.approx(want["approaching_ha"], abs=0.006)
    for key, wkey in (("worst_exceedance", "worst"), ("nearest_overloaded_m", "nearest_over"),
                      ("nearest_approaching_m", "nearest_appr")):
        assert (hx[key] is None) == (want[wkey] is None)
        if want[wkey] is not None:
            assert hx[key] == pytest.approx(want[wkey], abs=0.06)
    got = [(e["distance_m"], e["establishment_id"], e["environmental_category"], e["mixed_area_distance_m"])
           for e in p["establishments"]]
    assert [g[1:] for g in got] == [w[1:] for w in want["establishments"]]
    for g, w in zip(got, want["establishments"], strict=True):
        assert g[0] == pytest.approx(w[0], abs=0.06)
    assert p["verdict"] == want["verdict"]
    assert p["reasons"] and all(isinstance(r, str) and r for r in p["reasons"])
    if want["deposition"] is None:
        assert p["deposition"]["mean"] is None and p["deposition"]["year"] is None
    else:
        assert p["deposition"]["year"] == 2023
        assert p["deposition"]["mean"] == pytest.approx(want["deposition"]["mean"], abs=0.05)
        assert p["deposition"]["max"] == pytest.approx(want["deposition"]["max"], abs=0.05)
    assert p["planned_dwellings"] == DWELLINGS[sid]
    # The geometry is WGS84 and lands back on the RD box.
    from pyproj import Transformer

    to_rd = Transformer.from_crs("EPSG:4326", "EPSG:28992", always_xy=True)
    back = shape(feature["geometry"])
    xs, ys = to_rd.transform(*back.exterior.coords.xy) if back.geom_type == "Polygon" else \
        to_rd.transform(*back.geoms[0].exterior.coords.xy)
    # 7 decimals of a degree are about 1 cm.
    assert (min(xs), min(ys), max(xs), max(ys)) == pytest.approx(SITES[sid].bounds, abs=0.02)


def test_hand_checked_verdicts(world: None, reader_url: str, settings: Settings) -> None:
    """The world is built so that each verdict occurs, for the reasons below."""
    p = {k: f["properties"] for k, f in _ours(_run(reader_url, settings)).items()}
    # HS1: HE1 (4.1: 200 m, 100 m in a mixed area) lies 80 m away.
    assert p["AN-HS1"]["verdict"] == "conflict"
    assert any("AN-HE1" in r and "mixed area" in r for r in p["AN-HS1"]["reasons"])
    # HS2: an overloaded hexagon 738 m away (1,100 - 62.04 - 300).
    assert p["AN-HS2"]["verdict"] == "conflict"
    assert p["AN-HS2"]["habitats"]["nearest_overloaded_m"] == pytest.approx(41100 - 62.0403 - 40300, abs=0.06)
    # HS3: overloaded 2.2 km away; 2021's and 2025's hexagons are not of the current year (2023), the one at
    # y 529000 lies beyond 5 km.
    assert p["AN-HS3"]["verdict"] == "attention" and p["AN-HS3"]["habitats"]["year"] == 2023
    assert p["AN-HS4"]["verdict"] == "no constraint"
    assert p["AN-HS4"]["reasons"] == ["no establishment's guide distance reaches the site and no overloaded or "
                                      "approaching habitat hexagon lies within 5,000 m"]


def test_site_across_two_municipalities(world: None, reader_url: str, settings: Settings) -> None:
    west = _ours(_run(reader_url, settings, municipality_code="GM9921"))
    east = _ours(_run(reader_url, settings, municipality_code="GM9922"))
    assert sorted(west) == ["AN-HS1", "AN-HS2", "AN-HS3"]  # not HS5, which only touches the boundary
    assert sorted(east) == ["AN-HS2", "AN-HS4"]
    p = east["AN-HS2"]["properties"]
    w_share = SITES["AN-HS2"].intersection(GM_W).area / SITES["AN-HS2"].area
    e_share = SITES["AN-HS2"].intersection(GM_E).area / SITES["AN-HS2"].area
    assert (w_share, e_share) == pytest.approx((0.4, 0.6))
    assert [(m["code"], m["share"]) for m in p["municipalities"]] == [("GM9922", pytest.approx(e_share)),
                                                                      ("GM9921", pytest.approx(w_share))]
    assert p["municipality_code"] == "GM9922"  # the largest overlap
    # Outside every municipality: the site's own attribute.
    hs5 = _ours(_run(reader_url, settings))["AN-HS5"]["properties"]
    assert hs5["municipalities"] == [] and hs5["municipality_code"] == "GM0000"


def test_anonymous_does_not_see_sole_proprietor_names(world: None, reader_url: str, settings: Settings) -> None:
    est = {e["establishment_id"]: e for e in
           _ours(_run(reader_url, settings, role="anonymous"))["AN-HS1"]["properties"]["establishments"]}
    assert est["AN-HE1"]["name"] is None and est["AN-HE2"]["name"] == "Bedrijf AN-HE2"


def test_api(world: None, client: TestClient) -> None:
    r = client.get("/analysis/housing-nitrogen", params={"municipality": "GM9922", "as_of": "2024-06-30",
                                                          "year": REF_YEAR})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["municipality"] == {"code": "GM9922", "name": "AN-Noord-Oost"}
    assert sorted(f["id"] for f in body["features"]) == ["AN-HS2", "AN-HS4"]
    assert body["verdicts"] == {"no constraint": 1, "attention": 0, "conflict": 1}
    assert body["parameters"]["habitat_radius_m"] == RADIUS


def test_api_answer_is_kept_until_a_table_it_reads_changes(world: None, client: TestClient, owner_url: str) -> None:
    params = {"municipality": "GM9922", "as_of": "2024-06-30", "year": REF_YEAR}
    first = client.get("/analysis/housing-nitrogen", params=params)
    second = client.get("/analysis/housing-nitrogen", params=params)
    assert (first.headers["X-Analysis-Cache"], second.headers["X-Analysis-Cache"]) == ("miss", "hit")
    assert second.headers["content-type"].startswith("application/geo+json")
    assert second.json() == first.json()
    # another reference date is another answer
    assert client.get("/analysis/housing-nitrogen", params={**params, "as_of": "2024-07-01"}).headers[
        "X-Analysis-Cache"] == "miss"

    def dwellings(r: Any) -> int:
        return int(next(f for f in r.json()["features"] if f["id"] == "AN-HS2")["properties"]["planned_dwellings"])

    before = dwellings(first)
    execute(owner_url, [("UPDATE twin.housing_sites SET planned_dwellings = %s WHERE site_id = 'AN-HS2'",
                         (before + 1,))])
    try:
        changed = client.get("/analysis/housing-nitrogen", params=params)
        assert changed.headers["X-Analysis-Cache"] == "miss" and dwellings(changed) == before + 1
    finally:
        execute(owner_url, [("UPDATE twin.housing_sites SET planned_dwellings = %s WHERE site_id = 'AN-HS2'",
                             (before,))])
    # any statement on the deposition raster (read for the mean deposition) counts, even one that changes no row
    execute(owner_url, [("UPDATE twin.nitrogen_deposition SET rast = rast WHERE false", None)])
    assert client.get("/analysis/housing-nitrogen", params=params).headers["X-Analysis-Cache"] == "miss"


def test_api_unknown_municipality(world: None, client: TestClient) -> None:
    r = client.get("/analysis/housing-nitrogen", params={"municipality": "GM9999"})
    assert r.status_code == 404 and r.json()["parameter"] == "municipality"
    assert "GM9999" in r.json()["description"]
    r = client.get("/analysis/housing-nitrogen", params={"municipality": "GM\x01"})
    assert r.status_code == 400 and r.json()["parameter"] == "municipality"


def test_sync_wrapper(world: None, settings: Settings) -> None:
    from twin.analyses.housing import housing_nitrogen_sync

    result = housing_nitrogen_sync(settings, municipality_code="GM9922", as_of=AS_OF, year=REF_YEAR)
    assert sorted(f["id"] for f in result["features"]) == ["AN-HS2", "AN-HS4"]


def _hex_exceedances(sid: str) -> list[tuple[float, float]]:
    """(deposition - KDW, distance to the site) of the current-year hexagons within the radius."""
    return [(h[3] - h[4], hexagon(h[0], h[1]).distance(SITES[sid])) for h in HEXAGONS.values()
            if h[2] == REF_YEAR and hexagon(h[0], h[1]).distance(SITES[sid]) <= RADIUS]


def test_criteria_explain_the_verdict(world: None, reader_url: str, settings: Settings) -> None:
    """Issue 18 item 4: every criterion with value, thresholds and whether it triggered; the verdict follows
    from them and says what drives it. Worked out by hand from the world above."""
    p = {k: f["properties"] for k, f in _ours(_run(reader_url, settings)).items()}
    hs1 = p["AN-HS1"]
    zoning = [(c["establishment_id"], c["value"], c["thresholds"], c["effect"]) for c in hs1["criteria"]
              if c["criterion"] == "zoning"]
    # HS1 = box(38850, 520030, 39150, 520230): HE1 (4.1: 200 m, mixed 100 m) at x 39230 lies 39230 - 39150 = 80 m
    # east; HE2 (3.2: 100 / 50 m) at x 38780 lies 38850 - 38780 = 70 m west; HE5 (6: 1500 / 1000 m) at y 521680
    # lies 521680 - 520230 = 1450 m north; HE3 (2: 30 m) lies 40 m away: beyond its guide distance.
    assert zoning == [("AN-HE2", pytest.approx(70, abs=0.06), {"attention": 100, "conflict": 50}, "attention"),
                      ("AN-HE1", pytest.approx(80, abs=0.06), {"attention": 200, "conflict": 100}, "conflict"),
                      ("AN-HE5", pytest.approx(1450, abs=0.06), {"attention": 1500, "conflict": 1000}, "attention")]
    by = {c["criterion"]: c for c in hs1["criteria"] if c["criterion"] != "zoning"}
    exc = _hex_exceedances("AN-HS1")
    nearest_over = min(d for e, d in exc if e > 0)  # hexagon 1 (1,900 on a KDW of 1,071), about 3.3 km away
    assert 3000 < nearest_over < 4000
    assert by["habitat-distance"]["value"] == pytest.approx(nearest_over, abs=0.06)
    assert by["habitat-distance"]["thresholds"] == {"conflict": NEAR} and by["habitat-distance"]["triggered"] is False
    # the least headroom within 5 km: KDW - deposition of the worst hexagon = 1,071 - 1,900 = -829
    assert by["nitrogen-headroom"]["value"] == pytest.approx(-max(e for e, _ in exc)) == pytest.approx(-829)
    assert by["nitrogen-headroom"]["triggered"] is True and by["nitrogen-headroom"]["effect"] == "attention"
    assert hs1["verdict"] == "conflict" and hs1["drivers"] == ["zoning"] and hs1["indicative"] is True
    # HS2: no establishment's guide distance reaches it; an overloaded hexagon 738 m away: conflict by nitrogen
    hs2 = p["AN-HS2"]
    assert hs2["verdict"] == "conflict" and hs2["drivers"] == ["nitrogen"]
    assert [c["triggered"] for c in hs2["criteria"]] == [False, True, True]
    hd = next(c for c in hs2["criteria"] if c["criterion"] == "habitat-distance")
    assert hd["value"] == pytest.approx(41100 - 62.0403 - 40300, abs=0.06) and hd["effect"] == "conflict"
    # HS4: nothing within reach; every criterion checked, none triggered
    assert p["AN-HS4"]["drivers"] == [] and not any(c["triggered"] for c in p["AN-HS4"]["criteria"])
    # the verdict's numbers are the table's: the reasons quote the criteria values
    assert any("80 m" in r and "AN-HE1" in r for r in hs1["reasons"])


def test_dutch_reasons_by_default(world: None, reader_url: str, settings: Settings) -> None:
    p = _ours(_run(reader_url, settings, lang="nl"))["AN-HS1"]["properties"]
    assert p["verdict_label"] == "conflict"
    assert any("AN-HE1" in r and "gemengd gebied" in r for r in p["reasons"])
    assert any("1.450 m" in r for r in p["reasons"])  # Dutch thousands separator


def test_api_filters_exports_and_printable_verdicts(world: None, client: TestClient) -> None:
    base = {"municipality": "GM9921", "as_of": "2024-06-30", "year": REF_YEAR}
    r = client.get("/analysis/housing-nitrogen", params={**base, "verdict": "conflict"})
    assert sorted(f["id"] for f in r.json()["features"]) == ["AN-HS1", "AN-HS2"]
    r = client.get("/analysis/housing-nitrogen", params={**base, "verdict": ["attention", "no-constraint"]})
    assert sorted(f["id"] for f in r.json()["features"]) == ["AN-HS3"]
    bad = client.get("/analysis/housing-nitrogen", params={**base, "verdict": "fine"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "verdict"
    csv_r = client.get("/analysis/housing-nitrogen", params={**base, "f": "csv"})
    assert csv_r.headers["content-type"].startswith("text/csv") and "attachment" in csv_r.headers[
        "content-disposition"]
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(csv_r.content.decode("utf-8-sig"))))
    assert sorted(r["site_id"] for r in rows) == ["AN-HS1", "AN-HS2", "AN-HS3"]
    hs1 = next(r for r in rows if r["site_id"] == "AN-HS1")
    assert hs1["verdict"] == "conflict" and hs1["drivers"] == "zoning" and hs1["indicative"] == "true"
    assert float(hs1["nearest_establishment_m"]) == pytest.approx(70, abs=0.06) and hs1["headroom"] == "-829.0"
    geo = client.get("/analysis/housing-nitrogen", params={**base, "f": "geojson"})
    assert geo.headers["content-type"].startswith("application/geo+json") and geo.json()["indicative"] is True
    page = client.get("/analysis/housing-nitrogen", params={**base, "f": "html", "verdict": "conflict"})
    assert page.headers["content-type"].startswith("text/html")
    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"]).group(1)  # type: ignore[union-attr]
    assert f'<style nonce="{nonce}">' in page.text and "onclick" not in page.text
    assert "Indicatief oordeel: conflict" in page.text and "AN-HS1" in page.text and "AN-HS3" not in page.text
    assert "Criteria van het oordeel" in page.text and "TWIN_ANALYSIS_HOUSING_CONFLICT_HABITAT_M" in page.text


def test_site_context_shares_the_verdicts_distances(world: None, client: TestClient) -> None:
    """Issue 18: the verdict said 0 m where the table said 251 m (distance to the centre), and cited a
    habitat at 4.4 km where the table searched 3 km. A site's context measures from the site's edge, within
    the verdict's habitat radius, and carries the verdict itself."""
    r = client.get("/analysis/context", params={"site": "AN-HS1", "as_of": "2024-06-30", "year": REF_YEAR,
                                                "radius": 2000})
    assert r.status_code == 200, r.text
    ctx = r.json()
    assert ctx["measured_from"] == "site" and ctx["habitat_radius_m"] == RADIUS
    dist = {e["establishment_id"]: e["distance_m"] for e in ctx["establishments"]}
    verdict = {c["establishment_id"]: c["value"] for c in ctx["housing_site"]["criteria"] if c["criterion"] == "zoning"}
    for eid, d in verdict.items():
        assert dist[eid] == pytest.approx(d, abs=0.01)
    assert ctx["housing_site"]["verdict"] == "conflict"
    page = client.get("/analysis/context", params={"site": "AN-HS1", "as_of": "2024-06-30", "year": REF_YEAR,
                                                   "f": "html"}).text
    assert "woningbouwlocatie" in page and "(AN-HS1)" in page and "Indicatief oordeel: conflict" in page
    assert client.get("/analysis/context", params={"site": "AN-NOPE"}).status_code == 404


def test_signed_report_link(world: None, client: TestClient, owner_url: str) -> None:
    """The report opens in a new tab with the caller's rights, without the key in the URL."""
    from analyses_support import api_key, drop_api_keys

    href = "/analysis/housing-nitrogen?municipality=GM9921&as_of=2024-06-30&year=2023&f=html"
    try:
        headers = api_key(owner_url, "inspector", "ODAN")
        link = client.get("/analysis/link", params={"href": href}, headers=headers).json()
        assert "grant=" in link["href"] and headers["Authorization"].split()[1] not in link["href"]
        page = client.get(link["href"])
        assert page.status_code == 200 and "inspecteur, organisatie ODAN" in page.text
        assert page.headers["cache-control"] == "private, no-store"
        # bound to its parameters: another municipality with the same grant is refused
        other = client.get(link["href"].replace("GM9921", "GM9922"))
        assert other.status_code == 401 and "verlopen" not in other.json()["description"]
        # not for any other path
        assert client.get("/analysis/link", params={"href": "/admin/audit"}, headers=headers).status_code == 400
        anon = client.get("/analysis/link", params={"href": href}).json()
        assert anon["href"] == href and anon["expires"] is None
    finally:
        drop_api_keys(owner_url)
