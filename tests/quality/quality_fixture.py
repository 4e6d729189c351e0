"""A small twin built to break the data-quality rules: every rule that data can break is broken by exactly one
record (the symmetric ones, a shared KvK number and a duplicate address, by exactly one pair), and a few
records break several rules at once. Most of it goes in through the real ``twin ingest``; what the loader or
the schema refuses (blank required values, codes outside their lists, an invalid polygon, a point at sea) is
written with SQL as the owner, the way data loaded around the loader would arrive.

All places lie in Utrecht (RD New 134000-136000, 455000-456400); the municipality codes come from the real
municipalities in the database, never from this file. The reference date of the rules is AS_OF.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from twin.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MUNICIPALITIES = ROOT / "twin" / "data" / "nl_gemeenten_2023.gpkg"
AS_OF = dt.date(2026, 6, 30)
AMSTERDAM = "GM0363"


def run_cli(settings: Settings, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``twin ARGS`` in a subprocess against the test database, with the fixture's reference date."""
    env = {**os.environ, "TWIN_DATABASE_NAME": settings.database_name, "TWIN_DATA_DIR": str(settings.data_dir),
           "TWIN_QUALITY_AS_OF": AS_OF.isoformat(), "COLUMNS": "200"}
    if settings.database_url:
        env["TWIN_DATABASE_URL"] = settings.database_url
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def municipality_at(owner_url: str, x: float, y: float) -> str:
    with psycopg.connect(owner_url) as conn:
        row = conn.execute("SELECT code FROM twin.municipalities WHERE ST_Intersects(geom, ST_Point(%s, %s, 28992))",
                           (x, y)).fetchone()
    assert row is not None, f"no municipality at {x}, {y}"
    return str(row[0])


def box(x: float, y: float, half: float) -> list[list[list[float]]]:
    return [[[x - half, y - half], [x + half, y - half], [x + half, y + half], [x - half, y + half],
             [x - half, y - half]]]


@dataclass
class Fixture:
    """The files written and what the test needs to know about them."""

    folder: Path
    code: str  # municipality of every place (Utrecht)
    far_code: str  # municipality of the far KvK partner
    files: dict[str, Path] = field(default_factory=dict)
    establishments: list[dict[str, Any]] = field(default_factory=list)


def _est(i: int, eid: str, **over: Any) -> dict[str, Any]:
    x, y = 134000.0 + 200 * (i % 10), 455000.0 + 200 * (i // 10)
    row = {
        "establishment_id": eid, "name": f"Bedrijf {eid}", "kvk_number": f"{10000000 + i}",
        "vestigingsnummer": f"{100000000000 + i}", "sbi_code": "4711", "legal_form": "Besloten Vennootschap",
        "sole_proprietor": "nee", "street": "Teststraat", "house_number": str(i + 1),
        "postcode": f"35{i:02d}AB", "city": "Utrecht", "municipality_code": "", "environmental_category": "2",
        "activiteitenbesluit_type": "B", "brzo": "nee", "visit_frequency_years": "10", "org_code": "ODU",
        "started_on": "2020-01-01", "ended_on": "", "x": x, "y": y,
    }
    row.update(over)
    return row


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _write_geojson(path: Path, rows: list[dict[str, Any]], geometry: str = "Polygon") -> Path:
    feats = [{"type": "Feature", "properties": {k: v for k, v in r.items() if k != "coords"},
              "geometry": {"type": geometry, "coordinates": r["coords"]}} for r in rows]
    path.write_text(json.dumps({"type": "FeatureCollection",
                                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::28992"}},
                                "features": feats}))
    return path


def establishments(code: str, far_code: str) -> list[dict[str, Any]]:
    """The establishments; the comment names the rule(s) each one breaks."""
    c = {"municipality_code": code}
    return [
        _est(0, "E-LIVESTOCK-OK", sbi_code="0146", visit_frequency_years="1", started_on="2000-01-01", **c),
        _est(1, "E-INDUSTRY-OK", sbi_code="2511", visit_frequency_years="3", started_on="2000-01-01", **c),
        _est(2, "E-NO-KVK", kvk_number="", **c),  # kvk_number-filled
        _est(3, "E-NO-HOUSE-NUMBER", house_number="", **c),  # house_number-filled
        _est(4, "E-NO-FREQUENCY", visit_frequency_years="", **c),  # visit_frequency_years-filled
        _est(5, "E-NO-START", started_on="", **c),  # started_on-filled (inspected in time: not overdue)
        # street, city, org_code, environmental_category filled; sole-proprietor-fits-legal-form
        _est(6, "E-MANY", street="", city="", org_code="", environmental_category="", legal_form="Eenmanszaak", **c),
        _est(7, "E-FUTURE-START", started_on="2026-09-01", **c),  # started_on-possible (after AS_OF)
        _est(8, "E-BAD-POSTCODE", postcode="1234", **c),  # postcode-format and address-found
        _est(9, "E-BRZO", brzo="ja", visit_frequency_years="5", **c),  # brzo-visit-frequency
        _est(10, "E-WRONG-MUNICIPALITY", municipality_code=AMSTERDAM),  # municipality-matches-location
        _est(11, "E-NO-BUILDING", **c),  # near-building
        _est(12, "E-OVERDUE", visit_frequency_years="1", started_on="2000-01-01", **c),  # inspection-overdue
        _est(13, "E-LIVESTOCK-NO-PERMIT", sbi_code="0141", **c),  # signal.livestock-without-permit
        _est(14, "E-INDUSTRY-NO-PERMIT", sbi_code="1011", **c),  # signal.industry-without-permit
        _est(15, "E-KVK-A", kvk_number="99999999", **c),  # signal.kvk-far-apart (with E-KVK-B)
        _est(16, "E-KVK-B", kvk_number="99999999", municipality_code=far_code, x=155000.0, y=463000.0),
        _est(17, "E-FAR-FROM-ADDRESS", **c),  # signal.address-location-mismatch
        _est(18, "E-ENDED", started_on="2010-01-01", ended_on="2025-01-01", **c),  # its permit: signal
        _est(19, "E-CLEAN", **c),
    ]


def write(folder: Path, owner_url: str) -> Fixture:
    """Write the files of the first delivery into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    code = municipality_at(owner_url, 135000, 455500)
    far_code = municipality_at(owner_url, 155000, 463000)
    fx = Fixture(folder, code, far_code)
    est = establishments(code, far_code)
    fx.establishments = est
    at = {e["establishment_id"]: (e["x"], e["y"]) for e in est}
    fx.files["establishments"] = _write_csv(folder / "inrichtingen.csv", est)

    def permit(pid: str, eid: str, **over: Any) -> dict[str, Any]:
        x, y = at[eid]
        row = {"permit_id": pid, "establishment_id": eid, "permit_type": "omgevingsvergunning",
               "status": "verleend", "applied_on": "2015-01-10", "decided_on": "2015-03-01",
               "valid_from": "2015-04-01", "valid_until": "", "org_code": "ODU", "x": x, "y": y}
        row.update(over)
        return row

    fx.files["permits"] = _write_csv(folder / "vergunningen.csv", [
        permit("P-LIVESTOCK-OK", "E-LIVESTOCK-OK"),
        permit("P-INDUSTRY-OK", "E-INDUSTRY-OK"),
        permit("P-LIVESTOCK-EXPIRED", "E-LIVESTOCK-NO-PERMIT", status="vervallen", valid_until="2020-01-01"),
        permit("P-NO-DECISION-DATE", "E-CLEAN", decided_on="", valid_from=""),  # status-fits-dates
        permit("P-BACKWARDS", "E-CLEAN", valid_from="2015-02-01"),  # dates-in-order (in force before decided)
        permit("P-NO-APPLICATION-DATE", "E-CLEAN", applied_on=""),  # applied_on-filled
        permit("P-NO-ORG", "E-CLEAN", org_code=""),  # org_code-filled
        permit("P-ENDED", "E-ENDED"),  # signal.permit-of-ended-establishment
        permit("P-FAR", "E-BRZO", x=at["E-BRZO"][0] + 2000),  # near-establishment
    ])

    def inspection(iid: str, eid: str, day: str, **over: Any) -> dict[str, Any]:
        x, y = at[eid]
        row = {"inspection_id": iid, "establishment_id": eid, "inspected_on": day, "kind": "routine",
               "result": "voorschriften nageleefd", "gedrag": "", "gevolg": "", "lhs_cell": "", "intervention": "",
               "repair_deadline": "", "follow_up_status": "", "org_code": "ODU", "x": x, "y": y}
        row.update(over)
        return row

    violation = {"result": "voorschriften overtreden", "gedrag": "B", "gevolg": "2", "lhs_cell": "B2"}
    fx.files["inspections"] = _write_csv(folder / "controles.csv", [
        inspection("I-LIVESTOCK", "E-LIVESTOCK-OK", "2026-01-10"),
        inspection("I-INDUSTRY", "E-INDUSTRY-OK", "2025-09-01"),
        inspection("I-NO-START", "E-NO-START", "2025-01-01"),
        inspection("I-BRZO", "E-BRZO", "2024-01-01"),
        inspection("I-OVERDUE", "E-OVERDUE", "2024-01-01"),
        inspection("I-BEFORE-START", "E-CLEAN", "2019-05-01"),  # within-establishment-lifetime
        inspection("I-AFTER-AS-OF", "E-LIVESTOCK-OK", "2026-08-01"),  # inspected_on-possible
        inspection("I-NO-ORG", "E-CLEAN", "2025-02-01", org_code=""),  # org_code-filled
        inspection("I-NO-MEASURE", "E-CLEAN", "2025-03-01", intervention="geen", **violation),  # result-fits
        inspection("I-DEADLINE-FIRST", "E-CLEAN", "2025-05-01", intervention="hersteltermijn",
                   repair_deadline="2025-04-01", follow_up_status="uitgevoerd", **violation),  # repair-deadline
        inspection("I-WITHDRAWN", "E-NO-HOUSE-NUMBER", "2025-02-01", intervention="last onder dwangsom",
                   repair_deadline="2025-03-01", follow_up_status="ingetrokken", **violation),  # no follow-up
        inspection("I-FOLLOWED-UP", "E-FAR-FROM-ADDRESS", "2025-02-01", intervention="waarschuwing",
                   repair_deadline="2025-03-01", follow_up_status="ingetrokken", **violation),  # I-NEXT follows
        inspection("I-NEXT", "E-FAR-FROM-ADDRESS", "2025-03-15"),
        inspection("I-FAR", "E-KVK-A", "2025-06-01", x=at["E-KVK-A"][0] + 600),  # near-establishment
    ])

    # A building at each establishment (but E-NO-BUILDING) and an address 5 m off inside it; two addresses lie
    # elsewhere, each in a building of its own.
    addresses, buildings = [], []
    for n, e in enumerate(est):
        eid = e["establishment_id"]
        if eid != "E-NO-BUILDING":
            buildings.append((e["x"], e["y"]))
        if eid in ("E-NO-HOUSE-NUMBER", "E-BAD-POSTCODE"):
            continue
        ax, ay = e["x"] + 5, e["y"] + 5
        if eid in ("E-FAR-FROM-ADDRESS", "E-NO-BUILDING"):
            ax = e["x"] + (400 if eid == "E-FAR-FROM-ADDRESS" else 100)
            buildings.append((ax, ay))
        addresses.append({"address_id": f"0344010000{n:06d}", "street": "Teststraat",
                          "house_number": e["house_number"], "postcode": e["postcode"], "city": "Utrecht",
                          "municipality_code": code if eid == "E-WRONG-MUNICIPALITY" else e["municipality_code"],
                          "x": ax, "y": ay})
    addresses += [
        {"address_id": "0344010000900001", "street": "Dubbelstraat", "house_number": "1", "postcode": "3599ZZ",
         "city": "Utrecht", "municipality_code": code, "x": 134500.0, "y": 455800.0},  # unique (a pair)
        {"address_id": "0344010000900002", "street": "Dubbelstraat", "house_number": "1", "postcode": "3599ZZ",
         "city": "Utrecht", "municipality_code": code, "x": 134500.0, "y": 455810.0},
        {"address_id": "0344010000900003", "street": "Losweg", "house_number": "7", "postcode": "3598ZZ",
         "city": "Utrecht", "municipality_code": code, "x": 134900.0, "y": 456300.0},  # in-building
        {"address_id": "0344010000900004", "street": "Grensweg", "house_number": "8", "postcode": "3597ZZ",
         "city": "Utrecht", "municipality_code": AMSTERDAM, "x": 134300.0, "y": 455900.0},  # municipality
        {"address_id": "0344010000900005", "street": "", "house_number": "9", "postcode": "3596ZZ",
         "city": "", "municipality_code": code, "x": 134700.0, "y": 455900.0},  # street, city filled
    ]
    buildings += [(134500.0, 455800.0), (134500.0, 455810.0), (134300.0, 455900.0), (134700.0, 455900.0)]
    fx.files["addresses"] = _write_csv(folder / "verblijfsobjecten.csv", addresses)

    brows = [{"building_id": f"0344100000{n:06d}", "construction_year": 1990, "status": "Pand in gebruik",
              "use": "woonfunctie", "height_m": 10.0, "coords": box(x, y, 10)} for n, (x, y) in enumerate(buildings)]
    brows += [
        {"building_id": "0344100000900001", "construction_year": 2100, "status": "Pand in gebruik",
         "use": "woonfunctie", "height_m": 10.0, "coords": box(135500, 456300, 8)},  # construction-year
        {"building_id": "0344100000900002", "construction_year": 1990, "status": "Pand in gebruik",
         "use": "woonfunctie", "height_m": 0.0, "coords": box(135550, 456300, 8)},  # height
        {"building_id": "0344100000900003", "construction_year": 1990, "status": "Pand in gebruik",
         "use": "woonfunctie", "height_m": 3.0, "coords": box(135600, 456300, 0.4)},  # footprint
        {"building_id": "0344100000900004", "construction_year": None, "status": None, "use": None,
         "height_m": 5.0, "coords": box(135650, 456300, 8)},  # construction_year, status, use filled
    ]
    fx.files["buildings"] = _write_geojson(folder / "panden.geojson", brows)

    def habitat(hid: str, **over: Any) -> dict[str, Any]:
        row = {"habitat_id": hid, "area_name": "Testgebied", "area_number": 999, "protection": "HR",
               "habitat_type": "H4030", "kdw": 1071.0, "coords": [box(135000, 456200 + 30 * len(hid), 10)]}
        row.update(over)
        return row

    fx.files["natura2000-habitats"] = _write_geojson(folder / "habitats.geojson", [
        habitat("HAB-OK"),
        habitat("HAB-NAME", habitat_type="Heide"),  # habitat-type-code
        habitat("HAB-KDW-WRONG", kdw=900.0),  # kdw-fits-type
        habitat("HAB-NO-KDW", habitat_type="H9999", kdw=None),  # kdw-filled (no known KDW for H9999)
        habitat("HAB-INCOMPLETE", area_number=None, protection=None),  # area_number, protection filled
    ], "MultiPolygon")

    def site(sid: str, n: int, **over: Any) -> dict[str, Any]:
        # 100 x 100 m = 1 ha
        row = {"site_id": sid, "name": f"Plan {sid}", "municipality_code": code, "planned_dwellings": 100,
               "phase": "vastgesteld", "planned_year": 2028, "coords": [box(135000 + 150 * n, 455700, 50)]}
        row.update(over)
        return row

    fx.files["housing-sites"] = _write_geojson(folder / "woningbouw.geojson", [
        site("S-OK", 0),
        site("S-YEAR", 1, planned_year=1990),  # planned-year-possible
        site("S-STALE", 2, phase="idee", planned_year=2024),  # phase-fits-year
        site("S-DENSE", 3, planned_dwellings=5000),  # dwelling-density (5000 per ha)
        site("S-ELSEWHERE", 4, municipality_code=AMSTERDAM),  # municipality-matches-location
        site("S-VAGUE", 5, phase=None, planned_year=None),  # phase, planned_year filled
    ], "MultiPolygon")
    return fx


# Written with SQL as the owner after the loads: what the loader refuses. Each row also has no run, so it
# fails the delivery-current rule of its layer.
SQL_RECORDS = [
    # name-filled, postcode-filled, municipality_code-filled, inside-netherlands, delivery-current (a point in
    # the North Sea)
    "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, street, house_number, city, "
    "environmental_category, visit_frequency_years, org_code, started_on, geom) VALUES ('E-SQL', '  ', '88888888', "
    "'4711', 'Zeeweg', '99', 'Utrecht', '2', 10, 'ODU', '2020-01-01', ST_Point(50000, 560000, 28992))",
    # status-in-list, delivery-current
    "INSERT INTO twin.permits (permit_id, establishment_id, permit_type, status, applied_on, decided_on, valid_from, "
    "org_code, geom) SELECT 'P-SQL', 'E-CLEAN', 'omgevingsvergunning', 'granted', '2015-01-10', '2015-03-01', "
    "'2015-04-01', 'ODU', geom FROM twin.establishments WHERE establishment_id = 'E-CLEAN'",
    # kind-in-list, delivery-current
    "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, org_code, geom) "
    "SELECT 'I-SQL', 'E-CLEAN', '2025-07-01', 'audit', 'voorschriften nageleefd', 'ODU', geom "
    "FROM twin.establishments WHERE establishment_id = 'E-CLEAN'",
    # geometry-valid, delivery-current (a 20 x 20 m square with a spike: self-intersecting, 400 m2)
    "INSERT INTO twin.buildings (building_id, construction_year, status, use, height_m, geom) VALUES "
    "('0344100000999999', 1990, 'Pand in gebruik', 'woonfunctie', 10, ST_GeomFromText('POLYGON((135800 456300, "
    "135820 456300, 135820 456320, 135810 456320, 135810 456330, 135810 456320, 135800 456320, 135800 456300))', "
    "28992))",
]
