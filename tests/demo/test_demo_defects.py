"""The data-quality defects planted in the demo data (issue 9): the small scale loads through `ingest-all`
without a single reject, and every count in quality_truth.json is found again in the database by SQL written
here from the definitions, independently of the generator's own counting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cli.ingest import ingest_all
from demo.generate import generate
from twin.settings import Settings

SEED = 5
REF = "DATE '2026-11-01'"

# One query per defect: the ids of the records that meet its definition (docs/demo-data.md).
HOUSE_NUMBER = "substring(e.house_number from '^[0-9]+')::int"
QUERIES: dict[str, str] = {
    "kvk_missing": "SELECT establishment_id FROM twin.establishments WHERE kvk_number IS NULL",
    "postcode_missing": "SELECT establishment_id FROM twin.establishments WHERE postcode IS NULL",
    "category_missing": "SELECT establishment_id FROM twin.establishments WHERE environmental_category IS NULL",
    "ended": "SELECT establishment_id FROM twin.establishments WHERE ended_on IS NOT NULL",
    "permit_after_end": """
        SELECT DISTINCT e.establishment_id FROM twin.establishments e JOIN twin.permits p USING (establishment_id)
        WHERE e.ended_on IS NOT NULL AND p.status = 'verleend' AND (p.valid_until IS NULL OR p.valid_until > e.ended_on)
    """,
    "permits_after_end": """
        SELECT p.permit_id FROM twin.establishments e JOIN twin.permits p USING (establishment_id)
        WHERE e.ended_on IS NOT NULL AND p.status = 'verleend' AND (p.valid_until IS NULL OR p.valid_until > e.ended_on)
    """,
    "no_valid_permit": f"""
        SELECT e.establishment_id FROM twin.establishments e
        WHERE (e.sbi_code LIKE '014%' OR substr(e.sbi_code, 1, 2)::int BETWEEN 10 AND 33) AND e.ended_on IS NULL
          AND NOT EXISTS (SELECT 1 FROM twin.permits p WHERE p.establishment_id = e.establishment_id
                          AND p.status = 'verleend' AND (p.valid_from IS NULL OR p.valid_from <= {REF})
                          AND (p.valid_until IS NULL OR p.valid_until >= {REF}))
    """,
    "kvk_far_apart": """
        SELECT DISTINCT a.establishment_id FROM twin.establishments a JOIN twin.establishments b
          ON a.kvk_number = b.kvk_number AND a.id <> b.id
        WHERE NOT ST_DWithin(a.geom, b.geom, 10000)
    """,
    "violation_not_followed_up": f"""
        SELECT i.inspection_id FROM twin.inspections i
        WHERE i.result = 'voorschriften overtreden' AND i.repair_deadline < {REF}
          AND coalesce(i.intervention, 'geen') = 'geen'
          AND NOT EXISTS (SELECT 1 FROM twin.inspections j WHERE j.establishment_id = i.establishment_id
                          AND j.inspected_on > i.inspected_on)
    """,
    "inspection_before_start": """
        SELECT i.inspection_id FROM twin.inspections i JOIN twin.establishments e USING (establishment_id)
        WHERE i.inspected_on < e.started_on
    """,
    "location_far_from_address": f"""
        SELECT DISTINCT e.establishment_id FROM twin.establishments e
        JOIN twin.addresses a ON a.postcode = e.postcode AND a.house_number = {HOUSE_NUMBER}
        WHERE ST_Distance(a.geom, e.geom) > 250
    """,
    "no_address": f"""
        SELECT e.establishment_id FROM twin.establishments e
        WHERE NOT EXISTS (SELECT 1 FROM twin.addresses a WHERE a.postcode = e.postcode
                          AND a.house_number = {HOUSE_NUMBER})
    """,
    "overdue_inspection": f"""
        SELECT e.establishment_id FROM twin.establishments e
        WHERE e.ended_on IS NULL AND e.started_on <= {REF} - make_interval(years => e.visit_frequency_years)
          AND NOT EXISTS (SELECT 1 FROM twin.inspections i WHERE i.establishment_id = e.establishment_id
                          AND i.inspected_on > {REF} - make_interval(years => e.visit_frequency_years))
    """,
}


def scalar(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, ingest_settings: Settings, ingest_owner: str) -> dict[str, Any]:
    """The small demo data, loaded; returns its truth file."""
    out = tmp_path_factory.mktemp("demo-quality")
    generate("small", SEED, out, dirty=False)
    with psycopg.connect(ingest_owner) as conn:
        conn.execute("TRUNCATE twin.inspections, twin.permits, twin.establishments, twin.natura2000_habitats, "
                     "twin.housing_sites, twin.buildings, twin.addresses, twin.deposition_hexagons, "
                     "twin.nitrogen_deposition, twin.nitrogen_deposition_years, twin.nitrogen_deposition_o4, "
                     "twin.nitrogen_deposition_o16 CASCADE")
    results = ingest_all(ingest_settings, out, derive=False)
    runs = [r.run_id for r in results]
    rejects = rows(ingest_owner, "SELECT source, row_number, reason FROM twin.ingest_rejects WHERE run_id = ANY(%s) "
                   "LIMIT 5", (runs,))
    assert [(r.layer, r.status) for r in results if r.status != "succeeded"] == [] and rejects == []
    truth: dict[str, Any] = json.loads((out / "quality_truth.json").read_text(encoding="utf-8"))
    return truth


def test_every_layer_loads_without_a_reject(loaded: dict[str, Any], ingest_owner: str) -> None:
    for table, n in loaded["rows"].items():
        assert scalar(ingest_owner, f"SELECT count(*) FROM twin.{table}") == n, table
    # one address per establishment plus those of the buildings, about one and a half per building
    n_buildings = scalar(ingest_owner, "SELECT count(*) FROM twin.buildings")
    assert 1.0 * n_buildings < loaded["rows"]["addresses"] - loaded["rows"]["establishments"] < 2.0 * n_buildings


@pytest.mark.parametrize("defect", list(QUERIES))
def test_planted_counts_are_found_in_the_database(defect: str, loaded: dict[str, Any], ingest_owner: str) -> None:
    truth = loaded["defects"][defect]
    found = {r[0] for r in rows(ingest_owner, QUERIES[defect])}
    assert len(found) == truth["expected"], defect
    assert set(truth["ids"]) <= found  # every planted record is among them
    assert truth["planted"] == (len(truth["ids"]) if defect != "permits_after_end" else len(found))
    if defect not in ("no_valid_permit", "overdue_inspection"):
        # the clean generator makes none of these by itself: all are planted
        assert truth["planted"] == truth["expected"]


def test_defects_are_rare_but_present(loaded: dict[str, Any]) -> None:
    n = loaded["rows"]["establishments"]
    for name, d in loaded["defects"].items():
        if name == "permits_after_end":
            continue
        assert 0 < d["planted"] <= 0.05 * n, name
    # each planted establishment carries one defect only, so the counts do not overlap
    per_establishment = [d["ids"] for name, d in loaded["defects"].items()
                         if d["unit"] == "establishment" and name not in ("permit_after_end", "no_address")]
    flat = [i for ids in per_establishment for i in ids]
    kvk = set(loaded["defects"]["kvk_far_apart"]["ids"])
    assert len([i for i in flat if i not in kvk]) == len({i for i in flat if i not in kvk})


def test_same_seed_plants_the_same_defects(loaded: dict[str, Any], tmp_path: Path) -> None:
    generate("small", SEED, tmp_path, dirty=False)
    again = json.loads((tmp_path / "quality_truth.json").read_text(encoding="utf-8"))
    assert again == loaded
