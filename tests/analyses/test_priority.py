"""Inspection priority: a hand-built world south-east of the others (RD x 56-66 km, y 496-504 km,
offshore). The expected score of every establishment is worked out here from the inserted rows and the
weights file, with the model as docs/analyses.md states it; overrides go through the real CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from analyses_support import (
    api_key,
    as_role,
    building,
    cleanup_statements,
    drop_api_keys,
    establishment,
    execute,
    hexagon,
    hexagon_row,
    housing_site,
    inspection,
    municipality,
    permit,
)
from fastapi.testclient import TestClient
from shapely.geometry import Point, box
from typer.testing import CliRunner

from twin.analyses.common import Disclosure
from twin.analyses.priority import inspection_priority
from twin.errors import ConfigurationError, InvalidParameter, NotFound, Unauthorized
from twin.settings import Settings

AS_OF = date(2024, 6, 30)
WEIGHTS = yaml.safe_load((Path(__file__).resolve().parents[2] / "twin" / "priority.yaml").read_text())
GUIDE = {"1": 10, "2": 30, "3.1": 50, "3.2": 100, "4.1": 200, "4.2": 300, "5.1": 500, "5.2": 700, "5.3": 1000,
         "6": 1500}
# id: x, y, category, Brzo, type, frequency, sole proprietor, organisation
EST: dict[str, tuple[Any, ...]] = {
    "AN-P1": (59000.0, 500000.0, "5.1", True, "C", 1, False, "ODAN"),
    "AN-P2": (57000.0, 498000.0, "3.1", False, "B", 3, False, "ODAN"),
    "AN-P3": (57500.0, 502000.0, "2", False, "A", 3, True, "ODAN"),
    "AN-P4": (58000.0, 501000.0, None, False, None, None, False, "ODAN"),
    "AN-P5": (63000.0, 499000.0, "4.2", False, "B", 5, False, "ODAN"),
    "AN-P6": (61000.0, 497000.0, "3.2", False, "B", 3, False, "ODXX"),
}
# id: establishment, date, result, LHS cell, organisation
INSPECTIONS = {
    "AN-PI0": ("AN-P1", "2018-05-01", "voorschriften overtreden", "D4", "ODAN"),
    "AN-PI1": ("AN-P1", "2023-01-10", "voorschriften overtreden", "C3", "ODAN"),
    "AN-PI2": ("AN-P1", "2024-02-01", "voorschriften overtreden", "B2", "ODAN"),
    "AN-PI3": ("AN-P3", "2015-06-01", "voorschriften nageleefd", None, "ODAN"),
    "AN-PI4": ("AN-P3", "2015-03-01", "voorschriften overtreden", "A2", "ODAN"),
    "AN-PI5": ("AN-P4", "2024-05-01", "voorschriften overtreden", None, "ODAN"),
    "AN-PI6": ("AN-P5", "2021-01-01", "voorschriften nageleefd", None, "ODAN"),
    "AN-PI7": ("AN-P6", "2024-01-15", "voorschriften overtreden", "D4", "ODXX"),
}
NH3 = {"AN-P1": 5000.0}
# receptor: x, y, deposition, lowest KDW (year 2023)
HEXES = {1: (60500, 500000, 1900, 1071), 2: (63000, 500000, 2500, 1071), 3: (59000, 501000, 1000, 1050)}
BUILDINGS = {"AN-PB1": ((59300, 500000), "woonfunctie"), "AN-PB2": ((59000, 500400), "woonfunctie"),
             "AN-PB3": ((58600, 500000), "woonfunctie"), "AN-PB4": ((59000, 500600), "woonfunctie"),
             "AN-PB5": ((59100, 500000), "industriefunctie")}
SITES = {"AN-PS1": box(59000, 499600, 59200, 499700)}
GM_W, GM_E = box(56000, 496000, 62000, 504000), box(62000, 496000, 66000, 504000)


def _square(x: float, y: float) -> Any:
    return box(x - 5, y - 5, x + 5, y + 5)


@pytest.fixture(scope="module")
def world(owner_url: str) -> Iterator[None]:
    statements = [
        *cleanup_statements(),
        municipality("GM9931", "AN-Zuid-West", GM_W),
        municipality("GM9932", "AN-Zuid-Oost", GM_E),
        *(establishment(eid, x, y, category=cat, brzo=brzo, ab_type=ab, freq=freq, sole=sole, org=org,
                        name=f"Bedrijf {eid}", kvk="11223344" if sole else None)
          for eid, (x, y, cat, brzo, ab, freq, sole, org) in EST.items()),
        *(inspection(iid, eid, on, result, lhs=lhs, org=org)
          for iid, (eid, on, result, lhs, org) in INSPECTIONS.items()),
        permit("AN-PP1", "AN-P1", valid_from="2020-01-01", nh3=NH3["AN-P1"]),
        permit("AN-PP2", "AN-P2", valid_from="2020-01-01", valid_until="2022-12-31", nh3=900),  # expired
        *(hexagon_row(990200000 + rid, 2023, hexagon(x, y), dep, kdw) for rid, (x, y, dep, kdw) in HEXES.items()),
        *(building(bid, _square(*xy), use) for bid, (xy, use) in BUILDINGS.items()),
        *(housing_site(sid, geom, 30) for sid, geom in SITES.items()),
    ]
    execute(owner_url, statements)
    yield
    execute(owner_url, cleanup_statements())
    drop_api_keys(owner_url)


def expected(eid: str, weights: dict[str, Any] = WEIGHTS) -> dict[str, float]:
    """The factor points of one establishment, from first principles."""
    x, y, cat, brzo, ab, freq, _, _ = EST[eid]
    w = weights["relevance"]
    rel = (w["category_points"][cat] if cat else w["unknown_category_points"]) + (w["brzo_points"] if brzo else 0) \
        + (w["activiteitenbesluit_points"][ab] if ab else w["unknown_type_points"])
    w = weights["compliance"]
    viol = sorted((on, lhs) for _, (e, on, result, lhs, _) in INSPECTIONS.items()
                  if e == eid and result == "voorschriften overtreden")
    comp = 0.0
    for on, lhs in viol:
        age = (AS_OF - date.fromisoformat(on)).days
        if age > w["lookback_years"] * 365.25:
            continue
        sev = w["gevolg_points"][lhs[1]] * w["gedrag_factor"][lhs[0]] if lhs else w["unknown_cell_points"]
        repeat = any(0 < (date.fromisoformat(on) - date.fromisoformat(o)).days <= w["repeat_window_years"] * 365.25
                     for o, _ in viol)
        comp += sev * 0.5 ** (age / (w["half_life_years"] * 365.25)) * (w["repeat_factor"] if repeat else 1)
    comp = min(comp, w["cap"])
    w = weights["overdue"]
    dates = [on for _, (e, on, _, _, _) in INSPECTIONS.items() if e == eid]
    if not dates:
        cycles = w["never_inspected_cycles"]
    else:
        elapsed = (AS_OF - date.fromisoformat(max(dates))).days / ((freq or w["default_frequency_years"]) * 365.25)
        cycles = min(w["max_cycles"], max(0.0, elapsed - 1))
    over = cycles * w["points_per_cycle"]
    w = weights["surroundings"]
    sur = 0.0
    guide = GUIDE.get(cat or "")
    if NH3.get(eid) and any(dep > kdw and hexagon(hx, hy).distance(Point(x, y)) <= w["nh3_habitat_radius_m"]
                            for hx, hy, dep, kdw in HEXES.values()):
        sur += w["nh3_habitat_points"]
    if guide:
        homes = sum(1 for xy, use in BUILDINGS.values() if "woon" in use and _square(*xy).distance(Point(x, y)) < guide)
        sur += min(w["dwelling_points_max"], w["dwelling_points_each"] * homes)
        if any(g.distance(Point(x, y)) < guide for g in SITES.values()):
            sur += w["housing_site_points"]
    fw = weights["factor_weights"]
    return {"relevance": rel, "compliance": comp, "overdue": over, "surroundings": sur,
            "score": fw["relevance"] * rel + fw["compliance"] * comp + fw["overdue"] * over + fw["surroundings"] * sur}


def _rank(reader_url: str, settings: Settings, role: str = "admin", org: str | None = None,
          **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("municipality_code", "GM9931")
    kwargs.setdefault("year", 2023)  # the hexagon year, given so that other modules' rows cannot change it
    return as_role(reader_url, inspection_priority, settings, role=role, org_code=org, as_of=AS_OF,
                   disclosure=Disclosure(role, org), **kwargs)


def test_scores_and_order(world: None, reader_url: str, settings: Settings) -> None:
    result = _rank(reader_url, settings)
    ids = [i["establishment_id"] for i in result["ranking"]]
    assert sorted(ids) == ["AN-P1", "AN-P2", "AN-P3", "AN-P4", "AN-P6"]  # AN-P5 lies in GM9932
    want = {eid: expected(eid) for eid in ids}
    assert ids == sorted(ids, key=lambda e: (-round(want[e]["score"], 3), e))
    for item in result["ranking"]:
        w = want[item["establishment_id"]]
        assert item["score"] == pytest.approx(w["score"], abs=0.002)
        factors = {f["factor"]: f for f in item["factors"]}
        assert list(factors) == ["relevance", "compliance", "overdue", "surroundings"]
        for name in factors:
            assert factors[name]["points"] == pytest.approx(w[name], abs=0.002)
            assert factors[name]["explanation"]
        assert item["rank"] == item["computed_rank"] and item["override"] is None
    assert result["numberMatched"] == 5 and result["municipality"]["code"] == "GM9931"


def test_p1_by_hand(world: None, reader_url: str, settings: Settings) -> None:
    """The establishment with every factor, worked out in the open."""
    p1 = next(i for i in _rank(reader_url, settings)["ranking"] if i["establishment_id"] == "AN-P1")
    f = {x["factor"]: x for x in p1["factors"]}
    assert f["relevance"]["points"] == 12 + 20 + 6  # category 5.1, Brzo, type C
    # PI1 (C3: 4 x 2) 537 days old; PI2 (B2: 2 x 1.5) 150 days old, a repeat of PI1 (387 days before it);
    # PI0 (2018) lies outside the 5-year window.
    c = 8 * 0.5 ** (537 / 730.5) + 3 * 0.5 ** (150 / 730.5) * 1.5
    assert f["compliance"]["points"] == pytest.approx(c, abs=0.002)
    assert [v["inspection_id"] for v in f["compliance"]["inputs"]["violations"]] == ["AN-PI1", "AN-PI2"]
    assert [v["repeat"] for v in f["compliance"]["inputs"]["violations"]] == [False, True]
    assert f["overdue"]["points"] == 0  # visited 150 days ago, yearly class
    # NH3 permit and an overloaded hexagon 1,438 m away: 10; PB1-PB3 within 500 m: 3 x 0.5; PS1 300 m: 5.
    assert f["surroundings"]["points"] == 10 + 1.5 + 5
    assert f["surroundings"]["inputs"]["dwellings_within_guide_distance"] == 3
    assert f["surroundings"]["inputs"]["overloaded_hexagons_nearby"] == 1


def test_overdue_is_capped_and_never_inspected(world: None, reader_url: str, settings: Settings) -> None:
    ranking = _rank(reader_url, settings)["ranking"]
    items = {i["establishment_id"]: {f["factor"]: f for f in i["factors"]} for i in ranking}
    assert items["AN-P3"]["overdue"]["inputs"]["overdue_cycles"] == 2  # 9 years since, 3-year class: capped
    assert items["AN-P2"]["overdue"]["points"] == 2 * 10
    assert items["AN-P2"]["overdue"]["inputs"]["last_inspection"] is None
    assert items["AN-P4"]["overdue"]["inputs"]["default_frequency"] is True
    # An expired permit with NH3 does not make AN-P2 an emitter.
    assert items["AN-P2"]["surroundings"]["inputs"]["nh3_kg_per_year"] == 0


def test_scope_per_role(world: None, reader_url: str, settings: Settings) -> None:
    inspector = {i["establishment_id"]: i for i in _rank(reader_url, settings, role="inspector", org="ODAN")["ranking"]}
    assert "AN-P6" not in inspector and inspector["AN-P3"]["name"] == "Bedrijf AN-P3"
    advisor = {i["establishment_id"]: i for i in _rank(reader_url, settings, role="advisor")["ranking"]}
    assert "AN-P3" not in advisor and "AN-P6" in advisor  # no sole proprietors for advisors
    assert advisor["AN-P6"]["score"] == pytest.approx(expected("AN-P6")["score"], abs=0.002)
    with pytest.raises(Unauthorized):
        _rank(reader_url, settings, role="anonymous")


def test_bad_parameters(world: None, reader_url: str, settings: Settings) -> None:
    with pytest.raises(NotFound):
        _rank(reader_url, settings, municipality_code="GM9999")
    with pytest.raises(InvalidParameter):
        _rank(reader_url, settings, limit=0)
    assert [i["rank"] for i in _rank(reader_url, settings, limit=2)["ranking"]] == [1, 2]


def test_weights_file(world: None, reader_url: str, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "weights.yaml"
    path.write_text("factor_weights:\n  relevance: 0\ncompliance:\n  cap: 1\n")
    custom = settings.model_copy(update={"priority_weights": path})
    weights = yaml.safe_load(yaml.safe_dump(WEIGHTS))
    weights["factor_weights"]["relevance"] = 0
    weights["compliance"]["cap"] = 1
    result = _rank(reader_url, custom)
    assert result["weights"]["source"] == str(path)
    for item in result["ranking"]:
        assert item["score"] == pytest.approx(expected(item["establishment_id"], weights)["score"], abs=0.002)
    path.write_text("factor_weights:\n  relevanse: 2\n")
    with pytest.raises(ConfigurationError, match="relevanse"):
        _rank(reader_url, custom)
    path.write_text("compliance:\n  cap: -3\n")
    with pytest.raises(ConfigurationError, match="compliance.cap"):
        _rank(reader_url, custom)


def _cli(settings: Settings, *args: str) -> Any:
    from cli.main import app

    env = {"TWIN_DATA_DIR": str(settings.data_dir), "TWIN_DATABASE_NAME": settings.database_name}
    if settings.database_url:
        env["TWIN_DATABASE_URL"] = settings.database_url
    return CliRunner().invoke(app, ["priority", *args], env=env)


def test_overrides_through_the_cli(world: None, reader_url: str, settings: Settings) -> None:
    computed = [i["establishment_id"] for i in _rank(reader_url, settings)["ranking"]]
    res = _cli(settings, "override", "AN-P4", "--rank", "1", "--reason", "Klachten omwonenden", "--author", "coord")
    assert res.exit_code == 0, res.output
    res = _cli(settings, "override", computed[0], "--rank", "99", "--reason", "Net bezocht")
    assert res.exit_code == 0, res.output
    ranking = _rank(reader_url, settings)["ranking"]
    ids = [i["establishment_id"] for i in ranking]
    others = [e for e in computed if e not in ("AN-P4", computed[0])]
    assert ids == ["AN-P4", *others, computed[0]]
    p4 = ranking[0]
    assert p4["override"]["rank"] == 1 and p4["override"]["reason"] == "Klachten omwonenden"
    assert p4["override"]["author"] == "coord" and p4["computed_rank"] == computed.index("AN-P4") + 1
    assert ranking[-1]["override"]["rank"] == 99 and ranking[-1]["rank"] == len(computed)
    listing = _cli(settings, "list")
    assert listing.exit_code == 0 and "Klachten omwonenden" in listing.output and "2 override(s)" in listing.output
    # A new override replaces the old one; the old one stays as history.
    assert _cli(settings, "override", "AN-P4", "--rank", "2", "--reason", "Toch later").exit_code == 0
    assert [i["establishment_id"] for i in _rank(reader_url, settings)["ranking"]][1] == "AN-P4"
    assert "3 override(s)" in _cli(settings, "list", "--all").output
    for eid in ("AN-P4", computed[0]):
        assert _cli(settings, "clear", eid).exit_code == 0
    assert [i["establishment_id"] for i in _rank(reader_url, settings)["ranking"]] == computed


def test_cli_bad_input(world: None, settings: Settings) -> None:
    res = _cli(settings, "override", "AN-NOPE", "--rank", "1", "--reason", "x")
    assert res.exit_code == 1 and "AN-NOPE" in res.output and "not in the twin" in res.output
    res = _cli(settings, "override", "AN-P1", "--rank", "0", "--reason", "x")
    assert res.exit_code == 1 and "--rank" in res.output
    res = _cli(settings, "override", "AN-P1", "--rank", "1", "--reason", "  ")
    assert res.exit_code == 1 and "--reason" in res.output
    res = _cli(settings, "clear", "AN-P2")
    assert res.exit_code == 1 and "no active override" in res.output


def test_cli_rank(world: None, settings: Settings) -> None:
    res = _cli(settings, "rank", "--municipality", "GM9931", "--as-of", "2024-06-30", "--limit", "3")
    assert res.exit_code == 0, res.output
    assert "3 of 5 establishments" in res.output


def test_api_needs_a_role(world: None, client: TestClient) -> None:
    r = client.get("/analysis/inspection-priority", params={"municipality": "GM9931"})
    assert r.status_code == 401 and "API key" in r.json()["description"]


def test_api_with_keys(world: None, client: TestClient, owner_url: str) -> None:
    params = {"municipality": "GM9931", "as_of": "2024-06-30", "year": 2023, "limit": 3}
    r = client.get("/analysis/inspection-priority", params=params, headers=api_key(owner_url, "admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberMatched"] == 5 and body["numberReturned"] == 3
    import psycopg

    with psycopg.connect(owner_url) as conn:  # the audit log notes the three establishments served
        rows = conn.execute("SELECT records, layers FROM twin.audit_log WHERE role = 'admin' "
                            "AND endpoint = '/analysis/inspection-priority' ORDER BY id DESC LIMIT 1").fetchall()
    assert rows == [(3, ["inspections"])]
    for item in body["ranking"]:
        assert item["score"] == pytest.approx(expected(item["establishment_id"])["score"], abs=0.002)
    # The inspector's ranking: their organisation only (AN-P6 belongs to ODXX).
    r = client.get("/analysis/inspection-priority", params=params | {"limit": 100},
                   headers=api_key(owner_url, "inspector", "ODAN"))
    assert sorted(i["establishment_id"] for i in r.json()["ranking"]) == ["AN-P1", "AN-P2", "AN-P3", "AN-P4"]
    r = client.get("/analysis/inspection-priority", params=params, headers=api_key(owner_url, "public"))
    assert r.status_code == 403
    r = client.get("/analysis/inspection-priority", params=params | {"limit": 0}, headers=api_key(owner_url, "admin"))
    assert r.status_code == 400 and r.json()["parameter"] == "limit"
