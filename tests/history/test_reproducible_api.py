"""Reproducible decisions through the API (issue 20, docs/history.md): a delivery is loaded by the ingest code,
the analyses, the printable report and a stored visit plan's recomputation are asked for through HTTP, a
correcting delivery is loaded, and the same questions asked as of the first moment (geldigOp/beschikbaarOp)
give identical answers, modulo the time an answer was generated.

The world lies offshore (RD x 10-16 km, y 440-446 km), in a municipality of its own (GM9201), with ids that
start with ``RP-``, so that the analyses of the other tests never see it.
"""

from __future__ import annotations

import csv
import re
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest.loader import load
from twin import access
from twin.model.plan import make_plan
from twin.settings import Settings

MUNI = "GM9201"
EST_HEADER = ["inrichting_id", "naam", "kvk_nummer", "vestigingsnummer", "sbi_code", "sbi_omschrijving", "rechtsvorm",
              "eenmanszaak", "straat", "huisnummer", "postcode", "plaats", "gemeentecode", "activiteiten",
              "milieucategorie", "type_activiteitenbesluit", "brzo", "bezoekfrequentie", "organisatie", "aanvang",
              "datum_einde", "x_coord", "y_coord"]
INSP_HEADER = ["controle_id", "inrichting_id", "datum_controle", "type", "resultaat", "gedrag", "gevolg", "lhs_cel",
               "aard", "interventie", "hersteldatum", "status_maatregel", "toezichthouder", "organisatie"]
# Keys whose value is the moment an answer was made, not what it says.
GENERATED = {"generated_at", "timeStamp", "measured_at", "computed_at", "ranking_as_of"}


def _establishment(i: int, name: str, category: str = "3.2", frequency: str = "3") -> list[str]:
    return [f"RP-{i:03d}", name, f"{92010000 + i}", f"{920100000000 + i}", "0141", "Fokken en houden van melkvee",
            "Besloten Vennootschap", "nee", "Zeeweg", str(i), "9999ZZ", "Reproduceerdam", MUNI,
            "houden van landbouwhuisdieren in dierenverblijven", category, "B", "nee", frequency, "ODRP",
            "2015-03-01", "", f"{12000 + 250 * i:.2f}", f"{442000 + 180 * i:.2f}"]


def _inspection(i: int, est: int, result: str, on: str = "2024-05-02") -> list[str]:
    broken = result == "voorschriften overtreden"
    return [f"RP-C{i:03d}", f"RP-{est:03d}", on, "routine", result, "B" if broken else "", "1" if broken else "",
            "B1" if broken else "", "opslag mest" if broken else "", "waarschuwing" if broken else "",
            "", "in uitvoering" if broken else "", "A. Toezicht", "ODRP"]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _strip(value: Any) -> Any:
    """The answer without the moments of its generation."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in GENERATED}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@pytest.fixture()
def world(settings: Settings, owner_url: str, tmp_path: Path):
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("INSERT INTO twin.municipalities (code, name, geom) VALUES (%s, 'Reproduceerdam', "
                     "ST_Multi(ST_MakeEnvelope(10000, 440000, 16000, 446000, 28992))) ON CONFLICT (code) DO NOTHING",
                     (MUNI,))
        _, token = access.create_key(conn, "admin", None, None, "RP-test")
    yield {"headers": {"Authorization": f"Bearer {token}"}, "dir": tmp_path}
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("DELETE FROM twin.visit_plans WHERE note = 'RP-test'")
        conn.execute("DELETE FROM twin.inspections WHERE inspection_id LIKE 'RP-%'")
        conn.execute("DELETE FROM twin.establishments WHERE establishment_id LIKE 'RP-%'")
        conn.execute("DELETE FROM twin.municipalities WHERE code = %s", (MUNI,))


def test_answers_as_of_the_first_moment_survive_corrections(world: dict[str, Any], settings: Settings,
                                                             writer_url: str, client: TestClient) -> None:
    d: Path = world["dir"]
    headers = world["headers"]
    first_est = [_establishment(i, f"Melkveebedrijf {i}") for i in range(1, 9)]
    first_insp = [_inspection(i, i, "voorschriften overtreden" if i % 3 == 0 else "geen overtreding")
                  for i in range(1, 9)]
    for layer, path in (("establishments", _write(d / "e1.csv", EST_HEADER, first_est)),
                        ("inspections", _write(d / "i1.csv", INSP_HEADER, first_insp))):
        r = load(settings, layer, path, crs="EPSG:28992", max_reject_rate=0)
        assert r.status == "succeeded" and r.rows_inserted == 8, (layer, r.rejects)
    with psycopg.connect(writer_url) as conn:
        plan = make_plan(conn, settings, method="rules", capacity=100_000, random_share=0.0, cutoff=date.today(),
                         model=None, note="RP-test")
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    as_of = {"geldigOp": date.today().isoformat(), "beschikbaarOp": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        "context": ("/analysis/context", {"establishment": "RP-003", "radius": 1500}),
        "housing-nitrogen": ("/analysis/housing-nitrogen", {"municipality": MUNI, "f": "json"}),
        "inspection-priority": ("/analysis/inspection-priority", {"municipality": MUNI, "limit": 100}),
        "area-summary": ("/analysis/area-summary", {"municipality": MUNI}),
        "items": ("/collections/establishments/items", {"bbox": "3.2,51.9,3.4,52.0", "limit": 100}),
        "quality": ("/quality/establishments.kvk_number-filled", {"bbox": "3.2,51.9,3.4,52.0"}),
        # the stored plan recomputed as of its own moment and cut-off: the live ranking it was made from
        "plan": ("/analysis/inspection-priority", {"municipality": MUNI, "limit": 100}),
    }

    def ask(name: str, params: dict[str, Any]) -> Any:
        path, base = calls[name]
        r = client.get(path, params={**base, **params}, headers=headers)
        assert r.status_code == 200, (name, r.text)
        return _strip(r.json())

    def report(params: dict[str, Any]) -> str:
        r = client.get("/analysis/context", params={"establishment": "RP-003", "radius": 1500, "f": "html",
                                                    **params}, headers=headers)
        assert r.status_code == 200, r.text
        text = re.sub(r'nonce="[^"]*"', 'nonce=""', r.text)  # the page's CSP nonce is new on every request
        # and its footer says when it was made, to the minute (the two reports may straddle a minute)
        return re.sub(r"Gegenereerd op [^<]*? door", "Gegenereerd op - door", text)

    plan_as_of = {"geldigOp": plan["data_cutoff"], "beschikbaarOp": as_of["beschikbaarOp"]}
    before = {name: ask(name, plan_as_of if name == "plan" else as_of) for name in calls}
    now_before = {name: ask(name, {}) for name in calls}
    report_before = report(as_of)
    stored = client.get("/analysis/inspection-priority", params={"method": "rules", "limit": 100000},
                        headers=headers).json()

    # A correcting delivery: a fix of what was registered (--correction) and a change in the world.
    corrected = [row[:] for row in first_est]
    corrected[2][1] = "Melkveebedrijf 3 (naam hersteld)"
    corrected[4][14] = "4.1"
    corrected[5][17] = "1"
    r = load(settings, "establishments", _write(d / "e2.csv", EST_HEADER, corrected), crs="EPSG:28992",
             max_reject_rate=0, correction=True)
    assert r.status == "succeeded" and r.rows_updated == 3, r.rejects
    changed = [row[:] for row in corrected[:7]] + [_establishment(9, "Nieuw Melkveebedrijf 9")]
    changed[1][1] = "Melkveebedrijf 2 BV (nieuwe naam)"
    r = load(settings, "establishments", _write(d / "e3.csv", EST_HEADER, changed), crs="EPSG:28992",
             mode="upsert", max_reject_rate=0)
    assert r.status == "succeeded" and r.rows_inserted == 1 and r.rows_updated == 1, r.rejects
    fixed_insp = [row[:] for row in first_insp]
    fixed_insp[0] = _inspection(1, 1, "voorschriften overtreden")
    fixed_insp[2] = _inspection(3, 3, "geen overtreding")
    r = load(settings, "inspections", _write(d / "i2.csv", INSP_HEADER, fixed_insp), crs="EPSG:28992",
             max_reject_rate=0, correction=True)
    assert r.status == "succeeded" and r.rows_updated == 2, r.rejects

    after = {name: ask(name, plan_as_of if name == "plan" else as_of) for name in calls}
    for name in calls:
        assert after[name] == before[name], name
    # the current state did change, so the equality above is not vacuous
    now_after = {name: ask(name, {}) for name in calls}
    assert now_after["context"] != now_before["context"]
    assert now_after["inspection-priority"] != now_before["inspection-priority"]
    assert now_after["items"] != now_before["items"]
    # the printable report: same tables, same map image, same sources, both dates stated
    report_after = report(as_of)
    assert report_after == report_before
    assert "geldigOp" in report_after and "beschikbaarOp" in report_after
    assert "Melkveebedrijf 3 (naam hersteld)" not in report_after and "Melkveebedrijf 3" in report_after
    assert "Melkveebedrijf 3 (naam hersteld)" in report({})
    assert re.search(r"Stand: .* vandaag .* nu", report({})) is not None
    # the stored plan itself is kept as stored: the same establishments in the same order
    again = client.get("/analysis/inspection-priority", params={"method": "rules", "limit": 100000},
                       headers=headers).json()
    assert [i["establishment_id"] for i in again["ranking"]] == [i["establishment_id"] for i in stored["ranking"]]
